"""The fast check's bounds on a record's values, read from the record's JSON Schema.

:class:`ipwarmup.serving.single.OneRecord` hands the kernel each value's lowest and highest
value and whether it must be whole (:func:`record_bounds`). They are read from the JSON
Schema that the record's pydantic types generate (:func:`ipwarmup.serving.telemetry.json_schema`),
so the types stay the one source of the bounds; a schema this reader does not understand
stops the policy's load rather than let the fast check run on bounds the types no longer
have.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ipwarmup.observation import LAST_PERIOD, Layout
from ipwarmup.serving.record import (
    COUNT_FIELDS,
    MTA_KEYS,
    OVERFLOW_MODES,
    POOL_KEYS,
    TIME_KEYS,
    TOP_KEYS,
    TOP_KEYS_V2,
)
from ipwarmup.serving.telemetry import json_schema

_LEAF_WORDS = frozenset(("type", "minimum", "maximum", "const", "enum", "description"))
"""The JSON Schema keywords :func:`record_bounds` understands on a number."""


def _object(node: dict[str, Any], keys: Sequence[str], where: str) -> dict[str, Any]:
    """Return an object's properties, after checking they are exactly ``keys``, all required."""
    properties: dict[str, Any] = node.get("properties", {})
    if (node.get("type") != "object" or node.get("additionalProperties") is not False
            or list(properties) != list(keys) or node.get("required") != list(keys)):  # fmt: skip
        raise RuntimeError(f"the fast path cannot read the schema of {where}: {sorted(node)}")
    return properties


def _leaf(node: dict[str, Any], where: str) -> tuple[float, float, float]:
    """Return a number's (lowest, highest, 1.0 if whole) from its JSON Schema."""
    if not _LEAF_WORDS.issuperset(node) or "enum" in node:
        raise RuntimeError(f"the fast path cannot read the schema of {where}: {sorted(node)}")
    if "const" in node:
        const = node["const"]
        return float(const), float(const), float(type(const) is int)
    if node.get("type") not in ("number", "integer"):
        raise RuntimeError(f"the fast path cannot read the schema of {where}: {node}")
    return (float(node.get("minimum", -math.inf)), float(node.get("maximum", math.inf)),
            float(node["type"] == "integer"))  # fmt: skip


def record_bounds(
    providers: Sequence[str], max_ips: int, period_hours: int, layout: Layout = LAST_PERIOD,
    version: int = 1,
) -> tuple[list[float], list[float], list[float]]:  # fmt: skip
    """Read the kernel's bounds on a record's values from the record's JSON Schema.

    The schema is generated from the pydantic types that validate records
    (:func:`ipwarmup.serving.telemetry.json_schema`), so they stay the one source of the
    bounds. Returns per value, in the kernel's order (each provider's counts, then
    ``dedicated_ips, mean_ip_age_days, day, weekday, hour, schema_version,
    period_hours``; for version 2 then ``mta``'s queue flag, ``max_age_hours`` and
    ``retry_interval_hours``, the number of past periods given and each past period's
    counts), its lowest and highest value and 1.0 where it must be whole.
    ``period_hours`` is bounded to the policy's own (a policy refuses any other), if the
    schema allows it.

    Raises:
        RuntimeError: the schema uses something this reader does not understand (a
            change to the record's types must then be taught here).
    """
    schema = json_schema(providers, max_ips, layout=layout, version=version)
    top = _object(schema, TOP_KEYS if version == 1 else TOP_KEYS_V2, "the record")
    entries = _object(top["providers"], providers, "providers")
    provider = schema["$defs"]["provider"]
    counts = _object(provider, COUNT_FIELDS, "a provider")
    if any(entry != {"$ref": "#/$defs/provider"} for entry in entries.values()):
        raise RuntimeError("the fast path expects every provider to share one schema")
    pool = _object(top["pool"], POOL_KEYS, "pool")
    when = _object(top["time"], TIME_KEYS, "time")
    per_period = [_leaf(counts[name], f"providers.*.{name}") for name in COUNT_FIELDS]
    leaves = per_period * len(providers)
    leaves += [_leaf(pool[name], f"pool.{name}") for name in POOL_KEYS]
    leaves += [_leaf(when[name], f"time.{name}") for name in TIME_KEYS]
    leaves.append(_leaf(top["schema_version"], "schema_version"))
    allowed = top["period_hours"].get("enum", [])
    period = float(period_hours) if period_hours in allowed else math.nan  # NaN: none pass
    leaves.append((period, period, 1.0))
    if version == 2:
        mta = _object(top["mta"], MTA_KEYS, "mta")
        if mta["overflow"].get("enum") != list(OVERFLOW_MODES):
            raise RuntimeError(f"the fast path cannot read the schema of mta.overflow: "
                               f"{mta['overflow']}")  # fmt: skip
        leaves.append((0.0, 1.0, 1.0))  # the queue flag _gather reads from the mode
        leaves += [_leaf(mta[name], f"mta.{name}") for name in MTA_KEYS[1:]]
        history = top["history"]
        if sorted(history) != ["description", "items", "maxItems", "type"] or (
            history["type"] != "array"
        ):
            raise RuntimeError(f"the fast path cannot read the schema of history: {history}")
        past = _object(history["items"], providers, "history.*")
        if any(entry != {"$ref": "#/$defs/provider"} for entry in past.values()):
            raise RuntimeError("the fast path expects every past provider to share one schema")
        k = history["maxItems"]
        leaves.append((0.0, float(k), 1.0))  # how many past periods are given
        leaves += per_period * len(providers) * k
    lowest, highest, whole = (list(column) for column in zip(*leaves, strict=True))
    return lowest, highest, whole
