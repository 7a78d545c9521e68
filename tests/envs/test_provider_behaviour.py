"""Provider behaviour a deliverability engineer recognises (issue 9, DOMAIN §2 and §8B).

Each test holds one provider with pinned tolerances, so the numbers it checks follow from
the configuration by hand, and states the fact in both directions: what happens, and what
does not happen without its cause.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from ipwarmup.envs import IPWarmupEnv
from ipwarmup.envs.provider_config import default_providers
from ipwarmup.errors import ConfigError

PROVIDERS = ("gmail", "microsoft", "yahoo", "apple", "other")


def _solo(provider: str, interval: int = 1, **pinned: Any) -> IPWarmupEnv:
    """An env with only ``provider`` (its default tolerances, some pinned) and 100k/day."""
    tolerances: dict[str, Any] = {"cold_hourly_allowance_messages": [100.0, 100.0]}
    tolerances.update(pinned)
    providers: dict[str, Any] = {name: None for name in PROVIDERS}
    providers[provider] = tolerances
    return IPWarmupEnv(
        config={
            "providers": providers,
            "scenario": {
                "provider_mix": {provider: 1.0},
                "daily_volume_messages": [1.0e5, 1.0e5],
                "volume_noise": 0.0,
                "hourly_shape": [1.0] * 24,
            },
            "decision_interval_hours": interval,
            # Three times the cold allowance, and caps that move 1000x an hour at 1-hour
            # decisions: the tests push and back off within hours, as a real MTA can.
            "pool": {"initial_hourly_cap_messages": 300.0, "max_cap_change_per_day": 1.0e72},
            "shared_pool": {"incident_probability_per_day": 0.0},
        }
    )


def _push(env: IPWarmupEnv) -> np.ndarray:
    action = np.zeros(env.action_space.shape, dtype=np.float32)
    action[0] = 1.0  # caps up as fast as allowed, whatever the provider answers
    return action


def _hold(env: IPWarmupEnv) -> np.ndarray:
    return np.zeros(env.action_space.shape, dtype=np.float32)


def _back_off(env: IPWarmupEnv) -> np.ndarray:
    action = np.zeros(env.action_space.shape, dtype=np.float32)
    action[0] = -1.0
    return action


def _hours_until(env: IPWarmupEnv, event: str, action: np.ndarray, limit: int) -> int:
    """Step hourly until the IP is ``event`` ("throttled" or "blocked"); return the hour."""
    state = env.simulator.state
    for hour in range(1, limit + 1):
        env.step(action)
        if getattr(state, event)[0, 0, 0]:
            return hour
    return -1


@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_provider_throttles_then_blocks_a_sender_that_ignores_its_4xx(provider: str):
    # The highest threshold the default range allows: the draw least likely to block.
    high = default_providers()[provider].escalation_threshold[1]
    env = _solo(provider, escalation_threshold=[high, high], probation_hours=24.0)
    env.reset(seed=0)
    throttled_at = _hours_until(env, "throttled", _push(env), limit=48)
    assert 1 <= throttled_at <= 30, throttled_at  # 4xx first, within about a day
    state = env.simulator.state
    assert not state.blocked[0, 0, 0]
    assert env.simulator.accounting["rejected"][0] == 0.0  # a throttle loses no mail
    blocked_at = _hours_until(env, "blocked", _push(env), limit=96)
    assert 1 <= blocked_at <= 60, blocked_at
    assert env.simulator.accounting["rejected"][0] == 0.0  # it starts at the hour's end
    env.step(_push(env))
    assert env.simulator.accounting["rejected"][0] > 0.0  # from then, mail is lost
    assert env.simulator.accounting["throttle_events"][0] >= 1
    assert env.simulator.accounting["block_events"][0] == 1


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_sender_that_backs_off_after_the_throttle_is_not_blocked(provider: str):
    high = default_providers()[provider].escalation_threshold[1]
    env = _solo(provider, escalation_threshold=[high, high])
    env.reset(seed=0)
    assert _hours_until(env, "throttled", _push(env), limit=48) > 0
    for _ in range(24 * 5):
        env.step(_back_off(env))
    state = env.simulator.state
    assert env.simulator.accounting["block_events"][0] == 0
    assert env.simulator.accounting["throttle_events"][0] == 1
    # The throttle lifts when its time is up (within five days everywhere but at Yahoo,
    # whose TSS04 can last two weeks).
    lifted = state.throttled_until[0, 0, 0] <= state.hour[0]
    assert state.throttled[0, 0, 0] == (not lifted)
    assert lifted or provider == "yahoo"


def test_an_escalation_threshold_above_what_pressure_can_reach_is_refused():
    # 5 / (1 - 0.9) = 50 is the most pressure one IP can build: a threshold of 46 could
    # never be crossed by some draws, and the provider would never block.
    with pytest.raises(ConfigError, match=r"escalation_threshold: expected at most 45"):
        _solo("gmail", escalation_threshold=[25.0, 46.0])
    _solo("gmail", escalation_threshold=[25.0, 45.0])  # the bound itself is allowed


def test_cooling_no_longer_than_the_peak_memory_is_refused():
    # An idle IP holds its allowance for peak_memory_days (7), then cools over what is left
    # of cooling_days: 7 days would leave none (a division by zero in the cooling factor).
    with pytest.raises(ConfigError, match=r"cooling_days: expected above peak_memory_days \(7\)"):
        _solo("gmail", cooling_days=[7.0, 30.0])
    _solo("gmail", cooling_days=[7.5, 30.0])  # just above it is allowed
    with pytest.raises(ConfigError, match=r"cooling_days: expected above peak_memory_days \(3\)"):
        _solo("gmail", cooling_days=[3.0, 30.0], peak_memory_days=3)
    _solo("gmail", cooling_days=[3.0, 30.0], peak_memory_days=2)


DURATIONS = {
    # provider: (throttle hours, block days) from DOMAIN §2/§8B, see provider_config.py
    "gmail": ((24.0, 48.0), (1.0, 3.0)),
    "microsoft": ((1.0, 4.0), (2.0, 14.0)),
    "yahoo": ((24.0, 336.0), (3.0, 10.0)),
    "apple": ((2.0, 6.0), (1.0, 2.0)),
}


@pytest.mark.parametrize("provider", sorted(DURATIONS))
def test_throttles_and_blocks_last_what_the_sources_say(provider: str):
    (t_low, t_high), (b_low, b_high) = DURATIONS[provider]
    for seed in range(4):
        env = _solo(provider)
        env.reset(seed=seed)
        d = env.simulator.state.draw
        assert t_low <= d.throttle_hours[0, 0] <= t_high
        assert b_low * 24 <= d.block_hours[0, 0] <= b_high * 24
        start = _hours_until(env, "throttled", _push(env), limit=48)
        state = env.simulator.state
        assert state.throttled_until[0, 0, 0] == pytest.approx(start + d.throttle_hours[0, 0])


def _block_lengths(env: IPWarmupEnv, blocks: int) -> list[float]:
    """Push until blocked, wait the block out, ``blocks`` times; return each block's hours."""
    state, lengths = env.simulator.state, []
    for _ in range(blocks):
        assert _hours_until(env, "blocked", _push(env), limit=24 * 10) > 0
        start = float(state.hour[0])
        lengths.append(float(state.blocked_until[0, 0, 0]) - start)
        while state.blocked[0, 0, 0]:
            env.step(_back_off(env))
    return lengths


def test_a_repeat_offender_is_blocked_longer_each_time_up_to_the_cap():
    env = _solo("microsoft", block_duration_days=[2.0, 2.0], max_repeat_factor=4.0)
    env.reset(seed=0)
    # The block starts within the hour before it is seen: 48 h, then 96 h, then 192 h
    # capped at 4 x 48 = 192 h.
    lengths = _block_lengths(env, 3)
    np.testing.assert_allclose(lengths, [48.0, 96.0, 192.0], atol=1.0)
    env = _solo("microsoft", block_duration_days=[2.0, 2.0], repeat_offence_factor=1.0)
    env.reset(seed=0)
    np.testing.assert_allclose(_block_lengths(env, 2), [48.0, 48.0], atol=1.0)


def test_a_block_costs_the_ip_weeks_of_reputation_and_the_domain_its_share():
    pinned = {
        "escalation_threshold": [10.0, 10.0],
        "block_duration_days": [1.0, 1.0],
        "reputation_memory_days": [30.0, 30.0],
    }
    env = _solo("gmail", interval=24, **pinned)
    env.reset(seed=0)
    sim = env.simulator
    state = sim.state
    domain_before = float(state.domain_reputation[0, 0])
    rep_before = float(state.reputation[0, 0, 0])
    # Day 0 at full volume from a cold IP: throttled, then blocked.
    env.step(np.array([1.0, 0.0], dtype=np.float32))
    env.step(np.array([1.0, 0.0], dtype=np.float32))
    assert sim.accounting["block_events"][0] >= 1
    domain_drop = domain_before - float(state.domain_reputation[0, 0])
    # 0.1 per block at Gmail, plus a day of list-quality drift of at most 1/memory.
    assert 0.1 * sim.accounting["block_events"][0] - 0.02 < domain_drop
    assert domain_drop < 0.1 * sim.accounting["block_events"][0] + 0.02
    rep_after_block = float(state.reputation[0, 0, 0])
    assert rep_after_block < rep_before - 0.2  # block_reputation_penalty 0.25, less drift
    # Recovery is slower than damage: a week of clean sending under the allowance
    # wins back less than half of it.
    for _ in range(7):
        env.step(_back_off(env))
    assert float(state.reputation[0, 0, 0]) < rep_after_block + 0.125


def _domain_after_hopping(drop_blocked_ip: bool) -> float:
    env = _solo("gmail", interval=24, escalation_threshold=[10.0, 10.0])
    env.reset(seed=0)
    state = env.simulator.state
    env.step(np.array([1.0, 0.0], dtype=np.float32))
    env.step(np.array([1.0, 0.0], dtype=np.float32))
    assert state.blocked[0, 0, 0] or state.throttled[0, 0, 0]
    if drop_blocked_ip:
        env.step(np.array([-1.0, -1.0], dtype=np.float32))  # drop the IP...
        assert state.n_ips[0] == 0
    else:
        env.step(np.array([-1.0, 0.0], dtype=np.float32))
    return float(state.domain_reputation[0, 0])


def test_dropping_a_blocked_ip_is_not_a_free_reset():
    kept = _domain_after_hopping(drop_blocked_ip=False)
    dropped = _domain_after_hopping(drop_blocked_ip=True)
    # Gmail's domain_block_penalty is 0.1; a day's drift differs by far less.
    assert 0.08 < kept - dropped < 0.12


def _warm_then_add(growth: float) -> tuple[np.ndarray, np.ndarray]:
    """Warm one IP 12 days, add a second, hold caps; return both IPs' caps and allowance."""
    env = IPWarmupEnv(
        scenario="steady_b2c_transactional",
        overrides=[f"pool.warming_ip_growth_per_day={growth}"],
    )
    env.reset(seed=0)
    sim = env.simulator
    p = sim.n_providers
    for day in range(32):
        action = np.zeros(p + 1, dtype=np.float32)
        action[:p] = 0.5 if day < 12 else 0.0
        action[p] = 1.0 if day == 12 else 0.0
        env.step(action)
    st = sim.state
    cold = st.draw.cold_allowance[0]
    return st.caps[0, 1] / st.caps[0, 0], st.allowance[0, 1] / cold


def test_an_ip_added_to_a_warm_pool_warms_in_parallel_on_its_own_ramp():
    cap_ratio, warmed = _warm_then_add(growth=1.4)
    # 20 days at x1.4 from 1/33 of the leader's caps: level with it (SendGrid's per-IP
    # schedule), and its allowance earned on the way (trust grows when it is used).
    np.testing.assert_allclose(cap_ratio, 1.0)
    assert np.all(warmed > 5.0), warmed
    # Without the ramp the caps' common factor keeps the new IP at 1/33 and it stays cold.
    cap_ratio, warmed = _warm_then_add(growth=1.0)
    assert np.all(cap_ratio < 0.05), cap_ratio
    assert np.all(warmed < 1.5), warmed


def _acceptance_over_allowance(noise: float) -> np.ndarray:
    """Hourly accepted / allowance for a day of sending at 3x a gmail-only cold IP."""
    env = _solo(
        "gmail", acceptance_noise=noise, escalation_threshold=[45.0, 45.0], probation_hours=0.0
    )
    env.reset(seed=3)
    sim = env.simulator
    ratios = []
    for _ in range(20):  # 300/h against 100/h: overshoot 2, pressure stays under 20 < 45
        allowance = float(sim.state.allowance[0, 0, 0])
        env.step(_hold(env))
        ratios.append(float(sim.telemetry.accepted[0, 0]) / allowance)
    return np.array(ratios)


def test_what_an_esp_sees_accepted_is_sampled_around_the_allowance():
    noisy = _acceptance_over_allowance(0.1)
    # Log-normal with sigma 0.1 and mean 1: 20 hours spread by about 0.1 around 1.
    assert 0.05 < noisy.std() < 0.2, noisy
    assert abs(noisy.mean() - 1.0) < 0.08, noisy
    exact = _acceptance_over_allowance(0.0)
    np.testing.assert_allclose(exact, 1.0, rtol=1e-12)


def test_reported_complaints_are_counts_sampled_around_the_expected_number():
    env = IPWarmupEnv(scenario="steady_b2c_transactional", overrides=["decision_interval_hours=6"])
    env.reset(seed=0)
    sim = env.simulator
    z = []
    for _ in range(4 * 30):
        rate = float(sim.state.complaint_rate_today[0])  # the rate of the coming period
        env.step(_hold(env))
        st = sim.state
        inbox = st.outcome["inbox_dedicated"][0] + st.outcome["inbox_shared"][0]
        expected = inbox * rate
        sampled = st.complaint_history[0, 0]
        z.append((sampled - expected) / np.sqrt(expected))
    scores = np.array(z)  # (periods, P): standard scores of the sampled counts
    # Poisson-like counts: standard scores with mean 0 and spread 1 (120 periods x 5).
    assert abs(scores.mean()) < 0.2, scores.mean()
    assert 0.8 < scores.std() < 1.2, scores.std()
    # What the ESP is shown is the sample a feed's delay later; Apple runs no feed.
    assert np.all(sim.telemetry.complaints[0, 3] == 0.0)


def _domain_after_days(cap_per_hour: float, days: int = 5) -> tuple[float, float]:
    """Domain reputation before and after ``days`` at a fixed cap on a gmail-only IP."""
    env = _solo(
        "gmail",
        interval=24,
        escalation_threshold=[45.0, 45.0],
        acceptance_noise=0.0,
        reputation_memory_days=[30.0, 30.0],
        full_trust_hourly_allowance_messages=[100.0, 100.0],  # the allowance stays at 100
    )
    env.reset(seed=0)
    state = env.simulator.state
    state.demand_today[0] = 300.0  # 7,200 a day, 300 an hour
    before = float(state.domain_reputation[0, 0])
    for _ in range(days):
        state.caps[0, 0, 0] = cap_per_hour
        env.step(_hold(env))
        state.demand_today[0] = 300.0
    assert env.simulator.accounting["block_events"][0] == 0
    assert env.simulator.accounting["throttle_events"][0] == 0
    return before, float(state.domain_reputation[0, 0])


def test_the_domain_is_judged_on_how_its_ips_send_not_only_on_its_list():
    # At 90 an hour against an allowance of 100 the IP is never deferred. At 300 it is
    # deferred two thirds of the time every hour (overshoot 2, pressure under 20 < 45: no
    # escalation): its 2,400 accepted a day lose 0.3 of daily quality, the 4,800 spilled to
    # the shared pool keep the list's, so the domain's day scores 0.1 lower. Over 5 days of
    # a 30-day average the gap is 0.1 x (1 - (29/30)^5) = 0.0156.
    start, clean = _domain_after_days(90.0)
    start_pushed, pushed = _domain_after_days(300.0)
    assert start == start_pushed
    assert 0.014 < clean - pushed < 0.017, (clean, pushed)
