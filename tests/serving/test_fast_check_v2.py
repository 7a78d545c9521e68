"""The fast check on version-2 records accepts exactly what pydantic accepts (issue 10).

The differential test of ``test_fast_check`` on records that carry the MTA's set-up and past
periods, sent to a bundle that reads them (three past periods and the MTA) and to the
shipped bundle of the last period alone (which takes version 2 too and reads neither).
Spoilings reach every new field: the MTA's values and keys, the history's length against
the warmup's age, a past period's counts, keys and consistency.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipwarmup.serving import load_policy
from ipwarmup.serving.policy import ServedPolicy
from tests.serving.conftest import TrainedBundle
from tests.serving.shipped import default_bundle
from tests.serving.test_fast_check import _NUMBERS, _same_answer
from tests.serving.test_fast_path import realistic_records

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE: dict[str, Any] = json.loads((ROOT / "examples" / "telemetry.json").read_text())
PROVIDERS = ("gmail", "microsoft", "yahoo", "apple", "other")
_MODES = st.sampled_from(["shared", "queue", "Queue", "", 1, None, True, ["queue"]])


@pytest.fixture(scope="module")
def policies(memory_bundle: TrainedBundle) -> list[ServedPolicy]:
    return [load_policy(memory_bundle.bundle), load_policy(default_bundle())]


@st.composite
def v2_records(draw: st.DrawFn) -> Any:
    """A realistic version-2 record, spoiled 0 to 3 times (a spoiling may leave it valid)."""
    record: Any = draw(realistic_records())
    record["schema_version"] = draw(st.sampled_from([2, 2.0]))
    record["time"]["day"] = draw(st.sampled_from([0.0, 0.5, 1.0, 1.49, 1.5, 2.0, 2.51, 30.0]))
    record["mta"] = {
        "overflow": draw(st.sampled_from(["shared", "queue"])),
        "max_age_hours": draw(st.sampled_from([1, 72, 168, 72.0])),
        "retry_interval_hours": draw(st.sampled_from([0.25, 1, 1.0, 6.5, 24.0])),
    }
    count = draw(st.integers(0, 5))
    record["history"] = [draw(realistic_records())["providers"] for _ in range(count)]
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["mta", "mta", "mode", "key", "length", "past", "section"]))
        history = record.get("history")
        if kind == "mta" and type(record.get("mta")) is dict:
            key = draw(st.sampled_from(["max_age_hours", "retry_interval_hours"]))
            record["mta"][key] = draw(_NUMBERS)
        elif kind == "mode" and type(record.get("mta")) is dict:
            record["mta"]["overflow"] = draw(_MODES)
        elif kind == "key":
            where = draw(st.sampled_from(["", "mta"]))
            node = record if not where else record.get(where)
            if type(node) is dict:
                key = draw(st.sampled_from(["mta", "history", "overflow", "extra"]))
                if draw(st.booleans()):
                    node.pop(key, None)
                else:
                    node[draw(st.sampled_from(["extra", "History", "max_age"]))] = 0
        elif kind == "length" and type(history) is list:
            if history and draw(st.booleans()):
                history.pop()
            else:
                history += [copy.deepcopy(EXAMPLE["history"][0])] * draw(st.integers(1, 12))
        elif kind == "past" and type(history) is list and history:
            entry = draw(st.sampled_from(history))
            if type(entry) is not dict:
                continue
            provider = entry.get(draw(st.sampled_from(PROVIDERS)))
            if type(provider) is dict:
                field = draw(st.sampled_from(["deferred", "accepted", "bounced", "demand"]))
                provider[field] = draw(st.one_of(_NUMBERS, st.just(1e13)))
            elif draw(st.booleans()):
                entry["hotmail"] = {}
        elif kind == "section":
            key = draw(st.sampled_from(["mta", "history"]))
            record[key] = draw(st.sampled_from([None, "x", 0, [], {}, [[]], [None]]))
    return record


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(record=v2_records())
def test_the_fast_check_and_pydantic_agree_on_version_2(
    policies: list[ServedPolicy], record: Any
) -> None:
    for policy in policies:
        _same_answer(policy, record)


def test_the_fast_check_takes_valid_version_2_records_of_every_kind(
    policies: list[ServedPolicy],
) -> None:
    memory, shipped = policies
    record = copy.deepcopy(EXAMPLE)
    record["history"] = record["history"] * 4 + record["history"][:2]  # 14: the most
    record["mta"].update(max_age_hours=168.0, retry_interval_hours=0.25)
    for policy in policies:
        assert policy._single.decide(record) is not None
        _same_answer(policy, record)
    # A version-1 record: the shipped bundle's fast path takes it, the memory bundle refuses it.
    v1 = {k: v for k, v in copy.deepcopy(EXAMPLE).items() if k not in ("mta", "history")}
    v1["schema_version"] = 1
    assert shipped._single.decide(v1) is not None and memory._single.decide(v1) is None
    for policy in policies:
        _same_answer(policy, v1)
