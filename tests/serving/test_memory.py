"""Bundles that remember (issue 10): history and the MTA's set-up, from record to decision.

A bundle of the default layout reads the MTA's set-up and the last three periods; its
telemetry record (schema version 2) carries them. The env's observation and the record's
encoding are the same bit for bit along real episodes, SB3's ``predict`` and the bundle's
``decide`` agree within 1e-5, and the compiled one-record path decides as the batch path.
A bundle of the last period alone (``models/last-period``) decides as it did before.
"""

from __future__ import annotations

import copy
import json
import math
import pickle
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from stable_baselines3 import PPO

from ipwarmup.agents.learned import BundleInEnv, LearnedPolicy, load_bundle
from ipwarmup.agents.registry import make_policy
from ipwarmup.envs import IPWarmupEnv, build_config
from ipwarmup.errors import BundleError, ConfigError, TelemetryError
from ipwarmup.observation import Layout
from ipwarmup.serving import kernel, kernel_record, load_policy
from ipwarmup.serving.bundle import bundle_digest
from ipwarmup.serving.policy import ServedPolicy
from ipwarmup.serving.telemetry import encode_record, record_from_telemetry, validate
from ipwarmup.training.evaluate import evaluate, load_suite
from tests.serving.conftest import LAST_PERIOD, SCENARIO, TrainedBundle
from tests.serving.shipped import default_bundle
from tests.serving.test_fast_path import alike

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE: dict[str, Any] = json.loads((ROOT / "examples" / "telemetry.json").read_text())
EXAMPLE_V1: dict[str, Any] = json.loads((ROOT / "examples" / "telemetry-v1.json").read_text())
PROVIDERS = ("gmail", "microsoft", "yahoo", "apple", "other")
LAYOUT = Layout(history_periods=3, mta_inputs=True)


@pytest.fixture(scope="module")
def memory(memory_bundle: TrainedBundle) -> ServedPolicy:
    return load_policy(memory_bundle.bundle)


@pytest.fixture(scope="module")
def sb3(memory_bundle: TrainedBundle) -> tuple[Any, Any]:
    model = PPO.load(memory_bundle.model_dir / "model.zip", device="cpu")
    with (memory_bundle.model_dir / "vecnormalize.pkl").open("rb") as handle:
        normalizer = pickle.load(handle)
    return model, normalizer


def _mta(config: Any) -> dict[str, Any]:
    m = config.mta
    return {"overflow": m.overflow, "max_age_hours": m.max_age_hours,
            "retry_interval_hours": m.retry_interval_hours}  # fmt: skip


def test_the_bundle_declares_its_layout(memory: ServedPolicy) -> None:
    assert memory.layout == LAYOUT
    assert memory.manifest["observation"]["history_periods"] == 3
    assert memory.manifest["observation"]["mta_inputs"] is True
    names = memory.spec.observation.names
    assert len(names) == 9 * 5 + 6 + 3 + 3 * 9 * 5
    assert names[51:54] == ["mta.queue", "mta.max_age", "mta.retry_interval"]
    assert names[54] == "history.1.gmail.demand" and names[-1] == "history.3.other.queue"


def test_the_bundle_matches_sb3_on_random_observations(
    memory: ServedPolicy, sb3: tuple[Any, Any]
) -> None:
    model, normalizer = sb3
    space = normalizer.observation_space
    obs = np.random.default_rng(0).uniform(space.low, space.high, (5_000, space.shape[0]))
    obs = obs.astype(np.float32)
    ours, _ = memory.predict(obs)
    theirs, _ = model.predict(normalizer.normalize_obs(obs), deterministic=True)
    assert np.abs(ours - theirs).max() < 1e-5


@pytest.mark.parametrize(
    ("scenario", "overrides", "seed"),
    [(SCENARIO, (), 5), ("bursty_b2c_marketing", ("mta.overflow=queue",), 2)],
)
def test_decide_on_the_record_is_sb3_on_the_envs_observation_along_an_episode(
    memory: ServedPolicy, sb3: tuple[Any, Any], scenario: str, overrides: tuple[str, ...],
    seed: int,
) -> None:  # fmt: skip
    """The record carries the ESP's last three records and its MTA: parity along real history."""
    model, normalizer = sb3
    env = IPWarmupEnv(scenario=scenario, overrides=list(overrides))
    config = env.config
    learned = LearnedPolicy(config, model, normalizer, "sb3")
    obs, _ = env.reset(seed=seed)
    past: list[dict[str, Any]] = []
    worst, compared, fast = 0.0, 0, 0
    for step in range(config.steps_per_episode):
        record = record_from_telemetry(env.simulator.telemetry, 0, PROVIDERS, period_hours=24,
                                       mta=_mta(config), history=past[:3])  # fmt: skip
        past.insert(0, record["providers"])
        encoded = encode_record(record, PROVIDERS, horizon_days=45, max_ips=8, layout=LAYOUT)
        assert encoded.tobytes() == obs.tobytes(), f"step {step}"
        theirs, _ = learned.predict(obs)
        ours, _ = memory.predict(obs)
        worst = max(worst, float(np.abs(ours - theirs).max()))
        fast += memory._single.decide(record) is not None
        decision = memory.decide(record)
        alike(decision, memory._decide_records([validate(record, PROVIDERS, max_ips=8,
                                                         layout=LAYOUT)])[0])  # fmt: skip
        for j, name in enumerate(PROVIDERS):  # where only the policy moved the cap
            entry = decision["providers"][name]
            if (
                record["pool"]["dedicated_ips"]
                and len(entry["reasons"]) == 1
                and (entry["reasons"][0].startswith("policy"))
            ):
                factor = memory.codec.cap_factors(theirs[None].astype(np.float64))[0, j]
                assert math.isclose(entry["change"], factor, rel_tol=1e-5), (step, name)
                compared += 1
        obs, *_ = env.step(theirs)
    assert worst < 1e-5
    assert fast == config.steps_per_episode  # every record took the compiled path
    assert compared > 20


def test_the_harness_scores_the_bundle_like_the_model_it_came_from(
    memory_bundle: TrainedBundle, sb3: tuple[Any, Any]
) -> None:
    model, normalizer = sb3
    suite = load_suite("validation")
    result = evaluate(
        ["bundle", "sb3"], suite, seeds=2, overrides=["horizon_days=6"],
        factories={
            "bundle": lambda config: load_bundle(memory_bundle.bundle, config),
            "sb3": lambda config: LearnedPolicy(config, model, normalizer, "sb3"),
        },
    )  # fmt: skip
    for entry in suite.entries:
        a, b = result.scores["bundle"][entry.name], result.scores["sb3"][entry.name]
        np.testing.assert_allclose(a["inbox_share"], b["inbox_share"], rtol=1e-6)


def test_the_plain_python_kernel_decides_v2_records_as_the_batch_path(
    memory: ServedPolicy,
) -> None:
    """The kernel's source on version-2 records (where mutation testing sees it)."""
    records = [copy.deepcopy(EXAMPLE)]
    short = copy.deepcopy(EXAMPLE)
    short["time"]["day"], short["history"] = 1.0, short["history"][:1]
    long = copy.deepcopy(EXAMPLE)
    long["history"] = long["history"] * 4  # more than K: the first K are read
    long["mta"].update(overflow="queue", max_age_hours=24, retry_interval_hours=6.0)
    records += [short, long]
    for record in records:
        parts = memory._single.decide(record, (kernel_record._prepare, kernel._decide))
        assert parts is not None
        clean = validate(record, PROVIDERS, max_ips=8, layout=LAYOUT)
        alike(memory._decision(*parts), memory._decide_records([clean])[0])


def test_a_version_1_record_is_refused_by_a_bundle_that_needs_version_2(
    memory: ServedPolicy,
) -> None:
    with pytest.raises(TelemetryError) as caught:
        memory.decide(EXAMPLE_V1)
    assert caught.value.problems == [
        "telemetry.schema_version: bundle needs schema_version 2: it reads the MTA's set-up "
        "(mta) and the last 3 periods (history); got 1"
    ]


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (lambda r: r.update(history=r["history"][:2]),
         "telemetry.history: expected the last 3 periods, most recent first (this model reads "
         "3; the warmup is 10 periods old), got 2"),
        (lambda r: r.update(history=r["history"] * 5),
         "telemetry.history: expected at most 14 past periods (this model reads 3), got 15"),
        (lambda r: r["mta"].update(overflow="retry"),
         "telemetry.mta.overflow: expected 'shared' or 'queue', got 'retry' (str)"),
        (lambda r: r["mta"].update(max_age_hours=0),
         "telemetry.mta.max_age_hours: expected an integer from 1 to 168, got 0"),
        (lambda r: r["mta"].update(retry_interval_hours=48),
         "telemetry.mta.retry_interval_hours: expected a number from 0.25 to 24, got 48"),
        (lambda r: r.pop("mta"), "telemetry.mta: missing"),
        (lambda r: r["history"][1]["gmail"].update(deferred=-1),
         "telemetry.history.1.gmail.deferred: expected a count >= 0, got -1"),
        (lambda r: r["history"][0].pop("yahoo"), "telemetry.history.0.yahoo: missing"),
        (lambda r: r.update(schema_version=3), "telemetry.schema_version: expected 2, got 3"),
    ],
)  # fmt: skip
def test_bad_version_2_records_name_the_dotted_field(
    memory: ServedPolicy, edit: Any, problem: str
) -> None:
    record = copy.deepcopy(EXAMPLE)
    edit(record)
    assert memory._single.decide(record) is None  # the fast check refuses it too
    with pytest.raises(TelemetryError) as caught:
        memory.decide(record)
    assert caught.value.problems == [problem]


def test_the_history_needed_grows_with_the_warmups_age(memory: ServedPolicy) -> None:
    """At day d a record needs min(3, d) past periods: day 0 none, day 2 two."""
    record = copy.deepcopy(EXAMPLE)
    cases = ((0.0, 0, True), (1.0, 0, False), (1.0, 1, True), (2.0, 1, False), (2.0, 2, True),
             (2.4, 2, True), (2.5, 2, False), (7.0, 3, True))  # fmt: skip
    for day, given, ok in cases:
        record["time"]["day"], record["history"] = day, EXAMPLE["history"][:given]
        assert (memory._single.decide(record) is not None) is ok, (day, given)
        try:
            memory.decide(record)
        except TelemetryError:
            assert not ok, (day, given)
        else:
            assert ok, (day, given)


# ----------------------------------------------------------------- the shipped bundle
PINNED = {  # models/last-period on examples/telemetry-v1.json, decided by the parent commit
    "gmail": (320.874336792437, 1.4292843509685391),
    "microsoft": (42.863537965830616, 1.3521620809410289),
    "yahoo": (124.7887064926444, 1.429423900259386),
    "apple": (12.700348806615482, 1.4941586831312332),
    "other": (92.73601747419366, 1.5227589076222277),
}


def test_the_shipped_bundle_decides_as_before_on_either_version() -> None:
    policy = load_policy(default_bundle())
    assert policy.layout == Layout()
    decision = policy.decide(copy.deepcopy(EXAMPLE_V1))
    for name, (cap, change) in PINNED.items():
        entry = decision["providers"][name]
        assert math.isclose(entry["dedicated_cap_per_hour"], cap, rel_tol=1e-12), name
        assert math.isclose(entry["change"], change, rel_tol=1e-12), name
        assert entry["reasons"] == [f"policy: x{change:.3f}"]
    assert decision["pool"] == {"action": "hold", "dedicated_ips": 1,
                                "reasons": ["policy: hold (+0.05)"]}  # fmt: skip
    # The same period as version 2 (any MTA, any history): the same decision.
    v2 = {**copy.deepcopy(EXAMPLE_V1), "schema_version": 2, "mta": EXAMPLE["mta"],
          "history": EXAMPLE["history"]}  # fmt: skip
    assert policy._single.decide(v2) is not None
    assert policy.decide(v2) == decision


def test_the_shipped_bundle_acts_alike_in_an_env_of_any_layout() -> None:
    """evaluate --policy models/last-period: the bundle reads its columns of a fuller obs."""
    full = build_config(scenario=SCENARIO)
    last = build_config(scenario=SCENARIO, overrides=list(LAST_PERIOD))
    in_full, in_last = make_policy(str(default_bundle()), full), make_policy(
        str(default_bundle()), last)  # fmt: skip
    assert isinstance(in_full, BundleInEnv) and isinstance(in_last, ServedPolicy)
    envs = [IPWarmupEnv(config=full), IPWarmupEnv(config=last)]
    observations = [env.reset(seed=4)[0] for env in envs]
    for _ in range(20):
        a, _ = in_full.predict(observations[0])
        b, _ = in_last.predict(observations[1])
        np.testing.assert_array_equal(a, b)
        observations = [env.step(a)[0] for env in envs]
    assert in_full.name == "default"


def test_a_bundle_reading_what_the_env_lacks_is_refused(memory_bundle: TrainedBundle) -> None:
    config = build_config(scenario=SCENARIO, overrides=["observation.history_periods=1"])
    with pytest.raises(ConfigError, match=r"reads history\.2\.gmail\.demand \(90 features the "
                       r"env lacks\); set observation\.history_periods >= 3"):  # fmt: skip
        load_bundle(memory_bundle.bundle, config)


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (lambda o: o.update(history_periods=15),
         "manifest.observation.history_periods: Input should be less than or equal to 14"),
        (lambda o: o.update(history_periods=-1),
         "manifest.observation.history_periods: Input should be greater than or equal to 0"),
        (lambda o: o.update(mta_inputs="yes"),
         "manifest.observation.mta_inputs: Input should be a valid boolean"),
        (lambda o: o.update(history_periods=2),
         "manifest: observation.names: not this code's encoder layout for 5 providers, "
         "history_periods 2 and mta_inputs true (189 names, expected 144; first difference "
         "at 144)"),
        (lambda o: o.update(mta_inputs=False),
         "manifest: observation.names: not this code's encoder layout for 5 providers, "
         "history_periods 3 and mta_inputs false (189 names, expected 186; first difference "
         "at 51)"),
    ],
)  # fmt: skip
def test_a_bad_layout_declaration_is_a_bundle_error_naming_the_field(
    memory_bundle: TrainedBundle, tmp_path: Path, edit: Any, problem: str
) -> None:
    bundle = tmp_path / "bad"
    shutil.copytree(memory_bundle.bundle, bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    edit(manifest["observation"])
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    # Digested again, so the manifest's own check is what refuses it.
    (bundle / "bundle.sha256").write_text(bundle_digest(bundle, list(manifest["files"])) + "\n")
    with pytest.raises(BundleError) as caught:
        load_policy(bundle)
    assert problem in str(caught.value)
