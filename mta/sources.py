"""The ``--sources`` file: which transports and source IPs are the dedicated pool.

A YAML file, for example::

    warmup_start: "2026-11-23"       # day 0 of the warmup (UTC)
    dedicated:                       # every other transport or source is the shared pool
      ip1:
        address: 192.0.2.10          # Postfix smtp_bind_address / KumoMTA source_address
        started: "2026-11-23"        # first day this IP sent (default: warmup_start)
    cap_per_ip_per_hour: {gmail: 20.0, microsoft: 20.0}   # caps in force now (optional)
    providers: {example-corp.com: microsoft, .mx.example.net: other}   # map overrides
    mta: {overflow: queue, max_age_hours: 72}   # optional; see ipwarmup.mta.setup

A Postfix delivery is dedicated when its transport (the ``postfix/<transport>/smtp`` log
tag that ``-o syslog_name=postfix/$service_name`` gives) is an IP's name, starts with
``<name>_`` (the per-provider transports ``ipwarmup control`` writes) or is listed in the
IP's ``transports``; a KumoMTA delivery when its ``egress_source`` is an IP's name or its
``source_address`` an IP's address.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Literal

from ipwarmup.config import Config, configclass, load, load_yaml, setting, setting_factory
from ipwarmup.errors import ConfigError
from ipwarmup.mta.providers import PROVIDERS
from ipwarmup.observation import MAX_AGE_SCALE_HOURS, MIN_RETRY_HOURS, RETRY_SCALE_HOURS

_NAME = re.compile(r"[a-z0-9][a-z0-9-]*\Z")


def _date_problem(field: str, text: str) -> list[str]:
    if not text:
        return []
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return [f"{field}: expected a date YYYY-MM-DD, got {text!r}"]
    return []


@configclass
class DedicatedIP(Config):
    """One dedicated IP of the pool."""

    address: str = setting("", "The IP address (Postfix smtp_bind_address, KumoMTA source).")
    started: str = setting("", "First day (YYYY-MM-DD, UTC) the IP sent; empty: warmup_start.")
    transports: tuple[str, ...] = setting((), "Other Postfix transports that send from it.")

    def _check(self) -> list[str]:
        return _date_problem("started", self.started)


@configclass
class MTASetup(Config):
    """What the MTA does with mail it holds back, where its configuration does not say."""

    overflow: Literal["shared", "queue"] = setting(
        "queue",
        "Where mail above the caps goes: 'queue' (waits and is retried on the dedicated IPs, "
        "as ipwarmup control configures Postfix and KumoMTA) or 'shared' (a shared pool).",
    )
    max_age_hours: int | None = setting(
        None,
        "Hours a queued message lives; empty: Postfix's maximal_queue_lifetime, KumoMTA's "
        "default (7 days).",
        ge=1,
        le=int(MAX_AGE_SCALE_HOURS),
    )
    retry_interval_hours: float | None = setting(
        None,
        "Hours between two attempts of a queued message; empty: Postfix's "
        "maximal_backoff_time, KumoMTA's default (20 minutes).",
        ge=MIN_RETRY_HOURS,
        le=RETRY_SCALE_HOURS,
    )


@configclass
class Sources(Config):
    """The dedicated pool and what the log alone cannot tell."""

    warmup_start: str = setting("", "Day 0 of the warmup (YYYY-MM-DD, UTC); empty: the log's.")
    dedicated: dict[str, DedicatedIP] = setting_factory(
        dict, "The dedicated IPs by name (Postfix transport prefix, KumoMTA egress source)."
    )
    cap_per_ip_per_hour: dict[str, float] = setting_factory(
        dict, "Hourly cap per IP in force per provider; missing: the busiest hour seen.", ge=0
    )
    providers: dict[str, str] = setting_factory(
        dict, "Extra recipient domain (or .suffix) to provider entries over the shipped map."
    )
    postfix_nexthop: dict[str, str] = setting_factory(
        dict, "Postfix next hop per provider ('[10.0.0.9]:25'); missing: the MX lookup."
    )
    mta: MTASetup = setting_factory(
        MTASetup, "The MTA's set-up for bundles that read it (telemetry schema 2)."
    )

    def _check(self) -> list[str]:
        problems = _date_problem("warmup_start", self.warmup_start)
        for name in self.dedicated:
            if not _NAME.match(name):
                problems.append(
                    f"dedicated.{name}: expected a name of lower-case letters, digits and "
                    "'-' (it becomes a Postfix transport prefix)"
                )
        for section, names in (
            ("cap_per_ip_per_hour", self.cap_per_ip_per_hour),
            ("providers", self.providers.values()),
            ("postfix_nexthop", self.postfix_nexthop),
        ):
            for name in names:
                if name not in PROVIDERS:
                    problems.append(
                        f"{section}: unknown provider {name!r}; expected one of {list(PROVIDERS)}"
                    )
        return problems

    def dedicated_ip(self, route: str, address: str = "") -> str | None:
        """Return the dedicated IP's name a transport or egress source sends from, else None."""
        for name, ip in self.dedicated.items():
            if route == name or route.startswith(name + "_") or route in ip.transports:
                return name
            if address and address == ip.address:
                return name
        return None

    def started(self, name: str, default: dt.date) -> dt.date:
        """Return the first day of one IP (its ``started``, else ``warmup_start``, else default)."""
        text = self.dedicated[name].started or self.warmup_start
        return dt.date.fromisoformat(text) if text else default


def load_sources(path: str | Path) -> Sources:
    """Read and check a sources file.

    Raises:
        ConfigError: every problem, each prefixed with the file (``sources.yaml: dedicated.
            ip1.started: expected a date YYYY-MM-DD, got '11/23'``).
    """
    data = load_yaml(path)
    try:
        return load(Sources, data)
    except ConfigError as error:
        raise ConfigError([f"{path}: {problem}" for problem in error.problems]) from error
