"""Write decided caps into a Postfix configuration and reload it, or restore the old one.

What is written (shared/MTA.md section C, from postconf(5) and TUNING_README):

- master.cf: one transport per dedicated IP and provider, a clone of ``smtp`` with
  ``-o smtp_bind_address=<IP>`` and ``-o syslog_name=postfix/<transport>`` (so the log says
  which transport, hence which IP, sent);
- ``ipwarmup_domains`` (a ``texthash:`` table, read without postmap): each known recipient
  domain to its provider; main.cf's ``transport_maps`` then holds, per provider,
  ``pipemap:{texthash:ipwarmup_domains_<provider>, randmap:{ip1_gmail:NEXTHOP, ...}}``, so a
  domain goes to one of the provider's transports at random (one IP each), ahead of the
  operator's own ``transport_maps``. Mail to any other domain (the ``other`` provider) goes
  through ``sender_dependent_default_transport_maps = randmap:{ip1_other:, ...}``, which
  overrides ``default_transport`` but never ``transport_maps``;
- main.cf, per transport: ``<t>_transport_rate_delay`` (Postfix >= 3.1: the pause between
  two deliveries over the whole transport, whatever the destination),
  ``<t>_destination_recipient_limit = 1`` (so a delivery is one recipient and the delay
  paces recipients), ``<t>_destination_concurrency_limit`` and
  ``<t>_destination_concurrency_failed_cohort_limit = 10`` (with a rate delay, one failed
  connection must not mark the destination dead).

How an hourly cap maps: a cap of C messages an hour per IP is a delay of ``ceil(3600 / C)``
whole seconds (Postfix takes integral time values), so the cap Postfix enforces is
``3600 / ceil(3600 / C)``, at most C. What Postfix cannot express: a cap above 3600 an
hour per transport (the smallest delay is 1 s): the delay is then 0 and concurrency is
limited to ``ceil(C / 3600)`` instead, which bounds parallel deliveries, not a rate; a
cap of zero (the provider's mail then simply stays out of the transport maps); and a burst
shape within the hour. ``postfix reload`` resets the rate-delay timers (SCHEDULER_README),
so the first delivery after a reload may come early.

Both files keep everything outside the ``# BEGIN ipwarmup`` / ``# END ipwarmup`` block. The
new files are written atomically; ``postfix check`` and ``postfix reload`` must succeed,
else the previous files are put back (and Postfix reloaded with them) and the error raised.
"""

from __future__ import annotations

import math
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ipwarmup.errors import MTAError
from ipwarmup.mta.files import write_atomic
from ipwarmup.mta.providers import OTHER, PROVIDERS, ProviderMap

BEGIN = "# BEGIN ipwarmup: written by `ipwarmup control`; edits inside this block are lost"
END = "# END ipwarmup"
DOMAINS_FILE = "ipwarmup_domains_{provider}"
FAILED_COHORT_LIMIT = 10
"""MTA.md section C: with a rate delay, set the failed cohort limit to at least 10."""
MAX_PACED_PER_HOUR = 3600.0
"""The fastest cap a rate delay expresses: one delivery a second."""


@dataclass(frozen=True)
class TransportPlan:
    """One transport (dedicated IP x provider) and its pacing."""

    name: str
    provider: str
    address: str
    cap_per_hour: float
    rate_delay_seconds: int
    concurrency: int

    @property
    def enforced_per_hour(self) -> float:
        """Return the hourly cap Postfix enforces (inf when only concurrency bounds it)."""
        return 3600 / self.rate_delay_seconds if self.rate_delay_seconds else math.inf


def pace(cap_per_hour: float) -> tuple[int, int]:
    """Return (rate delay in whole seconds, concurrency limit) for an hourly cap.

    A cap at or above 3600 an hour cannot be paced by a delay: delay 0 and a concurrency of
    ``ceil(cap / 3600)`` (at most Postfix's default of 20).
    """
    if cap_per_hour <= 0:
        raise ValueError(f"cap_per_hour: expected > 0, got {cap_per_hour}")
    if cap_per_hour >= MAX_PACED_PER_HOUR:
        return 0, min(math.ceil(cap_per_hour / MAX_PACED_PER_HOUR), 20)
    return math.ceil(3600 / cap_per_hour - 1e-9), 1


def plan_transports(
    caps_per_ip: Mapping[str, float], addresses: Mapping[str, str]
) -> list[TransportPlan]:
    """Return the transports for every active IP (name -> address) and provider with a cap > 0."""
    plans = []
    for ip, address in addresses.items():
        for provider in PROVIDERS:
            cap = float(caps_per_ip.get(provider, 0.0))
            if cap <= 0:
                continue
            delay, concurrency = pace(cap)
            plans.append(
                TransportPlan(f"{ip}_{provider}", provider, address, cap, delay, concurrency)
            )
    return plans


def _strip_block(text: str) -> str:
    pattern = re.compile(rf"\n?{re.escape(BEGIN)}\n.*?{re.escape(END)}\n?", re.S)
    return pattern.sub("\n", text).rstrip("\n") + "\n" if text.strip() else ""


def parameter(text: str, name: str) -> str | None:
    """Return the last value of a main.cf parameter (with continuation lines), or None."""
    value = None
    lines = text.splitlines()
    for i, line in enumerate(lines):
        match = re.match(rf"{re.escape(name)}\s*=\s*(.*)\Z", line)
        if match:
            parts = [match[1].strip()]
            for more in lines[i + 1 :]:
                if not more[:1].isspace() or not more.strip():
                    break
                parts.append(more.strip())
            value = " ".join(p for p in parts if p)
    return value


def render_main(
    current: str,
    plans: Sequence[TransportPlan],
    *,
    config_dir: Path,
    nexthops: Mapping[str, str],
) -> str:
    """Return main.cf with the managed block for these transports."""
    base = _strip_block(current)
    block = [BEGIN]
    maps = []
    for provider in PROVIDERS:
        chosen = [p for p in plans if p.provider == provider]
        if not chosen:
            continue
        hop = nexthops.get(provider, "")
        choices = ", ".join(f"{p.name}:{hop}" for p in chosen)
        if provider == OTHER:
            block.append(f"sender_dependent_default_transport_maps = randmap:{{{choices}}}")
            continue
        table = config_dir / DOMAINS_FILE.format(provider=provider)
        maps.append(f"pipemap:{{texthash:{table}, randmap:{{{choices}}}}}")
    operator = parameter(base, "transport_maps")
    if operator:
        maps.append(operator)
    if maps:
        block.append("transport_maps = " + ",\n    ".join(maps))
    for p in plans:
        block += [
            f"# {p.provider} on {p.address}: cap {p.cap_per_hour:.6g}/h, "
            + (
                f"enforced {p.enforced_per_hour:.6g}/h"
                if p.rate_delay_seconds
                else "above 3600/h: not paced, concurrency-bound only"
            ),
            f"{p.name}_transport_rate_delay = {p.rate_delay_seconds}s",
            f"{p.name}_destination_recipient_limit = 1",
            f"{p.name}_destination_concurrency_limit = {p.concurrency}",
            f"{p.name}_destination_concurrency_failed_cohort_limit = {FAILED_COHORT_LIMIT}",
        ]
    block.append(END)
    return base + "\n".join(block) + "\n"


def render_master(current: str, plans: Sequence[TransportPlan]) -> str:
    """Return master.cf with the managed block of one smtp clone per transport."""
    base = _strip_block(current)
    block = [BEGIN]
    for p in plans:
        block.append(
            f"{p.name} unix - - - - - smtp -o smtp_bind_address={p.address} "
            f"-o syslog_name=postfix/{p.name}"
        )
    block.append(END)
    return base + "\n".join(block) + "\n"


def render_domains(provider_map: ProviderMap, provider: str) -> str:
    """Return the texthash table of one provider's recipient domains."""
    lines = [f"# {provider}'s recipient domains ({BEGIN[2:]})"]
    lines += [f"{domain} {provider}" for domain in provider_map.domains_of(provider)]
    return "\n".join(lines) + "\n"


def _run(command: Sequence[str]) -> str | None:
    """Run a command; return None on success, else what it said."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"{' '.join(command)}: {error}"
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip().splitlines()
        return f"{' '.join(command)} exited {done.returncode}: {said[-1] if said else ''}"
    return None


def apply_postfix(
    config_dir: Path,
    plans: Sequence[TransportPlan],
    *,
    provider_map: ProviderMap,
    nexthops: Mapping[str, str],
    command: str = "postfix",
) -> None:
    """Write the configuration, check and reload Postfix; on failure restore the old files.

    Raises:
        MTAError: the check or reload failed (the previous configuration is back), or the
            configuration folder has no main.cf or master.cf.
    """
    files = {name: config_dir / name for name in ("main.cf", "master.cf")}
    for name, path in files.items():
        if not path.is_file():
            raise MTAError(f"{path}: no Postfix {name} in the configuration folder")
    for provider in PROVIDERS:
        if provider != OTHER:
            files[provider] = config_dir / DOMAINS_FILE.format(provider=provider)
    before = {k: (p.read_text(encoding="utf-8") if p.exists() else None) for k, p in files.items()}
    after = {
        "main.cf": render_main(
            before["main.cf"] or "", plans, config_dir=config_dir, nexthops=nexthops
        ),
        "master.cf": render_master(before["master.cf"] or "", plans),
        **{p: render_domains(provider_map, p) for p in PROVIDERS if p != OTHER},
    }
    for key, text in after.items():
        write_atomic(files[key], text)
    failure = _run([command, "-c", str(config_dir), "check"]) or _run(
        [command, "-c", str(config_dir), "reload"]
    )
    if failure is None:
        return
    for key, old in before.items():
        if old is None:
            files[key].unlink(missing_ok=True)
        else:
            write_atomic(files[key], old)
    again = _run([command, "-c", str(config_dir), "reload"])
    note = "" if again is None else f"; reloading the previous configuration failed too: {again}"
    raise MTAError(f"{config_dir}: {failure}; the previous configuration is restored{note}")
