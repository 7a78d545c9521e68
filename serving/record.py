"""The telemetry record as pydantic v2 types: the one source of validation and JSON Schema.

:func:`record_adapter` builds (once per provider list and pool size) a ``TypeAdapter`` over
``TypedDict`` types: pydantic-core checks a record in Rust and returns a plain dict, and the
same types give the JSON Schema that the HTTP service's OpenAPI document embeds.
:mod:`ipwarmup.serving.wording` turns their errors into this project's messages.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError
from typing_extensions import TypedDict

from ipwarmup.observation import (
    LAST_PERIOD,
    MAX_AGE_SCALE_HOURS,
    MAX_HISTORY_PERIODS,
    MIN_RETRY_HOURS,
    RETRY_SCALE_HOURS,
    Layout,
)

SCHEMA_VERSION = 2
"""The newest version of the record, which this module writes; it reads 1 and 2.

Version 2 adds ``mta`` (the MTA's set-up) and ``history`` (the past periods' provider
counts, most recent first): a bundle whose observation reads either needs it, and any
bundle takes it. Version 1 (without them) is read where the bundle needs neither.
"""
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
"""The keys of a version-1 record."""
TOP_KEYS_V2 = (*TOP_KEYS, "mta", "history")
"""The keys of a version-2 record."""
MTA_KEYS = ("overflow", "max_age_hours", "retry_interval_hours")
OVERFLOW_MODES = ("shared", "queue")
TIME_KEYS = ("day", "weekday", "hour")
POOL_KEYS = ("dedicated_ips", "mean_ip_age_days")
RELATIVE_TOLERANCE = 1e-6
"""Slack of the consistency checks, relative to the larger side (float rounding)."""


def _fmt(number: float) -> str:
    """Render a computed total: integral values without a trailing ``.0``."""
    return str(int(number)) if number.is_integer() and abs(number) < 1e15 else repr(number)


def _consistent(entry: dict[str, float]) -> dict[str, float]:
    # The common case first, in a few float operations: this runs for every provider of
    # every record; the messages are only built for an entry that fails.
    accepted, sent = entry["accepted"], entry["sent_dedicated"]
    attempts = accepted + entry["deferred"] + entry["rejected"]
    bounced, transmitted = entry["bounced"], accepted + entry["sent_shared"]
    if attempts <= sent + RELATIVE_TOLERANCE * max(attempts, sent, 1.0) and (
        bounced <= transmitted + RELATIVE_TOLERANCE * max(bounced, transmitted, 1.0)
    ):
        return entry
    return _inconsistent(entry)


def _inconsistent(entry: dict[str, float]) -> dict[str, float]:
    found = []
    for (left_name, left), (right_name, right) in (
        (("accepted + deferred + rejected", entry["accepted"] + entry["deferred"]
          + entry["rejected"]), ("sent_dedicated", entry["sent_dedicated"])),
        (("bounced", entry["bounced"]),
         ("accepted + sent_shared", entry["accepted"] + entry["sent_shared"])),
    ):  # fmt: skip
        if left > right + RELATIVE_TOLERANCE * max(left, right, 1.0):
            found.append(f"{left_name} ({_fmt(left)}) exceeds {right_name} ({_fmt(right)})")
    if found:
        raise PydanticCustomError("consistency", "; ".join(found), {"problems": found})
    return entry


def _integer(allowed: Sequence[int]) -> Any:
    def check(value: float) -> int:
        if not value.is_integer() or int(value) not in allowed:
            raise PydanticCustomError("not_allowed", "not allowed")
        return int(value)

    return AfterValidator(check)


def _number(maximum: float, doc: str) -> Any:
    return Annotated[
        float, Field(ge=0.0, le=maximum, allow_inf_nan=False, strict=True, description=doc)
    ]


def _whole(allowed: Sequence[int], schema: dict[str, Any]) -> Any:
    return Annotated[
        float, Field(allow_inf_nan=False, strict=True), _integer(allowed), WithJsonSchema(schema)
    ]


_TYPED_DICT: Any = TypedDict  # called with field lists built at run time, which mypy cannot type


def _section(name: str, fields: dict[str, Any], **config: Any) -> Any:
    """A TypedDict that refuses unknown keys: pydantic validates it in Rust into a dict."""
    section = _TYPED_DICT(name, fields)
    section.__pydantic_config__ = ConfigDict(extra="forbid", **config)  # type: ignore[typeddict-item]
    return section


def _integer_schema(maximum: int, description: str) -> dict[str, Any]:
    return {"type": "integer", "minimum": 0, "maximum": maximum, "description": description}


def elapsed_periods(day: float, period_hours: int) -> int:
    """Return the decisions since the warmup started: ``time.day`` in periods, rounded."""
    return math.floor(day * 24.0 / period_hours + 0.5)


def _history_length(history_periods: int) -> Any:
    """Check that a version-2 record carries the past periods its bundle reads."""

    def check(record: dict[str, Any]) -> dict[str, Any]:
        given = len(record["history"])
        need = min(history_periods, elapsed_periods(record["time"]["day"],
                                                    int(record["period_hours"])))  # fmt: skip
        if given < need:
            raise PydanticCustomError(
                "history_short",
                "expected the last {need} periods, most recent first (this model reads "
                "{history_periods}; the warmup is {age} periods old), got {given}",
                {"need": need, "given": given, "history_periods": history_periods,
                 "age": elapsed_periods(record["time"]["day"], int(record["period_hours"]))},
            )  # fmt: skip
        return record

    return AfterValidator(check)


@functools.lru_cache(maxsize=32)
def record_adapter(
    providers: tuple[str, ...], max_ips: int, version: int, history_periods: int
) -> TypeAdapter[Any]:
    """Return the validator of records of ``version`` (cached).

    For these providers, pool size and number of past periods the bundle reads.
    """
    provider = _section(
        "provider",
        {name: _number(MAX_COUNT, FIELD_DOCS[name]) for name in COUNT_FIELDS},
        json_schema_extra={
            "description": "Counts of the last period at one provider; accepted + deferred + "
            "rejected <= sent_dedicated and bounced <= accepted + sent_shared."
        },
    )
    checked: Any = Annotated[provider, AfterValidator(_consistent)]
    time = _section(
        "time",
        {
            "day": _number(MAX_DAYS, "Days since the warmup started."),
            "weekday": _whole(range(7), _integer_schema(6, "Day of week, Monday = 0.")),
            "hour": _whole(range(24), _integer_schema(23, "Hour of day of the next decision.")),
        },
    )
    pool = _section(
        "pool",
        {
            "dedicated_ips": _whole(
                range(max_ips + 1), _integer_schema(max_ips, "Dedicated IPs in the pool.")
            ),
            "mean_ip_age_days": _number(MAX_DAYS, "Mean age of those IPs in days."),
        },
    )
    entries = _section("providers", dict.fromkeys(providers, checked))
    fields = {
        "schema_version": _whole((version,), {"const": version}),
        "period_hours": _whole(
            PERIOD_HOURS, {"enum": list(PERIOD_HOURS), "description": "Length of the period."}
        ),
        "time": time,
        "pool": pool,
        "providers": entries,
    }
    if version == 1:
        return TypeAdapter(_section("record", fields))
    fields["mta"] = _section(
        "mta",
        {
            "overflow": Annotated[
                Literal["shared", "queue"],
                Field(
                    description="Where the MTA sends mail above the dedicated "
                    "caps and deferred mail: 'shared' (the shared pool) or 'queue' "
                    "(retried on the dedicated IPs)."
                ),
            ],
            "max_age_hours": _whole(
                range(1, int(MAX_AGE_SCALE_HOURS) + 1),
                {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": int(MAX_AGE_SCALE_HOURS),
                    "description": "Hours a queued message lives before it expires.",
                },
            ),
            "retry_interval_hours": Annotated[
                float,
                Field(
                    ge=MIN_RETRY_HOURS,
                    le=RETRY_SCALE_HOURS,
                    allow_inf_nan=False,
                    strict=True,
                    description="Hours between two attempts of a message.",
                ),
            ],
        },
    )
    fields["history"] = Annotated[
        list[entries],  # type: ignore[valid-type]
        Field(max_length=MAX_HISTORY_PERIODS, description="The past periods' provider "
              "counts, most recent first: at least min(K, periods since the warmup started), "
              "K the bundle's observation.history_periods, of which it reads the first K."),
    ]  # fmt: skip
    return TypeAdapter(Annotated[_section("record", fields), _history_length(history_periods)])


def is_number(value: object, number: int) -> bool:
    """Whether a JSON value is the number ``number`` (``true`` is not 1)."""
    return type(value) in (int, float) and value == number


def adapter_for(
    record: object, providers: tuple[str, ...], max_ips: int, layout: Layout = LAST_PERIOD
) -> TypeAdapter[Any]:
    """Return the validator a record is judged by: its version's, or the bundle's newest.

    A version-1 record goes to the version-1 validator where the bundle reads neither
    history nor the MTA; anything else (version 2, or no valid version) to version 2's, or
    version 1's for a bundle that reads neither and a record without version 2's keys.
    """
    version = record.get("schema_version") if type(record) is dict else None
    if layout.needs_v2 or (version is not None and is_number(version, 2)):
        return record_adapter(providers, max_ips, 2, layout.history_periods)
    if (
        type(record) is dict
        and not is_number(version, 1)
        and ("mta" in record or "history" in record)
    ):
        return record_adapter(providers, max_ips, 2, layout.history_periods)
    return record_adapter(providers, max_ips, 1, 0)  # no history: one adapter per bundle
