import numpy as np
import pytest
from scipy import stats as scipy_stats

from ipwarmup.training.stats import (
    MIN_GAP,
    estimate,
    gap_closed,
    iqm,
    probability_of_improvement,
    stratified_bootstrap,
)


def test_bootstrap_interval_matches_the_normal_theory_interval():
    rng = np.random.default_rng(0)
    samples = rng.normal(10.0, 2.0, size=400)
    low, high = stratified_bootstrap(samples[None, :], np.random.default_rng(1))
    half_width = 1.96 * samples.std(ddof=1) / np.sqrt(len(samples))
    assert (high - low) / 2 == pytest.approx(half_width, rel=0.12)
    assert (low + high) / 2 == pytest.approx(samples.mean(), abs=0.05)


def test_bootstrap_interval_covers_the_true_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(2)
    hits = 0
    trials = 300
    for _ in range(trials):
        samples = rng.exponential(1.0, size=(1, 40))  # skewed, true mean 1
        low, high = stratified_bootstrap(samples, rng, samples=1000)
        hits += low <= 1.0 <= high
    assert 0.88 <= hits / trials <= 0.99


def test_stratified_bootstrap_resamples_within_each_scenario():
    # Two scenarios with constant but different scores: any resample within scenarios
    # gives the same mean of means, so the interval has no width. Pooling would not.
    scores = np.array([[1.0] * 10, [3.0] * 10])
    low, high = stratified_bootstrap(scores, np.random.default_rng(0))
    assert low == pytest.approx(2.0) and high == pytest.approx(2.0)


def test_estimate_is_the_mean_of_scenario_means():
    scores = np.array([[0.0, 1.0], [10.0, 10.0]])
    result = estimate(scores, np.random.default_rng(0))
    assert result.mean == pytest.approx((0.5 + 10.0) / 2)
    assert result.ci_low <= result.mean <= result.ci_high


def test_iqm_drops_the_top_and_bottom_quarter():
    values = np.array([-100.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 1000.0])
    assert iqm(values) == pytest.approx(3.5)
    assert iqm(np.array([7.0])) == 7.0


def test_probability_of_improvement_counts_ties_half_and_respects_direction():
    ours = np.array([1.0, 2.0, 3.0, 4.0])
    theirs = np.array([0.0, 2.0, 5.0, 1.0])
    assert probability_of_improvement(ours, theirs, True) == pytest.approx(2.5 / 4)
    assert probability_of_improvement(ours, theirs, False) == pytest.approx(1.5 / 4)


# --- against scipy (issue 15, item 4) ------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 16, 31, 64, 101])
def test_iqm_equals_scipy_trim_mean_on_unsorted_input(n):
    # A shuffled, skewed sample with outliers: a missing sort or ceil for floor shows.
    rng = np.random.default_rng(n)
    values = rng.permutation(np.concatenate([rng.exponential(1.0, n - 1), [50.0 * n]]))
    assert iqm(values) == pytest.approx(scipy_stats.trim_mean(values, 0.25), rel=1e-12)


def test_iqm_pools_every_run_of_every_scenario():
    # rliable's IQM is over all runs pooled, not over scenario means.
    scores = np.array([[9.0, 0.0, 5.0, 1.0], [2.0, 7.0, 3.0, 100.0]])
    # Sorted: 0 1 2 3 5 7 9 100; the middle half 2 3 5 7 averages 4.25.
    assert iqm(scores) == pytest.approx(4.25)
    assert estimate(scores, np.random.default_rng(0)).iqm == pytest.approx(4.25)
    assert scipy_stats.trim_mean(scores.ravel(), 0.25) == pytest.approx(4.25)


def test_iqm_of_nothing_is_nan():
    assert np.isnan(iqm(np.array([])))


def _scipy_interval(scores, resamples=20_000):
    def mean_of_means(*samples, axis):
        return np.mean([np.mean(s, axis=axis) for s in samples], axis=0)

    result = scipy_stats.bootstrap(
        tuple(scores),
        mean_of_means,
        n_resamples=resamples,
        method="percentile",
        confidence_level=0.95,
        vectorized=True,
        rng=np.random.default_rng(123),
    )
    return result.confidence_interval.low, result.confidence_interval.high


@pytest.mark.parametrize(
    ("means", "spreads", "seeds"),
    [
        ((0.5,), (0.1,), 30),  # one scenario: the plain percentile bootstrap of the mean
        ((0.2, 0.9), (0.01, 0.3), 16),  # a tight and a noisy scenario
        ((10.0, -3.0, 0.0), (5.0, 0.5, 1.0), 12),
        ((1.0, 1.0, 40.0, 2.0), (0.2, 2.0, 8.0, 0.05), 8),
    ],
)
def test_stratified_bootstrap_matches_scipy_bootstrap(means, spreads, seeds):
    rng = np.random.default_rng(7)
    scores = np.array([rng.normal(m, s, seeds) for m, s in zip(means, spreads, strict=True)])
    low, high = stratified_bootstrap(scores, np.random.default_rng(8))
    ref_low, ref_high = _scipy_interval(scores)
    # Monte Carlo error of a 2.5% quantile from 2000 resamples is ~1.5% of the width.
    width = ref_high - ref_low
    assert low == pytest.approx(ref_low, abs=0.06 * width)
    assert high == pytest.approx(ref_high, abs=0.06 * width)


def test_bootstrap_defaults_are_2000_resamples_at_95_percent():
    scores = np.random.default_rng(3).normal(0.0, 1.0, (2, 10))
    default = stratified_bootstrap(scores, np.random.default_rng(4))
    explicit = stratified_bootstrap(scores, np.random.default_rng(4), samples=2000, confidence=0.95)
    assert default == explicit
    assert default != stratified_bootstrap(scores, np.random.default_rng(4), samples=1999)


def test_each_scenario_is_resampled_with_its_own_indices():
    # The same seeds in two scenarios: independent resamples average two independent means
    # (the interval shrinks by sqrt 2); shared indices would just repeat one mean.
    x = np.random.default_rng(5).normal(0.0, 1.0, 25)
    one_low, one_high = stratified_bootstrap(x[None, :], np.random.default_rng(6))
    two_low, two_high = stratified_bootstrap(np.stack([x, x]), np.random.default_rng(6))
    ratio = (one_high - one_low) / (two_high - two_low)
    assert ratio == pytest.approx(np.sqrt(2.0), rel=0.08)
    ref_low, ref_high = _scipy_interval(np.stack([x, x]))
    assert (two_high - two_low) == pytest.approx(ref_high - ref_low, rel=0.08)


def test_one_scenario_may_come_as_a_flat_list():
    values = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0]
    flat = stratified_bootstrap(values, np.random.default_rng(0))
    assert flat == stratified_bootstrap(np.array([values]), np.random.default_rng(0))
    result = estimate(values, np.random.default_rng(0))
    assert result.mean == pytest.approx(23.0 / 6)
    assert (result.ci_low, result.ci_high) == flat
    # Sorted 1 1 3 4 5 9: trim one at each end, mean of 1 3 4 5.
    assert result.iqm == pytest.approx(3.25)


def test_estimate_is_frozen_and_serialises_its_four_numbers():
    result = estimate(np.array([[1.0, 2.0, 3.0]]), np.random.default_rng(0))
    assert result.as_dict() == {
        "mean": 2.0,
        "ci_low": result.ci_low,
        "ci_high": result.ci_high,
        "iqm": 2.0,
    }
    assert 1.0 <= result.ci_low < 2.0 < result.ci_high <= 3.0
    with pytest.raises(AttributeError):
        result.mean = 0.0  # type: ignore[misc]


def test_probability_of_improvement_on_an_unbalanced_pairing():
    # Five wins, two ties, one loss: not half and half, so "not worse" cannot pass for
    # "better".
    ours = np.array([[5.0, 1.0, 2.0, 7.0], [3.0, 3.0, 9.0, 4.0]])
    theirs = np.array([[4.0, 1.0, 2.5, 1.0], [1.0, 2.0, 6.0, 4.0]])
    # Higher better: 5>4, 7>1, 3>1, 3>2, 9>6 win; 1=1 and 4=4 tie -> (5 + 2 x 0.5) / 8.
    assert probability_of_improvement(ours, theirs, True) == pytest.approx(6 / 8)
    # Lower better: only 2<2.5 wins, plus the two ties -> (1 + 1) / 8.
    assert probability_of_improvement(ours, theirs, False) == pytest.approx(2 / 8)


def test_gap_closed_on_two_seeds_computed_by_hand():
    # Leads over the reference 0.1 and 0.3, the ceiling's 0.5 and 0.2: 0.2 / 0.35 = 4/7.
    # A resample draws seed 0 twice (0.1 / 0.5 = 0.2), seed 1 twice (0.3 / 0.2 = 1.5) or
    # each once (4/7), with chances 1/4, 1/4, 1/2: the 2.5% and 97.5% points are 0.2, 1.5.
    entry = gap_closed([[0.6, 0.8]], [[0.5, 0.5]], [[1.0, 0.7]], np.random.default_rng(0))
    assert entry["mean"] == pytest.approx(4.0 / 7.0)
    assert entry["ci_low"] == pytest.approx(0.2)
    assert entry["ci_high"] == pytest.approx(1.5)
    assert entry["gap"] == pytest.approx(0.35)


def test_gap_closed_over_a_suite_is_the_summed_lead_over_the_summed_gap():
    # Scenario 0 closes all of a 0.1 gap, scenario 1 none of a 0.3 gap: 0.1 / 0.4, not the
    # mean of the shares (0.5). Constant seeds: every resample gives the same value.
    ours = np.array([[0.6, 0.6, 0.6], [0.5, 0.5, 0.5]])
    reference = np.full((2, 3), 0.5)
    ceiling = np.array([[0.6, 0.6, 0.6], [0.8, 0.8, 0.8]])
    entry = gap_closed(ours, reference, ceiling, np.random.default_rng(1))
    assert entry == pytest.approx({"mean": 0.25, "ci_low": 0.25, "ci_high": 0.25, "gap": 0.2})


@pytest.mark.parametrize(
    ("ours", "share"), [([0.7, 0.7], 1.0), ([0.6, 0.8], 1.0), ([0.5, 0.5], 0.0), ([0.3, 0.3], -1.0)]
)
def test_the_ceiling_closes_all_the_reference_none_and_worse_is_negative(ours, share):
    # [0.6, 0.8]: the ceiling's 0.2 gap closed on the mean though not seed by seed.
    entry = gap_closed([ours], [[0.5, 0.5]], [[0.7, 0.7]], np.random.default_rng(2))
    assert entry["mean"] == pytest.approx(share)


@pytest.mark.parametrize("lead", [MIN_GAP * 0.99, 0.0, -0.1])
def test_no_share_of_a_gap_under_the_minimum(lead):
    entry = gap_closed([[0.6, 0.6]], [[0.5, 0.5]], [[0.5 + lead] * 2], np.random.default_rng(3))
    assert entry["mean"] is None and entry["ci_low"] is None and entry["ci_high"] is None
    assert entry["gap"] == pytest.approx(lead)


def test_a_gap_just_over_the_minimum_has_a_share():
    lead = MIN_GAP * 1.01
    entry = gap_closed([[0.5 + lead / 2] * 2], [[0.5] * 2], [[0.5 + lead] * 2],
                       np.random.default_rng(4))  # fmt: skip
    assert entry["mean"] == pytest.approx(0.5)


def test_min_gap_is_half_a_point_of_inbox_share():
    assert MIN_GAP == 0.005


def test_a_gap_of_exactly_the_minimum_has_a_share():
    entry = gap_closed([[0.0025] * 3], [[0.0] * 3], [[MIN_GAP] * 3], np.random.default_rng(5))
    assert entry["mean"] == pytest.approx(0.5)
    assert entry["ci_low"] == pytest.approx(0.5) and entry["ci_high"] == pytest.approx(0.5)


def test_with_a_gap_of_one_everywhere_the_share_is_the_lead_and_its_bootstrap():
    # Dividing by a constant 1 leaves the stratified bootstrap of the lead: the same
    # resamples (the same generator state) give the same interval, whatever its level.
    rng = np.random.default_rng(6)
    lead = rng.normal([[0.1], [0.4], [-0.2]], 0.3, size=(3, 20))
    reference = rng.normal(0.5, 0.1, size=(3, 20))
    for confidence in (0.95, 0.5):
        shares = np.random.default_rng(7)
        entry = gap_closed(
            reference + lead, reference, reference + 1.0, shares, confidence=confidence, samples=500
        )
        means = np.random.default_rng(7)
        low, high = stratified_bootstrap(lead, means, confidence=confidence, samples=500)
        assert entry["mean"] == pytest.approx(lead.mean())
        assert (entry["ci_low"], entry["ci_high"]) == pytest.approx((low, high))


def test_no_interval_where_a_resample_leaves_no_gap():
    # The ceiling leads on seed 1 only: a resample of seed 0 twice has no gap (1 in 4).
    entry = gap_closed([[0.5, 0.51]], [[0.5, 0.5]], [[0.5, 0.52]], np.random.default_rng(8))
    assert entry == {"mean": pytest.approx(0.5), "ci_low": None, "ci_high": None,
                     "gap": pytest.approx(0.01)}  # fmt: skip
