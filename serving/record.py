"""The telemetry record as pydantic v2 types: the one source of validation and JSON Schema.

:func:`record_adapter` builds (once per provider list and pool size) a ``TypeAdapter`` over
``TypedDict`` types: pydantic-core checks a record in Rust and returns a plain dict, and the
same types give the JSON Schema that the HTTP service's OpenAPI document embeds.
:func:`problems` turns pydantic's errors into this project's messages
(``telemetry.providers.gmail.deferred: expected a count >= 0, got -3``), in schema order:
each object's missing keys, then its unknown keys, then its values' problems; at most
:data:`MAX_PROBLEMS` lines, and bad keys and values echoed in at most ~40 characters.
"""

from __future__ import annotations

import difflib
import functools
import math
import numbers
import reprlib
from collections.abc import Sequence
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
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
MAX_PROBLEMS = 50
"""Most problems reported for one record; a longer list says how many were left out."""


class _Short(reprlib.Repr):
    """``reprlib`` that never calls ``repr`` on an integer past Python's 4,300-digit limit."""

    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > 14_000:
            sign = "a negative" if x < 0 else "an"
            return f"<{sign} integer of about {int(x.bit_length() * math.log10(2))} digits>"
        return super().repr_int(x, level)


_short = _Short()
_short.maxstring = _short.maxother = _short.maxlong = 40
_short.maxlist = _short.maxdict = 4
_short.maxlevel = 3


def show(value: object) -> str:
    """Render a bad value for a message: numbers as written, others with their type."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        whole = int(value)
        # repr() of an int over 4,300 digits raises ValueError (CVE-2020-10735's limit).
        if whole.bit_length() > 14_000:
            sign = "a negative" if whole < 0 else "an"
            return f"{sign} integer of about {int(whole.bit_length() * math.log10(2))} digits"
        return _short.repr(whole)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return repr(float(value))
    text = _short.repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."  # nested containers add up
    return f"{text} ({type(value).__name__[:40]})"


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


def adapter_for(
    record: object, providers: tuple[str, ...], max_ips: int, layout: Layout = LAST_PERIOD
) -> TypeAdapter[Any]:
    """Return the validator a record is judged by: its version's, or the bundle's newest.

    A version-1 record goes to the version-1 validator where the bundle reads neither
    history nor the MTA; anything else (version 2, or no valid version) to version 2's, or
    version 1's for a bundle that reads neither and a record without version 2's keys.
    """
    version = record.get("schema_version") if type(record) is dict else None
    if layout.needs_v2 or (version is not None and _is(version, 2)):
        return record_adapter(providers, max_ips, 2, layout.history_periods)
    if type(record) is dict and not _is(version, 1) and ("mta" in record or "history" in record):
        return record_adapter(providers, max_ips, 2, layout.history_periods)
    return record_adapter(providers, max_ips, 1, 0)  # no history: one adapter per bundle


def _is(value: object, number: int) -> bool:
    """Whether a JSON value is the number ``number`` (``true`` is not 1)."""
    return type(value) in (int, float) and value == number


def needs_v2(record: object, layout: Layout) -> str | None:
    """Return the problem of a version-1 record sent to a bundle that needs version 2."""
    if not layout.needs_v2 or type(record) is not dict:
        return None
    if not _is(record.get("schema_version"), 1):
        return None
    what = []
    if layout.mta_inputs:
        what.append("the MTA's set-up (mta)")
    if layout.history_periods:
        what.append(f"the last {layout.history_periods} periods (history)")
    return (f"telemetry.schema_version: bundle needs schema_version 2: it reads "
            f"{' and '.join(what)}; got 1")  # fmt: skip


class Shape(NamedTuple):
    """What a record is judged against: the bundle's providers, pool, layout, the version."""

    providers: tuple[str, ...]
    max_ips: int
    version: int
    layout: Layout


def _keys(path: tuple[Any, ...], shape: Shape) -> tuple[str, ...]:
    """The expected keys of the object at ``path`` (schema order), () for a leaf."""
    if not path:
        return TOP_KEYS if shape.version == 1 else TOP_KEYS_V2
    if path == ("time",):
        return TIME_KEYS
    if path == ("pool",):
        return POOL_KEYS
    if path == ("mta",):
        return MTA_KEYS
    if path == ("providers",) or (len(path) == 2 and path[0] == "history"):
        return shape.providers
    if (len(path) == 2 and path[0] == "providers") or (len(path) == 3 and path[0] == "history"):
        return COUNT_FIELDS
    return ()


def _what(path: tuple[Any, ...], shape: Shape) -> tuple[str, str | None, float]:
    """How to word a bad value at ``path``: (expectation, what for ranges, maximum)."""
    if path == ("schema_version",):
        return ("2" if shape.layout.needs_v2 else "1 or 2"), None, 0.0
    if path == ("period_hours",):
        return f"one of {list(PERIOD_HOURS)}", None, 0.0
    if path == ("time", "weekday"):
        return "an integer from 0 to 6", None, 0.0
    if path == ("time", "hour"):
        return "an integer from 0 to 23", None, 0.0
    if path == ("pool", "dedicated_ips"):
        return f"an integer from 0 to {shape.max_ips}", None, 0.0
    if path == ("mta", "overflow"):
        return " or ".join(repr(mode) for mode in OVERFLOW_MODES), None, 0.0
    if path == ("mta", "max_age_hours"):
        return f"an integer from 1 to {int(MAX_AGE_SCALE_HOURS)}", None, 0.0
    if path == ("mta", "retry_interval_hours"):
        return f"a number from {MIN_RETRY_HOURS:g} to {RETRY_SCALE_HOURS:g}", None, 0.0
    if path[0] in ("providers", "history"):
        return "", "a count", MAX_COUNT
    return "", "a number", MAX_DAYS


def _message(item: Any, shape: Shape) -> list[str]:
    """The message lines for one pydantic error (two for a doubly inconsistent entry)."""
    kind, value, loc = item["type"], item["input"], tuple(item["loc"])
    if kind == "missing":
        return ["missing"]
    if kind == "extra_forbidden":
        known = _keys(loc[:-1], shape)
        if loc[:-1] == ("providers",) or (len(loc) == 3 and loc[0] == "history"):
            return [f"unknown provider; expected one of {list(known)}"]
        close = difflib.get_close_matches(str(loc[-1])[:100], list(known), n=1)
        if close:
            return [f"unknown key; did you mean {close[0]!r}?"]
        return [f"unknown key; expected one of {list(known)}"]
    if kind == "consistency":
        return list(item["ctx"]["problems"])
    if kind == "history_short":
        return [item["msg"]]
    if kind in ("dict_type", "typed_dict_type", "mapping_type"):  # a Mapping that fails too
        return [f"expected a JSON object, got {type(value).__name__}"]
    if kind == "list_type":
        return [f"expected a JSON array, got {type(value).__name__}"]
    if kind == "too_long":
        return [f"expected at most {MAX_HISTORY_PERIODS} past periods (this model reads "
                f"{shape.layout.history_periods}), got {item['ctx']['actual_length']}"]  # fmt: skip
    expected, what, maximum = _what(loc, shape)
    if what is None:
        return [f"expected {expected}, got {show(value)}"]
    if kind == "finite_number":
        return [f"expected a finite number, got {show(value)}"]
    if kind == "greater_than_equal" or (
        kind == "float_type" and isinstance(value, int) and not isinstance(value, bool)
        and value < 0
    ):  # fmt: skip
        return [f"expected {what} >= 0, got {show(value)}"]
    if kind == "less_than_equal" or (
        kind == "float_type" and isinstance(value, int) and not isinstance(value, bool)
    ):
        return [f"expected {what} <= {maximum:g}, got {show(value)}"]
    return [f"expected a number, got {show(value)}"]


def _loc(item: Any) -> tuple[Any, ...]:
    """Where an error is: the record's history check is the history's."""
    return ("history",) if item["type"] == "history_short" else tuple(item["loc"])


def _order(loc: tuple[Any, ...], kind: str, shape: Shape) -> tuple[Any, ...]:
    """Sort key: per object, missing keys, then unknown keys, then values, in schema order."""
    key: list[tuple[int, int]] = []
    for depth, part in enumerate(loc):
        known: Sequence[Any] = _keys(loc[:depth], shape)
        if loc[:depth] == ("history",):
            known = range(MAX_HISTORY_PERIODS)
        last = depth == len(loc) - 1
        index = known.index(part) if part in known else len(known)
        rank = 2
        if last and kind == "missing":
            rank = 0
        elif last and kind == "extra_forbidden":
            rank = 1
        key.append((rank, index))
    return tuple(key)


def _dotted(loc: tuple[Any, ...]) -> str:
    parts = ["telemetry"]
    for part in loc:
        text = str(part)[:100]
        parts.append(text if len(text) <= 40 else text[:37] + "...")
    return ".".join(parts)


def crowded(record: object, shape: Shape) -> list[str] | None:
    """Report an object with far more keys than it may hold, without validating the rest.

    A 64 KB body can carry thousands of unknown keys; listing and sorting pydantic's error
    for each costs tens of milliseconds, so such a record is refused from a cheap scan: the
    first unknown keys and how many more there are.
    """
    stack: list[tuple[tuple[Any, ...], object]] = [((), record)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, list) and path == ("history",):
            # Only as many as may be given: a longer list is refused by its length alone.
            stack += [((*path, i), entry) for i, entry in
                      enumerate(node[:MAX_HISTORY_PERIODS])]  # fmt: skip
            continue
        if not isinstance(node, dict):
            continue
        known = _keys(path, shape)
        if len(node) > len(known) + MAX_PROBLEMS:
            unknown = [key for key in node if key not in known]
            where = _dotted(path)
            word = "provider" if _keys(path, shape) is shape.providers else "key"
            lines = [f"{_dotted((*path, key))}: unknown {word}; expected one of {list(known)}"
                     for key in unknown[: MAX_PROBLEMS - 1]]  # fmt: skip
            lines.append(f"{where}: {len(unknown) - len(lines)} more unknown keys not listed")
            return lines
        if len(path) < (3 if path[:1] == ("history",) else 2):
            stack += [((*path, key), node[key]) for key in known if key in node]
    return None


def problems(error: ValidationError, shape: Shape) -> list[str]:
    """Turn a record's validation error into message lines, schema-ordered, at most 50."""
    items = error.errors(include_url=False, include_context=True)
    items.sort(key=lambda item: _order(_loc(item), item["type"], shape))
    lines: list[str] = []
    for item in items:
        where = _dotted(_loc(item))
        lines += [f"{where}: {text}" for text in _message(item, shape)]
        if len(lines) >= MAX_PROBLEMS:
            break
    # Counted in lines, as listed: a doubly inconsistent entry gives two (see _message).
    total = sum(len(i["ctx"]["problems"]) if i["type"] == "consistency" else 1 for i in items)
    if total > len(lines) or len(lines) > MAX_PROBLEMS:
        lines = lines[: MAX_PROBLEMS - 1]
        lines.append(f"telemetry: {total - len(lines)} more problems not listed")
    return lines
