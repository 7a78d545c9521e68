"""A fleet's batch without pydantic (``serving/fleet.py``): the same decisions, the same errors.

``decide_batch`` checks each record with the one-record path's fast check and encodes the
batch with the compiled encoder; these tests hold it to the pydantic path
(``_decide_records`` on validated records) exactly, on version-2 records along real
episodes and on the records the fast check leaves to pydantic.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ipwarmup.envs import IPWarmupEnv
from ipwarmup.errors import TelemetryError
from ipwarmup.serving import kernel, load_policy
from ipwarmup.serving.policy import ServedPolicy
from ipwarmup.serving.telemetry import encode_arrays, record_arrays, record_from_telemetry, validate
from tests.serving.conftest import SCENARIO, TrainedBundle
from tests.serving.shipped import default_bundle

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE: dict[str, Any] = json.loads((ROOT / "examples" / "telemetry.json").read_text())
EXAMPLE_V1: dict[str, Any] = json.loads((ROOT / "examples" / "telemetry-v1.json").read_text())
PROVIDERS = ("gmail", "microsoft", "yahoo", "apple", "other")


@pytest.fixture(scope="module")
def memory(memory_bundle: TrainedBundle) -> ServedPolicy:
    return load_policy(memory_bundle.bundle)


def _episode(scenario: str, overrides: list[str], seed: int) -> list[dict[str, Any]]:
    """Version-2 records along one episode under random actions, as an ESP would send them."""
    env = IPWarmupEnv(scenario=scenario, overrides=overrides)
    mta = env.config.mta
    setup = {"overflow": mta.overflow, "max_age_hours": mta.max_age_hours,
             "retry_interval_hours": mta.retry_interval_hours}  # fmt: skip
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    records: list[dict[str, Any]] = []
    past: list[dict[str, Any]] = []
    for _ in range(env.config.steps_per_episode):
        record = record_from_telemetry(env.simulator.telemetry, 0, PROVIDERS, period_hours=24,
                                       mta=setup, history=past[:3])  # fmt: skip
        past.insert(0, record["providers"])
        records.append(record)
        env.step(rng.uniform(-1.0, 1.0, size=env.action_space.shape).astype(np.float32))
    return records


def _pydantic_path(policy: ServedPolicy, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    clean = [validate(r, policy.providers, max_ips=policy.max_ips, layout=policy.layout)
             for r in records]  # fmt: skip
    return policy._decide_records(clean)


def test_a_fleet_of_version_2_records_decides_exactly_as_the_pydantic_path(
    memory: ServedPolicy,
) -> None:
    records = _episode(SCENARIO, [], 3) + _episode(
        "bursty_b2c_marketing", ["mta.overflow=queue"], 4
    )
    assert len(records) == 90
    assert memory.decide_batch(copy.deepcopy(records)) == _pydantic_path(memory, records)
    # The observations themselves, bit for bit: the compiled encoder is encode()'s.
    rows = [memory._fleet.row(r) for r in records]
    assert all(row is not None for row in rows)
    _, _, obs = memory._fleet.encode(rows)  # type: ignore[arg-type]
    clean = [validate(r, PROVIDERS, max_ips=8, layout=memory.layout) for r in records]
    counts, scalars = record_arrays(clean, PROVIDERS)
    expected = encode_arrays(clean, PROVIDERS, counts, scalars, horizon_days=45, max_ips=8,
                             layout=memory.layout)  # fmt: skip
    assert obs.shape == (90, 189) and obs.tobytes() == expected.tobytes()


def test_the_plain_python_row_kernel_encodes_as_the_compiled_one(memory: ServedPolicy) -> None:
    """``_encode_rows`` as written (where mutation testing sees it)."""
    records = _episode(SCENARIO, [], 5)[:12]
    rows = [memory._fleet.row(r) for r in records]
    assert all(row is not None for row in rows)
    values = np.concatenate([row[0] for row in rows])  # type: ignore[index]
    starts = np.array([0, *np.cumsum([row[0].size for row in rows])])  # type: ignore[index]
    assert starts[-1] == 12 * (10 * 5 * 4 + 11)  # three past periods each, as read
    logs = np.log10(np.stack([row[1] for row in rows]))  # type: ignore[index]
    obs = np.empty((12, 189), dtype=np.float32)
    kernel._encode_rows(values, starts, logs, memory._single._consts, obs)
    assert obs.tobytes() == memory._fleet.encode(rows)[2].tobytes()  # type: ignore[arg-type]
    # Record 7's gmail demand feature, by hand: log10(1 + demand / 24 h) / 7.
    demand = records[7]["providers"]["gmail"]["demand"]
    assert obs[7, 0] == np.float32(np.log10(1.0 + demand / 24.0) / 7.0)
    assert obs[7, 0] > 0.0


def test_records_the_fast_check_leaves_to_pydantic_are_decided_alike(
    memory: ServedPolicy,
) -> None:
    # A numpy float (pydantic takes it as a float; the fast check takes only int and float)
    # and a history longer than the bundle reads: both decided as their plain twins.
    numpy_float = copy.deepcopy(EXAMPLE)
    numpy_float["history"][2]["gmail"]["demand"] = np.float64(5.0)
    plain = copy.deepcopy(EXAMPLE)
    plain["history"][2]["gmail"]["demand"] = 5.0
    long = copy.deepcopy(EXAMPLE)
    long["history"] = long["history"] * 4
    assert memory._fleet.row(numpy_float) is None and memory._fleet.row(long) is not None
    decisions = memory.decide_batch([numpy_float, long, EXAMPLE])
    assert decisions == _pydantic_path(memory, [plain, long, EXAMPLE])
    assert decisions[0] != decisions[2]  # the changed past period reached the network


def test_a_bad_past_period_is_named_with_the_records_index(memory: ServedPolicy) -> None:
    bad = copy.deepcopy(EXAMPLE)
    bad["history"][2]["yahoo"]["accepted"] = 1e6  # more than sent_dedicated
    with pytest.raises(TelemetryError) as error:
        memory.decide_batch([EXAMPLE, bad])
    assert error.value.problems == [
        "[1] telemetry.history.2.yahoo: accepted + deferred + rejected (1000000) exceeds "
        f"sent_dedicated ({_sent(bad, 2, 'yahoo')})"
    ]
    with pytest.raises(TelemetryError, match=r"^\[0\] telemetry.schema_version: bundle needs"):
        memory.decide_batch([EXAMPLE_V1, EXAMPLE])


def _sent(record: dict[str, Any], period: int, provider: str) -> str:
    sent = record["history"][period][provider]["sent_dedicated"]
    return str(int(sent)) if float(sent).is_integer() else repr(sent)


def test_a_last_period_bundle_takes_both_versions_in_one_batch() -> None:
    policy = load_policy(default_bundle())
    as_v1 = {key: value for key, value in EXAMPLE.items() if key not in ("mta", "history")}
    as_v1["schema_version"] = 1
    batch = [EXAMPLE_V1, EXAMPLE, as_v1]
    decisions = policy.decide_batch(copy.deepcopy(batch))
    assert decisions == _pydantic_path(policy, batch)
    # The version-2 extras are not read by a bundle of the last period alone.
    assert decisions[1] == decisions[2] != decisions[0]


def test_a_version_2_record_without_history_is_read_as_version_2_by_a_last_period_bundle() -> None:
    # 61 values (10P + 11 with no past period): the version-2 bounds, not version 1's 57.
    policy = load_policy(default_bundle())
    empty = copy.deepcopy(EXAMPLE)
    empty["history"] = []
    row = policy._fleet.row(empty)
    assert row is not None and row[0].size == 61
    assert policy.decide_batch([empty, EXAMPLE]) == _pydantic_path(policy, [empty, EXAMPLE])


def test_a_value_pickle_cannot_write_is_named_not_raised() -> None:
    policy = load_policy(default_bundle())
    odd = copy.deepcopy(EXAMPLE_V1)
    odd["providers"]["gmail"]["demand"] = lambda: 1  # nothing JSON holds; pickle refuses it
    assert policy._fleet.row(odd) is None
    with pytest.raises(TelemetryError) as error:
        policy.decide_batch([EXAMPLE_V1, odd])
    assert error.value.problems[0].startswith("[1] telemetry.providers.gmail.demand: expected")
    with pytest.raises(TelemetryError) as error:
        policy.decide(odd)
    assert error.value.problems[0].startswith("telemetry.providers.gmail.demand: expected")
