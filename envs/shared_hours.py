"""The hours of shared overflow mode, provider by provider: what ``run_until_event`` runs there.

:func:`~ipwarmup.envs.hour_kernel.run_until_event` runs each row hour after hour, every
provider within each hour, and stops the row after an hour in which an event happened.
In shared mode (the default) the providers of a row do not meet within its hours: what
each sends is its demand up to its cap, and its queue holds its own deferred mail. So a row
can run IP after IP, each over all its hours with its running values (pressure, overshoot,
acceptance, peak) in registers, then provider after provider, each over all its hours with
its running sums in registers (a day's hours at 256 rows took ~30% less time than with
the IPs' values in memory, ``benchmarks/period_parts.py``). Only the stop needs the whole
row: an event is an IP's ignored-deferral pressure crossing its provider's threshold, which
depends on the provider's demand and caps alone, or a throttle or block whose time is up.
:func:`speculate` runs the IPs on scratch and finds the row's first event on the way; if
there is one before the last hour it runs them again up to that hour, and only then are
the IPs' values and the providers' hours written, as the hour-by-hour loop would have
stopped them.

Each value is computed by the same operations, on the same operands, in the same order
per provider as in the hour-by-hour loop (the sums over hours add in hour order, the sums
over IPs in slot order: each hour's acceptance is the first IP's, then the second's added,
and so on), so the results are that loop's, bit for bit (``tests/envs/test_shared_hours.py``
holds this path to the hour-by-hour one, events included).
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


def _speculate(
    b: int,
    start: int,
    stop: int,
    hour_of_day: int,
    hour: np.ndarray,
    n_ips: int,
    demand_today: np.ndarray,
    accept_noise: np.ndarray,
    total_cap: np.ndarray,
    weight: np.ndarray,
    accept: np.ndarray,
    per_allowance: np.ndarray,
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
    accepted_ip_total: np.ndarray,
    hourly_accepted: np.ndarray,
    ip_values: np.ndarray,
) -> int:
    """Run row ``b``'s IPs over hours ``start`` to ``stop - 1`` on scratch; return its first event.

    Each IP runs all the hours with its running values in locals (IPs outer, hours inner):
    its pressure, overshoot, acceptance and peak end in ``ip_values`` (4, K, P), and its
    acceptance of hour ``h`` is added to ``hourly_accepted[p, h]`` (P, stop) in slot
    order, as the hour-by-hour loop's ``accepted`` was. Writes no state: the hours past
    the row's first event must not count, and that event may be found at the last IP.

    Returns:
        The hour of the period of the row's first event (the first hour in which an IP's
        pressure passes its threshold or a throttle or block of it ends), ``stop`` if none.
    """
    found = stop
    hours = stop - start
    first = hour_of_day + start
    for p in range(total_cap.shape[1]):
        cap = total_cap[b, p]
        fade = decay[b, p]
        limit = threshold[b, p]
        # Views indexed from 0 by the loop's counter, which the compiler knows is never
        # negative: no wraparound arithmetic per index and hour.
        demand = demand_today[b, first : first + hours, p]
        noise = accept_noise[b, first : first + hours, p]
        summed = hourly_accepted[p, start:stop]
        for k in range(n_ips):
            share = weight[b, k, p]
            acceptance = accept[b, k, p]
            ratio = per_allowance[b, k, p]
            pr = pressure[b, k, p]
            over_sum = day_overshoot[b, k, p]
            accepted_sum = accepted_ip_total[b, k, p]
            peak = day_peak[b, k, p]
            crossed = hours  # the first hour past the threshold, counted from `start`
            for i in range(hours):
                sent = min(demand[i], cap)
                acc_ip = min(sent * share, acceptance * noise[i])
                if k == 0:
                    summed[i] = acc_ip
                else:
                    summed[i] += acc_ip
                accepted_sum += acc_ip
                if acc_ip > peak:
                    peak = acc_ip
                over = hour_overshoot(sent, ratio, max_overshoot)
                over_sum += over
                pr = pr * fade + over
                if pr > limit and crossed == hours:
                    crossed = i
            found = min(found, start + crossed)
            # A throttle or block whose time is up within the hours is an event too.
            is_blocked = blocked[b, k, p]
            is_throttled = throttled[b, k, p]
            if is_blocked or is_throttled:
                for h in range(start, found):
                    now = hour[b] + (h + 1)
                    if (is_blocked and blocked_until[b, k, p] <= now) or (
                        is_throttled and throttled_until[b, k, p] <= now
                    ):
                        found = h
                        break
            ip_values[0, k, p] = pr
            ip_values[1, k, p] = over_sum
            ip_values[2, k, p] = accepted_sum
            ip_values[3, k, p] = peak
    return found


speculate: Callable[..., int] = numba.njit(cache=True, nogil=True)(_speculate)
"""The compiled :func:`_speculate`."""


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
    hour or to ``stop``: its IPs first, on scratch (:func:`speculate`, again up to the
    event's hour if there is one), then provider after provider.

    Returns:
        Whether some row stopped at an event.
    """
    n_rows, n_providers = total_cap.shape
    ages = queue_cohorts.shape[2]
    live = min(hold_hours, ages)  # cohorts still held after an hour's release
    hourly_accepted = np.empty((n_providers, stop))
    ip_values = np.empty((4, weight.shape[1], n_providers))
    any_event = False
    for b in range(n_rows):
        n = n_ips[b]
        start = done[b]
        end = stop
        while True:  # twice at most: the second run stops at the first's event
            event = speculate(
                b, start, end, hour_of_day, hour, n, demand_today, accept_noise, total_cap,
                weight, accept, per_allowance, max_overshoot, decay, threshold, blocked,
                blocked_until, throttled, throttled_until, pressure, day_peak, day_overshoot,
                accepted_ip_total, hourly_accepted, ip_values,
            )  # fmt: skip
            if event + 1 >= end:
                break
            end = event + 1
        # The row's first hour's ring slot and the cohort it releases; each later hour steps
        # both one slot on (no remainder per hour and provider, no tables to allocate).
        first_slot = (ring_clock + start) % ages
        first_due = (first_slot + ages - hold_hours) % ages
        first = hour_of_day + start
        hours = end - start
        if n == 0:  # no IP accepts anything (speculate wrote no hour)
            hourly_accepted[:, start:end] = 0.0
        for p in range(n_providers):
            for k in range(n):
                pressure[b, k, p] = ip_values[0, k, p]
                day_overshoot[b, k, p] = ip_values[1, k, p]
                accepted_ip_total[b, k, p] = ip_values[2, k, p]
                day_peak[b, k, p] = ip_values[3, k, p]
            cap = total_cap[b, p]
            share = reject_share[b, p]
            demand_sum = demand_total[b, p]
            sent_sum = sent_total[b, p]
            accepted_sum = accepted_total[b, p]
            rejected_sum = rejected_total[b, p]
            shared_sum = shared_total[b, p]
            expired_sum = expired_total[b, p]
            queued = queue_total[b, p]
            demand = demand_today[b, first : first + hours, p]  # views, as in `speculate`
            summed = hourly_accepted[p, start:end]
            cohorts = queue_cohorts[b, p]
            slot, due = first_slot, first_due
            for i in range(hours):
                demand_sum += demand[i]
                sent = min(demand[i], cap)
                # IP weights sum to 1 only up to rounding: keep every outflow within `sent`.
                accepted = min(summed[i], sent)
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
                    released = cohorts[due]
                    cohorts[due] = 0.0
                    expired = 0.0
                else:
                    released = 0.0
                    expired = cohorts[slot]
                cohorts[slot] = deferred
                shared_sum += (demand[i] - sent) + released
                expired_sum += expired
                # The queue is the live cohorts' sum, not a running total.
                held = deferred
                for j in range(1, live):
                    held += cohorts[(slot + ages - j) % ages]
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
        if event < end:
            any_event = True
    return any_event


run_shared_hours: Callable[..., bool] = numba.njit(cache=True, nogil=True)(_run_shared_hours)
"""The compiled :func:`_run_shared_hours`."""
