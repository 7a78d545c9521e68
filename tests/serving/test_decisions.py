"""Served decisions through the public API: pool bounds and reasons, caps per IP, batches.

Most tests replace the shipped network's last layer so that it outputs constant actions
(``_constant``): the decision then depends on the record and the guardrails alone, and
every expected cap, factor and reason is computed by hand from ``examples/telemetry-v1.json``
(a 24 h record at day 10, one IP; gmail's cap 224.5/h).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ipwarmup.errors import TelemetryError
from ipwarmup.serving import load_policy
from ipwarmup.serving.policy import ServedPolicy
from ipwarmup.serving.telemetry import encode_record
from ipwarmup.training.export import write_bundle
from tests.serving.shipped import default_bundle

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = default_bundle()
EXAMPLE: dict[str, Any] = json.loads((ROOT / "examples" / "telemetry-v1.json").read_text())
PROVIDERS = ("gmail", "microsoft", "yahoo", "apple", "other")
LOW_VOLUME = "a dedicated IP needs; stay on the shared pool"


def _record(**pool: float) -> dict[str, Any]:
    record = copy.deepcopy(EXAMPLE)
    record["pool"].update(pool)
    return record


def _arrays() -> dict[str, np.ndarray]:
    with np.load(DEFAULT / "weights.npz") as archive:
        return {name: archive[name].astype(np.float64) for name in archive.files}


def _bundle(
    tmp_path: Path,
    name: str,
    arrays: dict[str, np.ndarray],
    edit: Callable[[dict[str, Any]], None] | None = None,
) -> ServedPolicy:
    manifest = json.loads((DEFAULT / "manifest.json").read_text())
    if edit is not None:
        edit(manifest)
    return load_policy(write_bundle(tmp_path / name, manifest, arrays))


def _constant(tmp_path: Path, *, cap: float, pool: float, hours: int | None = None) -> ServedPolicy:
    """The shipped bundle whose network always outputs (cap, ..., cap, pool)."""
    arrays = _arrays()
    arrays["layer2.weight"] = np.zeros_like(arrays["layer2.weight"])
    arrays["layer2.bias"] = np.array([cap] * 5 + [pool])

    def interval(manifest: dict[str, Any]) -> None:
        if hours is not None:
            manifest["env"]["decision_interval_hours"] = hours

    return _bundle(tmp_path, f"constant{cap}_{pool}_{hours}", arrays, interval)


def _quiet(record: dict[str, Any], gmail_demand: float) -> dict[str, Any]:
    """No traffic anywhere but ``gmail_demand`` new messages at gmail."""
    for entry in record["providers"].values():
        entry.update(demand=0.0, sent_dedicated=0.0, accepted=0.0, deferred=0.0,
                     rejected=0.0, bounced=0.0, complaints=0.0, sent_shared=0.0)  # fmt: skip
    record["providers"]["gmail"]["demand"] = gmail_demand
    return record


@pytest.fixture(scope="module")
def hold(tmp_path_factory: pytest.TempPathFactory) -> ServedPolicy:
    return _constant(tmp_path_factory.mktemp("hold"), cap=0.0, pool=0.0)


@pytest.fixture(scope="module")
def grow(tmp_path_factory: pytest.TempPathFactory) -> ServedPolicy:
    return _constant(tmp_path_factory.mktemp("grow"), cap=0.0, pool=5.0)


# --------------------------------------------------------------------------- the envelope


def test_a_decision_names_its_version_model_and_period() -> None:
    policy = load_policy(DEFAULT)
    decision = policy.decide(_record())
    run_id = "55ee2adef2fd470696397501f0309262"  # models/last-period/manifest.json, mlflow.run_id
    assert decision["decision_version"] == 2
    assert decision["model"] == {"name": "default", "run_id": run_id}
    assert decision["period_hours"] == 24
    assert list(decision["providers"]) == list(PROVIDERS)
    assert policy.name == "default"
    manifest = json.loads((DEFAULT / "manifest.json").read_text())
    # The manifest as plain JSON, as written (an unsigned bundle's signature is null).
    assert {k: v for k, v in policy.manifest.items() if v is not None} == manifest


def test_a_record_of_another_period_is_refused_and_nothing_decided() -> None:
    policy = load_policy(DEFAULT)
    six = _record()
    six["period_hours"] = 6
    expected = "telemetry.period_hours: expected 24 (this model decides every 24 h), got 6"
    with pytest.raises(TelemetryError) as error:
        policy.decide(six)
    assert error.value.problems == [expected]
    with pytest.raises(TelemetryError) as error:
        policy.decide_batch([_record(), six])
    assert error.value.problems == [f"[1] {expected}"]


def test_a_batch_of_bad_records_reports_fifty_problems_and_an_empty_batch_nothing() -> None:
    policy = load_policy(DEFAULT)
    bad = _record()
    bad["period_hours"] = 6
    with pytest.raises(TelemetryError) as error:
        policy.decide_batch([bad] * 80)
    assert len(error.value.problems) == 50
    assert error.value.problems[0].startswith("[0] telemetry.period_hours")
    assert error.value.problems[-1].startswith("[49] telemetry.period_hours")
    # Two records of 30 problems each: the second's are cut at 50 lines in all.
    thirty = _record()
    thirty.update({f"x{i}": 0 for i in range(30)})
    with pytest.raises(TelemetryError) as error:
        policy.decide_batch([thirty, thirty])
    assert len(error.value.problems) == 50
    assert error.value.problems[29] == "[0] telemetry.x29: unknown key; expected one of " + str(
        ["schema_version", "period_hours", "time", "pool", "providers"]
    )
    assert error.value.problems[-1].startswith("[1] telemetry.x")
    assert policy.decide_batch([]) == []
    assert policy.decide_batch(iter([])) == []


def test_predict_keeps_the_shape_it_was_given() -> None:
    policy = load_policy(DEFAULT)
    obs = encode_record(EXAMPLE, PROVIDERS, horizon_days=45, max_ips=8)
    one, state = policy.predict(obs, state=None)
    many, _ = policy.predict(np.stack([obs, obs, obs]))
    assert one.shape == (6,) and many.shape == (3, 6)
    assert one.dtype == many.dtype == np.float32 and state is None
    np.testing.assert_array_equal(many[1], one)
    np.testing.assert_array_equal(one, policy.forward(obs[None].astype(np.float64))[0].astype(
        np.float32))  # fmt: skip


# --------------------------------------------------------------------------- caps per IP


def test_caps_are_per_ip_with_several_ips(hold: ServedPolicy, tmp_path: Path) -> None:
    record = _record(dedicated_ips=4)
    record["providers"]["gmail"]["dedicated_cap_per_hour"] = 898.0  # 224.5 per IP
    gmail = hold.decide(record)["providers"]["gmail"]
    assert gmail == {
        "dedicated_cap_per_hour": 898.0,
        "cap_per_ip_per_hour": 224.5,
        "change": 1.0,
        "reasons": ["policy: x1.000"],
    }
    # Every cap action far below the action's range: clipped to -1, a factor of 2**-1.
    halve = _constant(tmp_path, cap=-5.0, pool=0.0)
    decision = halve.decide(record)
    assert decision["guardrails"] == []
    assert decision["providers"]["gmail"] == {
        "dedicated_cap_per_hour": 449.0,
        "cap_per_ip_per_hour": 112.25,
        "change": 0.5,
        "reasons": ["policy: x0.500"],
    }


def test_no_change_ratio_below_a_millionth_of_a_message_an_hour(hold: ServedPolicy) -> None:
    at = _record()
    at["providers"]["gmail"]["dedicated_cap_per_hour"] = 1e-6
    gmail = hold.decide(at)["providers"]["gmail"]
    # Raised to the bundle's minimum of 1/h: a millionfold change.
    assert gmail["cap_per_ip_per_hour"] == 1.0
    assert gmail["change"] == pytest.approx(1e6, rel=1e-12)
    below = _record()
    below["providers"]["gmail"]["dedicated_cap_per_hour"] = 0.99e-6
    gmail = hold.decide(below)["providers"]["gmail"]
    assert gmail["cap_per_ip_per_hour"] == 1.0 and gmail["change"] is None
    half = _record()
    half["providers"]["gmail"]["dedicated_cap_per_hour"] = 0.5
    assert hold.decide(half)["providers"]["gmail"]["change"] == 2.0


def test_fractional_attempts_still_give_rates(hold: ServedPolicy) -> None:
    deferred = _record()
    deferred["providers"]["gmail"].update(sent_dedicated=0.5, accepted=0.0, deferred=0.5)
    decision = hold.decide(deferred)
    assert decision["guardrails"] == ["deferrals:gmail"]
    assert decision["providers"]["gmail"]["change"] == pytest.approx(1 / 1.5, rel=1e-12)
    bounced = _record()
    bounced["providers"]["gmail"].update(
        sent_dedicated=0.5, accepted=0.5, sent_shared=0.0, bounced=0.5, complaints=0.0
    )
    decision = hold.decide(bounced)
    assert decision["guardrails"] == ["bounces:gmail"]
    assert "rate 100.00% at or over 5.00%" in decision["providers"]["gmail"]["reasons"][1]


# --------------------------------------------------------------------------- the pool


def test_at_max_ips_growth_is_refused_and_says_so(grow: ServedPolicy) -> None:
    decision = grow.decide(_record(dedicated_ips=8))
    assert decision["pool"] == {
        "action": "hold",
        "dedicated_ips": 8,
        "reasons": ["policy: grow (+1.00)", "guardrail pool_max: already at max_ips (8)"],
    }
    assert decision["guardrails"] == ["pool_max"]


def test_a_cut_holds_the_pool_and_names_only_the_providers_cut(tmp_path: Path) -> None:
    bold = _constant(tmp_path, cap=5.0, pool=5.0)  # every cap x2 a day: growth_bound everywhere
    record = _record()
    providers = record["providers"]
    providers["gmail"].update(rejected=1.0, sent_dedicated=5388.0)  # a block
    providers["yahoo"]["complaints"] = 16.0  # 16 / (15978 - 38) = 0.1004% >= 0.1%
    providers["microsoft"]["dedicated_cap_per_hour"] = 1e12  # clamped: not a cut
    decision = bold.decide(record)
    assert decision["pool"] == {
        "action": "hold",
        "dedicated_ips": 1,
        "reasons": [
            "policy: grow (+1.00)",
            "guardrail pool_hold: no new IP while caps are cut at gmail, yahoo",
        ],
    }
    assert decision["guardrails"] == [
        "growth_bound:gmail", "block:gmail", "growth_bound:microsoft", "cap_bounds:microsoft",
        "growth_bound:yahoo", "complaints:yahoo", "growth_bound:apple", "growth_bound:other",
        "pool_hold",
    ]  # fmt: skip


def test_a_cut_in_one_record_of_a_batch_holds_only_that_record(grow: ServedPolicy) -> None:
    blocked = _record()
    blocked["providers"]["gmail"].update(rejected=1.0, sent_dedicated=5388.0)
    complained = _record()
    complained["providers"]["yahoo"]["complaints"] = 16.0  # 0.1004% of delivered mail
    decisions = grow.decide_batch([blocked, complained, _record()])
    assert [d["pool"]["action"] for d in decisions] == ["hold", "hold", "grow"]
    assert [d["guardrails"] for d in decisions] == [
        ["block:gmail", "pool_hold"], ["complaints:yahoo", "pool_hold"], [],
    ]  # fmt: skip


def test_low_volume_shrinks_a_pool_and_keeps_an_empty_one_empty(grow: ServedPolicy) -> None:
    # 3,000 a day at 24 h: 90,000 a month, below the bundle's 100,000.
    reason = f"guardrail low_volume: 90,000 a month is below the 100,000 {LOW_VOLUME}"
    one = grow.decide(_quiet(_record(), 3000.0))
    assert one["pool"] == {
        "action": "shrink", "dedicated_ips": 0, "reasons": ["policy: grow (+1.00)", reason],
    }  # fmt: skip
    assert one["guardrails"] == ["low_volume"]
    empty = grow.decide(_quiet(_record(dedicated_ips=0), 3000.0))
    assert empty["pool"] == {
        "action": "hold", "dedicated_ips": 0, "reasons": ["policy: grow (+1.00)", reason],
    }  # fmt: skip
    assert empty["guardrails"] == ["low_volume"]


def test_low_volume_counts_the_periods_in_a_month(tmp_path: Path) -> None:
    six = _constant(tmp_path, cap=0.0, pool=5.0, hours=6)

    def record(gmail_demand: float) -> dict[str, Any]:
        out = _quiet(_record(), gmail_demand)
        out["period_hours"] = 6
        return out

    # 4 periods a day, 30 days: 834 a period is 100,080 a month, 833 is 99,960.
    assert six.decide(record(834.0))["pool"]["action"] == "grow"
    low = six.decide(record(833.0))
    assert low["pool"]["action"] == "shrink"
    assert low["pool"]["reasons"][-1] == (
        f"guardrail low_volume: 99,960 a month is below the 100,000 {LOW_VOLUME}"
    )


def test_shrinking_an_empty_pool_holds_and_says_why(tmp_path: Path) -> None:
    shrink = _constant(tmp_path, cap=0.0, pool=-5.0)
    decision = shrink.decide(_record(dedicated_ips=0))
    assert decision["pool"] == {
        "action": "hold",
        "dedicated_ips": 0,
        "reasons": ["policy: shrink (-1.00)", "the pool is already empty"],
    }
    assert decision["guardrails"] == []


def test_without_ips_every_provider_says_so_and_the_pool_may_grow(grow: ServedPolicy) -> None:
    record = _record(dedicated_ips=0)
    for entry in record["providers"].values():
        entry.update(sent_dedicated=0.0, accepted=0.0, dedicated_cap_per_hour=0.0)
        entry["bounced"] = entry["sent_shared"] * 0.1  # 10% bounces on the shared pool
    decision = grow.decide(record)
    why = "no dedicated IPs: nothing to cap; mail goes through the shared pool"
    none = {"dedicated_cap_per_hour": 0.0, "cap_per_ip_per_hour": 0.0, "change": None,
            "reasons": [why]}  # fmt: skip
    assert decision["providers"] == dict.fromkeys(PROVIDERS, none)
    # No cap to cut, so the bounces hold nothing back: the first IP is allowed.
    assert decision["guardrails"] == []
    assert decision["pool"] == {
        "action": "grow", "dedicated_ips": 1, "reasons": ["policy: grow (+1.00)"],
    }  # fmt: skip


# --------------------------------------------------------------------------- fallback


def _overflows_on(tmp_path: Path, fine: dict[str, Any], broken: dict[str, Any]) -> ServedPolicy:
    """A network whose pool output is 0 on ``fine`` and +inf on ``broken``; caps stay 0.

    Layer 0 is relu over the one feature that differs most between the two records
    (normalised by mean 0, variance 1), scaled and shifted so that ``fine`` gives a
    little below 0 and ``broken`` a little below 4; layer 1 passes that unit on; layer 2
    multiplies it by 1e308 into the pool action only.
    """
    obs = [encode_record(r, PROVIDERS, horizon_days=45, max_ips=8) for r in (fine, broken)]
    feature = int(np.argmax(np.abs(obs[1] - obs[0])))
    low, high = float(obs[0][feature]), float(obs[1][feature])
    arrays = {name: np.zeros_like(array) for name, array in _arrays().items()}
    arrays["layer0.weight"][0, feature] = 4.0 / (high - low)
    arrays["layer0.bias"][0] = -4.0 * low / (high - low) - 0.04
    arrays["layer1.weight"][0, 0] = 1.0
    arrays["layer2.weight"][5, 0] = 1e308

    def edit(manifest: dict[str, Any]) -> None:
        manifest["network"]["layers"][0]["activation"] = "relu"
        manifest["network"]["layers"][1]["activation"] = "identity"
        manifest["normalization"]["mean"][feature] = 0.0
        manifest["normalization"]["var"][feature] = 1.0

    return _bundle(tmp_path, f"overflow{feature}", arrays, edit)


def test_a_row_whose_output_is_not_finite_falls_back_alone(tmp_path: Path) -> None:
    fine, broken = _record(dedicated_ips=1), _record(dedicated_ips=4)
    broken["providers"]["gmail"]["dedicated_cap_per_hour"] = 8000.0  # 2,000 per IP
    policy = _overflows_on(tmp_path, fine, broken)
    alone = [policy.decide(fine), policy.decide(broken)]
    assert alone[0]["fallback"] is None
    assert alone[0]["pool"]["reasons"] == ["policy: hold (+0.00)"]
    assert alone[1]["fallback"] == "the network's output is not finite"
    # AIMD: demand exceeded gmail's cap, so it adds 500/h a day times gmail's share of
    # demand, 41,071 / 75,572: (2000 + 500 * 0.54346) / 2000 = 1.13587. 4 IPs are far
    # below its per-IP ceiling, so the pool holds.
    gmail = alone[1]["providers"]["gmail"]
    assert gmail["change"] == pytest.approx((2000 + 500 * 41_071 / 75_572) / 2000, rel=1e-4)
    assert gmail["reasons"] == [f"aimd: x{gmail['change']:.3f}"]
    for entry in alone[1]["providers"].values():
        assert entry["reasons"][0].startswith("aimd: x")
    assert alone[1]["pool"]["reasons"] == ["aimd: hold (+0.00)"]
    assert alone[1]["pool"]["action"] == "hold"
    assert policy.decide_batch([fine, broken]) == alone
    assert policy.decide_batch([broken, fine]) == alone[::-1]


def test_the_fallback_starts_an_empty_pool(tmp_path: Path) -> None:
    empty = _record(dedicated_ips=0)
    policy = _overflows_on(tmp_path, _record(), empty)
    decision = policy.decide(empty)
    assert decision["fallback"] == "the network's output is not finite"
    assert decision["pool"] == {
        "action": "grow", "dedicated_ips": 1, "reasons": ["aimd: grow (+1.00)"],
    }  # fmt: skip
