"""The one-record kernel on version-2 records, against the shared encoder and the batch path.

A synthetic bundle of the default layout (random weights and normalisation, no training:
these tests are fast, for mutation runs too) decides records of real episodes, with their
past periods and MTA, through the kernel's plain Python source; the kernel's observation
is ``encode_arrays``' bit for bit and its decision the batch path's.
"""

from __future__ import annotations

import copy
import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ipwarmup.envs import IPWarmupEnv, build_config
from ipwarmup.serving import kernel, kernel_record, load_policy
from ipwarmup.serving.policy import ServedPolicy
from ipwarmup.serving.telemetry import (
    encode_arrays,
    record_arrays,
    record_from_telemetry,
    validate,
)
from ipwarmup.training.export import build_manifest, write_bundle
from tests.serving.test_fast_path import alike

PROVIDERS = ("gmail", "microsoft", "yahoo", "apple", "other")
PLAIN = (kernel_record._prepare, kernel._decide)


def _synthetic(folder: Path, overrides: list[str]) -> ServedPolicy:
    config = build_config(scenario="bursty_b2c_marketing", overrides=overrides)
    rng = np.random.default_rng(1)
    size = len(build_manifest("s", config, None, [])["observation"]["names"])
    widths = [size, 32, 32, 6]
    layers, arrays = [], {}
    for i, (n_in, n_out) in enumerate(itertools.pairwise(widths)):
        arrays[f"w{i}"] = rng.normal(0.0, 1.0 / np.sqrt(n_in), (n_out, n_in))
        arrays[f"b{i}"] = rng.normal(0.0, 0.1, n_out)
        layers.append({"weight": f"w{i}", "bias": f"b{i}", "inputs": n_in, "outputs": n_out,
                       "activation": "identity" if i == 2 else "tanh"})  # fmt: skip
    manifest = build_manifest("synthetic", config, None, layers)
    manifest["normalization"].update(
        mean=rng.uniform(0.0, 0.5, size).tolist(), var=rng.uniform(0.01, 1.0, size).tolist(),
        epsilon=1e-8, clip_obs=10.0,
    )  # fmt: skip
    return load_policy(write_bundle(folder / "synthetic", manifest, arrays))


@pytest.fixture(scope="module")
def memory(tmp_path_factory: pytest.TempPathFactory) -> ServedPolicy:
    return _synthetic(tmp_path_factory.mktemp("memory"), ["mta.overflow=queue"])


def _episode_records(overrides: list[str], seed: int, days: int = 12) -> list[dict[str, Any]]:
    env = IPWarmupEnv(scenario="bursty_b2c_marketing", overrides=overrides)
    config = env.config
    mta = {"overflow": config.mta.overflow, "max_age_hours": config.mta.max_age_hours,
           "retry_interval_hours": config.mta.retry_interval_hours}  # fmt: skip
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    records, past = [], []
    for _ in range(days):
        record = record_from_telemetry(env.simulator.telemetry, 0, PROVIDERS, period_hours=24,
                                       mta=mta, history=past[:5])  # fmt: skip
        past.insert(0, record["providers"])
        records.append(record)
        env.step(rng.uniform(-1.0, 1.0, 6).astype(np.float32))
    return records


def _kernel_observation(policy: ServedPolicy, record: dict[str, Any]) -> np.ndarray:
    single = policy._single
    flat = single._gather(record)
    assert flat is not None
    values = np.array(flat, dtype=np.float64)
    assert kernel_record._check(values, single._consts, single._layout_v2)
    logs = np.empty(single._n_logs)
    kernel_record._log_inputs(values, single._consts, logs)
    obs = np.empty(len(policy.spec.observation.names), dtype=np.float32)
    kernel._encode(values, np.log10(logs), single._consts, obs)
    return obs


def test_the_plain_kernel_decides_real_v2_records_as_the_batch_path(memory: ServedPolicy) -> None:
    records = _episode_records(["mta.overflow=queue"], seed=3)
    fewer = copy.deepcopy(records[-1])
    fewer["history"] = fewer["history"][:3]  # exactly K
    shared = copy.deepcopy(records[-1])
    shared["mta"].update(overflow="shared", max_age_hours=24, retry_interval_hours=6.5)
    for record in [*records, fewer, shared]:
        clean = validate(record, PROVIDERS, max_ips=8, layout=memory.layout)
        parts = memory._single.decide(record, PLAIN)
        assert parts is not None
        alike(memory._decision(*parts), memory._decide_records([clean])[0])
        compiled = memory._single.decide(record)
        assert compiled is not None
        alike(memory._decision(*compiled), memory._decision(*parts))
    # The records' own features moved the network's factors: not one answer for all.
    factors = {tuple(memory._single.decide(r, PLAIN)[2]) for r in records}  # type: ignore[index]
    assert len(factors) == len(records)


def test_the_kernels_observation_is_encode_arrays_bit_for_bit(memory: ServedPolicy) -> None:
    records = _episode_records(["mta.overflow=queue"], seed=4)
    records[-1]["mta"].update(overflow="shared", max_age_hours=100, retry_interval_hours=0.3)
    for record in records:
        clean = validate(record, PROVIDERS, max_ips=8, layout=memory.layout)
        shared = encode_arrays(
            [clean], PROVIDERS, *record_arrays([clean], PROVIDERS), horizon_days=45,
            max_ips=8, layout=memory.layout,
        )[0]  # fmt: skip
        obs = _kernel_observation(memory, record)
        assert obs.tobytes() == shared.tobytes()
    # The history blocks hold the past periods' features, the MTA block the set-up.
    last = _kernel_observation(memory, records[-1])
    np.testing.assert_array_equal(last[51:54], np.array([0.0, 100 / 168, 0.3 / 24], np.float32))
    before = _kernel_observation(memory, records[-2])
    np.testing.assert_array_equal(last[54:99], before[:45])
    np.testing.assert_array_equal(last[99:144], before[54:99])
    first = _kernel_observation(memory, records[0])
    assert not first[54:].any()  # no past yet


@pytest.mark.parametrize(
    ("edit", "takes"),
    [
        (lambda r: r.update(history=r["history"][:2]), False),  # day 11 needs three
        (lambda r: r["time"].update(day=2.0) or r.update(history=r["history"][:2]), True),
        (lambda r: r["time"].update(day=2.5) or r.update(history=r["history"][:2]), False),
        (lambda r: r["time"].update(day=2.4) or r.update(history=r["history"][:2]), True),
        (lambda r: r.update(history=r["history"] * 3), False),  # 15 past periods
        (lambda r: r.update(history=(r["history"] * 3)[:14]), True),
        (lambda r: r["history"][4]["yahoo"].update(accepted=1e11), False),
        (lambda r: r["history"][4]["yahoo"].update(bounced=1e11), False),
        (lambda r: r["history"][4]["yahoo"].update(deferred=1e11), False),
        (lambda r: r["history"][4]["yahoo"].update(rejected=1e11), False),
        (lambda r: r["history"][4]["apple"].update(queued=-1.0), False),
        (lambda r: r["history"][4]["apple"].update(queued=True), False),
        (lambda r: r["history"][4].pop("apple"), False),
        (lambda r: r["history"].__setitem__(0, []), False),
        (lambda r: r["mta"].update(overflow="QUEUE"), False),
        (lambda r: r["mta"].update(max_age_hours=168.0), True),
        (lambda r: r["mta"].update(max_age_hours=168.5), False),
        (lambda r: r["mta"].update(retry_interval_hours=0.25), True),
        (lambda r: r["mta"].update(retry_interval_hours=0.24), False),
        (lambda r: r.update(schema_version=1), False),
        (lambda r: r.update(mta=None), False),
    ],
)  # fmt: skip
def test_the_plain_fast_check_takes_what_pydantic_takes(
    memory: ServedPolicy, edit: Any, takes: bool
) -> None:
    record = copy.deepcopy(_episode_records(["mta.overflow=queue"], seed=5)[-1])
    edit(record)
    took = memory._single.decide(record, PLAIN) is not None
    assert took is takes
    try:
        validate(record, PROVIDERS, max_ips=8, layout=memory.layout)
    except Exception:  # TelemetryError
        assert not takes
    else:
        assert takes


def _seeded_v2(count: int, seed: int) -> list[dict[str, Any]]:
    """Version-2 records from seeded draws (no simulator: fast with NUMBA_DISABLE_JIT=1)."""
    from tests.serving.test_fast_path import _seeded_records

    rng = np.random.default_rng(seed)
    base = _seeded_records(count, seed)
    past = _seeded_records(count * 6, seed + 1)
    records = []
    for i, record in enumerate(base):
        given = int(rng.integers(0, 7))
        # Enough past periods for the warmup's age (K = 3): young when fewer are given.
        record["time"]["day"] = float(given if given < 3 else rng.uniform(given, 400.0))
        record["schema_version"] = 2
        record["mta"] = {"overflow": str(rng.choice(["shared", "queue"])),
                         "max_age_hours": int(rng.integers(1, 169)),
                         "retry_interval_hours": float(rng.uniform(0.25, 24.0))}  # fmt: skip
        record["history"] = [p["providers"] for p in past[6 * i : 6 * i + given]]
        records.append(record)
    return records


def test_the_plain_kernel_decides_seeded_v2_records_as_the_batch_path(
    memory: ServedPolicy,
) -> None:
    for record in _seeded_v2(80, seed=7):
        clean = validate(record, PROVIDERS, max_ips=8, layout=memory.layout)
        parts = memory._single.decide(record, PLAIN)
        assert parts is not None
        alike(memory._decision(*parts), memory._decide_records([clean])[0])
        shared = encode_arrays(
            [clean], PROVIDERS, *record_arrays([clean], PROVIDERS), horizon_days=45,
            max_ips=8, layout=memory.layout,
        )[0]  # fmt: skip
        assert _kernel_observation(memory, record).tobytes() == shared.tobytes()


def test_a_layout_of_history_without_the_mta_decides_as_the_batch_path(
    tmp_path: Path,
) -> None:
    policy = _synthetic(tmp_path, ["observation.mta_inputs=false"])
    assert policy.layout.history_periods == 3 and not policy.layout.mta_inputs
    for record in _seeded_v2(20, seed=9):
        clean = validate(record, PROVIDERS, max_ips=8, layout=policy.layout)
        parts = policy._single.decide(record, PLAIN)
        assert parts is not None
        alike(policy._decision(*parts), policy._decide_records([clean])[0])
