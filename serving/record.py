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
from typing import Annotated, Any

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


@functools.lru_cache(maxsize=32)
def record_adapter(providers: tuple[str, ...], max_ips: int) -> TypeAdapter[Any]:
    """Return the validator of records for these providers and pool size (cached)."""
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
    record = _section(
        "record",
        {
            "schema_version": _whole((SCHEMA_VERSION,), {"const": SCHEMA_VERSION}),
            "period_hours": _whole(
                PERIOD_HOURS, {"enum": list(PERIOD_HOURS), "description": "Length of the period."}
            ),
            "time": time,
            "pool": pool,
            "providers": _section("providers", dict.fromkeys(providers, checked)),
        },
    )
    return TypeAdapter(record)


def _keys(path: tuple[Any, ...], providers: tuple[str, ...]) -> tuple[str, ...]:
    """The expected keys of the object at ``path`` (schema order), () for a leaf."""
    if not path:
        return TOP_KEYS
    if path == ("time",):
        return TIME_KEYS
    if path == ("pool",):
        return POOL_KEYS
    if path == ("providers",):
        return providers
    if len(path) == 2 and path[0] == "providers":
        return COUNT_FIELDS
    return ()


def _what(path: tuple[Any, ...], max_ips: int) -> tuple[str, str | None, float]:
    """How to word a bad value at ``path``: (expectation, what for ranges, maximum)."""
    if path == ("schema_version",):
        return f"{SCHEMA_VERSION}", None, 0.0
    if path == ("period_hours",):
        return f"one of {list(PERIOD_HOURS)}", None, 0.0
    if path == ("time", "weekday"):
        return "an integer from 0 to 6", None, 0.0
    if path == ("time", "hour"):
        return "an integer from 0 to 23", None, 0.0
    if path == ("pool", "dedicated_ips"):
        return f"an integer from 0 to {max_ips}", None, 0.0
    if path[0] == "providers":
        return "", "a count", MAX_COUNT
    return "", "a number", MAX_DAYS


def _message(item: Any, max_ips: int, providers: tuple[str, ...]) -> list[str]:
    """The message lines for one pydantic error (two for a doubly inconsistent entry)."""
    kind, value, loc = item["type"], item["input"], tuple(item["loc"])
    if kind == "missing":
        return ["missing"]
    if kind == "extra_forbidden":
        known = _keys(loc[:-1], providers)
        if loc[:-1] == ("providers",):
            return [f"unknown provider; expected one of {list(known)}"]
        close = difflib.get_close_matches(str(loc[-1])[:100], list(known), n=1)
        if close:
            return [f"unknown key; did you mean {close[0]!r}?"]
        return [f"unknown key; expected one of {list(known)}"]
    if kind == "consistency":
        return list(item["ctx"]["problems"])
    if kind in ("dict_type", "typed_dict_type", "mapping_type"):  # a Mapping that fails too
        return [f"expected a JSON object, got {type(value).__name__}"]
    expected, what, maximum = _what(loc, max_ips)
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


def _order(loc: tuple[Any, ...], kind: str, providers: tuple[str, ...]) -> tuple[Any, ...]:
    """Sort key: per object, missing keys, then unknown keys, then values, in schema order."""
    key: list[tuple[int, int]] = []
    for depth, part in enumerate(loc):
        known = _keys(loc[:depth], providers)
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


def crowded(record: object, providers: tuple[str, ...]) -> list[str] | None:
    """Report an object with far more keys than it may hold, without validating the rest.

    A 64 KB body can carry thousands of unknown keys; listing and sorting pydantic's error
    for each costs tens of milliseconds, so such a record is refused from a cheap scan: the
    first unknown keys and how many more there are.
    """
    stack: list[tuple[tuple[Any, ...], object]] = [((), record)]
    while stack:
        path, node = stack.pop()
        if not isinstance(node, dict):
            continue
        known = _keys(path, providers)
        if len(node) > len(known) + MAX_PROBLEMS:
            unknown = [key for key in node if key not in known]
            where = _dotted(path)
            word = "provider" if path == ("providers",) else "key"
            lines = [f"{_dotted((*path, key))}: unknown {word}; expected one of {list(known)}"
                     for key in unknown[: MAX_PROBLEMS - 1]]  # fmt: skip
            lines.append(f"{where}: {len(unknown) - len(lines)} more unknown keys not listed")
            return lines
        if len(path) < 2:
            stack += [((*path, key), node[key]) for key in known if key in node]
    return None


def problems(error: ValidationError, providers: tuple[str, ...], max_ips: int) -> list[str]:
    """Turn a record's validation error into message lines, schema-ordered, at most 50."""
    items = error.errors(include_url=False, include_context=True)
    items.sort(key=lambda item: _order(tuple(item["loc"]), item["type"], providers))
    lines: list[str] = []
    for item in items:
        where = _dotted(tuple(item["loc"]))
        lines += [f"{where}: {text}" for text in _message(item, max_ips, providers)]
        if len(lines) >= MAX_PROBLEMS:
            break
    # Counted in lines, as listed: a doubly inconsistent entry gives two (see _message).
    total = sum(len(i["ctx"]["problems"]) if i["type"] == "consistency" else 1 for i in items)
    if total > len(lines) or len(lines) > MAX_PROBLEMS:
        lines = lines[: MAX_PROBLEMS - 1]
        lines.append(f"telemetry: {total - len(lines)} more problems not listed")
    return lines
