"""Telemetry schema version 2 at the validator (issue 10): the MTA's set-up and past periods.

No bundle here: ``validate`` with the layout a bundle declares, the JSON Schema, and the
record builder. The messages name the dotted field, what was expected and what came.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ipwarmup.errors import TelemetryError
from ipwarmup.observation import Layout, feature_bounds
from ipwarmup.serving.record import elapsed_periods
from ipwarmup.serving.telemetry import (
    history_arrays,
    json_schema,
    mta_rows,
    record_arrays,
    validate,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE: dict[str, Any] = json.loads((ROOT / "examples" / "telemetry.json").read_text())
EXAMPLE_V1: dict[str, Any] = json.loads((ROOT / "examples" / "telemetry-v1.json").read_text())
PROVIDERS = ("gmail", "microsoft", "yahoo", "apple", "other")
MEMORY = Layout(history_periods=3, mta_inputs=True)


def problems(record: object, layout: Layout = MEMORY) -> list[str]:
    with pytest.raises(TelemetryError) as caught:
        validate(record, PROVIDERS, max_ips=8, layout=layout)
    return caught.value.problems


def test_the_example_is_valid_for_every_layout() -> None:
    for layout in (MEMORY, Layout(), Layout(0, True), Layout(3, False), Layout(14, True)):
        if layout.history_periods > 10:  # the example is day 10 with three past periods
            expected = "telemetry.history: expected the last 10 periods"
            assert problems(EXAMPLE, layout)[0].startswith(expected)
            continue
        clean = validate(EXAMPLE, PROVIDERS, max_ips=8, layout=layout)
        assert clean["mta"] == EXAMPLE["mta"] and len(clean["history"]) == 3
        assert clean["schema_version"] == 2 and type(clean["mta"]["max_age_hours"]) is int


def test_a_version_1_record_is_read_only_where_the_bundle_needs_neither() -> None:
    assert validate(EXAMPLE_V1, PROVIDERS, max_ips=8)["schema_version"] == 1
    cases = {
        MEMORY: "the MTA's set-up (mta) and the last 3 periods (history)",
        Layout(0, True): "the MTA's set-up (mta)",
        Layout(2, False): "the last 2 periods (history)",
    }
    for layout, what in cases.items():
        assert problems(EXAMPLE_V1, layout) == [
            f"telemetry.schema_version: bundle needs schema_version 2: it reads {what}; got 1"
        ]
    # 1.0 is 1; true is not.
    assert problems({**EXAMPLE_V1, "schema_version": 1.0})[0].endswith("; got 1")
    assert problems({**EXAMPLE_V1, "schema_version": True}, Layout()) == [
        "telemetry.schema_version: expected 1 or 2, got True (bool)"
    ]


@pytest.mark.parametrize(
    ("day", "period", "expected"),
    [(0.0, 24, 0), (0.49, 24, 0), (0.5, 24, 1), (1.0, 24, 1), (2.51, 24, 3), (0.25, 6, 1),
     (0.2, 6, 1), (0.1, 6, 0), (1.0, 1, 24)],
)  # fmt: skip
def test_elapsed_periods_rounds_days_to_decisions(day: float, period: int, expected: int) -> None:
    assert elapsed_periods(day, period) == expected


@pytest.mark.parametrize(
    ("day", "given", "problem"),
    [
        (10.0, 2, "expected the last 3 periods, most recent first (this model reads 3; the "
                  "warmup is 10 periods old), got 2"),
        (2.0, 1, "expected the last 2 periods, most recent first (this model reads 3; the "
                 "warmup is 2 periods old), got 1"),
        (0.6, 0, "expected the last 1 periods, most recent first (this model reads 3; the "
                 "warmup is 1 periods old), got 0"),
        (2.0, 2, None), (0.4, 0, None), (10.0, 3, None), (10.0, 14, None),
        (10.0, 15, "expected at most 14 past periods (this model reads 3), got 15"),
    ],
)  # fmt: skip
def test_the_history_must_reach_back_min_k_periods(
    day: float, given: int, problem: str | None
) -> None:
    record = copy.deepcopy(EXAMPLE)
    record["time"]["day"] = day
    record["history"] = (EXAMPLE["history"] * 5)[:given]
    if problem is None:
        assert len(validate(record, PROVIDERS, max_ips=8, layout=MEMORY)["history"]) == given
    else:
        assert problems(record) == [f"telemetry.history: {problem}"]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda r: r["mta"].update(overflow="Queue"),
         ["telemetry.mta.overflow: expected 'shared' or 'queue', got 'Queue' (str)"]),
        (lambda r: r["mta"].update(max_age_hours=169),
         ["telemetry.mta.max_age_hours: expected an integer from 1 to 168, got 169"]),
        (lambda r: r["mta"].update(max_age_hours=0),
         ["telemetry.mta.max_age_hours: expected an integer from 1 to 168, got 0"]),
        (lambda r: r["mta"].update(retry_interval_hours=24.5),
         ["telemetry.mta.retry_interval_hours: expected a number from 0.25 to 24, got 24.5"]),
        (lambda r: r["mta"].update(retry_interval_hours=math.inf),
         ["telemetry.mta.retry_interval_hours: expected a number from 0.25 to 24, got inf"]),
        (lambda r: r["mta"].update(max_age_hours=72.5),
         ["telemetry.mta.max_age_hours: expected an integer from 1 to 168, got 72.5"]),
        (lambda r: r["mta"].update(retry_interval_hours=0.2),
         ["telemetry.mta.retry_interval_hours: expected a number from 0.25 to 24, got 0.2"]),
        (lambda r: r["mta"].update(retry_interval_hours="1"),
         ["telemetry.mta.retry_interval_hours: expected a number from 0.25 to 24, got '1' "
          "(str)"]),
        (lambda r: r["mta"].pop("overflow"), ["telemetry.mta.overflow: missing"]),
        (lambda r: r["mta"].update(overflw="queue"),
         ["telemetry.mta.overflw: unknown key; did you mean 'overflow'?"]),
        (lambda r: r.update(mta=[]), ["telemetry.mta: expected a JSON object, got list"]),
        (lambda r: r.update(history={}), ["telemetry.history: expected a JSON array, got dict"]),
        (lambda r: r.pop("history"), ["telemetry.history: missing"]),
        (lambda r: r["history"][2].update(hotmail={}),
         ["telemetry.history.2.hotmail: unknown provider; expected one of "
          "['gmail', 'microsoft', 'yahoo', 'apple', 'other']"]),
        (lambda r: r["history"][0]["apple"].pop("queued"),
         ["telemetry.history.0.apple.queued: missing"]),
        (lambda r: r["history"][1]["gmail"].update(bounced=1e9),
         ["telemetry.history.1.gmail: bounced (1000000000) exceeds accepted + sent_shared "
          "(59911)"]),
        (lambda r: r["history"][0]["gmail"].update(demand=2e12),
         ["telemetry.history.0.gmail.demand: expected a count <= 1e+12, got 2000000000000.0"]),
        (lambda r: r.update(schema_version=1),
         ["telemetry.schema_version: bundle needs schema_version 2: it reads the MTA's set-up "
          "(mta) and the last 3 periods (history); got 1"]),
        (lambda r: r.update(schema_version="2"),
         ["telemetry.schema_version: expected 2, got '2' (str)"]),
        (lambda r: r.update(extra=1), ["telemetry.extra: unknown key; expected one of "
                                        "['schema_version', 'period_hours', 'time', 'pool', "
                                        "'providers', 'mta', 'history']"]),
    ],
)  # fmt: skip
def test_a_bad_version_2_record_names_its_dotted_field(edit: Any, expected: list[str]) -> None:
    record = copy.deepcopy(EXAMPLE)
    edit(record)
    assert problems(record) == expected


@pytest.mark.parametrize(
    ("max_age", "retry"), [(1, 0.25), (168, 24.0), (168.0, 24), (72, 1)]
)  # fmt: skip
def test_the_mta_bounds_are_inclusive(max_age: float, retry: float) -> None:
    record = copy.deepcopy(EXAMPLE)
    record["mta"].update(max_age_hours=max_age, retry_interval_hours=retry)
    clean = validate(record, PROVIDERS, max_ips=8, layout=MEMORY)
    assert clean["mta"]["max_age_hours"] == int(max_age)
    assert type(clean["mta"]["retry_interval_hours"]) is float


def test_which_version_a_record_is_judged_as() -> None:
    """By its version; without a valid one, by whether it carries version 2's keys."""
    v1_with_mta = {**EXAMPLE_V1, "mta": EXAMPLE["mta"]}
    assert problems(v1_with_mta, Layout()) == [
        "telemetry.mta: unknown key; expected one of ['schema_version', 'period_hours', "
        "'time', 'pool', 'providers']"
    ]
    unversioned = {k: v for k, v in EXAMPLE.items() if k != "schema_version"}
    assert problems(unversioned, Layout()) == ["telemetry.schema_version: missing"]
    only_history = {k: v for k, v in unversioned.items() if k != "mta"}
    assert problems(only_history, Layout()) == ["telemetry.schema_version: missing",
                                                "telemetry.mta: missing"]  # fmt: skip
    assert problems({k: v for k, v in EXAMPLE_V1.items() if k != "schema_version"},
                    Layout()) == ["telemetry.schema_version: missing"]  # fmt: skip


def test_problems_are_in_schema_order_across_the_new_sections() -> None:
    record = copy.deepcopy(EXAMPLE)
    record["history"][1]["gmail"]["deferred"] = -1
    record["history"][0]["yahoo"]["accepted"] = -2
    record["mta"]["max_age_hours"] = 0
    record["pool"]["dedicated_ips"] = 9
    assert problems(record) == [
        "telemetry.pool.dedicated_ips: expected an integer from 0 to 8, got 9",
        "telemetry.mta.max_age_hours: expected an integer from 1 to 168, got 0",
        "telemetry.history.0.yahoo.accepted: expected a count >= 0, got -2",
        "telemetry.history.1.gmail.deferred: expected a count >= 0, got -1",
    ]


def test_a_history_entry_crowded_with_keys_is_refused_from_a_scan() -> None:
    record = copy.deepcopy(EXAMPLE)
    record["history"][1] = {**record["history"][1], **{f"k{i}": 0 for i in range(200)}}
    lines = problems(record)
    assert len(lines) == 50
    assert lines[0].startswith("telemetry.history.1.k0: unknown provider; expected one of")
    assert lines[-1] == "telemetry.history.1: 151 more unknown keys not listed"


def test_a_version_2_record_to_a_bundle_of_the_last_period() -> None:
    """It takes version 2 too, whatever history (up to 14) and MTA it carries."""
    record = copy.deepcopy(EXAMPLE)
    assert validate(record, PROVIDERS, max_ips=8)["history"] == EXAMPLE["history"]
    record["schema_version"] = 3
    assert problems(record, Layout()) == ["telemetry.schema_version: expected 1 or 2, got 3"]
    record = {k: v for k, v in EXAMPLE_V1.items()}
    record["schema_version"] = 2
    assert problems(record, Layout()) == ["telemetry.mta: missing", "telemetry.history: missing"]


def test_the_arrays_of_version_2_records() -> None:
    clean = validate(EXAMPLE, PROVIDERS, max_ips=8, layout=MEMORY)
    past = history_arrays([clean, validate(EXAMPLE_V1, PROVIDERS, max_ips=8)], PROVIDERS, 4)
    assert past.shape == (2, 4, 5, 10)
    assert past[0, 1, 1, 0] == EXAMPLE["history"][1]["microsoft"]["demand"]
    assert past[0, 2, 4, 9] == EXAMPLE["history"][2]["other"]["sent_shared"]
    assert not past[0, 3].any() and not past[1].any()  # not given: zeros
    queue = copy.deepcopy(clean)
    queue["mta"] = {"overflow": "queue", "max_age_hours": 84, "retry_interval_hours": 6.0}
    np.testing.assert_array_equal(
        mta_rows([clean, queue]),
        np.array([[0.0, 72 / 168, 1 / 24], [1.0, 0.5, 0.25]], dtype=np.float32),
    )
    counts, scalars = record_arrays([clean], PROVIDERS)
    assert counts.shape == (1, 5, 10) and scalars[0, 0] == 24


def test_the_json_schema_of_version_2() -> None:
    schema = json_schema(PROVIDERS, 8, layout=MEMORY)
    assert schema["$id"] == "urn:ipwarmup:telemetry:v2" and "version 2" in schema["title"]
    props = schema["properties"]
    assert schema["required"] == [*props] and list(props)[-2:] == ["mta", "history"]
    assert props["schema_version"] == {"const": 2}
    assert props["mta"]["properties"]["overflow"]["enum"] == ["shared", "queue"]
    assert props["mta"]["properties"]["max_age_hours"]["maximum"] == 168
    assert props["mta"]["properties"]["retry_interval_hours"]["minimum"] == 0.25
    assert props["history"]["maxItems"] == 14 and props["history"]["type"] == "array"
    assert props["history"]["items"]["required"] == list(PROVIDERS)
    for node in (*props["mta"]["properties"].values(), props["history"]):  # documented
        assert len(node["description"]) > 20, node
    # A bundle of the last period documents version 1 by default, version 2 on request.
    assert json_schema(PROVIDERS, 8)["$id"].endswith("v1")
    assert json_schema(PROVIDERS, 8, version=2)["properties"]["schema_version"] == {"const": 2}
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator.check_schema(schema)
    assert not list(jsonschema.Draft202012Validator(schema).iter_errors(EXAMPLE))


def test_the_memory_layouts_bounds_repeat_the_provider_features() -> None:
    low, high = feature_bounds(5, MEMORY)
    assert low.shape == (189,) and math.isclose(high[51 + 3 + 8], 2.0)
    np.testing.assert_array_equal(low[54:99], low[:45])
    np.testing.assert_array_equal(high[144:189], high[:45])
    np.testing.assert_array_equal(high[51:54], np.ones(3, np.float32))
