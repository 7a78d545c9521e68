"""Write decided caps as a KumoMTA traffic-shaping overlay (TOML), atomically.

KumoMTA keys throttles by egress source x site, and its shaping files group sites into
providers by MX suffix (``kumo.shaping.load`` docs; ``[provider."x"] match=[{MXSuffix=...}]``
and per-source rules ``[provider."x".sources."name"]``, merged over the provider's own
rules; ``crates/kumo-api-types/src/shaping.rs`` applies them in that order). The overlay
holds only those documented keys: ``match`` (``MXSuffix``), ``sources`` and
``max_message_rate`` (a GCRA throttle written ``"N/h"``, or ``"N/d"`` below one an hour).

List the overlay last among the shaping helper's files (``extra_files``) in the kumod
policy; kumod polls its configuration files every 10 s and reloads them when they change.
Not expressible: the ``other`` provider (every other site) has no provider block, and a
``["default".sources."x"]`` rule is never applied by the shaper, so its cap is left out and
reported; a cap of zero, which is written as the smallest rate, ``1/d``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ipwarmup.mta.providers import MX_SUFFIXES, OTHER, PROVIDERS

PROVIDER_PREFIX = "ipwarmup-"
"""Overlay provider blocks are named ``ipwarmup-<provider>``, apart from KumoMTA's own."""

DOCUMENTED_KEYS = frozenset({"provider", "match", "MXSuffix", "sources", "max_message_rate"})
"""Every key the overlay may contain (checked by the tests after a TOML round trip)."""


def rate(cap_per_hour: float) -> str:
    """Return a KumoMTA throttle spec at most ``cap_per_hour``: ``"N/h"``, else ``"N/d"``."""
    if cap_per_hour >= 1:
        return f"{math.floor(cap_per_hour + 1e-9)}/h"
    return f"{max(math.floor(cap_per_hour * 24 + 1e-9), 1)}/d"


def _quote(text: str) -> str:
    """Return a TOML basic string."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def render_overlay(caps_per_ip: Mapping[str, float], sources: list[str], *, header: str) -> str:
    """Return the overlay TOML: ``max_message_rate`` per egress source x provider.

    Args:
        caps_per_ip: hourly cap per IP by provider.
        sources: the egress source names (the dedicated IPs).
        header: a comment line saying when and from what the overlay was written.
    """
    lines = [f"# {header}", "# Written by `ipwarmup control`; the next period overwrites it."]
    skipped = [p for p in PROVIDERS if p == OTHER and p in caps_per_ip]
    for provider in PROVIDERS:
        if provider == OTHER or provider not in caps_per_ip:
            continue
        name = _quote(PROVIDER_PREFIX + provider)
        suffixes = [s for s, p in MX_SUFFIXES.items() if p == provider]
        matches = ", ".join(f"{{MXSuffix = {_quote(s)}}}" for s in suffixes)
        lines += ["", f"[provider.{name}]", f"match = [{matches}]"]
        for source in sources:
            lines += [
                "",
                f"[provider.{name}.sources.{_quote(source)}]",
                f"max_message_rate = {_quote(rate(float(caps_per_ip[provider])))}",
            ]
    for provider in skipped:
        lines += ["", f"# {provider}: cap {caps_per_ip[provider]:.6g}/h per IP not expressible"]
    return "\n".join(lines) + "\n"


def overlay_keys(data: Mapping[str, Any]) -> set[str]:
    """Return every key used anywhere in a parsed overlay except provider and source names."""
    keys: set[str] = set()

    def walk(node: object, names_below: bool) -> None:
        if isinstance(node, Mapping):
            for key, value in node.items():
                if not names_below:
                    keys.add(str(key))
                walk(value, names_below=key in ("provider", "sources") and not names_below)
        elif isinstance(node, list):
            for item in node:
                walk(item, names_below=False)

    walk(data, names_below=False)
    return keys
