"""The simulator's whole state as one explicit value: a dataclass of batched numpy arrays.

Every array's first axis is the batch (``B`` environments); ``K`` is IP slots, ``P``
providers, ``A`` the retry queue's hourly cohorts, ``L`` the complaint feedback lag. The
step functions (:mod:`~ipwarmup.envs.pool`, :mod:`~ipwarmup.envs.mta`,
:mod:`~ipwarmup.envs.days`, :mod:`~ipwarmup.envs.outcomes`) read and update a
:class:`SimState` and nothing else; :func:`take` is the one way to copy or slice it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from ipwarmup.envs.config import HOURS_PER_DAY
from ipwarmup.envs.providers import ProviderDraw
from ipwarmup.envs.sender import SenderDraw
from ipwarmup.observation import Telemetry

ACCOUNTING_KEYS = (
    "demand",
    "delivered_inbox",
    "delivered_spam",
    "bounced",
    "rejected",
    "expired",
    "queued",
    "sent_dedicated",
    "sent_shared",
    "deferrals",
)
"""Cumulative counts reported in ``info["accounting"]``; see the env docstring."""

EXTRA_ACCOUNTING_KEYS = ("block_events", "throttle_events", "ip_days", "accepted_dedicated")
CONTINUATION_KEYS = ("demand", "delivered_inbox", "accepted_dedicated", "rejected", "expired")
"""Counts of the continuation after the horizon (``SimState.continuation``)."""
OUTCOME_KEYS = ("inbox_dedicated", "inbox_shared", "delivered_dedicated", "delivered_shared")
"""Per-provider outcomes of the last period that the ESP cannot see (for reports)."""


@dataclass
class SimState:
    """Everything that changes during an episode, for every row of a batch."""

    # Hidden per-episode draws.
    draw: ProviderDraw
    sender: SenderDraw
    shared_reputation: np.ndarray  # (B, P) the shared pool's other tenants' standing
    shared_share: np.ndarray  # (B, P) this sender's share of the pool's recent volume
    incident_until_day: np.ndarray  # (B,) a noisy-neighbour incident lasts until this day
    incident_severity: np.ndarray  # (B,) reputation the shared pool loses meanwhile
    # Clock and pool.
    hour: np.ndarray  # (B,) int64 hours since reset
    n_ips: np.ndarray  # (B,) int64 dedicated IPs in the pool
    last_pool_change_hour: np.ndarray  # (B,)
    ip_age_days: np.ndarray  # (B, K)
    # Per IP slot and provider.
    caps: np.ndarray  # (B, K, P) hourly cap set by the agent (0 in empty slots)
    allowance: np.ndarray  # (B, K, P) hidden hourly allowance (positive: it divides)
    reputation: np.ndarray  # (B, K, P) hidden
    pressure: np.ndarray  # (B, K, P) ignored-deferral pressure
    blocked: np.ndarray  # (B, K, P) bool
    blocked_until: np.ndarray  # (B, K, P) hour the block ends
    throttled: np.ndarray  # (B, K, P) bool: rate limited (4xx), a share of the allowance left
    throttled_until: np.ndarray  # (B, K, P) hour the last throttle lifts (-inf: none yet)
    recent_volume: np.ndarray  # (B, K, P) ~7-day average of daily volume
    previous_day_sent: np.ndarray  # (B, K, P) accepted the day before
    peak_history: np.ndarray  # (B, K, P, W) each recent day's busiest hour, a ring by day
    # Per provider.
    domain_reputation: np.ndarray  # (B, P) hidden
    offences: np.ndarray  # (B, P) blocks of this sender at each provider, over all its IPs
    queue_total: np.ndarray  # (B, P) messages in the retry queue
    queue_cohorts: np.ndarray  # (B, P, A) queued messages by hour of arrival, over scale
    queue_scale: np.ndarray  # (B, P) lazy common factor of the cohorts
    complaint_history: np.ndarray  # (B, L + 1, P) complaints of the last periods
    # Today.
    demand_today: np.ndarray  # (B, 24, P) messages per hour
    accept_noise_today: np.ndarray  # (B, 24, P) factor on each hour's acceptance (mean 1)
    complaint_noise_today: np.ndarray  # (B, 24, P) standard normals: reported complaints
    complaint_rate_today: np.ndarray  # (B,)
    quality_today: np.ndarray  # (B, P) the list's daily quality score at each provider
    day_sent: np.ndarray  # (B, K, P) accepted per IP today
    day_peak: np.ndarray  # (B, K, P) busiest hour's acceptance today
    day_overshoot: np.ndarray  # (B, K, P) summed hourly overshoot of the allowance
    day_shared: np.ndarray  # (B, P) sent through the shared pool today
    # What the ESP sees of the last period, and cumulative accounting.
    telemetry: Telemetry
    accounting: dict[str, np.ndarray]  # each (B,)
    outcome: dict[str, np.ndarray]  # each (B, P), the last period's hidden outcomes
    continuation: dict[str, np.ndarray]  # each (B,), counts of the last continuation
    # The batch's clock: every row steps the same hours, and rows reset only at midnight,
    # so the hour of the day and the queue's ring slot are one number for the whole batch.
    hour_of_day: int = 0
    ring_clock: int = 0  # hours stepped since the batch was built: the queue's ring slot

    @property
    def n_envs(self) -> int:
        """Rows in the batch."""
        return int(self.hour.shape[0])

    @property
    def active(self) -> np.ndarray:
        """Whether each IP slot holds an IP, (B, K) bool."""
        slots = self.caps.shape[1]
        active: np.ndarray = np.arange(slots)[None, :] < self.n_ips[:, None]
        return active


def allocate(
    *,
    n_envs: int,
    max_ips: int,
    n_providers: int,
    queue_hours: int,
    complaint_lag: int,
    draw: ProviderDraw,
    sender: SenderDraw,
) -> SimState:
    """Return a state of zeros for ``n_envs`` rows (placeholders until each row is reset)."""
    b, k, p = n_envs, max_ips, n_providers
    peak_days = int(draw.peak_memory_days.max())  # the longest memory of any provider
    telemetry_fields = Telemetry.__dataclass_fields__
    per_env = {"n_ips", "mean_ip_age_days", "day", "weekday", "hour"}
    telemetry = Telemetry(
        **{n: np.zeros(b) if n in per_env else np.zeros((b, p)) for n in telemetry_fields}
    )
    return SimState(
        draw=draw,
        sender=sender,
        shared_reputation=np.zeros((b, p)),
        shared_share=np.zeros((b, p)),
        incident_until_day=np.zeros(b),
        incident_severity=np.zeros(b),
        hour=np.zeros(b, dtype=np.int64),
        n_ips=np.zeros(b, dtype=np.int64),
        last_pool_change_hour=np.zeros(b),
        ip_age_days=np.zeros((b, k)),
        caps=np.zeros((b, k, p)),
        allowance=np.ones((b, k, p)),
        reputation=np.zeros((b, k, p)),
        pressure=np.zeros((b, k, p)),
        blocked=np.zeros((b, k, p), dtype=bool),
        blocked_until=np.zeros((b, k, p)),
        throttled=np.zeros((b, k, p), dtype=bool),
        throttled_until=np.full((b, k, p), -np.inf),  # never throttled
        recent_volume=np.zeros((b, k, p)),
        previous_day_sent=np.zeros((b, k, p)),
        peak_history=np.zeros((b, k, p, peak_days)),
        domain_reputation=np.zeros((b, p)),
        offences=np.zeros((b, p)),
        queue_total=np.zeros((b, p)),
        queue_cohorts=np.zeros((b, p, queue_hours)),
        queue_scale=np.ones((b, p)),
        complaint_history=np.zeros((b, complaint_lag + 1, p)),
        demand_today=np.zeros((b, HOURS_PER_DAY, p)),
        accept_noise_today=np.ones((b, HOURS_PER_DAY, p)),
        complaint_noise_today=np.zeros((b, HOURS_PER_DAY, p)),
        complaint_rate_today=np.zeros(b),
        quality_today=np.zeros((b, p)),
        day_sent=np.zeros((b, k, p)),
        day_peak=np.zeros((b, k, p)),
        day_overshoot=np.zeros((b, k, p)),
        day_shared=np.zeros((b, p)),
        telemetry=telemetry,
        accounting=_rows_of_one_block(
            {key: np.zeros(b) for key in ACCOUNTING_KEYS + EXTRA_ACCOUNTING_KEYS}
        ),
        outcome={name: np.zeros((b, p)) for name in OUTCOME_KEYS},
        continuation={key: np.zeros(b) for key in CONTINUATION_KEYS},
    )


def _take_value(value: Any, rows: np.ndarray) -> Any:
    if isinstance(value, np.ndarray):
        return value[rows]
    if isinstance(value, dict):
        return {key: _take_value(item, rows) for key, item in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        names = [f.name for f in dataclasses.fields(value)]
        return type(value)(**{name: _take_value(getattr(value, name), rows) for name in names})
    return value  # an int of the batch's clock: immutable, shared as is


def take(state: SimState, rows: np.ndarray) -> SimState:
    """Return a new state holding rows ``rows`` of ``state`` (copies, in that order).

    Rows may repeat: ``take(state, np.repeat(np.arange(B), 3))`` gives three copies of each
    row, which is how a planner replays the future on copies of the present.
    """
    taken: SimState = _take_value(state, np.asarray(rows, dtype=np.int64))
    taken.accounting = _rows_of_one_block(taken.accounting)
    return taken


def _rows_of_one_block(accounting: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Return ``accounting`` with the same values as rows of one (N, B) array, in key order."""
    block = np.stack(list(accounting.values()))
    return dict(zip(accounting, block, strict=True))


def accounting_block(state: SimState) -> np.ndarray:
    """Return the accounting as one (N, B) array whose rows the dict's values are.

    The compiled period updates every count through it in one argument. A dict whose
    values were replaced is laid out afresh (values kept), so the rows always alias it.
    """
    values = list(state.accounting.values())
    block = values[0].base
    whole = block is not None and block.shape == (len(values), len(values[0]))
    for value in values:
        whole = whole and value.base is block
    if not whole:
        state.accounting = _rows_of_one_block(state.accounting)
        block = state.accounting[next(iter(state.accounting))].base
    assert isinstance(block, np.ndarray)  # the stack the rows view
    return block
