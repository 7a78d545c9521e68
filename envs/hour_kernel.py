"""The MTA's hourly arithmetic, compiled: send, accept, defer, build pressure, move the queue.

:func:`~ipwarmup.envs.mta.run_hours` calls :func:`run_until_event` with the period's
routing (from :func:`~ipwarmup.envs.mta.routing`, in Python) and the state's arrays. It
runs each row hour after hour until an *event*, an IP's ignored-deferral pressure
crossing its provider's threshold or a throttle or block whose time is up, or the
period's end, and
records how far each row got; the caller handles the events with
:mod:`~ipwarmup.envs.escalation` (rare), routes again and resumes. Blocks change the
routing, so they stay in Python. Rows do not interact within a period, so each row runs
its hours on its own (its few hundred values stay in cache) and stops at its own events.
In shared overflow mode the providers of a row do not meet within its hours either, and
each row runs IP after IP, then provider after provider (:mod:`~ipwarmup.envs.shared_hours`,
the same results); queue mode's retries read the queue that the row's hours move, hour by
hour. Queue mode keeps the hours outer: each hour's queue waits on the hour before through
a chain of dependent operations (a division among them), and the providers of an hour are
what the processor overlaps (a trial that ran provider after provider, with the values
in registers, was half as slow again at 256 rows).

The retry queue is the other timed state, and it is not an event: its retries and
expiries (and in shared mode the release of held mail to the shared pool) happen inside
each hour here, whichever call runs that hour, and change no routing. A state that only
Python can move at its time would have to be one.

Each operation is the one the numpy version of this loop did, in the same order and on
the same operands (no fused multiply-add: numba compiles without ``fastmath``), so the
simulator's golden trajectories hold bit for bit. Sums over IPs add the active slots in
slot order, which is what numpy's reduction over that axis does (empty slots add zero).
Only active slots (``k < n_ips``) are visited: an empty slot has no cap, so nothing is
sent through it; its stale pressure is reset when an IP takes the slot again.

Compiled with ``cache=True``: the first call in a fresh environment compiles for a few
seconds and writes the machine code beside this file (``__pycache__``); later processes
load it in milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable

import numba
import numpy as np

from ipwarmup.envs.shared_hours import hour_overshoot, run_shared_hours


def _run_until_event(
    done: np.ndarray,
    stop: int,
    hour_of_day: int,
    ring_clock: int,
    hour: np.ndarray,
    n_ips: np.ndarray,
    demand_today: np.ndarray,
    accept_noise: np.ndarray,
    total_cap: np.ndarray,
    weight: np.ndarray,
    accept: np.ndarray,
    per_allowance: np.ndarray,
    reject_share: np.ndarray,
    to_shared: np.ndarray,
    retry: float,
    hold_hours: int,
    queue_mode: bool,
    max_overshoot: float,
    decay: np.ndarray,
    threshold: np.ndarray,
    blocked: np.ndarray,
    blocked_until: np.ndarray,
    throttled: np.ndarray,
    throttled_until: np.ndarray,
    pressure: np.ndarray,
    day_peak: np.ndarray,
    day_overshoot: np.ndarray,
    queue_total: np.ndarray,
    queue_cohorts: np.ndarray,
    queue_scale: np.ndarray,
    demand_total: np.ndarray,
    sent_total: np.ndarray,
    accepted_total: np.ndarray,
    rejected_total: np.ndarray,
    shared_total: np.ndarray,
    expired_total: np.ndarray,
    accepted_ip_total: np.ndarray,
) -> bool:
    """Simulate each row's hours ``done[b]`` to ``stop - 1`` of the period until an event.

    Hour ``h`` of the period is hour ``hour_of_day + h`` of the day and ring slot
    ``(ring_clock + h) % A`` of the retry queue. Arrays are updated in place: the state's
    ``pressure``, ``day_peak``, ``day_overshoot`` and queue, and the period's accumulators
    (``*_total``, per provider (B, P), and ``accepted_ip_total`` (B, K, P)).

    Args:
        done: (B,) int64, each row's hours of the period simulated so far, updated.
        stop: hours in the period.
        hour_of_day: the hour of the day at the period's start.
        ring_clock: the queue's ring clock at the period's start.
        hour: (B,) hours since reset at the period's start.
        n_ips: (B,) active IP slots per row.
        demand_today: (B, 24, P) messages arriving per hour.
        accept_noise: (B, 24, P) multiplier on ``accept`` per hour of the day.
        total_cap: (B, P) the pool's hourly cap.
        weight: (B, K, P) each IP's share of the pool's mail.
        accept: (B, K, P) each IP's hourly acceptance (0 when blocked).
        per_allowance: (B, K, P) overshoot per message sent (0 when blocked).
        reject_share: (B, P) share of the mail sent to blocked IPs.
        to_shared: (B,) 1 where leftover mail goes to the shared pool, 0 to the queue
            (queue mode only).
        retry: share of the queue due each hour (queue mode).
        hold_hours: hours deferred mail waits before its retry on the shared pool (shared
            mode; at least 1). Past ``A`` it expires first, at age ``A``.
        queue_mode: whether leftover mail goes to the retry queue (else what the caps held
            back goes to the shared pool at once and deferred mail after ``hold_hours``).
        max_overshoot: cap on one hour's overshoot.
        decay: (B, P) hourly pressure decay.
        threshold: (B, P) pressure past which the provider blocks.
        blocked: (B, K, P) bool.
        blocked_until: (B, K, P) hour each block ends.
        throttled: (B, K, P) bool.
        throttled_until: (B, K, P) hour each throttle lifts.
        pressure: (B, K, P) ignored-deferral pressure, updated.
        day_peak: (B, K, P) the day's busiest hour's acceptance, updated.
        day_overshoot: (B, K, P) the day's summed overshoot, updated.
        queue_total: (B, P) messages in the retry queue, updated.
        queue_cohorts: (B, P, A) queued messages by hour of arrival over scale, updated
            (in shared mode: deferred mail held, by hour of deferral, scale 1).
        queue_scale: (B, P) the cohorts' lazy common factor, updated (queue mode).
        demand_total: (B, P) the period's demand, updated.
        sent_total: (B, P) the period's mail sent on dedicated IPs, updated.
        accepted_total: (B, P) the period's accepted mail, updated.
        rejected_total: (B, P) the period's rejected mail, updated.
        shared_total: (B, P) the period's mail sent to the shared pool, updated.
        expired_total: (B, P) the period's expired mail, updated.
        accepted_ip_total: (B, K, P) the period's accepted mail per IP, updated.

    Returns:
        Whether some row stopped at an event, at the end of its hour ``done[b] - 1``
        (every other row has ``done[b] == stop``).
    """
    if not queue_mode:  # IP after IP, provider after provider (envs/shared_hours.py)
        return run_shared_hours(
            done, stop, hour_of_day, ring_clock, hour, n_ips, demand_today, accept_noise,
            total_cap, weight, accept, per_allowance, reject_share, hold_hours, max_overshoot,
            decay, threshold, blocked, blocked_until, throttled, throttled_until, pressure,
            day_peak, day_overshoot, queue_total, queue_cohorts, demand_total, sent_total,
            accepted_total, rejected_total, shared_total, expired_total, accepted_ip_total,
        )  # fmt: skip
    n_rows, n_providers = total_cap.shape
    ages = queue_cohorts.shape[2]
    keep_share = min(retry, 1.0)
    any_event = False
    for b in range(n_rows):
        n = n_ips[b]
        to_sh = to_shared[b]
        for h in range(done[b], stop):
            hod = hour_of_day + h
            slot = (ring_clock + h) % ages
            now = hour[b] + (h + 1)
            event = False
            for p in range(n_providers):
                demand = demand_today[b, hod, p]
                demand_total[b, p] += demand
                wanted = demand + queue_total[b, p] * retry
                sent = min(wanted, total_cap[b, p])
                noise = accept_noise[b, hod, p]
                accepted = 0.0
                for k in range(n):
                    acc_ip = min(sent * weight[b, k, p], accept[b, k, p] * noise)
                    accepted = acc_ip if k == 0 else accepted + acc_ip
                    accepted_ip_total[b, k, p] += acc_ip
                    if acc_ip > day_peak[b, k, p]:
                        day_peak[b, k, p] = acc_ip
                    over = hour_overshoot(sent, per_allowance[b, k, p], max_overshoot)
                    day_overshoot[b, k, p] += over
                    pr = pressure[b, k, p] * decay[b, p] + over
                    pressure[b, k, p] = pr
                    if pr > threshold[b, p]:
                        event = True
                    if blocked[b, k, p] and blocked_until[b, k, p] <= now:
                        event = True
                    if throttled[b, k, p] and throttled_until[b, k, p] <= now:
                        event = True
                # IP weights sum to 1 only up to rounding: keep every outflow within `sent`.
                accepted = min(accepted, sent)
                sent_total[b, p] += sent
                accepted_total[b, p] += accepted
                # Mail sent to a blocked IP is rejected (5xx) and lost (0 without blocks).
                rejected = min(sent * reject_share[b, p], sent - accepted)
                rejected_total[b, p] += rejected
                leftover = max(wanted - accepted - rejected, 0.0)
                shared_total[b, p] += leftover * to_sh
                # The retry queue: a ring of hourly cohorts with a lazy common scale;
                # a retry takes the same share of every cohort (each queued message
                # is equally likely to be due): one multiplication of the scale.
                frac_left = leftover / wanted if wanted > 0 else 0.0
                stay = frac_left * (1.0 - to_sh)
                keep = 1.0 - keep_share * (1.0 - stay)
                joined = demand * stay
                scale = queue_scale[b, p] * keep
                if scale < 1e-200:  # fold the scale into the cohorts before it underflows
                    for a in range(ages):
                        queue_cohorts[b, p, a] *= scale
                    scale = 1.0
                queue_scale[b, p] = scale
                expired = queue_cohorts[b, p, slot] * scale
                queue_cohorts[b, p, slot] = joined / scale
                queue_total[b, p] = max(queue_total[b, p] * keep - expired + joined, 0.0)
                expired_total[b, p] += expired
            done[b] = h + 1
            if event:
                any_event = True
                break
    return any_event


run_until_event: Callable[..., bool] = numba.njit(cache=True, nogil=True)(_run_until_event)
"""The compiled :func:`_run_until_event` (the plain function stays importable for tracing)."""


def _sum_axis1(values: np.ndarray) -> np.ndarray:
    """Return ``values`` (B, N, P) summed over its middle axis, in index order, (B, P).

    numpy's ``np.add.reduce(values, axis=1)`` gives the same sums (it adds in index order
    when ``P >= 2``; with ``P == 1`` and ``N >= 8`` it adds pairwise, which may differ in
    the last bits), but walks a 5-wide inner loop per (row, index) pair: at 256 rows it
    took longer than the whole hour kernel.
    """
    n_rows, n_mid, n_last = values.shape
    out = np.empty((n_rows, n_last))
    for b in range(n_rows):
        for p in range(n_last):
            total = values[b, 0, p] if n_mid > 0 else 0.0
            for i in range(1, n_mid):
                total += values[b, i, p]
            out[b, p] = total
    return out


sum_axis1: Callable[[np.ndarray], np.ndarray] = numba.njit(cache=True, nogil=True)(_sum_axis1)
"""The compiled :func:`_sum_axis1`."""


def _held_one(history: np.ndarray, b: int, k: int, p: int, today: int, days: int) -> float:
    """Return slot ``(b, k, p)``'s largest value of the ring's last ``days`` days (0 if none).

    ``days`` is already at most the ring's width.
    """
    window = history.shape[3]
    best = 0.0
    day = today % window
    for _ in range(days):  # today, then back a day at a time (no remainder per day)
        value = history[b, k, p, day]
        if value > best:
            best = value
        day = day - 1 if day > 0 else window - 1
    return best


held_one: Callable[..., float] = numba.njit(cache=True, nogil=True)(_held_one)
"""The compiled :func:`_held_one`: :func:`window_max` of one slot (end of day reads it)."""


def _window_max(history: np.ndarray, today: int, memory_days: np.ndarray) -> np.ndarray:
    """Return each (row, IP, provider)'s largest value of its last ``memory_days`` days.

    ``history`` is (B, K, P, W), a ring of days whose slot ``today`` was written last;
    provider ``p`` of row ``b`` remembers ``memory_days[b, p]`` days, today included (at
    most ``W``). The values are busiest hours, never negative, so a provider that
    remembers nothing gets 0. numpy's ``np.where(mask, history, 0).max(axis=-1)`` gives the
    same, but its reduction over a 7-wide last axis cost a tenth of a day's step at 256 rows.
    """
    n_rows, n_ips, n_providers, window = history.shape
    out = np.zeros((n_rows, n_ips, n_providers))
    for b in range(n_rows):
        for p in range(n_providers):
            days = min(int(memory_days[b, p]), window)
            for k in range(n_ips):
                out[b, k, p] = held_one(history, b, k, p, today, days)
    return out


window_max: Callable[[np.ndarray, int, np.ndarray], np.ndarray] = numba.njit(
    cache=True, nogil=True
)(_window_max)
"""The compiled :func:`_window_max`."""
