"""Shared mode's IP-after-IP hours at every IP count of a full pool (envs/shared_hours.py).

``run_shared_hours`` runs each IP over all its hours on scratch (``speculate``), then each
provider; ``tests/envs/test_shared_hours.py`` holds it to the old hour-by-hour loop on
pools of up to 4 slots. Here the pool has the simulator's 8 slots and the rows hold every
IP count from 0 to 8, driven hard: pressures near their thresholds, throttles and blocks
ending within the period, so rows stop at events in every hour, and ``speculate``'s event
is the reference ``first_event_hour``'s (``tests/envs/test_shared_hours.py``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from ipwarmup.envs.hour_kernel import _run_until_event, run_until_event
from ipwarmup.envs.shared_hours import _speculate, speculate
from tests.envs.test_shared_hours import (
    MAX_OVERSHOOT,
    _copy,
    _hour_by_hour,
    _run,
    first_event_hour,
)

SLOTS = 8
PROVIDERS = 5


def _full_pool(seed: int) -> dict[str, Any]:
    """Rows 0-8 hold 0-8 IPs (shuffled); thresholds close above or below the pressures."""
    rng = np.random.default_rng(seed)
    b, k, p = SLOTS + 1, SLOTS, PROVIDERS
    ages = int(rng.choice([3, 72]))
    stop = int(rng.choice([1, 5, 24]))
    hour = rng.integers(0, 500, b)
    n_ips = rng.permutation(b)
    caps = rng.uniform(0, 100, (b, k, p)) * (np.arange(k)[None, :, None] < n_ips[:, None, None])
    total_cap = caps.sum(axis=1)
    blocked = rng.random((b, k, p)) < 0.1
    throttled = ~blocked & (rng.random((b, k, p)) < 0.1)
    threshold = rng.uniform(1, 6, (b, p))
    return {
        "done": rng.integers(0, stop + 1, b) * (rng.random(b) < 0.5),
        "stop": stop,
        "hour_of_day": int(rng.integers(0, 24 - stop + 1)),
        "ring_clock": int(rng.integers(0, 1000)),
        "hour": hour,
        "n_ips": n_ips,
        "demand_today": rng.lognormal(3.0, 1.0, (b, 24, p)) * (rng.random((b, 24, p)) < 0.9),
        "accept_noise": rng.lognormal(0.0, 0.2, (b, 24, p)),
        "total_cap": total_cap,
        "weight": caps / np.maximum(total_cap[:, None, :], 1e-300),
        "accept": np.where(blocked, 0.0, rng.uniform(1, 40, (b, k, p))),
        "per_allowance": np.where(blocked, 0.0, rng.uniform(0, 0.05, (b, k, p))),
        "reject_share": rng.uniform(0, 0.5, (b, p)),
        "hold_hours": int(rng.choice([1, 2, ages, ages + 1])),
        "max_overshoot": MAX_OVERSHOOT,
        "decay": rng.uniform(0.8, 0.99, (b, p)),
        "threshold": threshold,
        "blocked": blocked,
        "blocked_until": hour[:, None, None] + rng.integers(1, 3 * stop + 3, (b, k, p)),
        "throttled": throttled,
        "throttled_until": hour[:, None, None] + rng.integers(1, 3 * stop + 3, (b, k, p)),
        "pressure": rng.uniform(0.5, 1.05, (b, k, p)) * threshold[:, None, :],
        "day_peak": rng.uniform(0, 50, (b, k, p)),
        "day_overshoot": rng.uniform(0, 3, (b, k, p)),
        "queue_total": rng.uniform(0, 10, (b, p)),
        "queue_cohorts": rng.uniform(0, 5, (b, p, ages)),
        "demand_total": rng.uniform(0, 10, (b, p)),
        "sent_total": rng.uniform(0, 10, (b, p)),
        "accepted_total": rng.uniform(0, 10, (b, p)),
        "rejected_total": rng.uniform(0, 10, (b, p)),
        "shared_total": rng.uniform(0, 10, (b, p)),
        "expired_total": rng.uniform(0, 10, (b, p)),
        "accepted_ip_total": rng.uniform(0, 10, (b, k, p)),
    }


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "plain"])
def test_every_ip_count_of_a_full_pool_runs_as_hour_by_hour(compiled: bool) -> None:
    kernel = run_until_event if compiled else _run_until_event
    stops_by_count: dict[int, set[int]] = {n: set() for n in range(SLOTS + 1)}
    for seed in range(150 if compiled else 30):
        batch = _full_pool(seed)
        expected, got = _copy(batch), _copy(batch)
        flag = _hour_by_hour(**expected)
        assert _run(kernel, got) is flag, seed
        for key, value in expected.items():
            np.testing.assert_array_equal(got[key], value, err_msg=f"seed {seed}: {key}")
        for row, n in enumerate(batch["n_ips"]):
            if got["done"][row] > batch["done"][row]:
                stops_by_count[int(n)].add(int(got["done"][row] < batch["stop"]))
    # Every IP count from 1 to 8 has rows that stopped at an event and rows that ran to the
    # period's end; an empty pool has no event.
    assert all(stops_by_count[n] == {0, 1} for n in range(1, SLOTS + 1)), stops_by_count
    assert stops_by_count[0] == {0}


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "plain"])
def test_speculate_finds_first_event_hours_hour_and_writes_no_state(compiled: bool) -> None:
    run = speculate if compiled else _speculate
    hours_found = set()
    for seed in range(40):
        batch = _full_pool(seed)
        state = _copy(batch)
        stop, n_rows = batch["stop"], batch["n_ips"].shape[0]
        hourly = np.full((PROVIDERS, stop), np.nan)
        values = np.full((4, SLOTS, PROVIDERS), np.nan)
        for row in range(n_rows):
            start = int(batch["done"][row])
            common = (row, start, stop, batch["hour_of_day"], batch["hour"])
            n = int(batch["n_ips"][row])
            expected = first_event_hour(
                *common, n, batch["demand_today"], batch["total_cap"],
                batch["per_allowance"], MAX_OVERSHOOT, batch["decay"], batch["threshold"],
                batch["blocked"], batch["blocked_until"], batch["throttled"],
                batch["throttled_until"], batch["pressure"],
            )  # fmt: skip
            found = run(
                *common, n, state["demand_today"], state["accept_noise"], state["total_cap"],
                state["weight"], state["accept"], state["per_allowance"], MAX_OVERSHOOT,
                state["decay"], state["threshold"], state["blocked"], state["blocked_until"],
                state["throttled"], state["throttled_until"], state["pressure"],
                state["day_peak"], state["day_overshoot"], state["accepted_ip_total"],
                hourly, values,
            )  # fmt: skip
            assert found == expected, (seed, row)
            hours_found.add(found - start if found < stop else -1)
        for key, value in batch.items():
            np.testing.assert_array_equal(state[key], value, err_msg=f"seed {seed}: {key}")
    assert {-1, 0, 1, 2, 3, 4} <= hours_found  # none, and events in several hours


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "plain"])
def test_speculate_takes_a_pressure_exactly_at_its_threshold_for_no_event(compiled: bool) -> None:
    # One IP sending 8 messages an hour at a quarter of a message's overshoot each: 1.0 of
    # overshoot per hour, no decay. Threshold 2.0: at the end of hour 1 the pressure is
    # exactly 2.0 (no event), at hour 2 it is 3.0 (the event). Its values over the hours
    # run are written to scratch only: pressure 3.0 after hours 0-2, 6.0 after hours 0-5.
    run = speculate if compiled else _speculate
    b, k, p = 1, 1, 1
    state: dict[str, Any] = {
        "demand_today": np.full((b, 24, p), 8.0), "accept_noise": np.ones((b, 24, p)),
        "total_cap": np.full((b, p), 8.0), "weight": np.ones((b, k, p)),
        "accept": np.full((b, k, p), 6.0), "per_allowance": np.full((b, k, p), 0.25),
        "max_overshoot": MAX_OVERSHOOT, "decay": np.ones((b, p)),
        "threshold": np.full((b, p), 2.0), "blocked": np.zeros((b, k, p), dtype=bool),
        "blocked_until": np.zeros((b, k, p)), "throttled": np.zeros((b, k, p), dtype=bool),
        "throttled_until": np.zeros((b, k, p)), "pressure": np.zeros((b, k, p)),
        "day_peak": np.zeros((b, k, p)), "day_overshoot": np.zeros((b, k, p)),
        "accepted_ip_total": np.zeros((b, k, p)),
    }  # fmt: skip
    for stop, event, pressure in ((6, 2, 6.0), (2, 2, 2.0), (3, 2, 3.0)):
        hourly = np.full((p, stop), np.nan)
        values = np.full((4, k, p), np.nan)
        found = run(0, 0, stop, 0, np.array([10]), 1, *state.values(), hourly, values)
        assert found == event
        # pressure, overshoot, accepted (6 of 8 an hour), busiest hour
        np.testing.assert_array_equal(values[:, 0, 0], [pressure, pressure, 6.0 * stop, 6.0])
        np.testing.assert_array_equal(hourly, np.full((p, stop), 6.0))
    np.testing.assert_array_equal(state["pressure"], 0.0)


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "plain"])
def test_a_single_row_with_every_slot_in_use_runs_as_hour_by_hour(compiled: bool) -> None:
    # Fewer rows than slots: the kernel's scratch is sized by the slots, not the rows.
    kernel = run_until_event if compiled else _run_until_event
    for seed in range(10):
        pool = _full_pool(seed)
        row = int(np.flatnonzero(pool["n_ips"] == SLOTS)[0])
        batch = {
            key: value[row : row + 1] if isinstance(value, np.ndarray) else value
            for key, value in pool.items()
        }
        expected, got = _copy(batch), _copy(batch)
        assert _run(kernel, got) is _hour_by_hour(**expected)
        for key, value in expected.items():
            np.testing.assert_array_equal(got[key], value, err_msg=f"seed {seed}: {key}")
