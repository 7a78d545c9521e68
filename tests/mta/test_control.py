"""Control pieces: the log cursor across rotation, Postfix pacing and files, the KumoMTA overlay."""

from __future__ import annotations

import json
import stat
import tomllib
from pathlib import Path

import pytest

from ipwarmup.cli import main
from ipwarmup.errors import MTAError
from ipwarmup.mta.kumomta_config import DOCUMENTED_KEYS, overlay_keys, rate, render_overlay
from ipwarmup.mta.postfix_config import (
    BEGIN,
    END,
    apply_postfix,
    pace,
    plan_transports,
    render_main,
    render_master,
)
from ipwarmup.mta.providers import ProviderMap
from ipwarmup.mta.tail import Cursor, read_new

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def _lines(chunks: list) -> list[tuple[str, int]]:  # type: ignore[type-arg]
    return [(line, c.first_line + i) for c in chunks for i, line in enumerate(c.lines)]


def test_cursor_reads_only_new_complete_lines(tmp_path: Path) -> None:
    log = tmp_path / "maillog"
    log.write_text("a\nb\npartial")
    chunks, cursor = read_new(log, Cursor())
    assert _lines(chunks) == [("a", 1), ("b", 2)]
    with log.open("a") as out:
        out.write(" line\nc\n")
    chunks, cursor = read_new(log, cursor)
    assert _lines(chunks) == [("partial line", 3), ("c", 4)]
    chunks, cursor = read_new(log, cursor)
    assert chunks == [] and cursor.line == 4


def test_cursor_survives_rotation_and_truncation(tmp_path: Path) -> None:
    log = tmp_path / "maillog"
    log.write_text("a\nb\n")
    _, cursor = read_new(log, Cursor())
    with log.open("a") as out:
        out.write("c\nlast without newline")
    log.rename(tmp_path / "maillog.1")  # logrotate's create mode
    log.write_text("d\nd2\n")
    chunks, cursor = read_new(log, cursor)
    assert _lines(chunks) == [("c", 3), ("last without newline", 4), ("d", 1), ("d2", 2)]
    log.write_text("")  # copytruncate
    with log.open("a") as out:
        out.write("e\n")
    chunks, _ = read_new(log, cursor)
    assert _lines(chunks) == [("e", 1)]


@pytest.mark.parametrize(
    ("cap", "expected"),
    [
        (20.0, (180, 1)),
        (7.0, (515, 1)),
        (3599.0, (2, 1)),
        (3600.0, (0, 1)),
        (7201.0, (0, 3)),
        (1e9, (0, 20)),
        (0.5, (7200, 1)),
    ],
)
def test_pace_by_hand(cap: float, expected: tuple[int, int]) -> None:
    assert pace(cap) == expected


def test_pace_rejects_a_zero_cap() -> None:
    with pytest.raises(ValueError, match="expected > 0"):
        pace(0.0)


OPERATOR_MAIN = "myhostname = mta.test\ntransport_maps = texthash:/etc/postfix/own\n    hash:/x\n"


def test_main_cf_block_keeps_the_operator_settings_and_is_idempotent(tmp_path: Path) -> None:
    plans = plan_transports(
        {"gmail": 20.0, "yahoo": 7200.0, "other": 5.0, "apple": 0.0},
        {"ip1": "192.0.2.10", "ip2": "192.0.2.11"},
    )
    assert [p.name for p in plans] == [
        "ip1_gmail",
        "ip1_yahoo",
        "ip1_other",
        "ip2_gmail",
        "ip2_yahoo",
        "ip2_other",
    ]
    hops = {"gmail": "[127.0.0.1]:2525"}
    text = render_main(OPERATOR_MAIN, plans, config_dir=tmp_path, nexthops=hops)
    assert text.startswith(OPERATOR_MAIN)
    assert text.count(BEGIN) == 1 and text.rstrip().endswith(END)
    assert (
        f"transport_maps = pipemap:{{texthash:{tmp_path}/ipwarmup_domains_gmail, "
        "randmap:{ip1_gmail:[127.0.0.1]:2525, ip2_gmail:[127.0.0.1]:2525}}"
    ) in text
    assert "texthash:/etc/postfix/own hash:/x" in text  # the operator's maps come after ours
    assert "sender_dependent_default_transport_maps = randmap:{ip1_other:, ip2_other:}" in text
    assert "ip1_gmail_transport_rate_delay = 180s" in text
    assert "ip2_yahoo_transport_rate_delay = 0s" in text
    assert "ip2_yahoo_destination_concurrency_limit = 2" in text
    assert "ip1_other_transport_rate_delay = 720s" in text
    assert "ip1_gmail_destination_concurrency_failed_cohort_limit = 10" in text
    assert "apple" not in text.split(BEGIN)[1]
    again = render_main(text, plans, config_dir=tmp_path, nexthops=hops)
    assert again == text
    master = render_master("smtp unix - - y - - smtp\n", plans)
    assert master.startswith("smtp unix - - y - - smtp\n")
    assert (
        "ip1_gmail unix - - - - - smtp -o smtp_bind_address=192.0.2.10 "
        "-o syslog_name=postfix/ip1_gmail"
    ) in master
    assert render_master(master, plans) == master


def _fake_postfix(tmp_path: Path, fail_on: str) -> str:
    script = tmp_path / "fake-postfix"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$@" >> {tmp_path}/calls\n'
        f'if [ "$3" = "{fail_on}" ]; then echo "postfix: fatal: bad config" >&2; exit 1; fi\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def test_failed_reload_restores_the_previous_configuration(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "main.cf").write_text(OPERATOR_MAIN)
    (conf / "master.cf").write_text("smtp unix - - y - - smtp\n")
    plans = plan_transports({"gmail": 20.0}, {"ip1": "192.0.2.10"})
    providers = ProviderMap()
    apply_postfix(
        conf, plans, provider_map=providers, nexthops={}, command=_fake_postfix(tmp_path, "never")
    )
    good = {p.name: p.read_bytes() for p in conf.iterdir()}
    assert "ip1_gmail_transport_rate_delay = 180s" in good["main.cf"].decode()
    assert b"gmail.com gmail\n" in good["ipwarmup_domains_gmail"]
    slower = plan_transports({"gmail": 10.0}, {"ip1": "192.0.2.10"})
    with pytest.raises(
        MTAError,
        match=r"reload exited 1: postfix: fatal: bad config; the "
        r"previous configuration is restored",
    ):
        apply_postfix(
            conf,
            slower,
            provider_map=providers,
            nexthops={},
            command=_fake_postfix(tmp_path, "reload"),
        )
    assert {p.name: p.read_bytes() for p in conf.iterdir()} == good
    calls = (tmp_path / "calls").read_text().split("\n")
    assert calls[-3:-1] == [f"-c {conf} reload", f"-c {conf} reload"]  # failed, then restored


def test_overlay_round_trips_through_tomllib_with_only_documented_keys() -> None:
    caps = {"gmail": 120.7, "microsoft": 0.5, "yahoo": 20.0, "apple": 3.0, "other": 50.0}
    text = render_overlay(caps, ["ip1", "ip-2"], header="period 3")
    data = tomllib.loads(text)
    assert overlay_keys(data) <= DOCUMENTED_KEYS
    providers = data["provider"]
    assert set(providers) == {
        "ipwarmup-gmail",
        "ipwarmup-microsoft",
        "ipwarmup-yahoo",
        "ipwarmup-apple",
    }
    assert providers["ipwarmup-gmail"]["match"] == [
        {"MXSuffix": ".google.com"},
        {"MXSuffix": ".googlemail.com"},
    ]
    assert providers["ipwarmup-gmail"]["sources"]["ip-2"] == {"max_message_rate": "120/h"}
    assert providers["ipwarmup-microsoft"]["sources"]["ip1"] == {"max_message_rate": "12/d"}
    assert "other: cap 50/h per IP not expressible" in text


@pytest.mark.parametrize(
    ("cap", "spec"),
    [(1.0, "1/h"), (99.99, "99/h"), (0.5, "12/d"), (0.01, "1/d"), (2.0000000001, "2/h")],
)
def test_rate_specs(cap: float, spec: str) -> None:
    assert rate(cap) == spec


def test_control_once_on_kumomta_reads_each_line_once_across_rotation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "kumo.jsonl"
    lines = (EXAMPLES / "kumomta.jsonl").read_text().splitlines(keepends=True)
    log.write_text("".join(lines[:10]))
    overlay = tmp_path / "etc" / "ipwarmup-shaping.toml"
    args = [
        "control",
        "--mta",
        "kumomta",
        "--log",
        str(log),
        "--sources",
        str(EXAMPLES / "sources.yaml"),
        "--model",
        str(ROOT / "models" / "last-period"),
        "--once",
        "--state",
        str(tmp_path / "state.json"),
        "--kumomta-overlay",
        str(overlay),
        "--history",
        str(tmp_path / "history.jsonl"),
    ]
    assert main(args) == 0
    first = tomllib.loads(overlay.read_text())
    assert overlay_keys(first) <= DOCUMENTED_KEYS
    log.rename(tmp_path / "kumo.jsonl.1")
    log.write_text("".join(lines[10:]))
    assert main(args) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("period 1 (day ") and out[1].startswith("period 2 (day ")
    history = [json.loads(line) for line in (tmp_path / "history.jsonl").read_text().splitlines()]
    assert [h["read"]["lines"] for h in history] == [10, 11]
    ledger = history[-1]["ledger"]
    assert ledger["seen"] == 9  # the whole example, as `ipwarmup telemetry` counts it
    assert ledger == {
        "seen": 9,
        "delivered": 3,
        "bounced": 2,
        "rejected": 2,
        "expired": 1,
        "queued": 1,
    }
    demand = sum(
        h["record"]["providers"][p]["demand"] for h in history for p in h["record"]["providers"]
    )
    assert demand == 9
    caps = history[-1]["caps_per_ip_per_hour"]
    rates = tomllib.loads(overlay.read_text())["provider"]["ipwarmup-gmail"]["sources"]
    assert rates["ip1"]["max_message_rate"] == rate(caps["gmail"])


def test_control_needs_every_cap_in_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sources = tmp_path / "s.yaml"
    sources.write_text(
        "dedicated: {ip1: {address: 192.0.2.10}}\ncap_per_ip_per_hour: {gmail: 1.0}\n"
    )
    code = main(
        [
            "control",
            "--mta",
            "kumomta",
            "--log",
            str(EXAMPLES / "kumomta.jsonl"),
            "--sources",
            str(sources),
            "--model",
            str(ROOT / "models" / "last-period"),
            "--once",
            "--kumomta-overlay",
            str(tmp_path / "o.toml"),
            "--state",
            str(tmp_path / "state.json"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and len(err.splitlines()) == 1
    assert "cap_per_ip_per_hour must give the cap in force for every provider" in err
    assert not (tmp_path / "o.toml").exists() and not (tmp_path / "state.json").exists()


def test_enforced_caps_and_plans_below_one_an_hour() -> None:
    (slow,) = plan_transports({"gmail": 7.0}, {"ip1": "192.0.2.10"})
    assert slow.rate_delay_seconds == 515 and slow.enforced_per_hour == 3600 / 515
    (tiny,) = plan_transports({"yahoo": 0.5}, {"ip1": "192.0.2.10"})
    assert (tiny.name, tiny.rate_delay_seconds) == ("ip1_yahoo", 7200)
    (fast,) = plan_transports({"apple": 7200.0}, {"ip1": "192.0.2.10"})
    assert fast.enforced_per_hour == float("inf")


def test_main_cf_parameter_reading() -> None:
    from ipwarmup.mta.postfix_config import parameter

    text = "a = 1\ntransport_maps = x\n  y\n\n  z\nother = 2\ntransport_maps = last\n\tmore\nb=3\n"
    assert parameter(text, "transport_maps") == "last more"
    assert parameter("transport_maps = x\n  y\n\n  z\n", "transport_maps") == "x y"
    assert parameter("transport_maps = x\nnext = 1\n", "transport_maps") == "x"
    assert parameter("a = 1\n", "transport_maps") is None


def test_apply_keeps_the_operator_files_and_needs_them(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "master.cf").write_text("smtp unix - - y - - smtp\n")
    plans = plan_transports({"gmail": 20.0}, {"ip1": "192.0.2.10"})
    ok = _fake_postfix(tmp_path, "never")
    with pytest.raises(MTAError, match=r"conf/main\.cf: no Postfix main\.cf in the configuration"):
        apply_postfix(conf, plans, provider_map=ProviderMap(), nexthops={}, command=ok)
    (conf / "main.cf").write_text(OPERATOR_MAIN)
    apply_postfix(conf, plans, provider_map=ProviderMap(), nexthops={}, command=ok)
    assert (conf / "main.cf").read_text().startswith(OPERATOR_MAIN)
    assert (conf / "master.cf").read_text().startswith("smtp unix - - y - - smtp\n")


def test_a_failed_check_on_first_use_removes_the_new_files(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "main.cf").write_text(OPERATOR_MAIN)
    (conf / "master.cf").write_text("smtp unix - - y - - smtp\n")
    plans = plan_transports({"gmail": 20.0}, {"ip1": "192.0.2.10"})
    with pytest.raises(MTAError) as failed:
        apply_postfix(
            conf,
            plans,
            provider_map=ProviderMap(),
            nexthops={},
            command=_fake_postfix(tmp_path, "check"),
        )
    assert "check exited 1" in str(failed.value)
    assert "failed too" not in str(failed.value)  # the restored files reloaded fine
    assert sorted(p.name for p in conf.iterdir()) == ["main.cf", "master.cf"]
    assert (conf / "main.cf").read_text() == OPERATOR_MAIN
    with pytest.raises(MTAError, match="reloading the previous configuration failed too"):
        apply_postfix(
            conf,
            plans,
            provider_map=ProviderMap(),
            nexthops={},
            command=_fake_postfix(tmp_path, "reload"),
        )
