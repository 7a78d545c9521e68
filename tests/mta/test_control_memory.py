"""``ipwarmup control`` drives a bundle that remembers: a real Postfix, version-2 records.

A bundle of the default layout (the MTA's set-up and three past periods, trained for a few
hundred steps and exported, as the serving tests do) paces a private Postfix instance on
loopback, relaying to the provider emulators, for four periods of a drill's clock, one
``ipwarmup control --once`` process each. Each period's record must carry the ``mta`` block
read from this Postfix's main.cf and the previous periods' counts as ``history``, kept
across the processes in the state file; the caps written must be the bundle's decision on
that very record.
"""

from __future__ import annotations

import json
import smtplib
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ipwarmup.mta.postfix_config import pace
from ipwarmup.mta.providers import PROVIDERS
from ipwarmup.serving import load_policy
from ipwarmup.serving.telemetry import COUNT_FIELDS

from .emulator import Emulators, ProviderModel, free_port
from .postfix_instance import PostfixInstance
from .test_closed_loop import CAPS, DOMAINS, _require_postfix

pytestmark = pytest.mark.slow

PERIOD_SECONDS = 20.0
VOLUME_SCALE = 100.0
RUNS = 4
QUIET = {p: dict.fromkeys(COUNT_FIELDS, 0.0) for p in PROVIDERS}


@pytest.fixture(scope="module")
def memory_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.serving.conftest import train_bundle

    return train_bundle(tmp_path_factory.mktemp("memory"), ()).bundle


def test_control_paces_postfix_with_a_bundle_that_reads_history_and_the_mta(
    tmp_path: Path, memory_bundle: Path
) -> None:
    _require_postfix()
    policy = load_policy(memory_bundle)
    assert policy.layout.history_periods == 3 and policy.layout.mta_inputs
    model = ProviderModel(
        period_seconds=PERIOD_SECONDS, volume_scale=VOLUME_SCALE, uniforms=ProviderModel.uniforms()
    )
    with Emulators(model) as emulators, PostfixInstance(free_port()) as postfix:
        # What the records must read: 100 s of queue lifetime and 3 s of backoff at most,
        # on a clock of 4,320 virtual seconds a real one: 120 h and 3.6 h.
        postfix.set("maximal_queue_lifetime=100s", "maximal_backoff_time=3s")
        hops = {p: f"[127.0.0.1]:{port}" for p, port in emulators.ports().items()}
        sources = tmp_path / "sources.yaml"
        sources.write_text(json.dumps({"dedicated": {"ip1": {"address": "127.0.0.1"}},
                                       "cap_per_ip_per_hour": CAPS,
                                       "postfix_nexthop": hops}))  # fmt: skip
        history, state = tmp_path / "history.jsonl", tmp_path / "state.json"
        command = [
            sys.executable, "-m", "ipwarmup.cli", "control", "--once", "--mta", "postfix",
            "--log", str(postfix.maillog), "--sources", str(sources),
            "--model", str(memory_bundle), "--period-seconds", str(PERIOD_SECONDS),
            "--volume-scale", str(VOLUME_SCALE), "--postfix-config", str(postfix.conf),
            "--postfix-command", postfix.postfix, "--state", str(state),
            "--history", str(history),
        ]  # fmt: skip
        n = 0
        for _ in range(RUNS):
            with smtplib.SMTP("127.0.0.1", postfix.port, timeout=30) as client:
                for provider in PROVIDERS:
                    for _ in range(2):
                        n += 1
                        rcpt = f"user{n}@{DOMAINS[provider]}"
                        client.sendmail("", [rcpt], f"Subject: {n}\r\n\r\nhello {n}\r\n")
            time.sleep(3)  # Postfix logs the mail and makes its first attempts
            done = subprocess.run(command, capture_output=True, text=True, timeout=180)
            assert done.returncode == 0, done.stderr
        main_cf = (postfix.conf / "main.cf").read_text()

    runs = [json.loads(line) for line in history.read_text().splitlines()]
    records = [run["record"] for run in runs]
    assert [r["schema_version"] for r in records] == [2] * RUNS
    assert [r["time"]["day"] for r in records] == [1.0, 2.0, 3.0, 4.0]
    for record in records:
        assert record["mta"] == {"overflow": "queue", "max_age_hours": 120,
                                 "retry_interval_hours": 3.6}  # fmt: skip
    # History: the previous periods, most recent first, across four processes; before
    # the first period, a quiet one (as many as the warmup's age asks for, at most 3).
    past = [r["providers"] for r in records]
    assert records[0]["history"] == [QUIET]
    assert records[1]["history"] == [past[0], QUIET]
    assert records[2]["history"] == [past[1], past[0], QUIET]
    assert records[3]["history"] == [past[2], past[1], past[0]]
    assert json.loads(state.read_text())["builder"]["recent"] == past[::-1][:3]
    # Mail flowed: the 40 messages were seen (as demand of 100 each) in some period.
    demand = sum(p[name]["demand"] for p in past for name in PROVIDERS)
    assert 100.0 <= demand <= 40 * VOLUME_SCALE
    assert past[0]["gmail"]["demand"] >= 100.0
    # The caps written are the bundle's decision on that very record.
    for run, record in zip(runs, records, strict=True):
        decision = policy.decide(record)
        caps = {p: decision["providers"][p]["cap_per_ip_per_hour"] for p in PROVIDERS}
        assert run["caps_per_ip_per_hour"] == caps
        assert run["reasons"]["gmail"][0].startswith("policy: x")
    # And the last ones are in Postfix's main.cf as rate delays (43.2 real per virtual).
    scale = 24 * 3600 / PERIOD_SECONDS / VOLUME_SCALE
    for provider, cap in runs[-1]["caps_per_ip_per_hour"].items():
        delay = pace(cap * scale)[0]
        assert f"ip1_{provider}_transport_rate_delay = {delay}s" in main_cf


def test_shadow_replays_a_log_for_a_bundle_that_reads_history_and_the_mta(
    tmp_path: Path, memory_bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ipwarmup.cli import main
    from ipwarmup.mta.commands import periods_from_log

    from .cli_args import EDGE_CASES, SOURCES, mta_args

    report = tmp_path / "shadow.json"
    args = mta_args("shadow", model=memory_bundle, json=report, year=2026)
    assert main(args) == 0, capsys.readouterr().err
    rows = json.loads(report.read_text())["periods"]
    policy = load_policy(memory_bundle)
    periods, *_ = periods_from_log("postfix", EDGE_CASES, SOURCES, 24, 2026, policy.layout)
    assert len(rows) == len(periods) == 2
    first, second = (p.record for p in periods)
    # No main.cf beside a log: postconf(5)'s defaults, 5 days and 4000 s.
    assert second["mta"] == {"overflow": "queue", "max_age_hours": 120,
                             "retry_interval_hours": 4000 / 3600}  # fmt: skip
    assert second["history"][0] == first["providers"]
    for row, record in zip(rows, (first, second), strict=True):
        decision = policy.decide(record)
        assert {p: row["providers"][p]["policy_cap_per_ip_per_hour"] for p in PROVIDERS} == {
            p: decision["providers"][p]["cap_per_ip_per_hour"] for p in PROVIDERS
        }
