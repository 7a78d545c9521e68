"""The closed loop: a real Postfix paced by ``ipwarmup control``, providers played on loopback.

A private Postfix instance relays to aiosmtpd servers that answer like Gmail, Microsoft,
Yahoo, Apple and the rest, driven by the simulator's provider model on a compressed clock
(a day lasts PERIOD_SECONDS; tests/mta/emulator.py). A load generator submits mail over
SMTP; ``ipwarmup control --every`` reads the Postfix log, runs the shipped policy and
rewrites Postfix's transports and rate delays each period. The test checks that the log's
counts equal the emulators' own, that every submitted message is delivered, rejected,
bounced or still in the queue, and that after each cut of a provider's cap Postfix sends
fewer attempts there and meets no more deferrals than before.
"""

from __future__ import annotations

import itertools
import json
import os
import pwd
import shutil
import smtplib
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ipwarmup.mta.logs import read_events
from ipwarmup.mta.postfix_config import pace
from ipwarmup.mta.providers import PROVIDERS, ProviderMap
from ipwarmup.mta.sources import load_sources
from ipwarmup.mta.telemetry import build_periods, per_provider

from .emulator import Emulators, ProviderModel, free_port
from .postfix_instance import PostfixInstance

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PERIOD_SECONDS = 20.0
PERIODS = 4
VOLUME_SCALE = 100.0
# Caps in force at the start, per IP and (simulated) hour. With this clock a cap C is a
# Postfix rate delay of ceil(0.83 x 100 / C) s: 100/h is one delivery a second.
CAPS = {"gmail": 60.0, "microsoft": 40.0, "yahoo": 60.0, "apple": 30.0, "other": 60.0}
# Real messages submitted per period: more than the caps let through, so the queue never runs dry.
DEMAND = {"gmail": 14, "microsoft": 24, "yahoo": 14, "apple": 8, "other": 10}
DOMAINS = {
    "gmail": "gmail.com",
    "microsoft": "outlook.com",
    "yahoo": "yahoo.com",
    "apple": "icloud.com",
    "other": "example.org",
}


def _require_postfix() -> None:
    problem = None
    if shutil.which("postfix") is None and not Path("/usr/sbin/postfix").exists():
        problem = "postfix is not installed (scripts/test installs it from Debian's packages)"
    elif os.geteuid() != 0:
        problem = "starting a private Postfix instance needs root"
    else:
        try:
            pwd.getpwnam("postfix")
        except KeyError:
            problem = "no 'postfix' user (the Debian package creates it)"
    if problem is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the closed-loop test must run in CI: {problem}")
        pytest.skip(problem)


def _load(port: int, stop: threading.Event, submitted: dict[str, int]) -> None:
    """Submit DEMAND per period, spread evenly, with the null sender (no bounce mail)."""
    plan = [p for p in PROVIDERS for _ in range(DEMAND[p])]
    plan = [plan[i] for i in sorted(range(len(plan)), key=lambda i: (i * 7919) % len(plan))]
    gap = PERIOD_SECONDS / len(plan)
    n = 0
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        for _ in range(PERIODS):
            for provider in plan:
                if stop.is_set():
                    return
                n += 1
                rcpt = f"user{n}@{DOMAINS[provider]}"
                client.sendmail("", [rcpt], f"Subject: warmup {n}\r\n\r\nhello {n}\r\n")
                submitted[provider] += 1
                time.sleep(gap)


def _delay(runs: list[dict], period: int, transport: str) -> int:  # type: ignore[type-arg]
    """Return the rate delay in force during ``period + 1`` (period 0: the starting caps)."""
    if period == 0:
        real_per_hour = CAPS[transport.split("_", 1)[1]] * 24 * 3600 / PERIOD_SECONDS
        return pace(real_per_hour / VOLUME_SCALE)[0]
    return int(runs[period - 1]["written"][transport]["rate_delay_seconds"])


def test_closed_loop_with_a_real_postfix(tmp_path: Path) -> None:
    _require_postfix()
    uniforms = ProviderModel.uniforms(0.5)
    model = ProviderModel(
        period_seconds=PERIOD_SECONDS, volume_scale=VOLUME_SCALE, uniforms=uniforms
    )
    submitted = dict.fromkeys(PROVIDERS, 0)
    stop = threading.Event()
    with Emulators(model) as emulators, PostfixInstance(free_port()) as postfix:
        hops = {p: f"[127.0.0.1]:{port}" for p, port in emulators.ports().items()}
        sources = tmp_path / "sources.yaml"
        sources.write_text(
            json.dumps(
                {
                    "dedicated": {"ip1": {"address": "127.0.0.1"}},
                    "cap_per_ip_per_hour": CAPS,
                    "postfix_nexthop": hops,
                }
            )
        )
        history = tmp_path / "history.jsonl"
        control = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ipwarmup.cli",
                "control",
                "--mta",
                "postfix",
                "--log",
                str(postfix.maillog),
                "--sources",
                str(sources),
                "--model",
                str(ROOT / "models" / "default"),
                "--every",
                str(PERIOD_SECONDS / 3600),
                "--runs",
                str(PERIODS),
                "--period-seconds",
                str(PERIOD_SECONDS),
                "--volume-scale",
                str(VOLUME_SCALE),
                "--postfix-config",
                str(postfix.conf),
                "--postfix-command",
                postfix.postfix,
                "--state",
                str(tmp_path / "state.json"),
                "--history",
                str(history),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert control.stdout is not None
        first = control.stdout.readline()
        assert first.startswith("control: wrote the caps in force"), first + control.stderr.read()
        load = threading.Thread(target=_load, args=(postfix.port, stop, submitted))
        load.start()
        try:
            out, err = control.communicate(timeout=PERIODS * PERIOD_SECONDS + 120)
        finally:
            stop.set()
            load.join(timeout=60)
            if control.poll() is None:
                control.kill()
        assert control.returncode == 0, err
        assert [line.split(" (")[0] for line in out.splitlines()] == [
            f"period {k}" for k in range(1, PERIODS + 1)
        ]
        # Quiesce: no new deliveries start, the ones under way finish, then count.
        transports = ",".join(f"ip1_{p}" for p in PROVIDERS)
        postfix.set(f"defer_transports = {transports}")
        postfix.run("reload")
        time.sleep(3)
        answers = model.counts()
        queued = postfix.queued()
        shutil.copy(postfix.maillog, tmp_path / "maillog")

    runs = [json.loads(line) for line in history.read_text().splitlines()]
    (tmp_path / "diagnostics.json").write_text(
        json.dumps(
            {
                "answers": answers,
                "submitted": submitted,
                "queued": queued,
                "caps": [r["caps_per_ip_per_hour"] for r in runs],
                "records": [r["record"]["providers"] for r in runs],
            }
        )
    )
    keep = os.environ.get("IPWARMUP_LOOP_ARTIFACTS")
    if keep:  # how examples/postfix.log and examples/postfix-loop.json were made
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp_path / "maillog", Path(keep) / "postfix.log")
        shutil.copy(tmp_path / "diagnostics.json", Path(keep) / "postfix-loop.json")
    events, report = read_events("postfix", tmp_path / "maillog")
    assert report.malformed == []
    loaded = load_sources(sources)
    periods, ledger = build_periods(
        events, sources=loaded, period_hours=24, provider_map=ProviderMap()
    )
    # The log's counts equal the emulators' own, provider by provider.
    for field, answered in (
        ("accepted", "accepted"),
        ("deferred", "deferred"),
        ("rejected", "rejected"),
    ):
        from_log = per_provider(periods, field)
        assert {p: int(from_log[p]) for p in PROVIDERS} == {
            p: answers[p].get(answered, 0) for p in PROVIDERS
        }, field
    # Every submitted message is delivered, rejected, bounced or still queued.
    total = sum(submitted.values())
    assert total >= 0.95 * sum(DEMAND.values()) * PERIODS  # the load ran all along
    assert ledger.expired == 0
    assert total == ledger.delivered + ledger.rejected + ledger.bounced + queued, (ledger, queued)
    assert ledger.queued <= queued  # the queue also holds mail never attempted yet
    assert sum(a.get("deferred", 0) for a in answers.values()) > 0
    # After each cut of a provider's cap, Postfix sends fewer attempts there and meets no
    # more deferrals than in the period that led to the cut.
    assert [r["period"] for r in runs] == list(range(1, PERIODS + 1))
    cuts = 0
    for before, after in itertools.pairwise(runs):
        for p in PROVIDERS:
            cap_in_force = before["record"]["providers"][p]["dedicated_cap_per_hour"]
            if before["caps_per_ip_per_hour"][p] >= cap_in_force:
                continue
            # A cut Postfix can express lengthens the transport's rate delay (0 = unpaced).
            transport = f"ip1_{p}"
            delay_then = _delay(runs, before["period"] - 1, transport)
            delay_now = before["written"][transport]["rate_delay_seconds"]
            if not (delay_then == 0 < delay_now or 0 < delay_then < delay_now):
                continue
            cuts += 1
            seen, next_seen = before["record"]["providers"][p], after["record"]["providers"][p]
            assert next_seen["sent_dedicated"] < seen["sent_dedicated"], (p, before, after)
            assert next_seen["deferred"] <= seen["deferred"], (p, before, after)
    assert cuts >= 1, "the policy never cut a cap: the loop was not exercised"
