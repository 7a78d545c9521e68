"""How a telemetry record's problems are worded: pydantic's errors as this project's lines.

:func:`problems` turns the :mod:`ipwarmup.serving.record` types' validation error into
message lines (``telemetry.providers.gmail.deferred: expected a count >= 0, got -3``), in
schema order: each object's missing keys, then its unknown keys, then its values' problems;
at most :data:`MAX_PROBLEMS` lines, and bad keys and values echoed in at most ~40
characters (:func:`show`). :func:`crowded` refuses a record stuffed with unknown keys
before pydantic lists them one by one, and :func:`needs_v2` words a version-1 record sent
to a bundle that reads version 2's inputs.
"""

from __future__ import annotations

import difflib
import math
import numbers
import reprlib
from collections.abc import Sequence
from typing import Any, NamedTuple

from pydantic import ValidationError

from ipwarmup.observation import (
    MAX_AGE_SCALE_HOURS,
    MAX_HISTORY_PERIODS,
    MIN_RETRY_HOURS,
    RETRY_SCALE_HOURS,
    Layout,
)
from ipwarmup.serving.record import (
    COUNT_FIELDS,
    MAX_COUNT,
    MAX_DAYS,
    MTA_KEYS,
    OVERFLOW_MODES,
    PERIOD_HOURS,
    POOL_KEYS,
    TIME_KEYS,
    TOP_KEYS,
    TOP_KEYS_V2,
    is_number,
)

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


def needs_v2(record: object, layout: Layout) -> str | None:
    """Return the problem of a version-1 record sent to a bundle that needs version 2."""
    if not layout.needs_v2 or type(record) is not dict:
        return None
    if not is_number(record.get("schema_version"), 1):
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
