"""The guardrails' settings: the documented defaults, each range, and the operator's file.

The operator's file goes through ``load_policy(bundle, guardrails=file)``, as ``ipwarmup
serve --guardrails`` uses it; each range is tested on both sides of its bound.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from pydantic import ValidationError

from ipwarmup.agents.baselines import AIMDPolicy
from ipwarmup.errors import ConfigError
from ipwarmup.serving import guardrails as gr
from ipwarmup.serving import load_policy
from ipwarmup.serving.policy import ServedPolicy
from tests.serving.shipped import default_bundle

DEFAULT = default_bundle()


def _load(tmp_path: Path, text: str) -> ServedPolicy:
    file = tmp_path / "guardrails.yaml"
    file.write_text(text, encoding="utf-8")
    return load_policy(DEFAULT, guardrails=file)


def _refusal(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as error:
        _load(tmp_path, text)
    return error.value.problems


def test_the_defaults_are_the_documented_ones() -> None:
    # README "Serving": growth x1.6 a day; 1 or more 5xx is a block, cap x0.5; deferrals
    # and bounces at 5% cut to x1/1.5; complaints cut to x0.5; below 100k a month stay
    # shared. The fallback's increase is the AIMD baseline's default.
    import inspect

    increase = inspect.signature(AIMDPolicy).parameters["increase_per_day"].default
    assert gr.DEFAULTS.model_dump() == {
        "max_growth_per_day": 1.6,
        "block_min_rejected": 1.0,
        "block_cut": 0.5,
        "deferral_rate": 0.05,
        "deferral_cut": 1 / 1.5,
        "bounce_rate": 0.05,
        "bounce_cut": 1 / 1.5,
        "complaint_thresholds": {},
        "complaint_cut": 0.5,
        "min_monthly_messages": 100_000.0,
        "aimd_increase_per_day": increase,
        "aimd_per_ip_ceiling": 500_000 / 24,
    }
    assert increase == 500.0


# (file text, the value in force) on the accepted side; (file text, the problem) refused.
ACCEPTED = [
    ("deferral_rate: 1.0\n", ("deferral_rate", 1.0)),
    ("deferral_rate: 1.0e-9\n", ("deferral_rate", 1e-9)),
    ("bounce_cut: 1.0\n", ("bounce_cut", 1.0)),
    ("block_cut: 1.0e-9\n", ("block_cut", 1e-9)),
    ("min_monthly_messages: 0.5\n", ("min_monthly_messages", 0.5)),
    ("min_monthly_messages: 1000000000000.0\n", ("min_monthly_messages", 1e12)),
    ("aimd_increase_per_day: 0.5\n", ("aimd_increase_per_day", 0.5)),
    ("block_min_rejected: 1.0\n", ("block_min_rejected", 1.0)),
]
REFUSED = [
    ("deferral_rate: 0.0\n", "deferral_rate: Input should be greater than 0"),
    ("deferral_rate: 1.0000001\n", "deferral_rate: Input should be less than or equal to 1"),
    ("bounce_rate: 2.0\n", "bounce_rate: Input should be less than or equal to 1"),
    ("block_cut: 0.0\n", "block_cut: Input should be greater than 0"),
    ("deferral_cut: 1.5\n", "deferral_cut: Input should be less than or equal to 1"),
    ("min_monthly_messages: 0.0\n", "min_monthly_messages: Input should be greater than 0"),
    (
        "min_monthly_messages: 1000000000001.0\n",
        "min_monthly_messages: Input should be less than or equal to 1000000000000",
    ),
    ("aimd_per_ip_ceiling: 2000000000000.0\n", "aimd_per_ip_ceiling: Input should be less than"),
    ("block_min_rejected: 0.5\n", "block_min_rejected: Input should be greater than"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), ACCEPTED)
def test_a_setting_at_its_bound_is_accepted(
    tmp_path: Path, text: str, expected: tuple[str, float]
) -> None:
    name, value = expected
    assert getattr(_load(tmp_path, text).guardrails, name) == value


@pytest.mark.parametrize(("text", "problem"), REFUSED)
def test_a_setting_past_its_bound_is_refused(tmp_path: Path, text: str, problem: str) -> None:
    (line,) = _refusal(tmp_path, text)
    assert line.startswith(f"guardrails.{problem}"), line


@pytest.mark.parametrize(
    "name",
    ["deferral_rate", "bounce_rate", "block_cut", "deferral_cut", "bounce_cut",
     "complaint_cut", "min_monthly_messages", "aimd_increase_per_day", "aimd_per_ip_ceiling"],
)  # fmt: skip
@pytest.mark.parametrize("value", [math.inf, math.nan])
def test_a_setting_that_is_not_finite_is_named_so(name: str, value: float) -> None:
    with pytest.raises(ValidationError) as error:
        gr.GuardrailSettings.model_validate({name: value})
    [item] = error.value.errors()
    assert (item["loc"], item["type"]) == ((name,), "finite_number")


def test_complaint_thresholds_hold_at_most_64_providers() -> None:
    names = [f"isp{i}" for i in range(65)]
    ok = gr.GuardrailSettings(complaint_thresholds=dict.fromkeys(names[:64], 0.001))
    assert len(ok.complaint_thresholds) == 64
    with pytest.raises(ValidationError, match="at most 64 items"):
        gr.GuardrailSettings(complaint_thresholds=dict.fromkeys(names, 0.001))


def test_the_settings_in_force_cannot_be_changed_in_place(tmp_path: Path) -> None:
    policy = _load(tmp_path, "block_cut: {max: 0.4}\n")
    with pytest.raises(ValidationError, match="frozen"):
        policy.guardrails.block_cut = 0.9  # type: ignore[misc]
    operator = gr.load_operator_file(tmp_path / "guardrails.yaml")
    with pytest.raises(ValidationError, match="frozen"):
        operator.block_cut = None  # type: ignore[misc]
    assert operator.block_cut is not None
    with pytest.raises(ValidationError, match="frozen"):
        operator.block_cut.max = 0.9  # type: ignore[misc]
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        gr.GuardrailSettings.model_validate({"block_cutt": 0.4})


@pytest.mark.parametrize(
    ("text", "where", "problem"),
    [
        ("block_cut: .inf\n", "block_cut.value", "Input should be a finite number"),
        ("block_cut: .nan\n", "block_cut.value", "Input should be a finite number"),
        ("block_cut: {min: .nan}\n", "block_cut.min", "Input should be a finite number"),
        ("deferral_rate: {max: .inf}\n", "deferral_rate.max", "Input should be a finite number"),
        ("block_cut: {value: 0.3, mx: 0.5}\n", "block_cut.mx", "Extra inputs are not permitted"),
        ("block_cut: {value: 0.3, min: 0.1}\n", "block_cut", "give either value or min/max"),
        ("block_cut: {value: 0.3, max: 0.5}\n", "block_cut", "give either value or min/max"),
    ],
)
def test_a_malformed_bound_names_its_setting(
    tmp_path: Path, text: str, where: str, problem: str
) -> None:
    (line,) = _refusal(tmp_path, text)
    assert line.startswith(f"{tmp_path / 'guardrails.yaml'}.{where}: ")
    assert problem in line


def test_one_sided_and_equal_bounds_clamp_the_bundles_value(tmp_path: Path) -> None:
    # The shipped bundle: deferral_rate 0.05, block_cut 0.5, max_growth_per_day 1.6.
    policy = _load(
        tmp_path,
        "deferral_rate: {min: 0.1}\nblock_cut: {min: 0.3, max: 0.3}\n"
        "max_growth_per_day: {min: 1.2}\nbounce_rate: {max: 0.05}\n",
    )
    g = policy.guardrails
    assert (g.deferral_rate, g.block_cut, g.max_growth_per_day, g.bounce_rate) == (
        0.1, 0.3, 1.6, 0.05,
    )  # fmt: skip
    assert policy.guardrail_notes == [
        "block_cut: the bundle's 0.5 is outside the operator's bounds [0.3, 0.3]; using 0.3",
        "deferral_rate: the bundle's 0.05 is outside the operator's bounds [0.1, inf]; using 0.1",
    ]


def test_bounds_on_a_provider_the_bundle_does_not_watch_add_no_threshold(
    tmp_path: Path,
) -> None:
    # The shipped bundle has no threshold for apple (no feedback loop).
    policy = _load(tmp_path, "complaint_thresholds:\n  apple: {max: 0.01}\n")
    assert "apple" not in policy.guardrails.complaint_thresholds
    assert policy.guardrail_notes == []
    fixed = _load(tmp_path, "complaint_thresholds:\n  apple: 0.01\n")
    assert fixed.guardrails.complaint_thresholds["apple"] == 0.01


def test_an_operator_file_with_many_mistakes_lists_fifty(tmp_path: Path) -> None:
    problems = _refusal(tmp_path, "".join(f"key{i}: 1.0\n" for i in range(60)))
    assert len(problems) == 50
    assert problems[0] == f"{tmp_path / 'guardrails.yaml'}.key0: Extra inputs are not permitted"
    assert problems[-1].endswith(".key49: Extra inputs are not permitted")


def test_operator_values_out_of_range_for_many_providers_list_fifty() -> None:
    providers = tuple(f"isp{i}" for i in range(60))
    operator = gr.OperatorGuardrails.model_validate(
        {"complaint_thresholds": dict.fromkeys(providers, 2.0)}
    )
    with pytest.raises(ConfigError) as error:
        gr.resolve(gr.DEFAULTS, operator, providers)
    assert len(error.value.problems) == 50
    assert error.value.problems[0].startswith("guardrails.complaint_thresholds.isp0: ")
    assert error.value.problems[-1].startswith("guardrails.complaint_thresholds.isp49: ")
