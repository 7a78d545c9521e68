"""Interval estimates for paired evaluations: stratified bootstrap and interquartile mean.

Scores come as arrays of shape (scenarios, seeds). The overall figure of a KPI is the mean
over scenarios of the per-scenario means (every scenario counts the same, whatever its
volume), and its bootstrap resamples seeds within each scenario (stratified), as rliable
does for task suites (Agarwal et al., 2021).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95
BOOTSTRAP_SAMPLES = 2000


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its 95% interval and interquartile mean."""

    mean: float
    ci_low: float
    ci_high: float
    iqm: float

    def as_dict(self) -> dict[str, float]:
        """Return the estimate as the JSON report writes it."""
        return {
            "mean": self.mean,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "iqm": self.iqm,
        }


def iqm(values: np.ndarray) -> float:
    """Return the interquartile mean: the mean of the middle 50% of the values."""
    flat = np.sort(np.asarray(values, dtype=float).ravel())
    n = len(flat)
    if n == 0:
        return float("nan")
    cut = int(np.floor(n * 0.25))  # as scipy.stats.trim_mean: n - 2 * cut >= 1 is left
    return float(flat[cut : n - cut].mean())


def stratified_bootstrap(
    scores: np.ndarray,
    rng: np.random.Generator,
    *,
    samples: int = BOOTSTRAP_SAMPLES,
    confidence: float = CONFIDENCE,
) -> tuple[float, float]:
    """Return the percentile interval of the mean of per-scenario means.

    Args:
        scores: (scenarios, seeds) values; each scenario's seeds are resampled with
            replacement on their own (stratified).
        rng: the generator of the resamples (seeded by the caller, for repeatable reports).
        samples: number of bootstrap resamples.
        confidence: coverage of the interval.
    """
    scores = np.atleast_2d(np.asarray(scores, dtype=float))
    (means,) = _resampled_means([scores], rng, samples)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return float(low), float(high)


def _resampled_means(
    arrays: list[np.ndarray], rng: np.random.Generator, samples: int
) -> list[np.ndarray]:
    """Return each (scenarios, seeds) array's mean over ``samples`` stratified resamples.

    One draw of seed indices serves every array, so paired arrays are resampled alike.
    Rows are equally long, so each mean is the mean of scenario means.
    """
    n_scenarios, n_seeds = arrays[0].shape
    picks = rng.integers(0, n_seeds, size=(samples, n_scenarios, n_seeds))
    return [np.take_along_axis(a[None, :, :], picks, axis=2).mean(axis=(1, 2)) for a in arrays]


def estimate(scores: np.ndarray, rng: np.random.Generator) -> Estimate:
    """Return mean, stratified 95% bootstrap interval and IQM of (scenarios, seeds) scores."""
    scores = np.atleast_2d(np.asarray(scores, dtype=float))
    low, high = stratified_bootstrap(scores, rng)
    # Every scenario has as many seeds, so the grand mean is the mean of scenario means.
    return Estimate(float(scores.mean()), low, high, iqm(scores))


def probability_of_improvement(
    ours: np.ndarray, theirs: np.ndarray, higher_is_better: bool
) -> float:
    """Return the share of paired runs where ours is better, ties counting half."""
    a = np.asarray(ours, dtype=float).ravel()
    b = np.asarray(theirs, dtype=float).ravel()
    better = a > b if higher_is_better else a < b
    return float(np.mean(better + 0.5 * (a == b)))


MIN_GAP = 0.005
"""The smallest ceiling-over-reference lead a gap-closed share is computed for.

Below it (``low_volume``: the oracle stays shared and so does fixed-sendgrid's first
day) the share divides noise by noise; the report says ``None`` and gives the gap.
"""


def gap_closed(
    ours: np.ndarray,
    reference: np.ndarray,
    ceiling: np.ndarray,
    rng: np.random.Generator,
    *,
    samples: int = BOOTSTRAP_SAMPLES,
    confidence: float = CONFIDENCE,
    min_gap: float = MIN_GAP,
) -> dict[str, float | None]:
    """Return the share of the reference-to-ceiling gap that ``ours`` closes, with its interval.

    ``(mean(ours) - mean(reference)) / (mean(ceiling) - mean(reference))`` over (scenarios,
    seeds) arrays paired by seed: 1 is the ceiling, 0 the reference, below 0 worse than
    the reference. Every scenario weighs the same (all have as many seeds), so over a suite
    it is the summed lead over the summed gap. The interval resamples seeds within each
    scenario, the same seeds for all three policies (paired, stratified).

    Returns:
        ``{"mean", "ci_low", "ci_high", "gap"}``: ``gap`` the ceiling's mean lead over the
        reference; the first three ``None`` where ``gap`` is under ``min_gap``, the
        interval ``None`` where a resample of the seeds leaves no gap (the ceiling does not
        lead on every seed and the share could be anything).
    """
    arrays = [np.atleast_2d(np.asarray(a, dtype=float)) for a in (ours, reference, ceiling)]
    lead, gap = arrays[0] - arrays[1], arrays[2] - arrays[1]
    result: dict[str, float | None] = {"mean": None, "ci_low": None, "ci_high": None}
    result["gap"] = float(gap.mean())
    if gap.mean() < min_gap:
        return result
    result["mean"] = float(lead.mean() / gap.mean())
    leads, gaps = _resampled_means([lead, gap], rng, samples)
    if (gaps <= 0.0).any():
        return result  # some resample has no gap to close: the share has no interval
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(leads / gaps, [tail, 1.0 - tail])
    result.update(ci_low=float(low), ci_high=float(high))
    return result
