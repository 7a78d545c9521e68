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
module imports numpy and pydantic (a production control plane loads it), never torch.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pydantic import ValidationError

from ipwarmup.errors import TelemetryError
from ipwarmup.observation import LAST_PERIOD, Layout, Telemetry, encode, mta_features
from ipwarmup.serving.record import (
    COUNT_FIELDS,
    FIELD_DOCS,
    MAX_COUNT,
    MAX_DAYS,
    MTA_KEYS,
    PERIOD_HOURS,
    POOL_KEYS,
    RELATIVE_TOLERANCE,
    SCHEMA_VERSION,
    TIME_KEYS,
    TOP_KEYS,
    TOP_KEYS_V2,
    adapter_for,
    record_adapter,
)
from ipwarmup.serving.wording import MAX_PROBLEMS, Shape, crowded, needs_v2, problems

__all__ = [
    "COUNT_FIELDS",
    "FIELD_DOCS",
    "MAX_COUNT",
    "MAX_DAYS",
    "MAX_PROBLEMS",
    "MTA_KEYS",
    "PERIOD_HOURS",
    "POOL_KEYS",
    "RELATIVE_TOLERANCE",
    "SCHEMA_VERSION",
    "TIME_KEYS",
    "TOP_KEYS",
    "TOP_KEYS_V2",
    "encode_arrays",
    "encode_record",
    "history_arrays",
    "json_schema",
    "mta_rows",
    "record_arrays",
    "record_from_telemetry",
    "telemetry_from_arrays",
    "to_telemetry",
    "validate",
]


def validate(
    record: object, providers: Sequence[str], *, max_ips: int, layout: Layout = LAST_PERIOD
) -> dict[str, Any]:
    """Check a telemetry record completely and return it normalised.

    The checks are the pydantic types of :mod:`ipwarmup.serving.record`; nothing else
    validates a record.

    Args:
        record: the decoded JSON record (never modified).
        providers: the provider names the policy was trained with; each must be present and
            no other may appear.
        max_ips: the largest dedicated pool the policy knows.
        layout: what the policy's observation reads beyond the last period: a layout with
            history or MTA inputs needs a version-2 record, one without takes either.

    Returns:
        A new record with the same layout: ``schema_version``, ``period_hours``,
        ``time.weekday``, ``time.hour`` and ``pool.dedicated_ips`` as ints, every other
        number as a float, providers in the order of ``providers``.

    Raises:
        TelemetryError: listing every problem (at most 50), one line each, such as
            ``telemetry.providers.gmail.deferred: expected a count >= 0, got -3``. Each
            object's missing keys come first, then its unknown keys, then the problems of its
            values in schema order; a provider's consistency is checked only when all its
            counts are valid. Nothing else is raised, whatever the record holds.
    """
    names = tuple(providers)
    old = needs_v2(record, layout)
    if old is not None:
        raise TelemetryError(old)
    adapter = adapter_for(record, names, max_ips, layout)
    version = 1 if adapter is record_adapter(names, max_ips, 1, 0) else 2
    try:
        clean: dict[str, Any] = adapter.validate_python(record)
    except ValidationError as error:
        shape = Shape(names, max_ips, version, layout)
        lines = crowded(record, shape) or problems(error, shape)
        raise TelemetryError(lines) from None
    except (RecursionError, ValueError, TypeError, OverflowError) as error:
        # Beyond pydantic's own checks (an object nested past its recursion limit...).
        raise TelemetryError(f"telemetry: cannot be validated ({type(error).__name__})") from None
    return clean


def record_arrays(
    records: Sequence[Mapping[str, Any]], providers: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Return validated records as arrays: counts and scalars.

    Counts are (B, P, 10) in ``COUNT_FIELDS`` order; scalars (B, 6) are ``period_hours,
    dedicated_ips, mean_ip_age_days, day, weekday, hour``.
    """
    # Flat lists into one array each: numpy reads a flat list of floats ~5x faster than a
    # nested one, and itemgetter reads a provider's ten counts in one C call.
    counts_of = operator.itemgetter(*COUNT_FIELDS)
    flat: list[float] = []
    for row in records:
        entries = row["providers"]
        for name in providers:
            flat += counts_of(entries[name])
    counts = np.array(flat, dtype=np.float64).reshape(
        len(records), len(providers), len(COUNT_FIELDS)
    )
    firsts: list[float] = []
    for row in records:
        pool, when = row["pool"], row["time"]
        firsts += (row["period_hours"], pool["dedicated_ips"], pool["mean_ip_age_days"],
                   when["day"], when["weekday"], when["hour"])  # fmt: skip
    scalars = np.array(firsts, dtype=np.float64).reshape(len(records), 6)
    return counts, scalars


def telemetry_from_arrays(counts: np.ndarray, scalars: np.ndarray) -> Telemetry:
    """Fill the encoder's batched telemetry from :func:`record_arrays`' arrays.

    The derived quantities are computed as the simulator computes them: ``transmitted =
    accepted + sent_shared``, ``delivered = transmitted - bounced`` and ``demand_per_hour =
    demand / period_hours``.
    """
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


def to_telemetry(
    records: Mapping[str, Any] | Sequence[Mapping[str, Any]], providers: Sequence[str]
) -> Telemetry:
    """Fill the encoder's batched telemetry from one validated record or a list of them.

    Args:
        records: records that :func:`validate` accepted (raw or normalised); one record is
            a batch of one.
        providers: the provider names in the policy's order.
    """
    rows = [records] if isinstance(records, Mapping) else list(records)
    return telemetry_from_arrays(*record_arrays(rows, providers))


def history_arrays(
    records: Sequence[Mapping[str, Any]], providers: Sequence[str], history_periods: int
) -> np.ndarray:
    """Return validated records' first ``history_periods`` past periods' counts.

    (B, K, P, 10) in ``COUNT_FIELDS`` order, most recent first; zeros for periods a record
    leaves out (before its warmup started), and for version-1 records.
    """
    # One flat list into one array, as record_arrays does (~5x faster than nested ones).
    counts_of = operator.itemgetter(*COUNT_FIELDS)
    k, p, n = history_periods, len(providers), len(COUNT_FIELDS)
    padding = [0.0] * (p * n)
    flat: list[float] = []
    for row in records:
        past = row.get("history", ())[:k]
        for entries in past:
            for name in providers:
                flat += counts_of(entries[name])
        flat += padding * (k - len(past))
    return np.array(flat, dtype=np.float64).reshape(len(records), k, p, n)


def mta_rows(records: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Return validated version-2 records' ``mta.*`` features, (B, 3) float32."""
    sections = [row["mta"] for row in records]
    return mta_features(
        queue=np.array([m["overflow"] == "queue" for m in sections]),
        max_age_hours=np.array([m["max_age_hours"] for m in sections], dtype=np.float64),
        retry_interval_hours=np.array([m["retry_interval_hours"] for m in sections]),
    )


def encode_arrays(
    records: Sequence[Mapping[str, Any]], providers: Sequence[str], counts: np.ndarray,
    scalars: np.ndarray, *, horizon_days: int, max_ips: int, layout: Layout,
) -> np.ndarray:  # fmt: skip
    """Encode validated records (with :func:`record_arrays`' arrays) in ``layout``.

    Each past period is encoded by the same encoder as the last one, and its provider
    features (the first ``9P``) are the history's, as the simulator keeps them.
    """
    mta = mta_rows(records) if layout.mta_inputs else None
    history = None
    k, p = layout.history_periods, len(providers)
    if k:
        past = history_arrays(records, providers, k).reshape(len(records) * k, p, -1)
        # Only period_hours of the scalars matters to the provider features.
        telemetry = telemetry_from_arrays(past, np.repeat(scalars, k, axis=0))
        features = encode(telemetry, horizon_days=horizon_days, max_ips=max_ips)
        history = features[:, : 9 * p].reshape(len(records), k, 9 * p)
    return encode(
        telemetry_from_arrays(counts, scalars), horizon_days=horizon_days, max_ips=max_ips,
        mta=mta, history=history,
    )  # fmt: skip


def encode_record(
    record: object, providers: Sequence[str], *, horizon_days: int, max_ips: int,
    layout: Layout = LAST_PERIOD,
) -> np.ndarray:  # fmt: skip
    """Validate a record and encode it into the policy's float32 observation, (obs_dim,).

    Raises:
        TelemetryError: as :func:`validate`.
    """
    clean = validate(record, providers, max_ips=max_ips, layout=layout)
    counts, scalars = record_arrays([clean], providers)
    observation: np.ndarray = encode_arrays(
        [clean], providers, counts, scalars, horizon_days=horizon_days, max_ips=max_ips,
        layout=layout,
    )[0]  # fmt: skip
    return observation


def record_from_telemetry(
    telemetry: Telemetry, row: int, providers: Sequence[str], *, period_hours: int,
    mta: Mapping[str, Any] | None = None, history: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:  # fmt: skip
    """Build a record from one row of a simulator's batched telemetry.

    Version 1 without ``mta``; version 2 with it, carrying ``mta`` and ``history`` (the
    past records' ``providers`` sections, most recent first) as given.

    ``sent_shared = transmitted - accepted``. Before the first period the simulator shows
    only the expected hourly demand (``demand`` is 0): the record then carries that
    expectation times ``period_hours`` as ``demand``.

    Args:
        telemetry: the simulator's telemetry (per-provider arrays (B, P), others (B,)).
        row: the batch row to export.
        providers: the provider names, in the telemetry's column order.
        period_hours: the simulator's ``decision_interval_hours``.
        mta: the MTA's set-up (``overflow``, ``max_age_hours``, ``retry_interval_hours``).
        history: the past periods' provider sections, most recent first.
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
    record: dict[str, Any] = {
        "schema_version": 1 if mta is None else SCHEMA_VERSION,
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
    if mta is not None:
        record["mta"] = dict(mta)
        record["history"] = [dict(entry) for entry in history]
    return record


def json_schema(
    providers: Sequence[str], max_ips: int, *, layout: Layout = LAST_PERIOD,
    version: int | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Return the JSON Schema (draft 2020-12) of the record for these providers.

    Generated from the same pydantic types that :func:`validate` runs; the consistency
    rules between counts, and how long ``history`` must be, are stated in descriptions
    only (JSON Schema cannot say them). ``version``: the record's version; by default the
    one the bundle's ``layout`` needs (2 with history or MTA inputs, else 1, while such a
    bundle takes version 2 too).
    """
    version = version or (2 if layout.needs_v2 else 1)
    adapter = record_adapter(tuple(providers), max_ips, version, layout.history_periods)
    schema = adapter.json_schema(ref_template="#/$defs/{model}")
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:  # the sections in place; the provider shared by reference
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref != "#/$defs/provider":
                return inline(defs[ref.removeprefix("#/$defs/")])
            # pydantic's generated titles ("Schema Version") only repeat the key.
            return {key: inline(value) for key, value in node.items() if key != "title"}
        if isinstance(node, list):
            return [inline(value) for value in node]
        return node

    schema = inline(schema)
    schema["$defs"] = {"provider": inline(defs["provider"])}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"urn:ipwarmup:telemetry:v{version}",
        **schema,
        "title": f"ipwarmup telemetry record, schema version {version}",
        "description": "What an ESP saw in the last period, sent before each decision.",
    }
