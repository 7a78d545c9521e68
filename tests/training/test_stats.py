import numpy as np
import pytest

from ipwarmup.training.stats import (
    estimate,
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
