"""The hours of shared overflow mode, provider by provider: what ``run_until_event`` runs there.

:func:`~ipwarmup.envs.hour_kernel.run_until_event` runs each row hour after hour, every
provider within each hour, and stops the row after an hour in which an event happened.
In shared mode (the default) the providers of a row do not meet within its hours: what
each sends is its demand up to its cap, and its queue holds its own deferred mail. So a row
can run provider after provider, each over all its hours, with the provider's running
sums in registers instead of memory: ~30% less time at 256 rows. Only the stop needs
the whole row, and in shared mode it can be found first: an event is an IP's
ignored-deferral pressure crossing its provider's threshold, which depends on the
provider's demand and caps alone, or a throttle or block whose time is up.
:func:`first_event_hour` runs the pressure alone to the row's first event; then every
provider runs to the end of that hour, as the hour-by-hour loop would have stopped them.

Each value is computed by the same operations, on the same operands, in the same order
per provider as in the hour-by-hour loop (the sums over hours add in hour order, the sums
over IPs in slot order), so the results are that loop's, bit for bit
(``tests/envs/test_kernels.py`` holds this path to the hour-by-hour one, events included).
"""

from __future__ import annotations

from collections.abc import Callable

import numba
import numpy as np


def _hour_overshoot(sent: float, per_allowance: float, max_overshoot: float) -> float:
    """Return one IP's overshoot in an hour: ``sent`` times its per-allowance less 1, clipped.

    Clipped to ``[0, max_overshoot]``. The one formula of every hour loop (queue mode's,
    shared mode's and the search for shared mode's first event), so a change reaches all.
    """
    over = sent * per_allowance - 1.0
    return min(max(over, 0.0), max_overshoot)


hour_overshoot: Callable[[float, float, float], float] = numba.njit(
    cache=True, nogil=True, inline="always"
)(_hour_overshoot)
"""The compiled :func:`_hour_overshoot`, inlined where it is called."""


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
    event found so far (an event later than that changes nothing).
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


first_event_hour: Callable[..., int] = numba.njit(cache=True, nogil=True)(_first_event_hour)
"""The compiled :func:`_first_event_hour`."""


def _run_shared_hours(
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
    hold_hours: int,
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
    demand_total: np.ndarray,
    sent_total: np.ndarray,
    accepted_total: np.ndarray,
    rejected_total: np.ndarray,
    shared_total: np.ndarray,
    expired_total: np.ndarray,
    accepted_ip_total: np.ndarray,
) -> bool:
    """Run :func:`~ipwarmup.envs.hour_kernel.run_until_event` in shared mode, row by row.

    The arguments are that function's (shared mode reads no retry share, no leftover flag
    and no queue scale). Each row runs from hour ``done[b]`` to the end of its first event's
    hour (:func:`first_event_hour`) or to ``stop``, provider after provider.

    Returns:
        Whether some row stopped at an event.
    """
    n_rows, n_providers = total_cap.shape
    ages = queue_cohorts.shape[2]
    live = min(hold_hours, ages)  # cohorts still held after an hour's release
    any_event = False
    for b in range(n_rows):
        n = n_ips[b]
        start = done[b]
        event = first_event_hour(
            b, start, stop, hour_of_day, hour, n, demand_today, total_cap, per_allowance,
            max_overshoot, decay, threshold, blocked, blocked_until, throttled,
            throttled_until, pressure,
        )  # fmt: skip
        end = stop if event == stop else event + 1
        # The row's first hour's ring slot and the cohort it releases; each later hour steps
        # both one slot on (no remainder per hour and provider, no tables to allocate).
        first_slot = (ring_clock + start) % ages
        first_due = (first_slot + ages - hold_hours) % ages
        for p in range(n_providers):
            cap = total_cap[b, p]
            share = reject_share[b, p]
            fade = decay[b, p]
            demand_sum = demand_total[b, p]
            sent_sum = sent_total[b, p]
            accepted_sum = accepted_total[b, p]
            rejected_sum = rejected_total[b, p]
            shared_sum = shared_total[b, p]
            expired_sum = expired_total[b, p]
            queued = queue_total[b, p]
            slot, due = first_slot, first_due
            for h in range(start, end):
                hod = hour_of_day + h
                demand = demand_today[b, hod, p]
                demand_sum += demand
                sent = min(demand, cap)
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
                    pressure[b, k, p] = pressure[b, k, p] * fade + over
                # IP weights sum to 1 only up to rounding: keep every outflow within `sent`.
                accepted = min(accepted, sent)
                sent_sum += sent
                accepted_sum += accepted
                # Mail sent to a blocked IP is rejected (5xx) and lost (0 without blocks).
                rejected = min(sent * share, sent - accepted)
                rejected_sum += rejected
                # What the caps held back goes to the shared pool this hour; deferred mail
                # waits for its retry, `hold_hours` later, or expires first if that is past
                # its maximum age.
                deferred = max(sent - accepted - rejected, 0.0)
                if hold_hours <= ages:
                    released = queue_cohorts[b, p, due]
                    queue_cohorts[b, p, due] = 0.0
                    expired = 0.0
                else:
                    released = 0.0
                    expired = queue_cohorts[b, p, slot]
                queue_cohorts[b, p, slot] = deferred
                shared_sum += (demand - sent) + released
                expired_sum += expired
                # The queue is the live cohorts' sum, not a running total.
                held = deferred
                for i in range(1, live):
                    held += queue_cohorts[b, p, (slot + ages - i) % ages]
                queued = held
                slot = slot + 1 if slot + 1 < ages else 0
                due = due + 1 if due + 1 < ages else 0
            demand_total[b, p] = demand_sum
            sent_total[b, p] = sent_sum
            accepted_total[b, p] = accepted_sum
            rejected_total[b, p] = rejected_sum
            shared_total[b, p] = shared_sum
            expired_total[b, p] = expired_sum
            queue_total[b, p] = queued
        done[b] = end
        if event < stop:
            any_event = True
    return any_event


run_shared_hours: Callable[..., bool] = numba.njit(cache=True, nogil=True)(_run_shared_hours)
"""The compiled :func:`_run_shared_hours`."""
