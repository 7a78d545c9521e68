"""Shared mode's hours, provider by provider, equal the hour-by-hour loop (envs/shared_hours.py).

``run_until_event`` ran every row hour after hour, every provider within the hour, and
stopped a row after an hour with an event. In shared mode it now runs each row provider
after provider (:func:`~ipwarmup.envs.shared_hours.run_shared_hours`), after finding the
row's first event. The references below are that event's plain statement
(:func:`first_event_hour`, which the hours called until ``speculate`` found the event as
it ran the IPs) and the hour-by-hour loop's shared-mode path as it was (commit 98bf0c2);
on random batches full of events every array, every row's stop and the returned flag must
agree exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba
import numpy as np
import pytest

from ipwarmup.envs.hour_kernel import _run_until_event, run_until_event
from ipwarmup.envs.shared_hours import hour_overshoot

MAX_OVERSHOOT = 4.0


def _first_event_hour(
    b: int,
    start: int,
    stop: int,
    hour_of_day: int,
    hour: np.ndarray,
    n_ips: int,
    demand_today: np.ndarray,
    total_cap: np.ndarray,
    per_allowance: np.ndarray,
    max_overshoot: float,
    decay: np.ndarray,
    threshold: np.ndarray,
    blocked: np.ndarray,
    blocked_until: np.ndarray,
    throttled: np.ndarray,
    throttled_until: np.ndarray,
    pressure: np.ndarray,
) -> int:
    """Return the hour of the period in which row ``b``'s first event happens (``stop``: none).

    Reads the hours ``start`` to ``stop - 1``, writes nothing: each IP's pressure is run on
    a copy, as shared mode's hours would move it. Each IP is only run up to the earliest
    event found so far (an event later than that changes nothing). The simulator's hours
    find the same hour in ``speculate`` while they run the IPs; this is the plain
    statement of the event that the tests hold ``speculate`` to (the hours called it
    before ``speculate``).
    """
    found = stop
    for p in range(total_cap.shape[1]):
        cap = total_cap[b, p]
        for k in range(n_ips):
            pr = pressure[b, k, p]
            for h in range(start, found):
                sent = min(demand_today[b, hour_of_day + h, p], cap)
                over = hour_overshoot(sent, per_allowance[b, k, p], max_overshoot)
                pr = pr * decay[b, p] + over
                now = hour[b] + (h + 1)
                if (
                    pr > threshold[b, p]
                    or (blocked[b, k, p] and blocked_until[b, k, p] <= now)
                    or (throttled[b, k, p] and throttled_until[b, k, p] <= now)
                ):
                    found = h
                    break
    return found


first_event_hour: Callable[..., int] = numba.njit(nogil=True)(_first_event_hour)
"""The compiled :func:`_first_event_hour`."""


def _hour_by_hour(
    done: np.ndarray, stop: int, hour_of_day: int, ring_clock: int, hour: np.ndarray,
    n_ips: np.ndarray, demand_today: np.ndarray, accept_noise: np.ndarray,
    total_cap: np.ndarray, weight: np.ndarray, accept: np.ndarray, per_allowance: np.ndarray,
    reject_share: np.ndarray, hold_hours: int, max_overshoot: float, decay: np.ndarray,
    threshold: np.ndarray, blocked: np.ndarray, blocked_until: np.ndarray,
    throttled: np.ndarray, throttled_until: np.ndarray, pressure: np.ndarray,
    day_peak: np.ndarray, day_overshoot: np.ndarray, queue_total: np.ndarray,
    queue_cohorts: np.ndarray, demand_total: np.ndarray, sent_total: np.ndarray,
    accepted_total: np.ndarray, rejected_total: np.ndarray, shared_total: np.ndarray,
    expired_total: np.ndarray, accepted_ip_total: np.ndarray,
) -> bool:  # fmt: skip
    """The old loop, shared mode: hour after hour, every provider within the hour."""
    n_rows, n_providers = total_cap.shape
    ages = queue_cohorts.shape[2]
    live = min(hold_hours, ages)
    any_event = False
    for b in range(n_rows):
        n = n_ips[b]
        for h in range(done[b], stop):
            hod = hour_of_day + h
            slot = (ring_clock + h) % ages
            now = hour[b] + (h + 1)
            event = False
            for p in range(n_providers):
                demand = demand_today[b, hod, p]
                demand_total[b, p] += demand
                sent = min(demand, total_cap[b, p])
                noise = accept_noise[b, hod, p]
                accepted = 0.0
                for k in range(n):
                    acc_ip = min(sent * weight[b, k, p], accept[b, k, p] * noise)
                    accepted = acc_ip if k == 0 else accepted + acc_ip
                    accepted_ip_total[b, k, p] += acc_ip
                    if acc_ip > day_peak[b, k, p]:
                        day_peak[b, k, p] = acc_ip
                    over = sent * per_allowance[b, k, p] - 1.0
                    over = min(max(over, 0.0), max_overshoot)
                    day_overshoot[b, k, p] += over
                    pr = pressure[b, k, p] * decay[b, p] + over
                    pressure[b, k, p] = pr
                    if pr > threshold[b, p]:
                        event = True
                    if blocked[b, k, p] and blocked_until[b, k, p] <= now:
                        event = True
                    if throttled[b, k, p] and throttled_until[b, k, p] <= now:
                        event = True
                accepted = min(accepted, sent)
                sent_total[b, p] += sent
                accepted_total[b, p] += accepted
                rejected = min(sent * reject_share[b, p], sent - accepted)
                rejected_total[b, p] += rejected
                deferred = max(sent - accepted - rejected, 0.0)
                if hold_hours <= ages:
                    due = (slot + ages - hold_hours) % ages
                    released = queue_cohorts[b, p, due]
                    queue_cohorts[b, p, due] = 0.0
                    expired = 0.0
                else:
                    released = 0.0
                    expired = queue_cohorts[b, p, slot]
                queue_cohorts[b, p, slot] = deferred
                shared_total[b, p] += (demand - sent) + released
                expired_total[b, p] += expired
                held = deferred
                for i in range(1, live):
                    held += queue_cohorts[b, p, (slot + ages - i) % ages]
                queue_total[b, p] = held
            done[b] = h + 1
            if event:
                any_event = True
                break
    return any_event


def _batch(seed: int) -> dict[str, Any]:
    """A random batch: IPs near their thresholds, throttles and blocks ending mid-period."""
    rng = np.random.default_rng(seed)
    b, k, p = 6, 4, 3
    ages = int(rng.choice([5, 72]))
    stop = int(rng.choice([1, 6, 24]))
    hour_of_day = int(rng.integers(0, 24 - stop + 1))
    hour = rng.integers(0, 500, b)
    n_ips = rng.integers(0, k + 1, b)
    caps = rng.uniform(0, 100, (b, k, p)) * (rng.random((b, k, p)) < 0.8)
    total_cap = caps.sum(axis=1)
    blocked = rng.random((b, k, p)) < 0.15
    throttled = ~blocked & (rng.random((b, k, p)) < 0.2)
    accept = np.where(blocked, 0.0, rng.uniform(1, 80, (b, k, p)))
    threshold = rng.uniform(1, 6, (b, p))
    return {
        "done": np.minimum(rng.integers(0, stop + 1, b), stop),
        "stop": stop,
        "hour_of_day": hour_of_day,
        "ring_clock": int(rng.integers(0, 1000)),
        "hour": hour,
        "n_ips": n_ips,
        "demand_today": rng.lognormal(3.0, 1.0, (b, 24, p)) * (rng.random((b, 24, p)) < 0.9),
        "accept_noise": rng.lognormal(0.0, 0.2, (b, 24, p)),
        "total_cap": total_cap,
        "weight": caps / np.maximum(total_cap[:, None, :], 1e-300),
        "accept": accept,
        "per_allowance": np.where(blocked, 0.0, rng.uniform(0, 0.1, (b, k, p))),
        "reject_share": rng.uniform(0, 0.5, (b, p)),
        "hold_hours": int(rng.choice([1, 2, 3, ages, ages + 2])),  # the oldest cohort, or none
        "max_overshoot": MAX_OVERSHOOT,
        "decay": rng.uniform(0.5, 0.99, (b, p)),
        "threshold": threshold,
        "blocked": blocked,
        "blocked_until": (hour + rng.integers(0, 2 * stop + 2, b))[:, None, None]
        + rng.integers(0, 4, (b, k, p)),
        "throttled": throttled,
        "throttled_until": (hour + rng.integers(0, 2 * stop + 2, b))[:, None, None]
        + rng.integers(0, 4, (b, k, p)),
        "pressure": rng.uniform(0, 1.2, (b, k, p)) * threshold[:, None, :],
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


def _copy(batch: dict[str, Any]) -> dict[str, Any]:
    return {
        key: value.copy() if isinstance(value, np.ndarray) else value
        for key, value in batch.items()
    }


def _run(kernel: Any, batch: dict[str, Any]) -> bool:
    """Call ``run_until_event`` in shared mode (the queue-only arguments are dummies)."""
    b = batch
    result: bool = kernel(
        b["done"], b["stop"], b["hour_of_day"], b["ring_clock"], b["hour"], b["n_ips"],
        b["demand_today"], b["accept_noise"], b["total_cap"], b["weight"], b["accept"],
        b["per_allowance"], b["reject_share"], np.full(len(b["hour"]), np.nan), np.nan,
        b["hold_hours"], False, b["max_overshoot"], b["decay"], b["threshold"], b["blocked"],
        b["blocked_until"], b["throttled"], b["throttled_until"], b["pressure"], b["day_peak"],
        b["day_overshoot"], b["queue_total"], b["queue_cohorts"],
        np.full(b["queue_total"].shape, np.nan), b["demand_total"], b["sent_total"],
        b["accepted_total"], b["rejected_total"], b["shared_total"], b["expired_total"],
        b["accepted_ip_total"],
    )  # fmt: skip
    return result


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "plain"])
def test_provider_after_provider_equals_hour_by_hour_until_each_rows_event(compiled: bool) -> None:
    kernel = run_until_event if compiled else _run_until_event
    flags, early_rows, late_rows = [], 0, 0
    for seed in range(120 if compiled else 40):
        batch = _batch(seed)
        expected, got = _copy(batch), _copy(batch)
        flag = _hour_by_hour(**expected)
        assert _run(kernel, got) is flag, seed
        for key, value in expected.items():
            np.testing.assert_array_equal(got[key], value, err_msg=f"seed {seed}: {key}")
        flags.append(flag)
        stopped = got["done"][got["done"] > batch["done"]]
        early_rows += int(np.count_nonzero(stopped < batch["stop"]))
        late_rows += int(np.count_nonzero(stopped == batch["stop"]))
    # The batches reach both outcomes: rows stopped by an event before the period's end,
    # rows that ran to its end, and calls with and without any event.
    assert any(flags) and not all(flags)
    assert early_rows > 20 and late_rows > 20


def test_the_first_event_is_the_earliest_hour_any_ip_of_the_row_meets_one() -> None:
    # Row 0: provider 1's IP crosses its threshold in hour 2 (pressure 0 + 3 x 1.0 over; at
    # hour 1 it is exactly at it, not past it), provider 0's throttle ends at the end of
    # hour 4; the row's first event is hour 2.
    b, k, p = 1, 1, 2
    args: dict[str, Any] = {
        "b": 0, "start": 0, "stop": 6, "hour_of_day": 0, "hour": np.array([10]), "n_ips": 1,
        "demand_today": np.full((b, 24, p), 8.0), "total_cap": np.array([[0.0, 8.0]]),
        "per_allowance": np.full((b, k, p), 0.25), "max_overshoot": MAX_OVERSHOOT,
        "decay": np.ones((b, p)), "threshold": np.array([[9.0, 2.0]]),
        "blocked": np.zeros((b, k, p), dtype=bool), "blocked_until": np.zeros((b, k, p)),
        "throttled": np.array([[[True, False]]]), "throttled_until": np.full((b, k, p), 15.0),
        "pressure": np.zeros((b, k, p)),
    }  # fmt: skip
    for find in (first_event_hour, _first_event_hour):
        assert find(**args) == 2
        assert find(**{**args, "start": 3}) == 4  # past hour 2: provider 0's throttle ends
        assert find(**{**args, "stop": 2}) == 2  # none within the period: its stop
        assert find(**{**args, "n_ips": 0}) == 6  # no IP, no event
    pressure = args["pressure"].copy()
    first_event_hour(**args)
    np.testing.assert_array_equal(args["pressure"], pressure)  # it runs pressure on a copy
