"""The economics of a warmup, as a deliverability engineer would check them (issue 8).

DOMAIN §1, §3 and §8: a clean sender's warmed IP earns its own reputation and overtakes a
good shared pool within 2-6 weeks (SES: at least 14 days, up to 6 weeks; Braze 4-6 weeks);
a poor list does worse on its own IP; the shared pool's standing moves with its tenants.
"""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils import seeding

from ipwarmup.agents.registry import make_policy
from ipwarmup.envs import IPWarmupEnv, build_config, shared_pool
from ipwarmup.envs.simulator import Simulator
from ipwarmup.training.calibration import clean_ramp
from ipwarmup.training.evaluate import load_suite, run_scenario
from ipwarmup.training.simulate import run_episode

SEEDS = 8
CLEAN = ("steady_b2c_transactional", "bursty_b2c_marketing", "b2b_microsoft_heavy")


@pytest.mark.parametrize("scenario", CLEAN)
def test_a_clean_ramp_overtakes_the_shared_pool_between_day_14_and_42(scenario: str) -> None:
    ramp = clean_ramp(scenario, seeds=SEEDS)
    days = ramp.overtakes_on
    assert np.all(days >= 14), days  # not at once: a cold IP has no history yet
    assert np.all(days <= 42), days  # but within six weeks
    # ...and it ends above the pool by a placement gap of the size IP reputation explains
    # (DOMAIN §8 A1: Sender Score 91-100 places 88%, the industry average 80%). Bursty
    # campaigns end closest (one seed +0.018): their campaign days are volume spikes on
    # the IP, which costs it standing (DOMAIN §2 Google: avoid bursts).
    assert np.all((ramp.final_gap > 0.01) & (ramp.final_gap < 0.2)), ramp.final_gap


def test_a_poor_list_does_worse_on_its_own_ip_than_on_the_shared_pool() -> None:
    ramp = clean_ramp("poor_list_quality", seeds=SEEDS)
    assert np.all(ramp.overtakes_on == -1)
    assert np.all(ramp.final_gap < -0.05), ramp.final_gap


B2B_3K = (
    "scenario.daily_volume_messages=[2000.0, 4000.0]",
    "scenario.weekly_shape=[1.3, 1.3, 1.3, 1.3, 1.2, 0.3, 0.3]",
)


def test_a_small_sender_above_the_eligibility_line_overtakes_and_one_below_never_does() -> None:
    # DOMAIN §5, Resend: over 500 a day, and under 30k a month "may not be enough to keep
    # the IPs warm". A 3k-a-day B2B sender (quiet weekends, 90k a month) earns its record
    # within the six weeks; a 300-a-day sender never leaves the cold judgement. Measured
    # (8 seeds): overtaking on days 17-29, final gap +0.028..+0.081; 300 a day -0.060..-0.089.
    above = clean_ramp("low_volume", seeds=SEEDS, overrides=B2B_3K)
    assert np.all((above.overtakes_on >= 14) & (above.overtakes_on <= 42)), above.overtakes_on
    assert np.all((above.final_gap > 0.01) & (above.final_gap < 0.2)), above.final_gap
    below = clean_ramp("low_volume", seeds=SEEDS)
    assert np.all(below.overtakes_on == -1), below.overtakes_on
    assert np.all((below.final_gap < -0.03) & (below.final_gap > -0.2)), below.final_gap


def _shared_standing_after(scenario: str, volume: float, days: int = 30) -> np.ndarray:
    """The shared pool's normal standing after a sender spends ``days`` on it alone."""
    config = build_config(
        scenario=scenario,
        overrides=[f"scenario.daily_volume_messages=[{volume}, {volume}]", "pool.initial_ips=0"],
    )
    sim = Simulator(config, 4)
    sim.reset(np.arange(4), [seeding.np_random(i)[0] for i in range(4)])
    for _ in range(days):
        sim.step(np.zeros((4, sim.codec.size)))
    state = sim.state
    moved = shared_pool.standing(state, state.hour // 24, incidents=False)
    return moved - state.shared_reputation  # how far this sender moved the pool


def test_a_large_poor_list_drags_the_shared_pool_and_a_small_one_does_not() -> None:
    large_poor = _shared_standing_after("poor_list_quality", 500_000.0)
    large_clean = _shared_standing_after("steady_b2c_transactional", 500_000.0)
    small_poor = _shared_standing_after("poor_list_quality", 300.0)
    assert np.all(large_poor < -0.03) and np.all(large_poor > -0.3), large_poor
    assert np.all(large_clean > 0.0) and np.all(large_clean < 0.05), large_clean
    assert np.all(np.abs(small_poor) < 1e-3), small_poor


def test_hold_shared_never_touches_a_dedicated_ip() -> None:
    env = IPWarmupEnv(scenario="steady_b2c_transactional")
    trace = run_episode(env, make_policy("hold-shared", env.config), 0)
    assert trace.accounting["ip_days"] == 0.0
    assert trace.accounting["sent_dedicated"] == 0.0
    assert trace.n_ips[0] == 0


def test_sendgrids_ramp_is_deferred_and_blocked_at_a_strict_provider() -> None:
    # The test suite's strict Microsoft (full trust 2-5k/h, escalation at 4-8): SendGrid's
    # fixed 1.4x a day outruns it while Gmail keeps up (DOMAIN §2: Microsoft "especially
    # sensitive", S3150 "if you don't slow down after 4xx").
    suite = load_suite("test")
    entry = next(e for e in suite.entries if e.name == "strict_microsoft_b2b")
    config = build_config(scenario=entry.scenario, overrides=list(entry.overrides))
    record = run_scenario(make_policy("fixed-sendgrid", config), config, SEEDS, 0).record
    daily, names = record.daily, config.provider_names

    def deferral(provider: str) -> float:
        p = names.index(provider)
        return float(daily["deferred"][:, :, p].sum() / daily["sent_dedicated"][:, :, p].sum())

    assert 0.02 < deferral("microsoft") < 0.3, deferral("microsoft")
    assert deferral("gmail") < deferral("microsoft") / 5
    blocked = record.totals["block_events"] > 0
    assert 1 <= blocked.sum() < SEEDS, record.totals["block_events"]


def test_sendgrids_ramp_is_slower_than_the_oracle_at_lenient_providers() -> None:
    config = build_config(scenario="steady_b2c_transactional")
    sendgrid = run_scenario(make_policy("fixed-sendgrid", config), config, SEEDS, 0).kpis
    oracle = run_scenario(make_policy("oracle", config), config, SEEDS, 0).kpis
    slower = sendgrid["days_to_warm"] - oracle["days_to_warm"]
    assert np.all(slower >= 0), slower
    assert 2.0 <= slower.mean() <= 12.0, slower


def test_a_provider_without_recipients_leaves_the_shared_pool_unmoved_and_finite() -> None:
    mix = "{gmail: 0.6, microsoft: 0.2, yahoo: 0.2, apple: 0.0, other: 0.0}"
    config = build_config(
        scenario="steady_b2c_transactional",
        overrides=[f"scenario.provider_mix={mix}", "pool.initial_ips=0"],
    )
    sim = Simulator(config, 2)
    sim.reset(np.arange(2), [seeding.np_random(i)[0] for i in range(2)])
    for _ in range(3):
        sim.step(np.zeros((2, sim.codec.size)))
    share = sim.state.shared_share
    assert np.all(np.isfinite(share))
    np.testing.assert_array_equal(share[:, 3:], 0.0)  # no mail there, no weight in the pool
    assert np.all(share[:, :3] > 0.0)
