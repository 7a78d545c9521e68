"""``ipwarmup control``: at each period end read the new log lines, decide, configure the MTA.

One run is one period. It reads the lines the log gained since the saved cursor (surviving
rotation, :mod:`~ipwarmup.mta.tail`), adds them to the telemetry of the open period (the
retry queue carries over in the state file), asks the policy for the next caps and writes
them into Postfix (transports, rate delays, reload) or a KumoMTA overlay. For a bundle that
reads the MTA's set-up or past periods the record is of schema version 2: its ``mta`` block
comes from the MTA's configuration (:mod:`~ipwarmup.mta.setup`), its ``history`` from the
last periods' counts, which the state file keeps beside the queue. The state file
(cursor, queue, caps in force) is replaced only after the MTA took the new configuration:
a failed reload leaves both the MTA and the state as they were, and the next run reads the
same lines again.

A drill runs the loop on a compressed clock: ``period_seconds`` of real time stand for
``period_hours``, and each logged message for ``volume_scale`` messages, so that Postfix's
whole-second rate delays can express the caps of a period that lasts seconds. In
production both are off (a period is ``period_hours`` long, a message is a message).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ipwarmup.errors import MTAError
from ipwarmup.mta.events import Event
from ipwarmup.mta.files import write_atomic
from ipwarmup.mta.kumomta_config import render_overlay
from ipwarmup.mta.kumomta_log import read_kumomta
from ipwarmup.mta.logread import ReadReport
from ipwarmup.mta.logs import MTA, guess_year
from ipwarmup.mta.postfix_config import apply_postfix, plan_transports
from ipwarmup.mta.postfix_log import read_postfix
from ipwarmup.mta.providers import PROVIDERS, ProviderMap
from ipwarmup.mta.setup import mta_block
from ipwarmup.mta.sources import Sources
from ipwarmup.mta.tail import Cursor, read_new
from ipwarmup.mta.telemetry import TelemetryBuilder
from ipwarmup.observation import LAST_PERIOD, Layout

STATE_VERSION = 1


@dataclass(frozen=True)
class ControlOptions:
    """What ``ipwarmup control`` acts on.

    Attributes:
        mta: ``postfix`` or ``kumomta``.
        log: the MTA's log file.
        sources: the dedicated pool; its ``cap_per_ip_per_hour`` are the caps in force at
            the first run and must name every provider.
        state: the controller's state file (JSON).
        postfix_config: Postfix's config_directory (Postfix only).
        postfix_command: the ``postfix`` command to run ``check`` and ``reload`` with.
        kumomta_overlay: where to write the shaping overlay (KumoMTA only).
        history: a JSON Lines file that gets one line per period, or None.
        period_seconds: drill only: real seconds a period lasts; None in production.
        volume_scale: drill only: messages each logged message stands for.
        year: the year of a Postfix log's first traditional stamp; None: guessed.
    """

    mta: MTA
    log: Path
    sources: Sources
    state: Path
    postfix_config: Path | None = None
    postfix_command: str = "postfix"
    kumomta_overlay: Path | None = None
    history: Path | None = None
    period_seconds: float | None = None
    volume_scale: float = 1.0
    year: int | None = None


def check_options(options: ControlOptions) -> None:
    """Reject options the loop cannot run with, naming the option.

    Raises:
        MTAError: a missing target, caps missing from the sources file, bad drill values.
    """
    if options.mta == "postfix" and options.postfix_config is None:
        raise MTAError("--postfix-config: required with --mta postfix")
    if options.mta == "kumomta" and options.kumomta_overlay is None:
        raise MTAError("--kumomta-overlay: required with --mta kumomta")
    missing = [p for p in PROVIDERS if p not in options.sources.cap_per_ip_per_hour]
    if missing:
        raise MTAError(
            f"--sources: cap_per_ip_per_hour must give the cap in force for every provider "
            f"(control starts from it); missing {missing}"
        )
    if not options.sources.dedicated:
        raise MTAError("--sources: dedicated: expected at least one dedicated IP, got none")
    if options.period_seconds is not None and options.period_seconds <= 0:
        raise MTAError(f"--period-seconds: expected > 0, got {options.period_seconds}")
    if options.volume_scale <= 0:
        raise MTAError(f"--volume-scale: expected > 0, got {options.volume_scale}")


class Controller:
    """Run periods against one policy (anything with ``decide`` and ``period_hours``)."""

    def __init__(self, options: ControlOptions, policy: Any, *, clock: Callable[[], float]) -> None:
        check_options(options)
        self.options = options
        self.policy = policy
        self.clock = clock
        self.period_hours = int(policy.period_hours)
        self.providers = ProviderMap(options.sources.providers)
        layout: Layout = getattr(policy, "layout", LAST_PERIOD)
        # Version-2 records (the MTA's set-up and the last K periods) for a bundle that
        # reads them; version 1, as before, for one that reads neither.
        self.needs_v2 = layout.needs_v2
        self.history_periods = layout.history_periods

    @property
    def time_factor(self) -> float:
        """Return virtual seconds per real second (1 in production)."""
        if self.options.period_seconds is None:
            return 1.0
        return self.period_hours * 3600 / self.options.period_seconds

    def real_caps(self, caps_per_ip: dict[str, float]) -> dict[str, float]:
        """Return the caps per real hour in logged messages that the MTA must enforce."""
        scale = self.time_factor / self.options.volume_scale
        return {p: cap * scale for p, cap in caps_per_ip.items()}

    def mta_block(self) -> dict[str, Any]:
        """Return the records' ``mta`` block: the MTA's set-up, read at each run."""
        options = self.options
        return mta_block(
            mta=options.mta,
            sources=options.sources,
            postfix_config=options.postfix_config,
            time_factor=self.time_factor,
        )

    def _load_state(self) -> dict[str, Any] | None:
        path = self.options.state
        if not path.exists():
            return None
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise MTAError(f"{path}: cannot read the controller state: {error}") from error
        if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
            raise MTAError(f"{path}: not a controller state of version {STATE_VERSION}")
        return state

    def configure(self, caps_per_ip: dict[str, float], note: str) -> dict[str, Any]:
        """Write caps per IP (virtual units) into the MTA; return what was written."""
        options = self.options
        real = self.real_caps(caps_per_ip)
        addresses = {name: ip.address for name, ip in options.sources.dedicated.items()}
        if options.mta == "postfix":
            assert options.postfix_config is not None
            plans = plan_transports(real, addresses)
            apply_postfix(
                options.postfix_config,
                plans,
                provider_map=self.providers,
                nexthops=options.sources.postfix_nexthop,
                command=options.postfix_command,
            )
            return {
                p.name: {
                    "rate_delay_seconds": p.rate_delay_seconds,
                    "concurrency": p.concurrency,
                    "cap_per_hour": p.cap_per_hour,
                }
                for p in plans
            }
        assert options.kumomta_overlay is not None
        text = render_overlay(real, list(addresses), header=note)
        write_atomic(options.kumomta_overlay, text)
        return {"overlay": str(options.kumomta_overlay)}

    def start(self) -> bool:
        """Write the caps in force when there is no state yet; return whether it did."""
        if self._load_state() is not None:
            return False
        caps = dict(self.options.sources.cap_per_ip_per_hour)
        self.configure(caps, "the caps in force at start (sources file)")
        now = self.clock()
        state = {
            "version": STATE_VERSION,
            "cursor": Cursor().as_dict(),
            "caps": caps,
            "runs": 0,
            "origin": self._origin(now),
            "virtual_now": now,
            "builder": None,
            "year": None,
        }
        write_atomic(self.options.state, json.dumps(state) + "\n")
        return True

    def _origin(self, now: float) -> float:
        sources = self.options.sources
        if sources.warmup_start and self.options.period_seconds is None:
            import datetime as dt

            day = dt.date.fromisoformat(sources.warmup_start)
            return dt.datetime.combine(day, dt.time(), dt.UTC).timestamp()
        return now

    def run_period(self) -> dict[str, Any]:
        """Read, decide and configure once; return the period's summary."""
        options = self.options
        self.start()
        state = self._load_state()
        assert state is not None
        cursor = Cursor(**state["cursor"])
        chunks, cursor = read_new(options.log, cursor)
        report = ReadReport(str(options.log))
        events: list[Event] = []
        for chunk in chunks:
            if options.mta == "postfix":
                if state["year"] is None:
                    year = options.year or guess_year(chunk.path, chunk.lines)
                    state["year"] = year
                events += read_postfix(
                    chunk.lines, report, year=state["year"], first_line=chunk.first_line
                )
            else:
                events += read_kumomta(chunk.lines, report, first_line=chunk.first_line)
        builder = TelemetryBuilder(
            sources=options.sources,
            period_hours=self.period_hours,
            provider_map=self.providers,
            origin=state["origin"],
            volume_scale=options.volume_scale,
            mta=self.mta_block() if self.needs_v2 else None,
            history_periods=self.history_periods,
        )
        if state["builder"] is not None:
            builder.restore(state["builder"])
        builder.origin = state["origin"]
        builder.caps = dict(state["caps"])
        builder.add(events)
        if options.period_seconds is None:
            end = self.clock()
        else:
            end = state["virtual_now"] + self.period_hours * 3600
        period = builder.close(end=end)
        decision = self.policy.decide(period.record)
        caps = {p: float(decision["providers"][p]["cap_per_ip_per_hour"]) for p in PROVIDERS}
        written = self.configure(
            caps, f"period {state['runs'] + 1}, day {period.record['time']['day']:g}"
        )
        state.update(
            cursor=cursor.as_dict(),
            caps=caps,
            runs=state["runs"] + 1,
            virtual_now=end,
            builder=builder.state(),
        )
        write_atomic(options.state, json.dumps(state) + "\n")
        summary = {
            "period": state["runs"],
            "wall_time": self.clock(),
            "record": period.record,
            "expired": period.expired,
            "caps_per_ip_per_hour": caps,
            "pool": decision["pool"],
            "guardrails": decision["guardrails"],
            "reasons": {p: decision["providers"][p]["reasons"] for p in PROVIDERS},
            "written": written,
            "read": report.as_dict(),
            "ledger": vars(builder.totals),
        }
        if options.history is not None:
            with options.history.open("a", encoding="utf-8") as out:
                out.write(json.dumps(summary) + "\n")
        return summary


def sleep_until(deadline: float, clock: Callable[[], float]) -> None:
    """Sleep until ``clock()`` reaches ``deadline``."""
    while (left := deadline - clock()) > 0:
        time.sleep(min(left, 1.0))
