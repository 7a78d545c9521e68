"""Telemetry from MTA logs: counts per period by hand, valid for decide, the CLI contract."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ipwarmup.cli import main
from ipwarmup.mta.events import Event
from ipwarmup.mta.providers import PROVIDERS, ProviderMap
from ipwarmup.mta.sources import load_sources
from ipwarmup.mta.telemetry import TelemetryBuilder, Totals, build_periods
from ipwarmup.serving import load_policy

from .cli_args import mta_args

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
FIELDS = (
    "demand",
    "sent_dedicated",
    "accepted",
    "deferred",
    "rejected",
    "bounced",
    "queued",
    "sent_shared",
)


def _rows(record: dict) -> dict[str, tuple[float, ...]]:  # type: ignore[type-arg]
    return {p: tuple(record["providers"][p][f] for f in FIELDS) for p in PROVIDERS}


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_postfix_example_by_hand(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, *mta_args("telemetry", year=2026))
    assert code == 0
    first, second = (json.loads(line) for line in out.splitlines())
    # Counted by hand from examples/postfix-edge-cases.log, line by line:
    # gmail: ann, cy, lee (a Google-hosted domain, by its MX) accepted, bob deferred.
    # microsoft: dan deferred (S775), eve rejected (S3150), kim accepted (map override).
    # yahoo: one per-MX TSS04 and fay's TSS04 deferred, gus rejected (TSS09).
    # apple, shared: hal accepted, ivy bounced (5.1.1). other: jo accepted on ip2.
    assert _rows(first) == {
        "gmail": (4, 4, 3, 1, 0, 0, 1, 0),
        "microsoft": (3, 3, 1, 1, 1, 0, 1, 0),
        "yahoo": (2, 3, 0, 2, 1, 0, 1, 0),
        "apple": (2, 0, 0, 0, 0, 1, 0, 2),
        "other": (1, 1, 1, 0, 0, 0, 0, 0),
    }
    # Day 2: bob delivered, dan deferred again, fay's message expired.
    assert _rows(second) == {
        "gmail": (0, 1, 1, 0, 0, 0, 0, 0),
        "microsoft": (0, 1, 0, 1, 0, 0, 1, 0),
        "yahoo": (0, 0, 0, 0, 0, 0, 0, 0),
        "apple": (0, 0, 0, 0, 0, 0, 0, 0),
        "other": (0, 0, 0, 0, 0, 0, 0, 0),
    }
    # Periods end at midnight UTC; warmup_start 2026-11-23; ip2 started 2026-11-25.
    assert first["time"] == {"day": 6.0, "weekday": 6, "hour": 0}
    assert first["pool"] == {"dedicated_ips": 2, "mean_ip_age_days": 5.0}
    assert second["time"]["day"] == 7.0
    assert first["providers"]["gmail"]["dedicated_cap_per_hour"] == 80.0  # 40 a IP x 2
    lines = err.splitlines()
    assert lines[0] == (
        f"{EXAMPLES / 'postfix-edge-cases.log'}: 28 lines read, 16 used, 12 skipped (blank 1, "
        "malformed 3, not a remote delivery 1, not postfix 1, other postfix "
        "event 5, per-MX reply without a later status line 1)"
    )
    assert [line.split(": malformed")[0].rsplit(":", 1)[1] for line in lines[1:4]] == [
        "21",
        "22",
        "23",
    ]
    assert lines[-1] == (
        "recipients: 12 seen = 7 delivered + 1 bounced + 2 rejected + 1 expired + 1 still queued"
    )


def test_kumomta_example_writes_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_file = tmp_path / "t.jsonl"
    code, out, err = _run(
        capsys, *mta_args("telemetry", mta="kumomta", log=EXAMPLES / "kumomta.jsonl", out=out_file)
    )
    assert code == 0 and out == ""
    first, second = (json.loads(line) for line in out_file.read_text().splitlines())
    assert _rows(first) == {
        "gmail": (2, 2, 1, 1, 0, 0, 1, 0),
        "microsoft": (2, 2, 0, 1, 1, 0, 1, 0),
        "yahoo": (2, 2, 0, 1, 1, 0, 1, 0),
        "apple": (3, 0, 0, 0, 0, 2, 0, 3),
        "other": (0, 0, 0, 0, 0, 0, 0, 0),
    }
    assert _rows(second)["gmail"] == (0, 1, 1, 0, 0, 0, 0, 0)
    assert _rows(second)["yahoo"] == (0, 1, 0, 1, 0, 0, 1, 0)
    assert "21 lines read, 16 used, 5 skipped" in err
    assert "recipients: 9 seen = 3 delivered + 2 bounced + 2 rejected + 1 expired + 1 still" in err


@pytest.mark.parametrize("name", ["postfix-edge-cases.log", "kumomta.jsonl"])
def test_every_example_record_is_decided(name: str) -> None:
    sources = load_sources(EXAMPLES / "sources.yaml")
    from ipwarmup.mta.logs import read_events

    events, _ = read_events(
        "postfix" if name.endswith(".log") else "kumomta", EXAMPLES / name, year=2026
    )
    periods, totals = build_periods(
        events, sources=sources, period_hours=24, provider_map=ProviderMap(sources.providers)
    )
    policy = load_policy(ROOT / "models" / "last-period")
    for period in periods:
        decision = policy.decide(period.record)
        assert set(decision["providers"]) == set(PROVIDERS)
    assert totals.balanced()


def test_empty_periods_are_filled_and_the_queue_carries_over() -> None:
    sources = load_sources(EXAMPLES / "sources.yaml")
    builder = TelemetryBuilder(sources=sources, period_hours=6, provider_map=ProviderMap())
    t0 = 1795824000.0  # 2026-11-28T00:00Z
    closed = builder.feed(
        [
            Event(
                1, t0 + 60, "attempt", "m1", "a@gmail.com", route="ip1_gmail", outcome="deferred"
            ),
            Event(
                2,
                t0 + 3 * 6 * 3600 + 5,
                "attempt",
                "m1",
                "a@gmail.com",
                route="ip1_gmail",
                outcome="accepted",
            ),
        ]
    )
    assert [p.record["providers"]["gmail"]["queued"] for p in closed] == [1, 1, 1]
    assert [p.record["time"]["hour"] for p in closed] == [6, 12, 18]
    last = builder.close()
    assert last.record["providers"]["gmail"]["accepted"] == 1
    assert last.record["providers"]["gmail"]["demand"] == 0
    assert builder.totals.delivered == 1 and builder.totals.balanced()


def test_cap_defaults_to_the_busiest_hour_when_the_sources_give_none(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text("dedicated: {ip1: {address: 192.0.2.10}}\n")
    sources = load_sources(tmp_path / "s.yaml")
    t0 = 1795824000.0
    events = [
        Event(
            i, t0 + i, "attempt", f"m{i}", f"u{i}@gmail.com", route="ip1_gmail", outcome="accepted"
        )
        for i in range(5)
    ]
    events += [
        Event(
            9, t0 + 3600 + 1, "attempt", "n", "x@gmail.com", route="ip1_gmail", outcome="accepted"
        )
    ]
    (period,), _ = build_periods(
        events, sources=sources, period_hours=24, provider_map=ProviderMap()
    )
    assert period.record["providers"]["gmail"]["dedicated_cap_per_hour"] == 5.0
    assert period.record["providers"]["yahoo"]["dedicated_cap_per_hour"] == 0.0
    assert period.record["time"]["day"] == 1.0  # no warmup_start: the first event's midnight


@pytest.mark.parametrize(
    ("sources", "expected"),
    [
        ("dedicated: {IP 1: {address: x}}\n", "s.yaml: dedicated.IP 1: expected a name of"),
        ("warmup_start: 11/23\n", "s.yaml: warmup_start: expected a date YYYY-MM-DD, got '11/23'"),
        (
            "cap_per_ip_per_hour: {hotmail: 3.0}\n",
            "s.yaml: cap_per_ip_per_hour: unknown provider 'hotmail'",
        ),
        (
            "dedicated: {ip1: {adress: x}}\n",
            "s.yaml: dedicated.ip1.adress: unknown key; did you mean 'address'?",
        ),
        ("[1, 2]\n", "s.yaml: expected a mapping at the top level"),
    ],
)
def test_bad_sources_file_exits_2_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sources: str, expected: str
) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(sources)
    code, out, err = _run(capsys, *mta_args("telemetry", sources=path))
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1
    assert err.startswith(f"ipwarmup: error: {tmp_path}/{expected}")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--log", "/nonexistent.log"],
            "ipwarmup: error: --log: no log file at '/nonexistent.log'",
        ),
        (
            ["--period-hours", "5"],
            "ipwarmup: error: --period-hours: expected a divisor of 24, got 5",
        ),
        (["--mta", "exim"], "ipwarmup: error: argument --mta: invalid choice: 'exim'"),
    ],
)
def test_bad_arguments_exit_2(
    capsys: pytest.CaptureFixture[str], args: list[str], expected: str
) -> None:
    base = {
        "--mta": "postfix",
        "--log": str(EXAMPLES / "postfix-edge-cases.log"),
        "--sources": str(EXAMPLES / "sources.yaml"),
    }
    base.update(dict(zip(args[::2], args[1::2], strict=True)))
    code, _, err = _run(capsys, "telemetry", *[x for kv in base.items() for x in kv])
    assert code == 2 and err.startswith(expected) and len(err.splitlines()) == 1


def test_the_closed_loop_example_log_matches_the_emulators_counts() -> None:
    """examples/postfix.log is a real run's log; postfix-loop.json what the emulators answered."""
    from ipwarmup.mta.logs import read_events
    from ipwarmup.mta.telemetry import per_provider

    answers = json.loads((EXAMPLES / "postfix-loop.json").read_text())["answers"]
    events, report = read_events("postfix", EXAMPLES / "postfix.log", year=2026)
    assert report.malformed == [] and report.lines == report.used + sum(report.skipped.values())
    sources = load_sources(EXAMPLES / "sources.yaml")
    periods, totals = build_periods(
        events, sources=sources, period_hours=1, provider_map=ProviderMap(sources.providers)
    )
    for field in ("accepted", "deferred", "rejected"):
        counted = per_provider(periods, field)
        assert {p: int(counted[p]) for p in PROVIDERS} == {
            p: answers[p].get(field, 0) for p in PROVIDERS
        }, field
    assert sum(answers["microsoft"].get(k, 0) for k in ("deferred", "rejected")) > 0
    assert totals.balanced() and len(periods) >= 1


def test_shared_answers_expiry_and_volume_scale_by_hand() -> None:
    sources = load_sources(EXAMPLES / "sources.yaml")
    builder = TelemetryBuilder(
        sources=sources, period_hours=24, provider_map=ProviderMap(), volume_scale=10.0
    )
    t0 = 1795824000.0
    builder.add(
        [
            Event(1, t0 + 1, "attempt", "m1", "a@yahoo.com", route="smtp", outcome="deferred"),
            Event(2, t0 + 2, "attempt", "m2", "b@yahoo.com", route="smtp", outcome="rejected"),
            Event(3, t0 + 3, "attempt", "m3", "c@yahoo.com", route="ip1_yahoo", outcome="deferred"),
            Event(4, t0 + 4, "expired", "m3"),
            Event(5, t0 + 5, "received", "m4", "d@yahoo.com"),
        ]
    )
    period = builder.close()
    yahoo = period.record["providers"]["yahoo"]
    assert (yahoo["demand"], yahoo["sent_dedicated"], yahoo["deferred"], yahoo["queued"]) == (
        40.0,
        10.0,
        10.0,
        20.0,
    )  # m1 still deferred, m4 received: 2 queued x 10
    assert period.shared_deferred == {"yahoo": 1} and period.shared_rejected == {"yahoo": 1}
    assert period.expired == {"yahoo": 1}
    assert builder.totals == Totals(seen=4, rejected=1, expired=1, queued=2)
    assert period.record["time"]["day"] == 6.0  # warmup_start 2026-11-23, period ends 11-29


@pytest.mark.parametrize("hours", [0, 5, 48])
def test_period_hours_must_divide_a_day(hours: int) -> None:
    sources = load_sources(EXAMPLES / "sources.yaml")
    with pytest.raises(ValueError, match=f"expected a divisor of 24, got {hours}"):
        TelemetryBuilder(sources=sources, period_hours=hours, provider_map=ProviderMap())


def test_close_without_events_or_end_is_refused() -> None:
    builder = TelemetryBuilder(
        sources=load_sources(EXAMPLES / "sources.yaml"), period_hours=24, provider_map=ProviderMap()
    )
    with pytest.raises(ValueError, match="no period is open"):
        builder.close()
