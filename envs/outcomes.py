"""The end of a decision period: where the mail landed, what the ESP sees, what is counted.

A step function over a :class:`~ipwarmup.envs.state.SimState`, updating it in place:
accepted and shared traffic is split into bounces, inbox and spam folder by each IP's and
the shared pool's placement; complaints join the feedback feed with each provider's delay;
the period's telemetry and the cumulative accounting are written.
"""

from __future__ import annotations

import operator
from collections.abc import Callable

import numba
import numpy as np

from ipwarmup.envs.config import HOURS_PER_DAY
from ipwarmup.envs.mta import Period
from ipwarmup.envs.outcome_kernel import (
    BOUNCED,
    DEFERRED,
    DELIVERED,
    DELIVERED_DEDICATED,
    DELIVERED_SHARED,
    INBOX_DEDICATED,
    INBOX_SHARED,
    N_SPLIT,
    REPORTED,
    TRANSMITTED,
    split_period,
)
from ipwarmup.envs.providers import inbox_rate_one
from ipwarmup.envs.shared_pool import moved_one
from ipwarmup.envs.state import ACCOUNTING_KEYS, EXTRA_ACCOUNTING_KEYS, SimState

_KEYS = ACCOUNTING_KEYS + EXTRA_ACCOUNTING_KEYS
_DEMAND, _INBOX, _SPAM, _BOUNCED, _REJECTED, _EXPIRED = (
    _KEYS.index(key)
    for key in ("demand", "delivered_inbox", "delivered_spam", "bounced", "rejected", "expired")
)
_QUEUED, _SENT_DEDICATED, _SENT_SHARED, _DEFERRALS = (
    _KEYS.index(key) for key in ("queued", "sent_dedicated", "sent_shared", "deferrals")
)
_BLOCK_EVENTS, _THROTTLE_EVENTS, _IP_DAYS, _ACCEPTED_DEDICATED = (
    _KEYS.index(key) for key in ("block_events", "throttle_events", "ip_days", "accepted_dedicated")
)


# Rows of the period block that close_arrays writes besides split_period's (N_SPLIT first).
DEMAND_PER_HOUR = N_SPLIT
QUEUED = N_SPLIT + 1
N_CLOSE = N_SPLIT + 2


def _close_arrays(
    hours_per_step: int,
    hour_of_day: int,
    hour: np.ndarray,
    n_ips: np.ndarray,
    reputation: np.ndarray,
    domain_reputation: np.ndarray,
    base_inbox_rate: np.ndarray,
    placement_sensitivity: np.ndarray,
    ip_reputation_weight: np.ndarray,
    shared_reputation: np.ndarray,
    shared_share: np.ndarray,
    quality_today: np.ndarray,
    incident_until_day: np.ndarray,
    incident_severity: np.ndarray,
    bounce_rate: np.ndarray,
    complaint_rate_today: np.ndarray,
    complaint_noise_today: np.ndarray,
    complaint_lag: np.ndarray,
    complaint_feed: np.ndarray,
    complaint_history: np.ndarray,
    day_sent: np.ndarray,
    day_shared: np.ndarray,
    queue_total: np.ndarray,
    demand: np.ndarray,
    sent: np.ndarray,
    accepted: np.ndarray,
    rejected: np.ndarray,
    shared: np.ndarray,
    expired: np.ndarray,
    accepted_ip: np.ndarray,
    blocks: np.ndarray,
    throttles: np.ndarray,
    out: np.ndarray,
    accounting: np.ndarray,
) -> None:
    """Run :func:`close_period` on arrays: ``out`` (N_CLOSE, B, P) gets the outcomes.

    The clock (``hour`` (B,), ``hour_of_day``) is at the period's end. ``accounting`` is
    (len(ACCOUNTING_KEYS + EXTRA_ACCOUNTING_KEYS), B) in that order, updated.
    """
    n_rows, n_slots, n_providers = reputation.shape
    ip_inbox = np.empty((n_rows, n_slots, n_providers))
    shared_inbox = np.empty((n_rows, n_providers))
    complaint_noise = np.empty((n_rows, n_providers))
    start_hour = (hour_of_day - hours_per_step) % HOURS_PER_DAY
    for b in range(n_rows):
        period_day = (hour[b] - 1) // HOURS_PER_DAY
        incident = incident_severity[b] if incident_until_day[b] > period_day else 0.0
        for p in range(n_providers):
            dom, weight = domain_reputation[b, p], ip_reputation_weight[b, p]
            base, sens = base_inbox_rate[b, p], placement_sensitivity[b, p]
            for k in range(n_slots):
                ip_inbox[b, k, p] = inbox_rate_one(reputation[b, k, p], dom, base, sens, weight)
            # The shared pool's standing this period (shared_pool.standing).
            moved = moved_one(shared_reputation[b, p], shared_share[b, p], quality_today[b, p])
            shared_inbox[b, p] = inbox_rate_one(moved - incident, dom, base, sens, weight)
            # A feed reports counts: Poisson-like around the expected number (normal
            # approximation, the period's draw made at midnight; never negative).
            complaint_noise[b, p] = complaint_noise_today[b, start_hour, p]
    a = accounting
    split_period(
        n_ips, bounce_rate, complaint_rate_today, complaint_noise, ip_inbox, shared_inbox,
        accepted_ip, demand, sent, accepted, rejected, shared, expired, complaint_lag,
        complaint_feed, complaint_history, day_sent, day_shared, out[:N_SPLIT],
        a[_DEMAND], a[_INBOX], a[_SPAM], a[_BOUNCED], a[_REJECTED], a[_EXPIRED],
        a[_SENT_DEDICATED], a[_SENT_SHARED], a[_DEFERRALS], a[_ACCEPTED_DEDICATED],
    )  # fmt: skip
    for b in range(n_rows):
        queued = queue_total[b, 0]
        for p in range(n_providers):
            if p > 0:
                queued += queue_total[b, p]
            out[DEMAND_PER_HOUR, b, p] = demand[b, p] / hours_per_step
            out[QUEUED, b, p] = queue_total[b, p]
        a[_QUEUED, b] = queued
        a[_BLOCK_EVENTS, b] += blocks[b]
        a[_THROTTLE_EVENTS, b] += throttles[b]
        a[_IP_DAYS, b] += n_ips[b] * hours_per_step / HOURS_PER_DAY


close_arrays: Callable[..., None] = numba.njit(cache=True)(_close_arrays)
"""The compiled :func:`_close_arrays`."""


def close_period(
    state: SimState,
    period: Period,
    *,
    hours_per_step: int,
    complaint_lag: np.ndarray,
    complaint_feed: np.ndarray,
) -> None:
    """Split the period's traffic into outcomes; write telemetry, accounting and outcomes.

    Args:
        state: the simulator state, updated in place (its clock is at the period's end).
        period: the period's accumulators.
        hours_per_step: hours in a period.
        complaint_lag: (P,) periods before complaints reach the sender.
        complaint_feed: (P,) 1 where the provider runs a feedback loop, else 0.
    """
    s, d = state.sender, state.draw
    out = np.empty((N_CLOSE, *period.demand.shape))
    keys = ACCOUNTING_KEYS + EXTRA_ACCOUNTING_KEYS
    accounting = np.stack([state.accounting[key] for key in keys])
    close_arrays(
        hours_per_step, state.hour_of_day, state.hour, state.n_ips, state.reputation,
        state.domain_reputation, d.base_inbox_rate, d.placement_sensitivity,
        d.ip_reputation_weight, state.shared_reputation, state.shared_share,
        state.quality_today, state.incident_until_day, state.incident_severity,
        s.bounce_rate, state.complaint_rate_today, state.complaint_noise_today,
        complaint_lag, complaint_feed, state.complaint_history, state.day_sent,
        state.day_shared, state.queue_total, period.demand, period.sent, period.accepted,
        period.rejected, period.shared, period.expired, period.accepted_ip, period.blocks,
        period.throttles, out, accounting,
    )  # fmt: skip
    for i, key in enumerate(keys):
        state.accounting[key][:] = accounting[i]
    write_outcomes(state, period, out)


def period_rows(
    period: Period, out: np.ndarray
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Return the state's outcome dict and its telemetry fields as rows of the period's arrays.

    ``out`` (N_CLOSE, B, P) is what :func:`close_arrays` wrote; the second dict maps each
    :class:`~ipwarmup.observation.Telemetry` field the period sets to the row it reads.
    """
    outcome = {
        "inbox_dedicated": out[INBOX_DEDICATED],
        "inbox_shared": out[INBOX_SHARED],
        "delivered_dedicated": out[DELIVERED_DEDICATED],
        "delivered_shared": out[DELIVERED_SHARED],
    }
    telemetry = {
        "demand_per_hour": out[DEMAND_PER_HOUR],
        "demand": period.demand,
        "sent_dedicated": period.sent,
        "accepted": period.accepted,
        "deferred": out[DEFERRED],
        "rejected": period.rejected,
        "bounced": out[BOUNCED],
        "transmitted": out[TRANSMITTED],
        "complaints": out[REPORTED],
        "delivered": out[DELIVERED],
        "queued": out[QUEUED],
    }
    return outcome, telemetry


class PeriodBuffers:
    """A simulator's period arrays, allocated once and written by every step in place.

    The period's accumulators (a :class:`~ipwarmup.envs.mta.Period`) and ``out``
    (N_CLOSE, B, P), the outcomes and telemetry of :func:`close_arrays`, with the state's
    outcome dict and telemetry fields pointing at their rows (:meth:`bind`). A step used
    to allocate them and point the state at the new arrays, ~3 us of a ~30 us single-env
    step at 1-hour decisions; so the telemetry's and outcomes' arrays are the simulator's
    own, rewritten by the next step: copy what you keep.
    """

    def __init__(self, b: int, k: int, p: int) -> None:
        self.period = Period(b, k, p)
        self.out = np.empty((N_CLOSE, b, p))
        self.outcome, self.telemetry = period_rows(self.period, self.out)
        self._outcome_items = tuple(self.outcome.items())  # to restore the dict
        self._outcome_rows = tuple(self.outcome.values())
        self._fields = tuple(self.telemetry)
        self._rows = tuple(self.telemetry.values())

    def fits(self, state: SimState) -> bool:
        """Whether these arrays have the shapes of ``state``'s batch."""
        return self.period.accepted_ip.shape == state.caps.shape

    def bind(self, state: SimState) -> None:
        """Point ``state``'s outcomes and telemetry at these arrays, where they do not yet.

        Every field and outcome is checked (a reset, a copy or a caller may have replaced
        any, or a key of the outcome dict), each by identity, which costs less than
        setting them again.
        """
        t = vars(state.telemetry)
        outcome = state.outcome
        bound = (
            outcome is self.outcome
            and all(map(operator.is_, outcome.values(), self._outcome_rows))
            and all(map(operator.is_, map(t.__getitem__, self._fields), self._rows))
        )
        if not bound:
            self.outcome.clear()  # a caller may have replaced or added keys
            self.outcome.update(self._outcome_items)
            state.outcome = self.outcome
            t.update(self.telemetry)


def write_outcomes(state: SimState, period: Period, out: np.ndarray) -> None:
    """Point the state's outcomes and telemetry at the period's arrays (``out`` from close)."""
    state.outcome, telemetry = period_rows(period, out)
    vars(state.telemetry).update(telemetry)


def ip_days(state: SimState, hours_per_step: int) -> np.ndarray:
    """Return the dedicated IP-days one period holds, (B,)."""
    days: np.ndarray = state.n_ips * hours_per_step / HOURS_PER_DAY
    return days


def _refresh_arrays(
    caps: np.ndarray,
    n_ips: np.ndarray,
    ip_age_days: np.ndarray,
    hour: np.ndarray,
    start_weekday: np.ndarray,
    cap_per_hour: np.ndarray,
    ips: np.ndarray,
    mean_ip_age_days: np.ndarray,
    day: np.ndarray,
    weekday: np.ndarray,
    hour_of_day: np.ndarray,
) -> None:
    """Write the pool and clock features of every row (the last six arguments)."""
    n_rows, n_slots, n_providers = caps.shape
    for b in range(n_rows):
        n = n_ips[b]
        for p in range(n_providers):
            total = caps[b, 0, p]
            for k in range(1, n_slots):
                total += caps[b, k, p]
            cap_per_hour[b, p] = total
        ages = ip_age_days[b, 0] if n > 0 else 0.0
        for k in range(1, n):
            ages += ip_age_days[b, k]
        ips[b] = n
        mean_ip_age_days[b] = ages / n if n > 0 else 0.0
        day[b] = hour[b] / HOURS_PER_DAY
        weekday[b] = (start_weekday[b] + hour[b] // HOURS_PER_DAY) % 7
        hour_of_day[b] = hour[b] % HOURS_PER_DAY


refresh_arrays: Callable[..., None] = numba.njit(cache=True)(_refresh_arrays)
"""The compiled :func:`_refresh_arrays`."""


def refresh_pool_telemetry(state: SimState, rows: np.ndarray | None = None) -> None:
    """Write the pool and clock features the next decision sees, for rows ``rows`` (all)."""
    t = state.telemetry
    if rows is None:  # every row, in place
        refresh_arrays(
            state.caps, state.n_ips, state.ip_age_days, state.hour, state.sender.start_weekday,
            t.cap_per_hour, t.n_ips, t.mean_ip_age_days, t.day, t.weekday, t.hour,
        )  # fmt: skip
        return
    fields = (t.cap_per_hour, t.n_ips, t.mean_ip_age_days, t.day, t.weekday, t.hour)
    parts = [np.empty_like(field[rows]) for field in fields]
    refresh_arrays(
        state.caps[rows], state.n_ips[rows], state.ip_age_days[rows], state.hour[rows],
        state.sender.start_weekday[rows], *parts,
    )  # fmt: skip
    for field, part in zip(fields, parts, strict=True):
        field[rows] = part
