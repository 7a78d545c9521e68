"""Guardrails on realistic records: each fires at its threshold and not just below it.

The records start from the shipped ``examples/telemetry-v1.json`` (a day-10 sender with one IP)
and the shipped ``models/last-period`` bundle. Counts are chosen so that the rate at the
threshold is exactly the threshold in floating point (300 / 6000 is the double nearest
0.05, like the literal), so "at" and "just below" are both tested without slack.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ipwarmup.errors import ConfigError
from ipwarmup.serving import guardrails as gr
from ipwarmup.serving import load_policy
from ipwarmup.serving.policy import ServedPolicy
from ipwarmup.training.export import write_bundle
from tests.serving.shipped import default_bundle

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = default_bundle()
EXAMPLE: dict[str, Any] = json.loads((ROOT / "examples" / "telemetry-v1.json").read_text())


@pytest.fixture(scope="module")
def policy() -> ServedPolicy:
    return load_policy(DEFAULT)


def _record() -> dict[str, Any]:
    return copy.deepcopy(EXAMPLE)


def _gmail(record: dict[str, Any], **counts: float) -> dict[str, Any]:
    record["providers"]["gmail"].update(counts)
    return record


def test_the_shipped_example_fires_no_guardrail_and_holds_the_pool(policy: ServedPolicy) -> None:
    decision = policy.decide(_record())
    assert decision["guardrails"] == []
    assert decision["fallback"] is None
    assert decision["pool"] == {
        "action": "hold",
        "dedicated_ips": 1,
        "reasons": ["policy: hold (+0.05)"],
    }
    for name, entry in decision["providers"].items():
        assert entry["reasons"] == [f"policy: x{entry['change']:.3f}"], name
        # One IP: the pool's cap is the IP's cap, grown by the policy's factor.
        assert entry["dedicated_cap_per_hour"] == entry["cap_per_ip_per_hour"]
        before = EXAMPLE["providers"][name]["dedicated_cap_per_hour"]
        assert entry["cap_per_ip_per_hour"] == pytest.approx(before * entry["change"], rel=1e-12)
        assert 1.0 < entry["change"] < 1.6


def test_the_example_decides_the_same_as_the_network_says(policy: ServedPolicy) -> None:
    from ipwarmup.serving.telemetry import encode_record

    obs = encode_record(EXAMPLE, policy.providers, horizon_days=45, max_ips=8)
    action = policy.forward(obs[None].astype(np.float64))[0]
    decision = policy.decide(_record())
    for p, name in enumerate(policy.providers):
        assert decision["providers"][name]["change"] == pytest.approx(2.0 ** action[p], rel=1e-9)
    assert -1 / 3 <= action[-1] <= 1 / 3


@pytest.mark.parametrize(
    ("counts", "fires"),
    [
        # block: one 5xx rejection is a block; 0.999 is not one.
        ({"rejected": 1.0, "sent_dedicated": 5388.0}, "block"),
        ({"rejected": 0.999, "sent_dedicated": 5387.999}, None),
        # deferrals: 300 / 6000 = 0.05 exactly.
        ({"sent_dedicated": 6000.0, "accepted": 5700.0, "deferred": 300.0}, "deferrals"),
        ({"sent_dedicated": 6000.0, "accepted": 5700.01, "deferred": 299.99}, None),
        # bounces: 2000 / (5387 + 34613) = 0.05 exactly.
        ({"sent_shared": 34613.0, "bounced": 2000.0}, "bounces"),
        ({"sent_shared": 34613.0, "bounced": 1999.99}, None),
        # complaints: 40 / (41071 - 1071) = 0.001 exactly (gmail's threshold).
        ({"bounced": 1071.0, "complaints": 40.0}, "complaints"),
        ({"bounced": 1071.0, "complaints": 39.99}, None),
    ],
)
def test_each_rate_guardrail_fires_at_its_threshold_and_not_below(
    policy: ServedPolicy, counts: dict[str, float], fires: str | None
) -> None:
    decision = policy.decide(_gmail(_record(), **counts))
    # The network reacts to the changed counts too (it may grow faster elsewhere and meet
    # the growth bound); the guardrail under test is the only other one.
    fired = [name for name in decision["guardrails"] if not name.startswith("growth_bound")]
    assert fired == ([] if fires is None else [f"{fires}:gmail"])
    gmail = decision["providers"]["gmail"]
    if fires is None:
        assert gmail["change"] > 1.0
        assert not any(r.startswith("guardrail ") and "growth" not in r for r in gmail["reasons"])
    else:
        cut = getattr(policy.guardrails, f"{fires.rstrip('s')}_cut", None)
        cut = cut if cut is not None else getattr(policy.guardrails, f"{fires}_cut")
        assert gmail["change"] == pytest.approx(cut, rel=1e-12)
        assert gmail["reasons"][-1].startswith(f"guardrail {fires}: ")


def test_all_deferred_mail_cuts_the_cap(policy: ServedPolicy) -> None:
    record = _gmail(_record(), accepted=0.0, deferred=5387.0, bounced=0.0, complaints=0.0)
    decision = policy.decide(record)
    assert "deferrals:gmail" in decision["guardrails"]
    assert decision["providers"]["gmail"]["change"] == pytest.approx(1 / 1.5)
    assert "rate 100.00% at or over 5.00%" in decision["providers"]["gmail"]["reasons"][1]


def test_all_bounced_mail_is_a_bounce_problem_not_a_complaint_rate(policy: ServedPolicy) -> None:
    record = _gmail(_record(), bounced=5387.0 + 35684.0, complaints=9.0)
    decision = policy.decide(record)
    assert decision["guardrails"] == ["bounces:gmail"]
    text = " ".join(decision["providers"]["gmail"]["reasons"])
    assert "complaints" not in text and "rate 100.00%" in text


def test_an_absurd_cap_is_clamped_and_says_so(policy: ServedPolicy) -> None:
    decision = policy.decide(_gmail(_record(), dedicated_cap_per_hour=1e12))
    gmail = decision["providers"]["gmail"]
    assert gmail["cap_per_ip_per_hour"] == 2e7
    assert "cap_bounds:gmail" in decision["guardrails"]
    assert "clamped to the maximum 2e+07/h" in gmail["reasons"][-1]
    low = policy.decide(_gmail(_record(), dedicated_cap_per_hour=0.5))["providers"]["gmail"]
    assert low["cap_per_ip_per_hour"] == 1.0 and "raised to the minimum 1/h" in low["reasons"][-1]


def test_low_volume_fires_below_the_floor_and_not_at_it(tmp_path: Path) -> None:
    file = tmp_path / "g.yaml"
    file.write_text("min_monthly_messages: 90000.0\n")
    policy = load_policy(DEFAULT, guardrails=file)

    def record(total: float) -> dict[str, Any]:
        out = _record()
        for entry in out["providers"].values():
            entry.update(
                demand=0.0, sent_dedicated=0.0, accepted=0.0, bounced=0.0, complaints=0.0,
                sent_shared=0.0,
            )  # fmt: skip
        out["providers"]["gmail"]["demand"] = total
        return out

    at = policy.decide(record(3000.0))  # 3000 a day x 30 = 90,000 a month: at the floor
    assert "low_volume" not in at["guardrails"]
    below = policy.decide(record(2999.99))
    assert "low_volume" in below["guardrails"]
    assert below["pool"]["action"] == "shrink" and below["pool"]["dedicated_ips"] == 0
    assert below["pool"]["reasons"][-1].startswith("guardrail low_volume: ")


def test_zero_ips_hold_no_cap_and_decide_consistently(policy: ServedPolicy) -> None:
    record = _record()
    record["pool"]["dedicated_ips"] = 0
    for entry in record["providers"].values():
        entry.update(sent_dedicated=0.0, accepted=0.0, dedicated_cap_per_hour=0.0)
        entry["bounced"] = min(entry["bounced"], entry["sent_shared"])
    decision = policy.decide(record)
    for entry in decision["providers"].values():
        assert entry["dedicated_cap_per_hour"] == 0.0 and entry["cap_per_ip_per_hour"] == 0.0
        assert entry["change"] is None
        assert entry["reasons"][0].startswith("no dedicated IPs")
    pool = decision["pool"]
    assert pool["dedicated_ips"] == (1 if pool["action"] == "grow" else 0)
    assert pool["action"] != "shrink"


def _forced(tmp_path: Path, pool: float, cap: float = 0.0) -> ServedPolicy:
    """The default bundle with its last layer replaced: constant actions (cap, ..., pool)."""
    manifest = json.loads((DEFAULT / "manifest.json").read_text())
    with np.load(DEFAULT / "weights.npz") as archive:
        arrays = {name: archive[name] for name in archive.files}
    arrays["layer2.weight"] = np.zeros_like(arrays["layer2.weight"])
    arrays["layer2.bias"] = np.array([cap] * 5 + [pool])
    return load_policy(write_bundle(tmp_path / f"forced{pool}{cap}", manifest, arrays))


def test_pool_bounds_at_max_ips_and_at_zero(tmp_path: Path) -> None:
    grow = _forced(tmp_path, pool=5.0)
    full = _record()
    full["pool"]["dedicated_ips"] = 8
    decision = grow.decide(full)
    assert decision["pool"]["action"] == "hold" and decision["pool"]["dedicated_ips"] == 8
    assert decision["guardrails"] == ["pool_max"]
    almost = _record()
    almost["pool"]["dedicated_ips"] = 7
    assert grow.decide(almost)["pool"] == {
        "action": "grow",
        "dedicated_ips": 8,
        "reasons": ["policy: grow (+1.00)"],
    }
    shrink = _forced(tmp_path, pool=-5.0)
    empty = _record()
    empty["pool"]["dedicated_ips"] = 0
    decision = shrink.decide(empty)
    assert decision["pool"]["action"] == "hold" and decision["pool"]["dedicated_ips"] == 0
    one = shrink.decide(_record())
    assert one["pool"]["action"] == "shrink" and one["pool"]["dedicated_ips"] == 0


def test_growth_bound_binds_below_the_actions_range_and_holds_growth(tmp_path: Path) -> None:
    bold = _forced(tmp_path, pool=5.0, cap=5.0)  # every action +1: x2.0 a day
    decision = bold.decide(_record())
    assert decision["guardrails"] == [f"growth_bound:{p}" for p in bold.providers]
    for entry in decision["providers"].values():
        assert entry["change"] == pytest.approx(1.6, rel=1e-12)
        assert "x2.000 capped at x1.600 per 24 h" in entry["reasons"][1]
    assert decision["pool"]["action"] == "grow"
    blocked = bold.decide(_gmail(_record(), rejected=1.0, sent_dedicated=5388.0))
    assert blocked["pool"]["action"] == "hold"
    assert "pool_hold" in blocked["guardrails"]


def test_growth_bound_is_two_sided_through_the_operator_file(
    policy: ServedPolicy, tmp_path: Path
) -> None:
    from ipwarmup.serving.telemetry import encode_record

    obs = encode_record(EXAMPLE, policy.providers, horizon_days=45, max_ips=8)
    factor = 2.0 ** float(policy.forward(obs[None].astype(np.float64))[0][0])  # gmail's
    file = tmp_path / "g.yaml"
    file.write_text(f"max_growth_per_day: {factor * (1 + 1e-12)!r}\n")
    assert (
        "growth_bound:gmail"
        not in load_policy(DEFAULT, guardrails=file).decide(_record())["guardrails"]
    )
    file.write_text(f"max_growth_per_day: {factor * (1 - 1e-12)!r}\n")
    decision = load_policy(DEFAULT, guardrails=file).decide(_record())
    assert "growth_bound:gmail" in decision["guardrails"]
    assert decision["providers"]["gmail"]["change"] == pytest.approx(factor, rel=1e-9)


def test_the_operator_file_bounds_the_bundles_values(tmp_path: Path) -> None:
    file = tmp_path / "g.yaml"
    file.write_text(
        "max_growth_per_day: {max: 1.4}\nblock_cut: 0.25\ndeferral_rate: {min: 0.01, max: 0.5}\n"
        "complaint_thresholds:\n  gmail: {max: 0.0005}\n  apple: 0.002\n"
    )
    policy = load_policy(DEFAULT, guardrails=file)
    g = policy.guardrails
    assert (g.max_growth_per_day, g.block_cut, g.deferral_rate) == (1.4, 0.25, 0.05)
    assert g.complaint_thresholds["gmail"] == 0.0005 and g.complaint_thresholds["apple"] == 0.002
    assert policy.guardrail_notes == [
        "max_growth_per_day: the bundle's 1.6 is outside the operator's bounds [-inf, 1.4]; "
        "using 1.4",
        "complaint_thresholds.gmail: the bundle's 0.001 is outside the operator's bounds "
        "[-inf, 0.0005]; using 0.0005",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("block_cutt: 0.3\n", "block_cutt: Extra inputs are not permitted"),
        ("block_cut: 3.0\n", "guardrails.block_cut: Input should be less than or equal to 1"),
        ("deferral_rate: {min: 0.5, max: 0.1}\n", "min (0.5) is above max (0.1)"),
        ("complaint_thresholds: {hotmail: 0.1}\n", "complaint_thresholds.hotmail: unknown"),
        ("block_cut: {value: 0.3, max: 0.5}\n", "give either value or min/max"),
        ("- 1\n", "Input should be a valid dictionary"),
        ("block_cut: [\n", "cannot read the guardrails file"),
    ],
)
def test_a_bad_operator_file_is_a_config_error_naming_the_setting(
    tmp_path: Path, text: str, message: str
) -> None:
    file = tmp_path / "g.yaml"
    file.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_policy(DEFAULT, guardrails=file)
    assert message in str(error.value)


def _counts(**values: float) -> gr.Counts:
    names = ("rejected", "deferred", "sent_dedicated", "bounced", "transmitted", "complaints")
    return gr.Counts(**{name: np.array([[values.get(name, 0.0)]]) for name in names})


def test_each_guardrail_function_on_its_own() -> None:
    g = gr.DEFAULTS
    assert not gr.growth_bound(g, np.array([[1.6]]), 24).mask[0, 0]
    hit = gr.growth_bound(g, np.array([[1.6000001]]), 24)
    assert hit.mask[0, 0] and hit.factor == 1.6
    assert hit.reason(0, 0) == "guardrail growth_bound: x1.600 capped at x1.600 per 24 h"
    six = gr.growth_bound(g, np.array([[2.0]]), 6)
    assert six.factor == pytest.approx(1.6**0.25)
    assert not gr.deferrals(g, _counts(deferred=5.0)).mask[0, 0]  # nothing sent: no rate
    assert not gr.bounces(g, _counts(bounced=1.0)).mask[0, 0]
    assert gr.bounces(g, _counts(bounced=1.0, transmitted=1.0)).mask[0, 0]
    apple = gr.complaints(g, _counts(complaints=100.0, transmitted=100.0), ("apple",))
    assert not apple.mask[0, 0]  # no feedback loop
    strict = gr.GuardrailSettings(complaint_thresholds={"gmail": 0.001})
    tiny = gr.complaints(strict, _counts(complaints=1.0, transmitted=0.5), ("gmail",))
    assert not tiny.mask[0, 0]  # under one message delivered: no rate
    one = gr.complaints(strict, _counts(complaints=1.0, transmitted=1.0), ("gmail",))
    assert one.mask[0, 0] and one.reason(0, 0).startswith("guardrail complaints: rate 100.0000%")
    clamped, hits = gr.cap_bounds(np.array([[5.0, 0.5, 11.0]]), 1.0, 10.0)
    assert clamped.tolist() == [[5.0, 1.0, 10.0]] and hits.mask.tolist() == [[False, True, True]]
    assert not gr.low_volume(g, np.array([100_000.0])).mask[0]
    assert gr.low_volume(g, np.array([99_999.99])).mask[0]


def test_the_defaults_agree_with_the_baselines_they_mirror() -> None:
    from ipwarmup import rules
    from ipwarmup.agents.baselines import MESSAGES_PER_IP_PER_DAY, SHARED_BELOW_MONTHLY

    g = gr.DEFAULTS
    assert g.min_monthly_messages == SHARED_BELOW_MONTHLY
    assert g.aimd_per_ip_ceiling == MESSAGES_PER_IP_PER_DAY / 24
    assert (g.deferral_rate, g.bounce_rate) == (rules.DEFERRAL_LIMIT, rules.BOUNCE_LIMIT)
    assert g.deferral_cut == g.bounce_cut == 1 / rules.DECREASE
