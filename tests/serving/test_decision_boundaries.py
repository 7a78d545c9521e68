"""Served decisions exactly at their boundaries, one record and a batch alike.

``decide`` (one record, Python floats) and ``decide_batch`` (a fleet, numpy) are two
implementations of one decision; these tests put a record exactly on each boundary that
both draw (the pool threshold, the growth limit, the millionth-of-a-message cap, the
monthly volume of a 6 h period and of eight providers) and check both paths against the
value worked out by hand.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ipwarmup.actions import POOL_THRESHOLD
from ipwarmup.errors import TelemetryError
from ipwarmup.observation import GLOBAL_FEATURES, PROVIDER_FEATURES, feature_bounds, feature_names
from ipwarmup.serving import load_policy
from ipwarmup.serving.guardrails import OperatorGuardrails
from ipwarmup.serving.policy import ServedPolicy
from ipwarmup.training.export import write_bundle
from tests.serving.shipped import default_bundle
from tests.serving.test_decisions import _quiet

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = default_bundle()
EXAMPLE: dict[str, Any] = json.loads((ROOT / "examples" / "telemetry-v1.json").read_text())
LOW_VOLUME = "a dedicated IP needs; stay on the shared pool"


def _record(**pool: float) -> dict[str, Any]:
    record = copy.deepcopy(EXAMPLE)
    record["pool"].update(pool)
    return record


def _constant_bundle(tmp_path: Path, *, cap: float, pool: float, hours: int | None = None) -> Path:
    """The shipped bundle whose network always outputs (cap, ..., cap, pool), exactly.

    The last layer is identity with zero weights: its output is its bias, bit for bit.
    """
    manifest = json.loads((DEFAULT / "manifest.json").read_text())
    if hours is not None:
        manifest["env"]["decision_interval_hours"] = hours
    with np.load(DEFAULT / "weights.npz") as archive:
        arrays = {name: archive[name].astype(np.float64) for name in archive.files}
    arrays["layer2.weight"] = np.zeros_like(arrays["layer2.weight"])
    arrays["layer2.bias"] = np.array([cap] * 5 + [pool])
    return write_bundle(tmp_path / f"constant{cap}_{pool}_{hours}", manifest, arrays)


def _both(policy: ServedPolicy, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Decide each record alone and all as one batch; both must agree exactly."""
    batch = policy.decide_batch(copy.deepcopy(records))
    assert batch == [policy.decide(r) for r in copy.deepcopy(records)]
    return batch


def test_the_pool_threshold_itself_holds(tmp_path: Path) -> None:
    # The pool grows above +1/3 and shrinks below -1/3 (ipwarmup.actions): at exactly
    # +-1/3 it holds, one float further it moves.
    cases = [
        (POOL_THRESHOLD, "hold", 1),
        (math.nextafter(POOL_THRESHOLD, 1.0), "grow", 2),
        (-POOL_THRESHOLD, "hold", 1),
        (math.nextafter(-POOL_THRESHOLD, -1.0), "shrink", 0),
    ]
    for pool, action, ips in cases:
        policy = load_policy(_constant_bundle(tmp_path, cap=0.0, pool=pool))
        (decision,) = _both(policy, [_record(dedicated_ips=1)])
        assert (decision["pool"]["action"], decision["pool"]["dedicated_ips"]) == (action, ips)
        assert decision["guardrails"] == []


def test_a_factor_exactly_at_the_growth_limit_is_not_bounded(tmp_path: Path) -> None:
    # Cap action 1.0: a factor of max_cap_change_per_day ** 1 = 2 exactly at 24 h. With the
    # operator's max_growth_per_day at 2.0 the limit is 2.0 ** (24 / 24) = 2.0: the factor
    # is at it, not over it, so nothing is bounded; a hair lower and every cap is.
    bundle = _constant_bundle(tmp_path, cap=1.0, pool=0.0)
    record = _record(dedicated_ips=1)
    at = load_policy(bundle, guardrails=OperatorGuardrails.model_validate(
        {"max_growth_per_day": 2.0}))  # fmt: skip
    (decision,) = _both(at, [record])
    assert decision["guardrails"] == []
    assert decision["providers"]["gmail"] == {
        "dedicated_cap_per_hour": 449.0,  # 224.5 x 2
        "cap_per_ip_per_hour": 449.0,
        "change": 2.0,
        "reasons": ["policy: x2.000"],
    }
    below = math.nextafter(2.0, 1.0)
    bounded = load_policy(bundle, guardrails=OperatorGuardrails.model_validate(
        {"max_growth_per_day": below}))  # fmt: skip
    (decision,) = _both(bounded, [record])
    assert decision["guardrails"] == [f"growth_bound:{p}" for p in bounded.providers]
    gmail = decision["providers"]["gmail"]
    assert gmail["cap_per_ip_per_hour"] == 224.5 * below
    assert gmail["reasons"][1] == "guardrail growth_bound: x2.000 capped at x2.000 per 24 h"


def test_a_cap_of_a_millionth_has_a_change_and_below_it_none(tmp_path: Path) -> None:
    policy = load_policy(_constant_bundle(tmp_path, cap=0.0, pool=0.0))
    at, below = _record(), _record()
    at["providers"]["gmail"]["dedicated_cap_per_hour"] = 1e-6
    below["providers"]["gmail"]["dedicated_cap_per_hour"] = math.nextafter(1e-6, 0.0)
    decisions = _both(policy, [at, below])
    # Both raised to the bundle's minimum of 1/h; only the first had a cap to compare.
    assert [d["providers"]["gmail"]["cap_per_ip_per_hour"] for d in decisions] == [1.0, 1.0]
    assert decisions[0]["providers"]["gmail"]["change"] == 1.0 / 1e-6
    assert decisions[1]["providers"]["gmail"]["change"] is None


def test_a_batch_counts_the_periods_in_a_month(tmp_path: Path) -> None:
    policy = load_policy(_constant_bundle(tmp_path, cap=0.0, pool=5.0, hours=6))

    def record(gmail_demand: float) -> dict[str, Any]:
        out = _quiet(_record(), gmail_demand)
        out["period_hours"] = 6
        return out

    # 4 periods a day, 30 days: 834 a period is 100,080 a month, 833 is 99,960.
    decisions = _both(policy, [record(834.0), record(833.0)])
    assert [d["pool"]["action"] for d in decisions] == ["grow", "shrink"]
    assert decisions[1]["pool"]["reasons"][-1] == (
        f"guardrail low_volume: 99,960 a month is below the 100,000 {LOW_VOLUME}"
    )


def test_every_pool_rule_decides_alike_in_a_batch(tmp_path: Path) -> None:
    grow = load_policy(_constant_bundle(tmp_path, cap=0.0, pool=5.0))
    shrink = load_policy(_constant_bundle(tmp_path, cap=0.0, pool=-5.0))
    blocked = _record()
    blocked["providers"]["gmail"].update(rejected=1.0, sent_dedicated=5388.0)
    at_max, low, low_empty = _record(dedicated_ips=8), _quiet(_record(), 3000.0), _quiet(
        _record(dedicated_ips=0), 3000.0)  # fmt: skip
    decisions = _both(grow, [at_max, blocked, low, low_empty, _record()])
    assert [(d["pool"]["action"], d["pool"]["dedicated_ips"], d["guardrails"])
            for d in decisions] == [
        ("hold", 8, ["pool_max"]), ("hold", 1, ["block:gmail", "pool_hold"]),
        ("shrink", 0, ["low_volume"]), ("hold", 0, ["low_volume"]), ("grow", 2, []),
    ]  # fmt: skip
    assert decisions[0]["pool"]["reasons"][-1] == "guardrail pool_max: already at max_ips (8)"
    assert decisions[2]["pool"]["reasons"][-1] == (
        f"guardrail low_volume: 90,000 a month is below the 100,000 {LOW_VOLUME}"
    )
    (empty,) = _both(shrink, [_record(dedicated_ips=0)])
    assert empty["pool"] == {
        "action": "hold", "dedicated_ips": 0,
        "reasons": ["policy: shrink (-1.00)", "the pool is already empty"],
    }  # fmt: skip


# --------------------------------------------------------------------------- eight providers

EIGHT = ("gmail", "microsoft", "yahoo", "apple", "other", "gmx", "web", "orange")


def _eight_bundle(tmp_path: Path) -> Path:
    """A bundle for eight providers whose network always outputs 0 (hold everything)."""
    manifest = json.loads((DEFAULT / "manifest.json").read_text())
    n_obs = len(feature_names(EIGHT))
    low, high = feature_bounds(len(EIGHT))
    manifest["env"]["providers"] = list(EIGHT)
    manifest["observation"] = {
        "names": feature_names(EIGHT),
        "units": [row[3] for row in PROVIDER_FEATURES] * len(EIGHT)
        + [row[3] for row in GLOBAL_FEATURES],
        "low": low.tolist(),
        "high": high.tolist(),
    }
    manifest["action"].update(names=[f"{p}.cap_change" for p in EIGHT] + ["pool.change"],
                              low=[-1.0] * 9, high=[1.0] * 9)  # fmt: skip
    manifest["normalization"].update(mean=[0.0] * n_obs, var=[1.0] * n_obs)
    manifest["network"]["layers"] = [{"weight": "w", "bias": "b", "activation": "identity",
                                      "inputs": n_obs, "outputs": 9}]  # fmt: skip
    arrays = {"w": np.zeros((9, n_obs)), "b": np.zeros(9)}
    return write_bundle(tmp_path / "eight", manifest, arrays)


@pytest.mark.parametrize(
    "demands",
    [
        # Summed in order these give 7,022,526.000000001 a month; pairwise (numpy's sum,
        # which the batch uses), 7,022,526.0.
        [10559.5, 79602.6, 1942.3, 78940.3, 4204.0, 7025.1, 45227.8, 6582.6],
        # And here in order 5,176,419.0, pairwise 5,176,419.000000001.
        [4328.1, 70539.7, 8746.2, 24407.2, 1638.4, 1618.4, 2534.0, 58735.3],
    ],
)
def test_eight_providers_volume_is_numpys_sum_to_the_last_bit(
    tmp_path: Path, demands: list[float]
) -> None:
    # The monthly volume at 24 h is the period's demand summed over providers, x 30. With
    # eight providers the order of the additions shows in the last bit; a floor exactly
    # at numpy's sum (or one float above it) tells the two apart.
    monthly = float(np.sum(np.array(demands))) * 30
    assert sum(demands, 0.0) * 30 != monthly  # the two orders do differ here
    record = copy.deepcopy(EXAMPLE)
    template = record["providers"]["other"]
    entries = zip(EIGHT, demands, strict=True)
    record["providers"] = {name: dict(template, demand=d) for name, d in entries}
    bundle = _eight_bundle(tmp_path)
    for floor, low in ((monthly, False), (math.nextafter(monthly, math.inf), True)):
        policy = load_policy(bundle, guardrails=OperatorGuardrails.model_validate(
            {"min_monthly_messages": floor}))  # fmt: skip
        (decision,) = _both(policy, [record])
        assert decision["pool"]["action"] == ("shrink" if low else "hold")
        assert decision["guardrails"] == (["low_volume"] if low else [])


# --------------------------------------------------------------------------- rate floors


def _gmail_only(record: dict[str, Any], **gmail: float) -> dict[str, Any]:
    """``record`` with every gmail count 0 but the ones given."""
    entry = record["providers"]["gmail"]
    entry.update(sent_dedicated=0.0, accepted=0.0, deferred=0.0, rejected=0.0, bounced=0.0,
                 complaints=0.0, sent_shared=0.0)  # fmt: skip
    entry.update(gmail)
    return record


def test_a_complaint_rate_starts_at_one_delivered_message(tmp_path: Path) -> None:
    # gmail's threshold is 0.1% of delivered mail. One message delivered with 0.001
    # complaints is exactly at it; just under one message delivered there is no rate.
    policy = load_policy(_constant_bundle(tmp_path, cap=0.0, pool=0.0))
    one = _gmail_only(_record(), sent_dedicated=1.0, accepted=1.0, complaints=0.001)
    under = math.nextafter(1.0, 0.0)
    less = _gmail_only(_record(), sent_dedicated=under, accepted=under, complaints=0.001)
    decisions = _both(policy, [one, less])
    assert [d["guardrails"] for d in decisions] == [["complaints:gmail"], []]
    assert decisions[0]["providers"]["gmail"]["reasons"][1] == (
        "guardrail complaints: rate 0.1000% at or over 0.10%; cap at most x0.50"
    )
    assert decisions[0]["providers"]["gmail"]["cap_per_ip_per_hour"] == 224.5 * 0.5


def test_a_bounce_rate_starts_at_1e_300_transmitted(tmp_path: Path) -> None:
    # Every message transmitted bounced: 100% >= 5%. Below 1e-300 transmitted (a
    # subnormal count) there is no rate, as with no mail at all.
    policy = load_policy(_constant_bundle(tmp_path, cap=0.0, pool=0.0))
    at = _gmail_only(_record(), sent_dedicated=1e-300, accepted=1e-300, bounced=1e-300)
    tiny = math.nextafter(1e-300, 0.0)
    below = _gmail_only(_record(), sent_dedicated=tiny, accepted=tiny, bounced=tiny)
    decisions = _both(policy, [at, below])
    assert [d["guardrails"] for d in decisions] == [["bounces:gmail"], []]
    assert decisions[0]["providers"]["gmail"]["reasons"][1] == (
        "guardrail bounces: rate 100.00% at or over 5.00%; cap at most x0.67"
    )


def test_a_batch_stops_reading_at_its_fiftieth_problem() -> None:
    # decide_batch takes any iterable (a fleet's stream): once 50 problems are found it
    # reads no further, so a long (or endless) stream of bad records fails at once.
    policy = load_policy(DEFAULT)
    bad = _record()
    bad["period_hours"] = 6
    read: list[int] = []

    def stream() -> Iterator[dict[str, Any]]:
        for i in range(1000):
            read.append(i)
            yield copy.deepcopy(bad)

    with pytest.raises(TelemetryError) as error:
        policy.decide_batch(stream())
    assert len(error.value.problems) == 50
    assert error.value.problems[-1].startswith("[49] telemetry.period_hours")
    assert read == list(range(50))
