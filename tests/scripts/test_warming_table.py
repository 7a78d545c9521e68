"""scripts/warming_table.py: the README's warming table from a hand-made evaluate report."""

import json

import numpy as np
import pytest


@pytest.fixture(scope="module")
def warming(load_script):
    return load_script("warming_table")


def _seeds(total, final=(0.0, 0.0, 0.0, 0.0)):
    return {"total_inbox_share": list(total), "final_dedicated_share": list(final)}


REPORT = {
    "scenarios": ["a", "b"],
    "per_seed": {
        # Seeds are paired: the oracle leads by 0.1, 0.1, 0.2, 0.0 on a (mean 0.1).
        "oracle": {
            "a": _seeds([0.8, 0.7, 0.9, 0.6], [1.0, 1.0, 0.9, 0.9]),
            "b": _seeds([0.5, 0.5, 0.5, 0.5]),
        },
        "hold-shared": {"a": _seeds([0.7, 0.6, 0.7, 0.6]), "b": _seeds([0.5, 0.5, 0.5, 0.5])},
        "aimd": {"a": _seeds([0.6, 0.6, 0.6, 0.6]), "b": _seeds([0.4, 0.4, 0.4, 0.4])},
    },
}


def test_the_table_by_hand(warming, tmp_path, capsys) -> None:
    path = tmp_path / "eval.json"
    path.write_text(json.dumps(REPORT))
    warming.main([str(path)])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (
        "| scenario | oracle | hold-shared | aimd | oracle final_dedicated_share "
        "| oracle - hold-shared [95%] |"
    )
    assert lines[1] == "|---|---|---|---|---|---|"
    # a: means 0.75, 0.65, 0.60; final share 0.95; the lead's resampled means run from 0.0
    # (all four seeds the 0.0 one) to 0.2: the interval sits inside [0.0, 0.2].
    cells = lines[2].split(" | ")
    assert cells[:5] == ["| `a`", "0.750", "0.650", "0.600", "0.95"]
    assert cells[5].startswith("+0.100 [")
    low, high = (float(x) for x in cells[5][8:-3].split(", "))
    assert 0.0 <= low < 0.1 < high <= 0.2
    assert lines[3] == "| `b` | 0.500 | 0.500 | 0.400 | 0.00 | +0.000 [+0.000, +0.000] |"
    # Overall: the mean of scenario means, 0.625, 0.575, 0.5; the lead 0.05.
    assert lines[4].startswith("| overall | 0.625 | 0.575 | 0.500 | 0.47 | +0.050 [")
    assert len(lines) == 5


def test_paired_lead_is_seed_by_seed(warming) -> None:
    # Unpaired, these two would overlap wholly; paired, every seed leads by exactly 0.01.
    ours = np.array([0.51, 0.91, 0.31, 0.71])
    mean, low, high = warming.paired_lead(ours, ours - 0.01)
    assert (mean, low, high) == pytest.approx((0.01, 0.01, 0.01))


def test_a_report_without_hold_shared_says_so(warming) -> None:
    report = {"scenarios": ["a"], "per_seed": {"oracle": REPORT["per_seed"]["oracle"]}}
    with pytest.raises(SystemExit, match="expected a policy 'hold-shared', got \\['oracle'\\]"):
        warming.table(report)
