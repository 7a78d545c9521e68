"""Turn delivery events into one telemetry record per period, each valid for ``decide``.

Per period and provider (``serving/telemetry.py`` defines the fields):

- ``demand``: recipients first seen in the period (a KumoMTA Reception, else the first
  attempt in the log);
- ``sent_dedicated``: answers to attempts on a dedicated transport or source, of which
  ``accepted`` (2xx, and 5.1.x bad addresses, which the simulator counts as accepted mail
  that bounced), ``deferred`` (4xx) and ``rejected`` (other 5xx: policy, blocks);
- ``bounced``: 5.1.x over both pools; ``sent_shared``: accepted or bounced on shared ones;
- ``queued``: recipients seen and not yet delivered, bounced, rejected or expired;
- ``complaints``: 0, as MTA logs carry no feedback-loop reports;
- ``dedicated_cap_per_hour``: the cap in force (``cap_per_ip_per_hour`` times the IPs, from
  the sources file or the controller's state), else the busiest hour of dedicated attempts
  seen in the period, which is what the MTA evidently allowed.

Periods are aligned to UTC midnight (``period_hours`` divides a day); ``time`` describes the
period's end, when the next decision is taken, and ``time.day`` counts days from the warmup
start. Every recipient ends up in exactly one of delivered, bounced, rejected, expired or
still queued: :class:`Totals` keeps that ledger.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ipwarmup.mta.events import Event
from ipwarmup.mta.providers import PROVIDERS, ProviderMap
from ipwarmup.mta.sources import Sources
from ipwarmup.observation import Layout
from ipwarmup.serving.record import elapsed_periods
from ipwarmup.serving.telemetry import COUNT_FIELDS, validate

DAY = 86_400.0


@dataclass
class Totals:
    """The ledger of every recipient seen: each ends in exactly one of these states."""

    seen: int = 0
    delivered: int = 0
    bounced: int = 0
    rejected: int = 0
    expired: int = 0
    queued: int = 0

    def balanced(self) -> bool:
        """Tell whether every recipient seen is accounted for exactly once."""
        ends = self.delivered + self.bounced + self.rejected + self.expired + self.queued
        return ends == self.seen


@dataclass
class Period:
    """One period's telemetry record and what the record has no field for.

    Attributes:
        start: UNIX seconds at the period's start.
        end: UNIX seconds at its end.
        record: the telemetry record (schema version 1, or 2 with ``mta`` and ``history``).
        expired: recipients given up in the period, per provider.
        shared_deferred: 4xx answers on shared transports, per provider.
        shared_rejected: 5xx blocks on shared transports, per provider.
    """

    start: float
    end: float
    record: dict[str, Any]
    expired: dict[str, int] = field(default_factory=dict)
    shared_deferred: dict[str, int] = field(default_factory=dict)
    shared_rejected: dict[str, int] = field(default_factory=dict)


class TelemetryBuilder:
    """Fold events in time order into periods; the queue carries over between periods.

    Args:
        sources: the dedicated pool and the caps in force.
        period_hours: the period length, a divisor of 24.
        provider_map: recipient domain to provider.
        origin: UNIX seconds of the warmup's day 0; None: the first event's UTC midnight.
        volume_scale: messages each logged message stands for in the records (1 in
            production; a drill on a compressed clock sends fewer, larger messages).
        mta: the MTA's set-up (:func:`ipwarmup.mta.setup.mta_block`): records are then of
            schema version 2, with this ``mta`` block and the last ``history_periods``
            periods' provider counts as ``history``; None: version 1 (the last period
            alone), for bundles that read neither.
        history_periods: how many past periods a version-2 record carries (the bundle's
            ``observation.history_periods``).
    """

    def __init__(
        self,
        *,
        sources: Sources,
        period_hours: int,
        provider_map: ProviderMap,
        origin: float | None = None,
        volume_scale: float = 1.0,
        mta: Mapping[str, Any] | None = None,
        history_periods: int = 0,
    ) -> None:
        if period_hours <= 0 or 24 % period_hours:
            raise ValueError(f"period_hours: expected a divisor of 24, got {period_hours}")
        self.sources = sources
        self.period_seconds = period_hours * 3600.0
        self.period_hours = period_hours
        self.providers = provider_map
        self.origin = origin
        self.volume_scale = volume_scale
        if origin is None and sources.warmup_start:
            self.origin = _midnight(dt.date.fromisoformat(sources.warmup_start))
        self.pending: dict[tuple[str, str], str] = {}  # (message, recipient) -> provider
        self.totals = Totals()
        self.caps: dict[str, float] = dict(sources.cap_per_ip_per_hour)
        """Hourly cap per IP in force per provider (a controller updates it)."""
        self.active_ips = len(sources.dedicated)
        self.current: float | None = None  # start of the open period
        self.mta = dict(mta) if mta is not None else None
        self.layout = Layout(history_periods=history_periods, mta_inputs=mta is not None)
        self.recent: list[dict[str, Any]] = []
        """The closed periods' provider counts, most recent first (at most K)."""
        self._reset()

    def _reset(self) -> None:
        self.counts: dict[str, Counter[str]] = {p: Counter() for p in PROVIDERS}
        self.hourly: dict[tuple[str, int], int] = Counter()
        self.expired: Counter[str] = Counter()
        self.shared_deferred: Counter[str] = Counter()
        self.shared_rejected: Counter[str] = Counter()

    def period_start(self, time: float) -> float:
        """Return the start of the period that holds ``time``."""
        return math.floor(time / self.period_seconds) * self.period_seconds

    def feed(self, events: Iterable[Event]) -> list[Period]:
        """Add events (sorted by time here) and return every period they closed."""
        closed: list[Period] = []
        for event in sorted(events, key=lambda e: e.time):
            start = self.period_start(event.time)
            if self.current is None:
                self.current = start
                if self.origin is None:
                    self.origin = _midnight(dt.datetime.fromtimestamp(event.time, dt.UTC).date())
            while start > self.current:
                closed.append(self.close())
            self._add(event)
        return closed

    def add(self, events: Iterable[Event]) -> None:
        """Add events to the open period whatever their time (a controller's period is its run)."""
        for event in sorted(events, key=lambda e: e.time):
            if self.current is None:
                self.current = self.period_start(event.time)
            if self.origin is None:
                self.origin = _midnight(dt.datetime.fromtimestamp(event.time, dt.UTC).date())
            self._add(event)

    def close(self, end: float | None = None) -> Period:
        """Close the open period, return it and open the next.

        Args:
            end: when the period ends (UNIX seconds); None: one period after its start.
        """
        if end is not None:
            start = self.current if self.current is not None else end - self.period_seconds
            self.current = start
            if self.origin is None:
                self.origin = _midnight(_date(start))
        if self.current is None:
            raise ValueError("no period is open: no event was fed")
        start = self.current
        end = start + self.period_seconds if end is None else end
        period = Period(
            start,
            end,
            self._record(end),
            dict(self.expired),
            dict(self.shared_deferred),
            dict(self.shared_rejected),
        )
        self.current = end
        self._reset()
        return period

    def _provider(self, event: Event) -> str:
        return self.providers.provider(event.domain, event.mx_host)

    def _see(self, key: tuple[str, str], event: Event) -> str:
        provider = self.pending.get(key)
        if provider is None:
            provider = self._provider(event)
            self.pending[key] = provider
            self.counts[provider]["demand"] += 1
            self.totals.seen += 1
        return provider

    def _add(self, event: Event) -> None:
        if event.kind == "expired":
            keys = (
                [(event.message, event.recipient)]
                if event.recipient
                else [key for key in self.pending if key[0] == event.message]
            )
            for key in keys:
                provider = self.pending.pop(key, None)
                if provider is not None:
                    self.expired[provider] += 1
                    self.totals.expired += 1
            return
        key = (event.message, event.recipient)
        provider = self._see(key, event)
        if event.kind == "received":
            return
        counts = self.counts[provider]
        outcome = event.outcome
        if self.sources.dedicated_ip(event.route, event.address) is not None:
            counts["sent_dedicated"] += 1
            self.hourly[(provider, int(event.time // 3600))] += 1
            if outcome in ("accepted", "bounced"):
                counts["accepted"] += 1
            elif outcome is not None:
                counts[outcome] += 1
        elif outcome in ("accepted", "bounced"):
            counts["sent_shared"] += 1
        elif outcome == "deferred":
            self.shared_deferred[provider] += 1
        elif outcome == "rejected":
            self.shared_rejected[provider] += 1
        if outcome == "bounced":
            counts["bounced"] += 1
        if outcome in ("accepted", "bounced", "rejected"):
            del self.pending[key]
            ledger = {"accepted": "delivered", "bounced": "bounced", "rejected": "rejected"}
            setattr(self.totals, ledger[outcome], getattr(self.totals, ledger[outcome]) + 1)

    def _record(self, end: float) -> dict[str, Any]:
        queued = Counter(self.pending.values())
        self.totals.queued = len(self.pending)
        ips = self.active_ips
        entries: dict[str, dict[str, float]] = {}
        for provider in PROVIDERS:
            counts = self.counts[provider]
            if provider in self.caps:
                cap = self.caps[provider] * ips
            else:
                cap = max((n for (p, _), n in self.hourly.items() if p == provider), default=0)
            scale = self.volume_scale
            entry: dict[str, float] = {name: counts[name] * scale for name in COUNT_FIELDS}
            entry["dedicated_cap_per_hour"] = round(float(cap), 6)
            entry["queued"] = queued[provider] * scale
            entries[provider] = entry
        assert self.origin is not None
        when = dt.datetime.fromtimestamp(end, dt.UTC)
        ages = [
            (end - _midnight(self.sources.started(name, _date(self.origin)))) / DAY
            for name in list(self.sources.dedicated)[:ips]
        ]
        record: dict[str, Any] = {
            "schema_version": 1 if self.mta is None else 2,
            "period_hours": self.period_hours,
            "time": {
                "day": round(max((end - self.origin) / DAY, 0.0), 6),
                "weekday": when.weekday(),
                "hour": when.hour,
            },
            "pool": {
                "dedicated_ips": ips,
                "mean_ip_age_days": round(max(sum(ages) / len(ages), 0.0), 6) if ages else 0.0,
            },
            "providers": entries,
        }
        if self.mta is not None:
            record["mta"] = dict(self.mta)
            record["history"] = self._history(record["time"]["day"])
        # A failure here is our bug.
        validate(record, PROVIDERS, max_ips=max(ips, 1), layout=self.layout)
        self.recent = [entries, *self.recent][: self.layout.history_periods]
        return record

    def _history(self, day: float) -> list[dict[str, Any]]:
        """Return the last K periods' provider counts, most recent first.

        Periods the state does not hold (before the warmup started, or before the first
        run of a controller that started mid-warmup) are all zeros, as the simulator's
        observation has them before its first period: as many as the record must carry
        (``min(K, periods since the warmup started)``).
        """
        need = min(self.layout.history_periods, elapsed_periods(day, self.period_hours))
        quiet = {p: dict.fromkeys(COUNT_FIELDS, 0.0) for p in PROVIDERS}
        return [*self.recent, *([quiet] * (need - len(self.recent)))]

    def state(self) -> dict[str, Any]:
        """Return what carries over between runs (the controller saves it as JSON)."""
        return {
            "origin": self.origin,
            "current": self.current,
            "pending": [[m, r, p] for (m, r), p in self.pending.items()],
            "totals": vars(self.totals).copy(),
            "counts": {p: dict(c) for p, c in self.counts.items()},
            "hourly": [[p, h, n] for (p, h), n in self.hourly.items()],
            "expired": dict(self.expired),
            "shared_deferred": dict(self.shared_deferred),
            "shared_rejected": dict(self.shared_rejected),
            "recent": self.recent,
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Continue from :meth:`state`'s output."""
        self.origin = state["origin"]
        self.current = state["current"]
        self.pending = {(m, r): p for m, r, p in state["pending"]}
        self.totals = Totals(**state["totals"])
        self.counts = {p: Counter(state["counts"].get(p, {})) for p in PROVIDERS}
        self.hourly = Counter({(p, h): n for p, h, n in state["hourly"]})
        self.expired = Counter(state["expired"])
        self.shared_deferred = Counter(state["shared_deferred"])
        self.shared_rejected = Counter(state["shared_rejected"])
        # A state from before version-2 records has none: its past periods read as quiet.
        self.recent = list(state.get("recent", []))[: self.layout.history_periods]


def _midnight(day: dt.date) -> float:
    return dt.datetime.combine(day, dt.time(), dt.UTC).timestamp()


def _date(unix: float) -> dt.date:
    return dt.datetime.fromtimestamp(unix, dt.UTC).date()


def build_periods(
    events: Iterable[Event],
    *,
    sources: Sources,
    period_hours: int,
    provider_map: ProviderMap,
    mta: Mapping[str, Any] | None = None,
    history_periods: int = 0,
) -> tuple[list[Period], Totals]:
    """Return the periods from the first event's to the last's, and the recipient ledger.

    ``mta`` and ``history_periods`` as :class:`TelemetryBuilder` takes them (version-2
    records when ``mta`` is given).
    """
    builder = TelemetryBuilder(
        sources=sources, period_hours=period_hours, provider_map=provider_map, mta=mta,
        history_periods=history_periods,
    )  # fmt: skip
    periods = builder.feed(events)
    if builder.current is not None:
        periods.append(builder.close())
    return periods, builder.totals


def per_provider(periods: Iterable[Period], name: str) -> dict[str, float]:
    """Sum one per-provider field over periods (``expired`` and the shared extras too)."""
    total: dict[str, float] = defaultdict(float)
    for period in periods:
        extra = getattr(period, name, None)
        for provider in PROVIDERS:
            if isinstance(extra, dict):
                total[provider] += extra.get(provider, 0)
            else:
                total[provider] += period.record["providers"][provider][name]
    return dict(total)
