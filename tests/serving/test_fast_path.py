"""The single decision's compiled path decides as the shared vectorised path.

``decide`` runs :mod:`ipwarmup.serving.kernel` through :mod:`ipwarmup.serving.single`
(encoder, network and guardrails compiled by numba); ``decide_batch`` (and the reference
here) runs the shared encoder :func:`ipwarmup.observation.encode`, numpy's network and
the vectorised guardrails. The observation must be the same bit for bit; the decisions
the same reason for reason, with every number within 1e-12 (relative: the kernel sums the
network in index order and uses libm's ``tanh`` and ``exp`` where numpy uses BLAS and its
own), on realistic records, on records where every guardrail fires, on the shipped
example, and under a ReLU network.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipwarmup.observation import encode
from ipwarmup.serving import kernel, kernel_record, load_policy, single
from ipwarmup.serving.decision import _NO_IPS
from ipwarmup.serving.policy import ServedPolicy
from ipwarmup.serving.telemetry import COUNT_FIELDS, to_telemetry, validate
from ipwarmup.training.export import write_bundle
from tests.serving.shipped import default_bundle

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = default_bundle()
EXAMPLE: dict[str, Any] = json.loads((ROOT / "examples" / "telemetry-v1.json").read_text())
PROVIDERS = ("gmail", "microsoft", "yahoo", "apple", "other")
MAX_IPS = 8


@pytest.fixture(scope="module")
def policies(tmp_path_factory: pytest.TempPathFactory) -> list[ServedPolicy]:
    """The shipped bundle; the same with a bold last layer (growth and pool moves); and a
    bold ReLU network (its hidden layers' activation changed) with 3-hour periods."""
    manifest = json.loads((DEFAULT / "manifest.json").read_text())
    with np.load(DEFAULT / "weights.npz") as archive:
        arrays = {name: archive[name] for name in archive.files}
    # Twenty times the last layer: actions at the bounds, pools that grow and shrink.
    arrays["layer2.weight"] = arrays["layer2.weight"] * 20.0
    arrays["layer2.bias"] = arrays["layer2.bias"] * 20.0
    bold = write_bundle(tmp_path_factory.mktemp("bold") / "bold", manifest, arrays)
    relu = copy.deepcopy(manifest)
    for layer in relu["network"]["layers"][:2]:
        layer["activation"] = "relu"
    relu["env"]["decision_interval_hours"] = 3
    relu_bundle = write_bundle(tmp_path_factory.mktemp("relu") / "relu", relu, arrays)
    return [load_policy(DEFAULT), load_policy(bold), load_policy(relu_bundle)]


def _reference(policy: ServedPolicy, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Decide through the shared encoder and the vectorised guardrails."""
    clean = [validate(_period(r, policy), policy.providers, max_ips=policy.max_ips)
             for r in records]  # fmt: skip
    return policy._decide_records(clean)


def _period(record: dict[str, Any], policy: ServedPolicy) -> dict[str, Any]:
    """The record with the policy's ``period_hours``."""
    return {**record, "period_hours": policy.period_hours}


def alike(ours: object, reference: object, where: str = "decision") -> None:
    """Assert two decisions are the same: equal but for floats, which are within 1e-12."""
    assert type(ours) is type(reference), f"{where}: {ours!r} != {reference!r}"
    if isinstance(ours, dict):
        assert isinstance(reference, dict) and list(ours) == list(reference), where
        for key in ours:
            alike(ours[key], reference[key], f"{where}.{key}")
    elif isinstance(ours, list):
        assert isinstance(reference, list) and len(ours) == len(reference), where
        for i, (a, b) in enumerate(zip(ours, reference, strict=True)):
            alike(a, b, f"{where}[{i}]")
    elif isinstance(ours, float):
        assert isinstance(reference, float)
        assert math.isclose(ours, reference, rel_tol=1e-12, abs_tol=0.0), (
            f"{where}: {ours!r} != {reference!r}"
        )
    else:
        assert ours == reference, f"{where}: {ours!r} != {reference!r}"


def test_the_plain_python_kernel_decides_as_the_reference(policies: list[ServedPolicy]) -> None:
    """The kernel's source, run by Python (where coverage and mutation testing see it).

    First in the file, so a mutation run's killed mutants stop here (``-x``).
    """
    records = [*_seeded_records(60, seed=5), copy.deepcopy(EXAMPLE)]
    kernels = (kernel_record._prepare, kernel._decide)
    for policy in policies:
        for record in records:
            parts = policy._single.decide(validate(_period(record, policy), PROVIDERS,
                                                   max_ips=MAX_IPS), kernels)  # fmt: skip
            assert parts is not None
            alike(policy._decision(*parts), _reference(policy, [record])[0])


def _values(clean: dict[str, Any]) -> np.ndarray:
    """A validated record's values as the kernel reads them."""
    return np.array(
        [clean["providers"][p][f] for p in PROVIDERS for f in COUNT_FIELDS]
        + [clean["pool"]["dedicated_ips"], clean["pool"]["mean_ip_age_days"],
           clean["time"]["day"], clean["time"]["weekday"], clean["time"]["hour"]]
    )  # fmt: skip


def _kernel_observation(
    policy: ServedPolicy, clean: dict[str, Any], kernels: tuple[Any, Any]
) -> np.ndarray:
    log_inputs, encode_into = kernels
    values, consts = _values(clean), policy._single._consts
    logs = np.empty(3 * len(PROVIDERS))
    log_inputs(values, consts, logs)
    obs = np.empty(9 * len(PROVIDERS) + 6, dtype=np.float32)
    encode_into(values, np.log10(logs), consts, obs)
    return obs


def test_the_plain_python_encoder_is_encode_bit_for_bit(policies: list[ServedPolicy]) -> None:
    records = [*_seeded_records(60, seed=3), copy.deepcopy(EXAMPLE)]
    records[0]["time"].update(weekday=6, hour=23)
    for policy in policies:
        for record in records:
            clean = validate(_period(record, policy), PROVIDERS, max_ips=MAX_IPS)
            shared = encode(to_telemetry(clean, PROVIDERS), horizon_days=policy.horizon_days,
                            max_ips=MAX_IPS)[0]  # fmt: skip
            obs = _kernel_observation(policy, clean, (kernel_record._log_inputs, kernel._encode))
            assert obs.tobytes() == shared.tobytes()


_COUNT = st.one_of(
    st.just(0.0),
    st.floats(0.0, 5.0),
    st.floats(0.0, 1e6),
    st.integers(0, 10**7),
    st.floats(0.0, 1e12),
)
_SHARE = st.one_of(st.just(0.0), st.just(1.0), st.floats(0.0, 1.0), st.floats(0.0, 0.1))


@st.composite
def realistic_records(draw: st.DrawFn) -> dict[str, Any]:
    """Draw records a sender could send: rates spread around every guardrail's threshold."""
    providers = {}
    for name in PROVIDERS:
        sent = draw(_COUNT)
        accepted_share, deferred_share = draw(_SHARE), draw(_SHARE)
        rejected = draw(st.one_of(st.just(0.0), st.floats(0.0, 3.0)))
        deferred = min(sent * deferred_share, sent)
        accepted = (sent - deferred) * accepted_share
        rejected = max(min(rejected, sent - deferred - accepted), 0.0)
        shared = draw(_COUNT)
        bounced = min((accepted + shared) * draw(_SHARE) * draw(st.sampled_from([1.0, 0.1])), 1e12)
        delivered = accepted + shared - bounced
        providers[name] = {
            "demand": draw(_COUNT),
            "dedicated_cap_per_hour": draw(_COUNT),
            "sent_dedicated": sent,
            "accepted": accepted,
            "deferred": deferred,
            "rejected": rejected,
            "bounced": bounced,
            "complaints": delivered * draw(st.floats(0.0, 0.003)),
            "queued": draw(_COUNT),
            "sent_shared": shared,
        }
    return {
        "schema_version": 1,
        "period_hours": 24,
        "time": {
            "day": draw(st.floats(0.0, 400.0)),
            "weekday": draw(st.integers(0, 6)),
            "hour": draw(st.integers(0, 23)),
        },
        "pool": {
            "dedicated_ips": draw(st.integers(0, MAX_IPS)),
            "mean_ip_age_days": draw(st.floats(0.0, 400.0)),
        },
        "providers": providers,
    }


def _simulated_records() -> list[dict[str, Any]]:
    """Records from simulated warmups under random actions (the serving parity's source)."""
    from ipwarmup.envs import IPWarmupEnv
    from ipwarmup.serving.telemetry import record_from_telemetry

    records = []
    for seed, scenario in enumerate(("steady_b2c_transactional", "bursty_b2c_marketing")):
        env = IPWarmupEnv(scenario=scenario)
        rng = np.random.default_rng(seed)
        env.reset(seed=seed)
        for _ in range(env.config.horizon_days):
            records.append(record_from_telemetry(env.simulator.telemetry, 0, PROVIDERS,
                                                 period_hours=24))  # fmt: skip
            env.step(rng.uniform(-1.0, 1.0, size=env.action_space.shape).astype(np.float32))
        env.close()
    return records


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(record=realistic_records())
def test_decide_is_the_vectorised_decision(
    policies: list[ServedPolicy], record: dict[str, Any]
) -> None:
    for policy in policies:
        alike(policy.decide(_period(record, policy)), _reference(policy, [record])[0])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(record=realistic_records())
def test_the_kernels_observation_is_encode_bit_for_bit(
    policies: list[ServedPolicy], record: dict[str, Any]
) -> None:
    """The compiled encoder against the shared encoder."""
    for policy in policies:
        clean = validate(_period(record, policy), PROVIDERS, max_ips=MAX_IPS)
        shared = encode(to_telemetry(clean, PROVIDERS), horizon_days=policy.horizon_days,
                        max_ips=MAX_IPS)[0]  # fmt: skip
        compiled = (kernel_record.log_inputs, kernel.encode)
        assert _kernel_observation(policy, clean, compiled).tobytes() == shared.tobytes()


@pytest.mark.parametrize("size", [*range(0, 20), 33, 64])
def test_the_monthly_volume_sums_as_the_batch_path(size: int) -> None:
    """``single._sum`` against the batch path's sum over a provider column."""
    rng = np.random.default_rng(size)
    for _ in range(50):
        counts = np.zeros((1, size, 10))
        counts[0, :, 0] = 10 ** rng.uniform(-3, 12, size=size)
        reference = counts[:, :, 0].sum(axis=1)[0]
        assert single._sum(counts[0, :, 0].tolist()) == reference


def _seeded_records(count: int, seed: int) -> list[dict[str, Any]]:
    """Draw ``count`` records like :func:`realistic_records`, from a seeded numpy generator."""
    rng = np.random.default_rng(seed)

    def count_() -> float:
        choices = [0.0, rng.uniform(0, 5), rng.uniform(0, 1e6), 10 ** rng.uniform(0, 12)]
        return float(rng.choice(choices))

    def share() -> float:
        return float(rng.choice([0.0, 1.0, rng.uniform(), rng.uniform(0, 0.1)]))

    records = []
    for _ in range(count):
        record = copy.deepcopy(EXAMPLE)
        for entry in record["providers"].values():
            sent = count_()
            deferred = sent * share()
            accepted = (sent - deferred) * share()
            rejected = float(rng.choice([0.0, rng.uniform(0, 3)]))
            rejected = max(min(rejected, sent - deferred - accepted), 0.0)
            shared = count_()
            bounced = min((accepted + shared) * share() * float(rng.choice([1.0, 0.1])), 1e12)
            entry.update(demand=count_(), dedicated_cap_per_hour=count_(), sent_dedicated=sent,
                         accepted=accepted, deferred=deferred, rejected=rejected, bounced=bounced,
                         complaints=(accepted + shared - bounced) * rng.uniform(0, 0.003),
                         queued=count_(), sent_shared=shared)  # fmt: skip
        record["pool"]["dedicated_ips"] = int(rng.integers(0, MAX_IPS + 1))
        record["time"].update(day=rng.uniform(0, 400), weekday=int(rng.integers(0, 7)))
        records.append(record)
    return records


def test_every_guardrail_and_pool_rule_is_compared(policies: list[ServedPolicy]) -> None:
    """On seeded records where every rule fires somewhere, both paths decide alike."""
    fired: set[str] = set()
    for policy in policies:
        records = [_period(r, policy) for r in _seeded_records(400, seed=11)]
        reference = _reference(policy, records)
        assert policy.decide_batch(records) == reference
        # One at a time against the reference for one: BLAS may round a row of a batch
        # (gemm) differently from a single row (gemv) in the last bit.
        alike([policy.decide(r) for r in records], [_reference(policy, [r])[0] for r in records])
        for decision in reference:
            fired |= {name.partition(":")[0] for name in decision["guardrails"]}
            fired |= {decision["pool"]["action"]}
            if decision["pool"]["reasons"][-1] == "the pool is already empty":
                fired.add("empty")
            if decision["pool"]["dedicated_ips"] == 0:
                fired.add("no IPs")
            if len(decision["guardrails"]) >= 3:
                fired.add("three at once")
    assert fired >= {
        "growth_bound", "block", "deferrals", "bounces", "complaints", "cap_bounds",
        "low_volume", "pool_max", "pool_hold", "grow", "hold", "shrink", "empty", "no IPs",
        "three at once",
    }  # fmt: skip


def test_edge_records_decide_alike(policies: list[ServedPolicy]) -> None:
    """0 IPs, a pool at max_ips, nothing sent, every count at its limit, every guardrail at
    once: the compiled path and the reference decide alike, and say what they did."""
    quiet = copy.deepcopy(EXAMPLE)
    for entry in quiet["providers"].values():
        entry.update(dict.fromkeys(COUNT_FIELDS, 0.0))
    loud = copy.deepcopy(EXAMPLE)
    for entry in loud["providers"].values():
        entry.update(demand=1e12, dedicated_cap_per_hour=1e12, sent_dedicated=1e12,
                     accepted=0.0, deferred=5e11, rejected=5e11, bounced=1e12,
                     complaints=0.0, queued=1e12, sent_shared=1e12)  # fmt: skip
    burning = copy.deepcopy(EXAMPLE)  # block, deferrals, bounces and complaints at once
    for entry in burning["providers"].values():
        entry.update(sent_dedicated=1000.0, accepted=800.0, deferred=100.0, rejected=100.0,
                     bounced=100.0, complaints=50.0, sent_shared=0.0)  # fmt: skip
    tiny = copy.deepcopy(EXAMPLE)  # subnormal counts: below the rates' 1e-300 floor
    for entry in tiny["providers"].values():
        entry.update(dict.fromkeys(COUNT_FIELDS, 1e-310))
        entry.update(accepted=2e-310, deferred=2e-310, rejected=0.0, sent_dedicated=5e-310)
    records = []
    for base in (quiet, loud, burning, tiny, copy.deepcopy(EXAMPLE)):
        for ips in (0, 1, MAX_IPS):
            record = copy.deepcopy(base)
            record["pool"]["dedicated_ips"] = ips
            records.append(record)
    for policy in policies:
        for record in records:
            record = _period(record, policy)
            ours = policy.decide(record)
            alike(ours, _reference(policy, [record])[0])
            ips = record["pool"]["dedicated_ips"]
            if ips == 0:
                assert all(p["reasons"] == [_NO_IPS] for p in ours["providers"].values())
            if record["providers"]["gmail"]["demand"] == 0.0:
                assert "low_volume" in ours["guardrails"]
            if record["providers"]["gmail"]["complaints"] == 50.0 and ips > 0:
                expected = {f"{rule}:gmail" for rule in ("block", "deferrals", "bounces",
                                                         "complaints")}  # fmt: skip
                assert expected <= set(ours["guardrails"])


def test_decide_and_decide_batch_agree_with_the_reference_on_simulated_fleets(
    policies: list[ServedPolicy],
) -> None:
    for policy in policies:
        records = [_period(r, policy) for r in [*_simulated_records(), copy.deepcopy(EXAMPLE)]]
        reference = _reference(policy, records)
        assert policy.decide_batch(records) == reference
        # One at a time: one row through the network, as in the reference for one record.
        alike([policy.decide(r) for r in records], [_reference(policy, [r])[0] for r in records])


def test_a_network_that_overflows_still_falls_back_in_the_fast_path(tmp_path: Path) -> None:
    manifest = json.loads((DEFAULT / "manifest.json").read_text())
    with np.load(DEFAULT / "weights.npz") as archive:
        arrays = {name: archive[name] for name in archive.files}
    arrays["layer2.weight"] = np.full_like(arrays["layer2.weight"], 1e308)
    # numpy warns of the overflow when the kernel runs as Python (NUMBA_DISABLE_JIT=1).
    with np.errstate(over="ignore", invalid="ignore"):
        policy = load_policy(write_bundle(tmp_path / "broken", manifest, arrays))
        decision = policy.decide(copy.deepcopy(EXAMPLE))
    assert decision == _reference(policy, [EXAMPLE])[0]
    assert decision["fallback"] == "the network's output is not finite"


def test_a_batch_pauses_the_collector_and_restores_it_as_it_was(
    policies: list[ServedPolicy],
) -> None:
    import gc

    from ipwarmup.errors import TelemetryError
    from ipwarmup.serving.fleet import gc_paused

    policy = policies[0]
    seen: list[bool] = []
    original = policy._decide_observed

    def spy(*arrays: np.ndarray) -> list[dict[str, Any]]:
        seen.append(gc.isenabled())
        return original(*arrays)

    policy._decide_observed = spy  # type: ignore[method-assign]
    try:
        assert gc.isenabled()
        policy.decide_batch([EXAMPLE])
        assert seen == [False] and gc.isenabled()
        with pytest.raises(TelemetryError):
            policy.decide_batch([{}])
        assert gc.isenabled()
        gc.disable()
        try:
            with gc_paused():
                assert not gc.isenabled()
            assert not gc.isenabled()  # left off, as the caller had it
        finally:
            gc.enable()
    finally:
        del policy._decide_observed


def test_a_rate_exactly_at_its_threshold_fires_on_both_paths(
    policies: list[ServedPolicy],
) -> None:
    """Each guardrail fires at, not only above, its threshold (the shipped settings: one
    rejection, 5% deferrals, 5% bounces, 0.1% complaints at gmail)."""
    at_limits = {
        "block": {"sent_dedicated": 1000.0, "accepted": 999.0, "deferred": 0.0, "rejected": 1.0},
        "deferrals": {"sent_dedicated": 1000.0, "accepted": 950.0, "deferred": 50.0},
        "bounces": {"accepted": 1000.0, "bounced": 52.5, "sent_shared": 50.0},
        "complaints": {"accepted": 1000.0, "bounced": 0.0, "sent_shared": 0.0,
                       "complaints": 1.0},
    }  # fmt: skip
    for rule, counts in at_limits.items():
        record = copy.deepcopy(EXAMPLE)
        gmail = record["providers"]["gmail"]
        gmail.update(sent_dedicated=1000.0, accepted=1000.0, deferred=0.0, rejected=0.0,
                     bounced=0.0, complaints=0.0, sent_shared=0.0)  # fmt: skip
        gmail.update(counts)
        record["pool"]["dedicated_ips"] = 1
        for policy in policies[:2]:  # the shipped guardrails, 24-hour periods
            ours = policy.decide(record)
            alike(ours, _reference(policy, [record])[0])
            assert ours["guardrails"].count(f"{rule}:gmail") == 1, (rule, ours["guardrails"])


def test_a_pool_value_exactly_at_its_threshold_holds(tmp_path: Path) -> None:
    """The pool moves only beyond +-1/3 (``POOL_THRESHOLD``): at it, it holds."""
    manifest = json.loads((DEFAULT / "manifest.json").read_text())
    with np.load(DEFAULT / "weights.npz") as archive:
        arrays = {name: archive[name] for name in archive.files}
    arrays["layer2.weight"] = np.zeros_like(arrays["layer2.weight"])  # outputs = the bias
    record = copy.deepcopy(EXAMPLE)
    record["pool"]["dedicated_ips"] = 2
    for pool, action in ((1 / 3, "hold"), (-1 / 3, "hold"), (0.3333334, "grow"),
                         (-0.3333334, "shrink")):  # fmt: skip
        arrays["layer2.bias"] = np.array([0.0] * 5 + [pool])
        policy = load_policy(write_bundle(tmp_path / f"pool{pool}", manifest, arrays))
        ours = policy.decide(record)
        alike(ours, _reference(policy, [record])[0])
        assert ours["pool"]["action"] == action, (pool, ours["pool"])


def test_a_month_exactly_at_the_volume_floor_is_not_low_volume() -> None:
    """Low volume fires below ``min_monthly_messages``, not at it (3,000 a day x 30)."""
    from ipwarmup.serving.guardrails import OperatorGuardrails

    floor = OperatorGuardrails.model_validate({"min_monthly_messages": 90_000})
    policy = load_policy(DEFAULT, guardrails=floor)
    for gmail, fired in ((3000.0, False), (2999.0, True)):
        record = copy.deepcopy(EXAMPLE)
        for name, entry in record["providers"].items():
            entry["demand"] = gmail if name == "gmail" else 0.0
        ours = policy.decide(record)
        alike(ours, _reference(policy, [record])[0])
        assert ("low_volume" in ours["guardrails"]) is fired
