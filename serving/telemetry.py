"""The production telemetry record: its schema, its validation and its encoding.

Each period a production ESP sends one JSON record of what it saw; schema version 1::

    {
      "schema_version": 1,
      "period_hours": 24,
      "time": {"day": 3.0, "weekday": 2, "hour": 0},
      "pool": {"dedicated_ips": 1, "mean_ip_age_days": 3.0},
      "providers": {
        "gmail": {"demand": 50000, "dedicated_cap_per_hour": 100.0, "sent_dedicated": 1000,
                  "accepted": 990, "deferred": 10, "rejected": 0, "bounced": 5,
                  "complaints": 0, "queued": 0, "sent_shared": 49000},
        ...
      }
    }

Per-provider counts are messages in the last period (``period_hours`` long): ``demand`` is
the period's new mail, ``dedicated_cap_per_hour`` the pool's current hourly cap (summed over
the IPs), ``sent_dedicated`` the attempts on dedicated IPs, of which ``accepted`` (later
bounces included), ``deferred`` (4xx) and ``rejected`` (5xx block); ``bounced`` counts hard
bounces over both pools, ``complaints`` the feedback-loop reports received in the period,
``queued`` the retry queue now and ``sent_shared`` what went through the shared pool.
``time.day`` is days since the warmup started, ``weekday`` 0 (Monday) to 6 and ``hour`` the
hour of day of the next decision.

:func:`validate` reports every problem at once in one :class:`~ipwarmup.errors.TelemetryError`;
:func:`to_telemetry` fills the encoder's :class:`~ipwarmup.observation.Telemetry` exactly as
the simulator does, so :func:`encode_record` and the simulator share one encoder. This
module imports only numpy and the standard library (a production control plane loads it).
"""

from __future__ import annotations

import difflib
import math
import numbers
import reprlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeGuard

import numpy as np

from ipwarmup.errors import TelemetryError
from ipwarmup.observation import Telemetry, encode

SCHEMA_VERSION = 1
"""The version of the record this module reads and writes."""

FIELD_DOCS = {
    "demand": "New mail for the provider in the period.",
    "dedicated_cap_per_hour": "The dedicated pool's current hourly cap here (sum over IPs).",
    "sent_dedicated": "Attempts on dedicated IPs in the period.",
    "accepted": "Accepted on dedicated IPs (later bounces included).",
    "deferred": "4xx answers on dedicated IPs.",
    "rejected": "5xx block rejections on dedicated IPs.",
    "bounced": "Hard bounces over both pools.",
    "complaints": "Complaints received in the period (feedback loop).",
    "queued": "Messages waiting in the retry queue now.",
    "sent_shared": "Messages sent through the shared pool.",
}
"""What each per-provider field means, in schema order."""

COUNT_FIELDS = tuple(FIELD_DOCS)
"""The fields of every provider's entry, in order; each is a count >= 0."""

MAX_COUNT = 1e12
"""Largest plausible count; larger values are rejected."""

MAX_DAYS = 36_500.0
"""Largest plausible ``time.day`` and ``pool.mean_ip_age_days`` (a hundred years)."""

PERIOD_HOURS = (1, 2, 3, 4, 6, 8, 12, 24)
"""The allowed ``period_hours``: the divisors of a day."""

TOP_KEYS = ("schema_version", "period_hours", "time", "pool", "providers")
TIME_KEYS = ("day", "weekday", "hour")
POOL_KEYS = ("dedicated_ips", "mean_ip_age_days")

RELATIVE_TOLERANCE = 1e-6
"""Slack of the consistency checks, relative to the larger side (float rounding)."""

_short = reprlib.Repr()
_short.maxstring = _short.maxother = _short.maxlong = 40
_short.maxlist = _short.maxdict = 4


def _show(value: object) -> str:
    """Render a bad value for a message: numbers as written, others with their type."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return _short.repr(int(value))
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return repr(float(value))
    return f"{_short.repr(value)} ({type(value).__name__})"


def _fmt(number: float) -> str:
    """Render a computed total: integral values without a trailing ``.0``."""
    return str(int(number)) if number.is_integer() and abs(number) < 1e15 else repr(number)


def _is_number(value: object) -> TypeGuard[numbers.Real]:
    """Tell JSON numbers from the rest; bools are not numbers here, though Python's are."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


class _Checker:
    """Collect every problem of one record; each check returns the clean value or None."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def fail(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}")

    def fields(
        self, value: object, path: str, keys: Sequence[str], unknown: str = "unknown key"
    ) -> dict[str, Any] | None:
        """Check an object's keys; return {key: value} of the expected keys present."""
        if not isinstance(value, Mapping):
            self.fail(path, f"expected a JSON object, got {type(value).__name__}")
            return None
        present = {key: value[key] for key in keys if key in value}
        for key in keys:
            if key not in value:
                self.fail(f"{path}.{key}", "missing")
        for key in value:
            if key in keys:
                continue
            close = difflib.get_close_matches(str(key), list(keys), n=1)
            if unknown == "unknown key" and close:
                self.fail(f"{path}.{key}", f"unknown key; did you mean {close[0]!r}?")
            else:
                self.fail(f"{path}.{key}", f"{unknown}; expected one of {list(keys)}")
        return present

    def number(self, value: object, path: str, *, maximum: float, what: str) -> float | None:
        """Check a finite number in [0, maximum]; ``what`` names it (``a count``)."""
        # Fast path for what JSON decodes to (plain int and float; NaN fails both
        # comparisons): a production record is all good values, checked ~60 times.
        kind = type(value)
        if (kind is float or kind is int) and 0 <= value <= maximum:  # type: ignore[operator]
            return float(value)  # type: ignore[arg-type]
        if not _is_number(value):
            self.fail(path, f"expected a number, got {_show(value)}")
            return None
        if isinstance(value, numbers.Integral):
            exact: float = int(value)  # compared before float(): a huge int overflows float()
        elif math.isfinite(float(value)):
            exact = float(value)
        else:
            self.fail(path, f"expected a finite number, got {_show(value)}")
            return None
        if exact < 0:
            self.fail(path, f"expected {what} >= 0, got {_show(value)}")
        elif exact > maximum:
            self.fail(path, f"expected {what} <= {maximum:g}, got {_show(value)}")
        else:
            return float(exact)
        return None

    def integer(
        self, value: object, path: str, allowed: Sequence[int], expected: str
    ) -> int | None:
        """Check an integer (integral floats count) among ``allowed``."""
        if _is_number(value):
            if isinstance(value, numbers.Integral):
                whole: int | None = int(value)
            else:
                real = float(value)
                whole = int(real) if math.isfinite(real) and real.is_integer() else None
            if whole is not None and whole in allowed:
                return whole
        self.fail(path, f"expected {expected}, got {_show(value)}")
        return None

    def at_most(self, path: str, left: tuple[str, float], right: tuple[str, float]) -> None:
        """Report ``left`` exceeding ``right`` beyond the relative tolerance."""
        (left_name, left_value), (right_name, right_value) = left, right
        slack = RELATIVE_TOLERANCE * max(left_value, right_value, 1.0)
        if left_value > right_value + slack:
            self.fail(
                path,
                f"{left_name} ({_fmt(left_value)}) exceeds {right_name} ({_fmt(right_value)})",
            )


def _check_provider(check: _Checker, entry: object, path: str) -> dict[str, float] | None:
    present = check.fields(entry, path, COUNT_FIELDS)
    if present is None:
        return None
    counts = {
        name: check.number(value, f"{path}.{name}", maximum=MAX_COUNT, what="a count")
        for name, value in present.items()
    }
    clean = {name: value for name, value in counts.items() if value is not None}
    if len(clean) < len(COUNT_FIELDS):
        return None  # consistency is checked only over valid counts
    answered = clean["accepted"] + clean["deferred"] + clean["rejected"]
    check.at_most(
        path,
        ("accepted + deferred + rejected", answered),
        ("sent_dedicated", clean["sent_dedicated"]),
    )
    transmitted = clean["accepted"] + clean["sent_shared"]
    check.at_most(path, ("bounced", clean["bounced"]), ("accepted + sent_shared", transmitted))
    return {name: clean[name] for name in COUNT_FIELDS}


def validate(record: object, providers: Sequence[str], *, max_ips: int) -> dict[str, Any]:
    """Check a telemetry record completely and return it normalised.

    Args:
        record: the decoded JSON record (never modified).
        providers: the provider names the policy was trained with; each must be present and
            no other may appear.
        max_ips: the largest dedicated pool the policy knows.

    Returns:
        A new record with the same layout: ``schema_version``, ``period_hours``,
        ``time.weekday``, ``time.hour`` and ``pool.dedicated_ips`` as ints, every other
        number as a float, providers in the order of ``providers``.

    Raises:
        TelemetryError: listing every problem, one line each, such as
            ``telemetry.providers.gmail.deferred: expected a count >= 0, got -3``. Each
            object's missing keys come first, then its unknown keys, then the problems of its
            values in schema order; a provider's consistency is checked only when all its
            counts are valid.
    """
    check = _Checker()
    top = check.fields(record, "telemetry", TOP_KEYS)
    if top is None:
        raise TelemetryError(check.problems)
    out: dict[str, Any] = {}
    if "schema_version" in top:
        version = top["schema_version"]
        if _is_number(version) and version == SCHEMA_VERSION:
            out["schema_version"] = SCHEMA_VERSION
        else:
            check.fail(
                "telemetry.schema_version", f"expected {SCHEMA_VERSION}, got {_show(version)}"
            )
    if "period_hours" in top:
        expected = f"one of {list(PERIOD_HOURS)}"
        out["period_hours"] = check.integer(
            top["period_hours"], "telemetry.period_hours", PERIOD_HOURS, expected
        )
    rules: dict[str, Callable[[object, str], object]] = {
        "time.day": lambda value, path: check.number(
            value, path, maximum=MAX_DAYS, what="a number"
        ),
        "time.weekday": lambda value, path: check.integer(
            value, path, range(7), "an integer from 0 to 6"
        ),
        "time.hour": lambda value, path: check.integer(
            value, path, range(24), "an integer from 0 to 23"
        ),
        "pool.dedicated_ips": lambda value, path: check.integer(
            value, path, range(max_ips + 1), f"an integer from 0 to {max_ips}"
        ),
        "pool.mean_ip_age_days": lambda value, path: check.number(
            value, path, maximum=MAX_DAYS, what="a number"
        ),
    }
    for section, keys in (("time", TIME_KEYS), ("pool", POOL_KEYS)):
        if section not in top:
            continue
        present = check.fields(top[section], f"telemetry.{section}", keys)
        if present is not None:
            out[section] = {
                key: rules[f"{section}.{key}"](value, f"telemetry.{section}.{key}")
                for key, value in present.items()
            }
    if "providers" in top:
        entries = check.fields(
            top["providers"], "telemetry.providers", tuple(providers), unknown="unknown provider"
        )
        if entries is not None:
            out["providers"] = {
                name: _check_provider(check, entry, f"telemetry.providers.{name}")
                for name, entry in entries.items()
            }
    if check.problems:
        raise TelemetryError(check.problems)
    return out


def to_telemetry(
    records: Mapping[str, Any] | Sequence[Mapping[str, Any]], providers: Sequence[str]
) -> Telemetry:
    """Fill the encoder's batched telemetry from one validated record or a list of them.

    The derived quantities are computed as the simulator computes them: ``transmitted =
    accepted + sent_shared``, ``delivered = transmitted - bounced`` and ``demand_per_hour =
    demand / period_hours``.

    Args:
        records: records that :func:`validate` accepted (raw or normalised); one record is
            a batch of one.
        providers: the provider names in the policy's order.
    """
    rows = [records] if isinstance(records, Mapping) else list(records)
    # One (B, P, 10) array in one call: at a batch of one, a call's fixed cost is the cost.
    counts = np.array(
        [[[entry[p][name] for name in COUNT_FIELDS] for p in providers]
         for entry in (row["providers"] for row in rows)],
        dtype=np.float64,
    ).reshape(len(rows), len(providers), len(COUNT_FIELDS))  # fmt: skip
    scalars = np.array(
        [[row["period_hours"], row["pool"]["dedicated_ips"], row["pool"]["mean_ip_age_days"],
          row["time"]["day"], row["time"]["weekday"], row["time"]["hour"]] for row in rows],
        dtype=np.float64,
    ).reshape(len(rows), 6)  # fmt: skip
    c = {name: counts[:, :, i] for i, name in enumerate(COUNT_FIELDS)}
    transmitted = c["accepted"] + c["sent_shared"]
    return Telemetry(
        demand_per_hour=c["demand"] / scalars[:, :1],
        cap_per_hour=c["dedicated_cap_per_hour"],
        demand=c["demand"],
        sent_dedicated=c["sent_dedicated"],
        accepted=c["accepted"],
        deferred=c["deferred"],
        rejected=c["rejected"],
        bounced=c["bounced"],
        transmitted=transmitted,
        complaints=c["complaints"],
        delivered=transmitted - c["bounced"],
        queued=c["queued"],
        n_ips=scalars[:, 1],
        mean_ip_age_days=scalars[:, 2],
        day=scalars[:, 3],
        weekday=scalars[:, 4],
        hour=scalars[:, 5],
    )


def encode_record(
    record: object, providers: Sequence[str], *, horizon_days: int, max_ips: int
) -> np.ndarray:
    """Validate a record and encode it into the policy's float32 observation, (obs_dim,).

    Raises:
        TelemetryError: as :func:`validate`.
    """
    clean = validate(record, providers, max_ips=max_ips)
    telemetry = to_telemetry(clean, providers)
    observation: np.ndarray = encode(telemetry, horizon_days=horizon_days, max_ips=max_ips)[0]
    return observation


def record_from_telemetry(
    telemetry: Telemetry, row: int, providers: Sequence[str], *, period_hours: int
) -> dict[str, Any]:
    """Build a schema-v1 record from one row of a simulator's batched telemetry.

    ``sent_shared = transmitted - accepted``. Before the first period the simulator shows
    only the expected hourly demand (``demand`` is 0): the record then carries that
    expectation times ``period_hours`` as ``demand``.

    Args:
        telemetry: the simulator's telemetry (per-provider arrays (B, P), others (B,)).
        row: the batch row to export.
        providers: the provider names, in the telemetry's column order.
        period_hours: the simulator's ``decision_interval_hours``.
    """
    t = telemetry
    entries: dict[str, dict[str, float]] = {}
    for j, name in enumerate(providers):
        demand = float(t.demand[row, j])
        if demand == 0.0:
            demand = float(t.demand_per_hour[row, j]) * period_hours
        entries[name] = {
            "demand": demand,
            "dedicated_cap_per_hour": float(t.cap_per_hour[row, j]),
            "sent_dedicated": float(t.sent_dedicated[row, j]),
            "accepted": float(t.accepted[row, j]),
            "deferred": float(t.deferred[row, j]),
            "rejected": float(t.rejected[row, j]),
            "bounced": float(t.bounced[row, j]),
            "complaints": float(t.complaints[row, j]),
            "queued": float(t.queued[row, j]),
            "sent_shared": float(t.transmitted[row, j] - t.accepted[row, j]),
        }
    return {
        "schema_version": SCHEMA_VERSION,
        "period_hours": int(period_hours),
        "time": {
            "day": float(t.day[row]),
            "weekday": int(t.weekday[row]),
            "hour": int(t.hour[row]),
        },
        "pool": {
            "dedicated_ips": int(t.n_ips[row]),
            "mean_ip_age_days": float(t.mean_ip_age_days[row]),
        },
        "providers": entries,
    }


def _object(properties: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "required": list(properties),
        "additionalProperties": False,
        "properties": properties,
    }


def _range(kind: str, maximum: float, description: str) -> dict[str, Any]:
    return {"type": kind, "minimum": 0, "maximum": maximum, "description": description}


def json_schema(providers: Sequence[str], max_ips: int) -> dict[str, Any]:
    """Return the JSON Schema (draft 2020-12) of the record for these providers.

    It documents the record (for docs and the HTTP service's OpenAPI document); the
    consistency rules between counts are stated in descriptions only. :func:`validate` is
    what checks records, with every problem reported at once.
    """
    provider = _object(
        {name: _range("number", MAX_COUNT, FIELD_DOCS[name]) for name in COUNT_FIELDS},
        "Counts of the last period at one provider; accepted + deferred + rejected <= "
        "sent_dedicated and bounced <= accepted + sent_shared.",
    )
    time = _object(
        {
            "day": _range("number", MAX_DAYS, "Days since the warmup started."),
            "weekday": _range("integer", 6, "Day of week, Monday = 0."),
            "hour": _range("integer", 23, "Hour of day of the next decision."),
        },
        "When the next decision is taken.",
    )
    pool = _object(
        {
            "dedicated_ips": _range("integer", max_ips, "Dedicated IPs in the pool."),
            "mean_ip_age_days": _range("number", MAX_DAYS, "Mean age of those IPs in days."),
        },
        "The dedicated IP pool now.",
    )
    entries = _object(
        {name: {"$ref": "#/$defs/provider"} for name in providers},
        "One entry per provider the policy knows, and no other.",
    )
    record = _object(
        {
            "schema_version": {"const": SCHEMA_VERSION},
            "period_hours": {"enum": list(PERIOD_HOURS), "description": "Length of the period."},
            "time": time,
            "pool": pool,
            "providers": entries,
        },
        "What an ESP saw in the last period, sent before each decision.",
    )
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"urn:ipwarmup:telemetry:v{SCHEMA_VERSION}",
        "title": f"ipwarmup telemetry record, schema version {SCHEMA_VERSION}",
        **record,
        "$defs": {"provider": provider},
    }
