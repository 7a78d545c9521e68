"""The simulator reproduces what deliverability engineers know of warmup (DESIGN.md).

Each test is one stylized fact, checked over several seeds, so a calibration change that
breaks the fact fails here.
"""

import numpy as np
import pytest

from ipwarmup.agents.registry import make_policy as make_baseline
from ipwarmup.envs import IPWarmupEnv
from ipwarmup.training.simulate import run_episode

SEEDS = range(6)
PROVIDERS = ("gmail", "microsoft", "yahoo", "apple", "other")


def _hold(env: IPWarmupEnv) -> np.ndarray:
    return np.zeros(env.action_space.shape, dtype=np.float32)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_sendgrid_schedule_on_a_100k_b2c_sender_is_rarely_deferred(seed):
    env = IPWarmupEnv(scenario="steady_b2c_transactional")
    trace = run_episode(env, make_baseline("fixed-sendgrid", env.config), seed)
    acc = trace.accounting
    # The schedule really moves the mail: from 20/h at x1.4 a day it covers 100k a day from
    # about day 13, so about 70% of the 45 days' demand goes dedicated, not all of it.
    assert 0.6 < acc["sent_dedicated"] / acc["demand"] < 0.8
    # Rarely deferred: only the odd hour when sampled acceptance dips under the schedule.
    assert 0.0 < acc["deferrals"] / acc["sent_dedicated"] < 0.01
    assert acc["block_events"] == 0
    assert acc["throttle_events"] == 0


@pytest.mark.parametrize("seed", SEEDS)
def test_b_full_volume_from_a_cold_ip_is_deferred_then_blocked(seed):
    # No cap: the whole 100k/day goes to one cold IP from day one, and stays there.
    env = IPWarmupEnv(
        scenario="steady_b2c_transactional",
        overrides=["pool.initial_hourly_cap_messages=1.0e+7"],
    )
    env.reset(seed=seed)
    sim = env.simulator
    env.step(_hold(env))
    first_day = sim.telemetry
    refused = (first_day.deferred[0] + first_day.rejected[0]).sum()
    assert refused / first_day.sent_dedicated[0].sum() > 0.8
    assert first_day.deferred[0].sum() / first_day.sent_dedicated[0].sum() > 0.05
    for _ in range(2):
        env.step(_hold(env))
    blocked_at = {PROVIDERS[p] for p in np.flatnonzero(sim.state.blocked[0].any(axis=0))}
    assert {"microsoft", "yahoo"} <= blocked_at
    assert sim.accounting["rejected"][0] > 0


def _single_provider_env(cap_per_hour: float) -> IPWarmupEnv:
    # One provider with fixed tolerances, and far more demand than the cap, so the IP
    # sends exactly its cap every hour.
    return IPWarmupEnv(
        config={
            "providers": {
                "gmail": {
                    "cold_hourly_allowance_messages": [100.0, 100.0],
                    "escalation_threshold": [40.0, 40.0],
                },
                "microsoft": None,
                "yahoo": None,
                "apple": None,
                "other": None,
            },
            "scenario": {"provider_mix": {"gmail": 1.0}, "daily_volume_messages": [1.0e5, 1.0e5]},
            "pool": {"initial_hourly_cap_messages": cap_per_hour},
        }
    )


def _deferral_rates(env: IPWarmupEnv, actions: list[float], seed: int) -> list[float]:
    env.reset(seed=seed)
    rates = []
    for a in actions:
        env.step(np.array([a, 0.0], dtype=np.float32))
        t = env.simulator.telemetry
        rates.append(float(t.deferred[0, 0] / t.sent_dedicated[0, 0]))
    return rates


@pytest.mark.parametrize("seed", SEEDS)
def test_c_holding_after_deferrals_recovers_and_pushing_does_not(seed):
    env = _single_provider_env(cap_per_hour=200.0)  # twice the cold allowance
    held = _deferral_rates(env, [0.0] * 6, seed)
    assert 0.3 < held[0] < 0.7  # twice the allowance: about half deferred
    assert held[-1] < 0.02  # the allowance grew into the held cap
    assert env.simulator.accounting["block_events"][0] == 0
    assert env.simulator.accounting["throttle_events"][0] == 0
    pushed = _deferral_rates(env, [1.0] * 6, seed)  # doubling the cap every day
    # Pushing never catches up: a third or more still deferred over the last three days.
    assert np.mean(pushed[-3:]) > 0.3, pushed


def _warmed_then_idle(seed: int, days: int) -> tuple[IPWarmupEnv, np.ndarray]:
    """Return an env after ``days`` of fixed-sendgrid, and the action that idles its IP."""
    # Caps may jump straight to a target, so the IP can go idle in one decision.
    env = IPWarmupEnv(
        scenario="steady_b2c_transactional",
        overrides=["horizon_days=80", "pool.max_cap_change_per_day=1.0e+9"],
    )
    policy = make_baseline("fixed-sendgrid", env.config)
    obs, _ = env.reset(seed=seed)
    state = None
    for day in range(days):
        action, state = policy.predict(obs, state, np.array([day == 0]))
        obs, *_ = env.step(action)
    idle = np.zeros(env.action_space.shape, dtype=np.float32)
    idle[:-1] = -1.0  # caps to the 1 message/hour floor
    return env, idle


@pytest.mark.parametrize("seed", SEEDS)
def test_d_an_ip_idle_for_30_days_is_cold_again(seed):
    env, idle = _warmed_then_idle(seed, 35)
    sim = env.simulator
    cold = sim.state.draw.cold_allowance[0]
    warm = sim.state.allowance[0, 0].copy()
    assert np.all(warm > 5 * cold)
    for _ in range(31):
        env.step(idle)
    assert np.all(sim.state.allowance[0, 0] < 1.5 * cold)
    # Sending the old volume again is refused (deferred, then blocked) as from a new IP.
    back = np.zeros(env.action_space.shape, dtype=np.float32)
    back[:-1] = 1.0
    env.step(back)
    t = sim.telemetry
    refused = t.deferred[0].sum() + t.rejected[0].sum()
    assert refused / t.sent_dedicated[0].sum() > 0.8


@pytest.mark.parametrize("seed", SEEDS[:2])
def test_d_a_week_between_campaigns_keeps_the_allowance_and_a_longer_gap_does_not(seed):
    # A weekly sender's quiet days cost nothing (peak_memory_days 7): the allowance holds
    # while a day whose busiest hour used 30% of it or more is under 7 days old, and
    # shrinks the midnight that day is forgotten.
    env, idle = _warmed_then_idle(seed, 30)
    st = env.simulator.state
    history = st.peak_history[0, 0]  # (P, 7)
    today = (st.ring_clock // 24) % 7
    age = (today - np.arange(7)) % 7
    busy = history / st.allowance[0, 0][:, None] >= 0.3
    assert busy.any(axis=1).all()  # fixed-sendgrid used every allowance this week
    last_busy = np.where(busy, age, 7).min(axis=1)  # (P,) days since the last busy day
    allowance = [st.allowance[0, 0].copy()]
    for _ in range(8):
        env.step(idle)
        allowance.append(env.simulator.state.allowance[0, 0].copy())
    allowance = np.array(allowance)  # (9, P): before and after each idle midnight
    for p, a in enumerate(last_busy):
        held = 7 - a  # idle midnights after which the busy day is still remembered: 6 - a
        np.testing.assert_array_equal(allowance[:held, p], allowance[0, p])
        assert allowance[held, p] < allowance[0, p], (p, allowance[:, p])
    # A week after the last warm day nothing busy is remembered: a full day's cooling.
    assert np.all(allowance[8] < 0.8 * allowance[0]), allowance[8] / allowance[0]


def _final_week_inbox_rate(env: IPWarmupEnv, seed: int, pool: str) -> float:
    env.reset(seed=seed)
    inbox = delivered = 0.0
    for day in range(env.config.horizon_days):
        env.step(_hold(env))
        if day >= env.config.horizon_days - 7:
            o = env.simulator.outcome
            inbox += float(o[f"inbox_{pool}"][0].sum())
            delivered += float(o[f"delivered_{pool}"][0].sum())
    return inbox / delivered


@pytest.mark.parametrize("seed", SEEDS)
def test_e_a_dedicated_ip_at_very_low_volume_places_worse_than_the_shared_pool(seed):
    quiet = ["shared_pool.incident_probability_per_day=0.0"]
    dedicated = IPWarmupEnv(scenario="low_volume", overrides=quiet)
    shared = IPWarmupEnv(scenario="low_volume", overrides=[*quiet, "pool.initial_ips=0"])
    on_dedicated = _final_week_inbox_rate(dedicated, seed, "dedicated")
    on_shared = _final_week_inbox_rate(shared, seed, "shared")
    # Worse by a margin an IP reputation near cold explains (0.5 against the pool's ~0.8
    # at weight 0.6 and sensitivity 1-1.5), not a collapse to the spam folder.
    assert 0.02 < on_shared - on_dedicated < 0.25
    # At a real volume the dedicated IP does earn its standing: the fact is about volume.
    # tests/envs/test_economics.py checks that side: a clean ramp of a 100k/day sender
    # overtakes the shared pool between day 14 and 42 and ends 2-20 points above it.


@pytest.mark.parametrize("seed", SEEDS)
def test_f_noisy_neighbour_incidents_hurt_only_shared_pool_traffic(seed):
    def outcomes(probability: float) -> dict[str, float]:
        env = IPWarmupEnv(
            scenario="steady_b2c_transactional",
            overrides=[f"shared_pool.incident_probability_per_day={probability}"],
        )
        policy = make_baseline("fixed-sendgrid", env.config)
        obs, _ = env.reset(seed=seed)
        totals = dict.fromkeys(("inbox_dedicated", "inbox_shared", "delivered_shared"), 0.0)
        state = None
        for day in range(env.config.horizon_days):
            # The schedule reads only demand, caps and the day, which incidents leave alone.
            action, state = policy.predict(obs, state, np.array([day == 0]))
            obs, *_ = env.step(action)
            for key in totals:
                totals[key] += float(env.simulator.outcome[key][0].sum())
        return totals

    calm, stormy = outcomes(0.0), outcomes(1.0)
    assert stormy["inbox_dedicated"] == pytest.approx(calm["inbox_dedicated"], rel=1e-12)
    assert stormy["delivered_shared"] == pytest.approx(calm["delivered_shared"], rel=1e-12)
    # An incident every day (the pool loses 0.15-0.35 of reputation meanwhile) costs the
    # shared traffic about a fifth of its inbox placements, not all of them.
    assert 0.7 * calm["inbox_shared"] < stormy["inbox_shared"] < 0.9 * calm["inbox_shared"]
