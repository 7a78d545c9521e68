"""scripts/versus_table.py: one policy's paired lead over every other, from a made-up report."""

import json
import re

import pytest


@pytest.fixture(scope="module")
def versus(load_script):
    return load_script("versus_table")


def _seeds(objective, inbox, lost=(0.0, 0.0, 0.0, 0.0)):
    total = [v + 0.01 for v in inbox]
    return {
        "objective": list(objective),
        "inbox_share": list(inbox),
        "total_inbox_share": total,
        "lost_share": list(lost),
    }


REPORT = {
    "suite": "made-up",
    "seeds": 4,
    "scenarios": ["a", "b"],
    "per_seed": {
        # Paired seeds. Against fixed-sendgrid ours leads the objective by 0.1 on every seed
        # of a and b (mean +0.1, every resample +0.1), and inbox_share by +0.2, -0.2, 0, 0
        # on a and 0 on b (mean 0: the interval straddles zero).
        "ours": {
            "a": _seeds([0.6, 0.6, 0.6, 0.6], [0.7, 0.3, 0.5, 0.5], [0.0, 0.0, 0.02, 0.0]),
            "b": _seeds([0.5, 0.5, 0.5, 0.5], [0.4, 0.4, 0.4, 0.4], [0.01, 0.01, 0.01, 0.01]),
        },
        "fixed-sendgrid": {
            "a": _seeds([0.5, 0.5, 0.5, 0.5], [0.5, 0.5, 0.5, 0.5], [0.0, 0.0, 0.0, 0.0]),
            "b": _seeds([0.4, 0.4, 0.4, 0.4], [0.4, 0.4, 0.4, 0.4], [0.04, 0.0, 0.0, 0.0]),
        },
    },
}


def test_the_lead_is_the_paired_mean_with_a_star_only_above_zero(versus) -> None:
    header, row, note = versus.lead_lines(REPORT, "ours")
    assert header.split() == ["versus", "objective", "inbox_share", "total_inbox_share"]
    assert row.startswith("fixed-sendgrid")
    cells = row[len("fixed-sendgrid") :].split("*")
    # objective: +0.1 on every seed, so its interval is the point, above zero: starred.
    assert cells[0].strip() == "+0.1000 [+0.1000, +0.1000]"
    # inbox_share: mean 0 (scenario a: +0.2, -0.2, 0, 0; b: 0), no star; total_inbox_share
    # moves with it (both policies have +0.01).
    mean, low, high = (float(v) for v in re.findall(r"[-+]\d\.\d{4}", cells[1])[:3])
    assert abs(mean) < 1e-9 and low < 0 < high and row.count("*") == 1
    assert note == "* the 95% interval is above zero"


def test_lost_mail_is_flagged_where_it_is_worse_than_the_reference(versus) -> None:
    header, a, b = versus.lost_lines(REPORT, "ours")
    assert header.split() == ["scenario", "policy", "fixed-sendgrid"]
    # a: ours loses 0.02 on one seed of four (0.005) against none.
    assert a.split() == ["a", "0.0050", "0.0000", "loses", "more"]
    # b: 0.01 on every seed against 0.04 on one (both 0.01): not more.
    assert b.split() == ["b", "0.0100", "0.0100"]


def test_the_command_prints_both_tables_and_refuses_an_unknown_policy(
    versus, tmp_path, capsys
) -> None:
    path = tmp_path / "eval.json"
    path.write_text(json.dumps(REPORT))
    assert versus.main([str(path), "--policy", "ours"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ours on made-up, 4 paired seeds per scenario\n")
    assert "loses more" in out and "fixed-sendgrid" in out

    assert versus.main([str(path), "--policy", "theirs"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "--policy: expected one of ours, fixed-sendgrid, got 'theirs'"
