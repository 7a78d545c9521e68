"""Shadow mode on the example log: the policy's caps beside fixed-sendgrid, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ipwarmup.agents.baselines import SENDGRID_HOURLY_CAPS
from ipwarmup.cli import main
from ipwarmup.mta.providers import PROVIDERS
from ipwarmup.mta.shadow import sendgrid_caps

from .cli_args import MODEL, mta_args

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def test_sendgrid_caps_split_the_day_cap_by_demand() -> None:
    providers = {p: {"demand": 0.0} for p in PROVIDERS}
    providers["gmail"]["demand"] = 30.0
    providers["yahoo"]["demand"] = 10.0
    record = {"time": {"day": 2.4}, "pool": {"dedicated_ips": 3}, "providers": providers}
    caps = sendgrid_caps(record)
    assert caps["gmail"] == pytest.approx(39 * 3 * 0.75)  # day 2: 39 an hour per IP
    assert caps["yahoo"] == pytest.approx(39 * 3 * 0.25)
    assert caps["apple"] == 0.0
    record["time"]["day"] = 500.0  # past the schedule: its last entry holds
    assert sendgrid_caps(record)["gmail"] == pytest.approx(SENDGRID_HOURLY_CAPS[-1] * 3 * 0.75)


def test_shadow_replays_the_example_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "shadow.json"
    code = main(mta_args("shadow", model=MODEL, year=2026, json=out))
    text, err = capsys.readouterr()
    assert code == 0
    data = json.loads(out.read_text())
    first, second = data["periods"]
    assert (first["start"], first["end"]) == ("2026-11-28T00:00:00Z", "2026-11-29T00:00:00Z")
    gmail = first["providers"]["gmail"]
    assert (gmail["sent_dedicated"], gmail["deferred"], gmail["cap_in_force_per_hour"]) == (
        4,
        1,
        80,
    )
    # Day 6 of SendGrid's table is 151 an hour per IP; 2 IPs; gmail had 4 of 12 recipients.
    assert gmail["fixed_sendgrid_cap_per_hour"] == pytest.approx(151 * 2 * 4 / 12)
    # Microsoft answered one 5xx block (S3150): the policy cuts its cap, and says why.
    microsoft = first["providers"]["microsoft"]
    assert microsoft["rejected"] == 1
    assert microsoft["policy_cap_per_hour"] < microsoft["cap_in_force_per_hour"]
    assert any("block" in reason for reason in microsoft["reasons"])
    assert first["pool"]["action"] in ("grow", "hold", "shrink")
    assert data["ledger"]["seen"] == 12
    lines = text.splitlines()
    assert lines[0].startswith("2026-11-28T00:00 -> 2026-11-29T00:00  day 6  pool 2 IPs: ")
    assert lines[1].split() == [
        "provider",
        "demand",
        "sent",
        "accepted",
        "deferred",
        "rejected",
        "cap/h",
        "policy/h",
        "sendgrid/h",
    ]
    assert lines[2].split()[:7] == ["gmail", "4", "4", "3", "1", "0", "80.0"]
    assert second["day"] == 7.0
    assert "28 lines read, 16 used" in err


def test_shadow_without_a_bundle_exits_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code = main(mta_args("shadow", model=tmp_path))
    _, err = capsys.readouterr()
    assert code == 2 and err.startswith("ipwarmup: error: ") and len(err.splitlines()) == 1
