"""Shared-pool overflow follows the retry interval (issue 9, item 4; DOMAIN §2).

A deferred message waits in the MTA's queue for ``mta.retry_interval_hours`` and is then
retried on the shared pool, in hour ``h + ceil(interval)`` for mail deferred in hour ``h``
(:func:`~ipwarmup.envs.mta.hold_hours`); what the caps hold back goes to the shared pool
at once. One provider with pinned tolerances and no noise makes every figure a hand
computation: the IP accepts exactly 100 an hour, the cap sends 150, so each hour with mail
defers 50.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from gymnasium.utils import seeding
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipwarmup.envs import IPWarmupEnv, build_config
from ipwarmup.envs.mta import Period, hold_hours, run_hours
from ipwarmup.envs.simulator import Simulator

OTHERS = ("microsoft", "yahoo", "apple", "other")


def _config(
    *, shape: list[float], interval: int = 1, overrides: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Gmail alone at exactly 100 accepted an hour, 2400 a day spread by ``shape``."""
    providers: dict[str, Any] = {name: None for name in OTHERS}
    providers["gmail"] = {
        "cold_hourly_allowance_messages": [100.0, 100.0],
        "full_trust_hourly_allowance_messages": [100.0, 100.0],
        "escalation_threshold": [1.0e6, 1.0e6],
        "pressure_decay_per_hour": 0.999999,
        "acceptance_noise": 0.0,
        "base_inbox_rate": 0.9,
        "placement_sensitivity": 0.0,
    }
    return {
        "providers": providers,
        "scenario": {
            "provider_mix": {"gmail": 1.0},
            "mix_concentration": 0.0,
            "daily_volume_messages": [2400.0, 2400.0],
            "growth_per_day": [1.0, 1.0],
            "volume_noise": 0.0,
            "hourly_shape": shape,
            "bounce_rate": [0.0, 0.0],
            "complaint_rate": [0.0, 0.0],
            "trap_rate": [0.0, 0.0],
        },
        "decision_interval_hours": interval,
        "pool": {"initial_ips": 1, "initial_hourly_cap_messages": 150.0},
        "shared_pool": {"incident_probability_per_day": 0.0},
        **_nested(overrides),
    }


def _nested(overrides: tuple[str, ...]) -> dict[str, Any]:
    """``mta.x=v`` pairs as a nested mapping (only the mta and reward sections here)."""
    out: dict[str, dict[str, Any]] = {}
    for item in overrides:
        key, value = item.split("=")
        section, name = key.split(".")
        out.setdefault(section, {})[name] = float(value)
    return out


THREE_HOURS = [1.0, 1.0, 1.0] + [0.0] * 21  # 800 at hours 0, 1 and 2
HOLD = np.zeros(2, dtype=np.float32)


def _hourly(interval: float, max_age: int, hours: int) -> dict[str, list[float]]:
    """Step ``hours`` one-hour decisions from midnight; return per-hour flows of gmail."""
    env = IPWarmupEnv(
        config=_config(
            shape=THREE_HOURS,
            overrides=(f"mta.retry_interval_hours={interval}", f"mta.max_age_hours={max_age}"),
        )
    )
    _, info = env.reset(seed=0)
    before = info["accounting"]
    flows: dict[str, list[float]] = {"shared": [], "expired": [], "queued": [], "deferred": []}
    for _ in range(hours):
        _, _, _, _, info = env.step(HOLD)
        acc = info["accounting"]
        flows["shared"].append(acc["sent_shared"] - before["sent_shared"])
        flows["expired"].append(acc["expired"] - before["expired"])
        flows["queued"].append(acc["queued"])
        flows["deferred"].append(float(env.simulator.telemetry.deferred[0, 0]))
        before = acc
    return flows


# Hours 0-2: 800 arrive, 150 sent, 100 accepted, 50 deferred, 650 held back by the cap
# (to the shared pool that hour). The deferred 50 of hour h go to the shared pool in hour
# h + ceil(interval): at 1 h (and at 0.25 h, never before the interval has passed) in the
# next hour, at 2 h two hours on; with a 2-hour maximum age and a 2.5-hour interval they
# expire at age 2 before their retry.
@pytest.mark.parametrize(
    ("interval", "max_age", "shared", "expired", "queued"),
    [
        (1.0, 72, [650, 700, 700, 50, 0, 0], [0] * 6, [50, 50, 50, 0, 0, 0]),
        (0.25, 72, [650, 700, 700, 50, 0, 0], [0] * 6, [50, 50, 50, 0, 0, 0]),
        (2.0, 72, [650, 650, 700, 50, 50, 0], [0] * 6, [50, 100, 100, 50, 0, 0]),
        (2.5, 2, [650, 650, 650, 0, 0, 0], [0, 0, 50, 50, 50, 0], [50, 100, 100, 50, 0, 0]),
    ],
    ids=["1h", "15min", "2h", "expires-first"],
)
def test_deferred_mail_reaches_the_shared_pool_at_its_retry(
    interval: float, max_age: int, shared: list[int], expired: list[int], queued: list[int]
) -> None:
    flows = _hourly(interval, max_age, 6)
    assert flows["deferred"] == [50.0, 50.0, 50.0, 0.0, 0.0, 0.0]
    assert flows["shared"] == [float(x) for x in shared]
    assert flows["expired"] == [float(x) for x in expired]
    assert flows["queued"] == [float(x) for x in queued]


def test_hold_hours_rounds_the_interval_up_to_whole_hours() -> None:
    assert [hold_hours(x) for x in (0.25, 0.5, 1.0, 1.01, 2.0, 2.5, 24.0)] == [
        1, 1, 1, 2, 2, 3, 24,
    ]  # fmt: skip


def test_mail_deferred_before_a_stop_is_released_when_the_hours_resume() -> None:
    """A daily period stopped by an escalation after hour 0 still retries hour 0's deferrals.

    All 2400 arrive at hour 0: 150 sent, 100 accepted, 50 deferred, 2250 to the shared
    pool. The IP's pressure is past its threshold, so the kernel stops after hour 0 (a
    throttle starts) and resumes at hour 1, where the 50 go to the shared pool.
    """
    config = build_config(config=_config(shape=[1.0] + [0.0] * 23, interval=24))
    sim = Simulator(config, 1)
    sim.reset(np.array([0]), [seeding.np_random(0)[0]])
    state = sim.state
    state.pressure[0, 0, 0] = 1.0e9
    period = Period(1, sim.max_ips, sim.n_providers)
    run_hours(state, period, config)
    assert period.throttles[0] == 1.0  # the hours did stop after hour 0
    np.testing.assert_array_equal(period.demand[0, 0], 2400.0)
    np.testing.assert_array_equal(period.accepted[0, 0], 100.0)
    np.testing.assert_array_equal(period.shared[0, 0], 2300.0)
    np.testing.assert_array_equal(state.queue_total, 0.0)


def _horizon_end(continuation_days: int) -> dict[str, Any]:
    """One day, all mail at 23:00: the last hour's 50 deferrals are held at the horizon."""
    env = IPWarmupEnv(
        config=_config(
            shape=[0.0] * 23 + [1.0],
            interval=24,
            overrides=("mta.retry_interval_hours=1.0",),
        )
        | {"horizon_days": 1, "reward": {"continuation_days": continuation_days}}
    )
    env.reset(seed=0)
    _, _, _, truncated, info = env.step(HOLD)
    assert truncated
    return info


def test_mail_held_at_the_horizon_is_queued_and_delivered_in_the_continuation() -> None:
    info = _horizon_end(0)
    acc = info["accounting"]
    assert (acc["sent_shared"], acc["queued"], acc["accepted_dedicated"]) == (2250.0, 50.0, 100.0)
    assert acc["delivered_inbox"] == pytest.approx(0.9 * 2350.0, rel=1e-12)
    # With a day's continuation the 50 go out on the shared pool at its first hour, and
    # the next day's 2400 meet caps at the allowance: 100 accepted, 2300 to the shared
    # pool. 90% of all 2450 reach the inbox (2160 if the 50 had left within the horizon).
    continuation = _horizon_end(1)["continuation"]
    assert continuation["demand"] == 2400.0
    assert continuation["accepted_dedicated"] == 100.0
    assert continuation["delivered_inbox"] == pytest.approx(0.9 * 2450.0, rel=1e-12)
    assert continuation["expired"] == 0.0


# ------------------------------------------------ conservation under noise, every interval


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    interval=st.sampled_from([0.25, 1.0, 2.5, 24.0]),
    max_age=st.sampled_from([2, 72]),
    decision=st.sampled_from([1, 6, 24]),
    seed=st.integers(0, 10_000),
)
def test_shared_mode_conserves_every_message_with_noisy_acceptance(
    interval: float, max_age: int, decision: int, seed: int
) -> None:
    """Demand = accepted on dedicated + rejected + sent on shared + expired + queued.

    Default providers (acceptance noise on) and caps far past their allowances, so mail
    is deferred, held, released and (at a 2-hour maximum age) expires; the pool grows and
    shrinks, so mail is also held while no IP is left.
    """
    config = build_config(
        scenario="steady_b2c_transactional",
        overrides=[
            f"mta.retry_interval_hours={interval}",
            f"mta.max_age_hours={max_age}",
            f"decision_interval_hours={decision}",
            "horizon_days=2",
            "reward.continuation_days=0",  # its own test is above; this one is the episode
            "pool.initial_hourly_cap_messages=20000.0",  # far past every cold allowance
        ],
    )
    assert config.mta.overflow == "shared"
    assert all(pc.acceptance_noise > 0 for pc in config.providers.values())
    sim = Simulator(config, 2)
    sim.reset(np.arange(2), [seeding.np_random(seed + i)[0] for i in range(2)])
    rng = np.random.default_rng(seed)
    for step in range(config.steps_per_episode):
        actions = rng.uniform(-1.0, 1.0, size=(2, sim.codec.size))
        # The first period keeps its IP (it defers); later ones drop and add IPs.
        actions[:, -1] = rng.choice([-1.0, 0.0, 1.0], size=2) if step else 0.0
        sim.step(actions)
        a = sim.accounting
        routed = a["accepted_dedicated"] + a["rejected"] + a["sent_shared"] + a["expired"]
        np.testing.assert_allclose(routed + a["queued"], a["demand"], rtol=1e-12, atol=1e-6)
        ended = a["delivered_inbox"] + a["delivered_spam"] + a["bounced"] + a["rejected"]
        np.testing.assert_allclose(
            ended + a["expired"] + a["queued"], a["demand"], rtol=1e-12, atol=1e-6
        )
    assert sim.accounting["deferrals"].min() > 0.0  # every deferral was held: exercised
