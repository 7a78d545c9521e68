"""The gap-closed tables of an evaluation report, pinned on a report made by hand."""

from ipwarmup.training.report import _gap_lines


def _entry(mean, low=None, high=None, gap=0.05):
    return {"mean": mean, "ci_low": low, "ci_high": high, "gap": gap}


NONE = _entry(None, gap=0.001)


def _data():
    return {
        "reference": "fixed-sendgrid",
        "ceiling": "oracle",
        "scenarios": ["steady", "bursty", "low"],
        "gap_closed": {
            "aimd": {
                "objective": {
                    "overall": _entry(0.75, 0.6, 0.9),
                    # 0.70 counts as closing 70%, 0.69 does not; "low" has no gap.
                    "scenarios": {"steady": _entry(0.7, 0.5, 0.8),
                                  "bursty": _entry(0.69, 0.4, 0.9), "low": NONE},
                },
                "total_inbox_share": {
                    "overall": _entry(0.5),  # no interval: a resample left no gap
                    "scenarios": {"steady": _entry(0.5), "bursty": _entry(0.5), "low": NONE},
                },
            },
            "hold-shared": {
                "objective": {
                    "overall": _entry(-0.25, -0.5, -0.125),
                    "scenarios": {"steady": _entry(0.9, 0.5, 1.2),
                                  "bursty": _entry(1.0, 1.0, 1.0), "low": NONE},
                },
                "total_inbox_share": {
                    "overall": NONE,
                    "scenarios": {"steady": NONE, "bursty": NONE, "low": NONE},
                },
            },
        },
    }  # fmt: skip


def test_the_gap_tables_read_as_computed_by_hand():
    # Columns as wide as their longest cell, two spaces apart, after a 15-wide name; by
    # scenario: 24 for the name, then (100 - 24) // 2 = 38 capped at 12 per policy.
    assert _gap_lines(_data(), 15) == [
        "",
        "share of the gap from fixed-sendgrid (0) to oracle (1) closed: mean [95% paired interval]",
        "scenarios: how many close at least 70% of their objective gap (of those with a gap)",
        "policy                      objective   total_inbox_share  scenarios",
        "aimd                0.75 [0.60, 0.90]  0.50 [no interval]     1 of 2",
        "hold-shared      -0.25 [-0.50, -0.12]    n/a (gap +0.001)     2 of 2",
        "",
        "objective gap closed by scenario (n/a: the ceiling's lead under 0.005)",
        "scenario                        aimd hold-shared",
        "steady                          0.70        0.90",
        "bursty                          0.69        1.00",
        "low                              n/a         n/a",
    ]


def test_no_gap_tables_without_gap_figures():
    data = _data()
    data["gap_closed"] = {}
    assert _gap_lines(data, 15) == []
    del data["gap_closed"]  # a report written before the figures existed
    assert _gap_lines(data, 15) == []


def test_by_scenario_columns_narrow_with_more_policies():
    # Seven policies: (100 - 24) // 7 = 10 columns per policy, under the 12 cap.
    data = _data()
    data["gap_closed"] = {f"policy-{i}": data["gap_closed"]["aimd"] for i in range(7)}
    lines = _gap_lines(data, 15)
    table = lines[lines.index("objective gap closed by scenario (n/a: the ceiling's lead "
                              "under 0.005)") + 1 :]  # fmt: skip
    assert table[0] == f"{'scenario':<24}" + "".join(f"{f'policy-{i}':>10}" for i in range(7))
    assert table[1] == f"{'steady':<24}" + f"{'0.70':>10}" * 7
    assert all(len(line) == 24 + 7 * 10 for line in table)
