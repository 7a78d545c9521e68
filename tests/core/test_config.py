"""Tests for the typed-config machinery in ipwarmup.config."""

# Ruff cannot see that setting() and setting_factory() return dataclasses.field().

from dataclasses import FrozenInstanceError, dataclass
from pathlib import Path
from typing import Any, Literal

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from ipwarmup.config import (
    Config,
    apply_overrides,
    configclass,
    flatten,
    load,
    load_config,
    load_yaml,
    setting,
    setting_factory,
    to_dict,
)
from ipwarmup.errors import ConfigError


@configclass
class MTA(Config):
    """A small MTA config with a cross-field check."""

    overflow: Literal["shared", "queue"] = setting("shared", "Where overflow goes.")
    max_age_hours: float = setting(72.0, "Messages older than this expire.", gt=0)
    retry_interval_hours: float = setting(1.0, "Mean time between retries.", gt=0, le=24)

    def _check(self) -> list[str]:
        if self.retry_interval_hours > self.max_age_hours:
            return [
                f"retry_interval_hours: expected <= max_age_hours ({self.max_age_hours}), "
                f"got {self.retry_interval_hours}"
            ]
        return []


@configclass
class Provider(Config):
    """A small provider config."""

    cooling_days: tuple[float, float] = setting((20.0, 30.0), "Cooling range.", ge=1)
    complaint_feedback: bool = setting(True, "Whether complaints are reported.")
    weekly_shape: tuple[float, ...] = setting((1.0,) * 7, "Volume by weekday.", ge=0)
    campaign_start_hour: int = setting(9, "Hour campaigns start.", ge=0, le=23)
    tier: str = setting("a", "Reputation tier.", choices=("a", "b"))


def _default_providers() -> dict[str, Provider]:
    return {"gmail": Provider(campaign_start_hour=8, tier="b"), "yahoo": Provider()}


@configclass
class Env(Config):
    """An env config nesting the others."""

    providers: dict[str, Provider] = setting_factory(_default_providers, "Providers by name.")
    mta: MTA = setting_factory(MTA, "The MTA.")
    provider_mix: dict[str, float] = setting_factory(dict, "Share by provider.", ge=0)
    name: str = setting("x", "Scenario name.")
    spike_start_day: int | None = setting(None, "Day a spike starts.", ge=0)


@configclass
class Root(Config):
    """A root holding an env, to check full dotted paths."""

    env: Env = setting_factory(Env, "The environment.")
    seed: int = setting(0, "Random seed.")


def problems_of(cls: type[Config], data: Any, **kwargs: Any) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(cls, data, **kwargs)
    return info.value.problems


# --- loading -------------------------------------------------------------------------------


def test_load_none_and_empty_give_defaults() -> None:
    assert load(Env, None) == Env()
    assert load(Env, {}) == Env()


def test_load_converts_plain_data() -> None:
    cfg = load(
        Env,
        {
            "mta": {"overflow": "queue", "max_age_hours": 48},
            "providers": {"gmail": {"cooling_days": [2, 3], "weekly_shape": [1, 0.5]}},
            "provider_mix": {"gmail": 1},
            "spike_start_day": 4.0,
        },
    )
    assert cfg.mta == MTA(overflow="queue", max_age_hours=48.0)
    assert type(cfg.mta.max_age_hours) is float
    gmail = cfg.providers["gmail"]
    assert gmail.cooling_days == (2.0, 3.0) and type(gmail.cooling_days[0]) is float
    assert gmail.weekly_shape == (1.0, 0.5)
    assert cfg.provider_mix == {"gmail": 1.0}
    assert cfg.spike_start_day == 4 and type(cfg.spike_start_day) is int


def test_optional_accepts_null() -> None:
    assert load(Env, {"spike_start_day": None}).spike_start_day is None
    assert load(Env, {"spike_start_day": 3}).spike_start_day == 3


def test_unknown_key_suggests_closest_name() -> None:
    problems = problems_of(Env, {"mta": {"max_age": 5}}, path="env")
    assert problems == ["env.mta.max_age: unknown key; did you mean 'max_age_hours'?"]


def test_unknown_key_without_close_match_lists_valid_keys() -> None:
    assert problems_of(MTA, {"zzz": 1}) == [
        "zzz: unknown key; valid keys: overflow, max_age_hours, retry_interval_hours"
    ]


def test_wrong_type_names_path_expected_type_and_value() -> None:
    problems = problems_of(Env, {"mta": {"max_age_hours": "abc"}}, path="env")
    assert problems == ["env.mta.max_age_hours: expected a number, got 'abc' (str)"]


def test_exponent_without_dot_gets_yaml_hint() -> None:
    data = yaml.safe_load("mta:\n  max_age_hours: 3e-4\n")
    assert problems_of(Env, data) == [
        "mta.max_age_hours: expected a number, got '3e-4' (str); "
        "YAML reads 3e-4 as text, write 3.0e-4"
    ]


def test_plain_numeric_text_gets_no_hint() -> None:
    assert problems_of(MTA, {"max_age_hours": "0.5"}) == [
        "max_age_hours: expected a number, got '0.5' (str)"
    ]


@given(
    mantissa=st.from_regex(r"\A[-+]?([0-9]{1,3}(\.[0-9]{0,3})?|\.[0-9]{1,3})\Z"),
    exp_sign=st.sampled_from(["", "+", "-"]),
    exponent=st.integers(0, 30),
    e=st.sampled_from("eE"),
)
def test_yaml_hint_spelling_reads_back_as_the_same_float(
    mantissa: str, exp_sign: str, exponent: int, e: str
) -> None:
    text = f"{mantissa}{e}{exp_sign}{exponent}"
    value = yaml.safe_load(f"x: {text}")["x"]
    if isinstance(value, float):  # PyYAML already reads it; nothing to hint
        return
    (problem,) = problems_of(MTA, {"max_age_hours": value})
    fixed = problem.rsplit(", write ", 1)[1]
    assert yaml.safe_load(f"x: {fixed}")["x"] == float(text)


@pytest.mark.parametrize(
    ("raw", "shown"),
    [(0, "0 (int)"), (1, "1 (int)"), ("yes", "'yes' (str)"), (None, "None (NoneType)")],
)
def test_bool_is_strict(raw: object, shown: str) -> None:
    problems = problems_of(Env, {"providers": {"gmail": {"complaint_feedback": raw}}})
    assert problems == [f"providers.gmail.complaint_feedback: expected true or false, got {shown}"]


def test_int_rejects_fractions_and_bools_but_takes_whole_floats() -> None:
    assert problems_of(Provider, {"campaign_start_hour": 2.5}) == [
        "campaign_start_hour: expected an integer, got 2.5 (float)"
    ]
    assert problems_of(Provider, {"campaign_start_hour": True}) == [
        "campaign_start_hour: expected an integer, got True (bool)"
    ]
    assert load(Provider, {"campaign_start_hour": 7.0}).campaign_start_hour == 7


def test_float_rejects_bools() -> None:
    assert problems_of(MTA, {"max_age_hours": False}) == [
        "max_age_hours: expected a number, got False (bool)"
    ]


def test_str_rejects_numbers() -> None:
    assert problems_of(Env, {"name": 5}) == ["name: expected a string, got 5 (int)"]


def test_optional_mismatch_says_or_null() -> None:
    assert problems_of(Env, {"spike_start_day": "x"}) == [
        "spike_start_day: expected an integer or null, got 'x' (str)"
    ]


def test_number_bounds() -> None:
    assert problems_of(MTA, {"max_age_hours": -1}) == [
        "max_age_hours: expected a number > 0, got -1.0"
    ]
    assert problems_of(Provider, {"campaign_start_hour": 30}) == [
        "campaign_start_hour: expected an integer >= 0 and <= 23, got 30"
    ]
    assert problems_of(Env, {"spike_start_day": -2}) == [
        "spike_start_day: expected an integer >= 0, got -2"
    ]


def test_range_bounds_and_order() -> None:
    assert problems_of(Provider, {"cooling_days": [0.5, 3.0]}) == [
        "cooling_days: expected a [low, high] range with values >= 1, got [0.5, 3.0]"
    ]
    assert problems_of(Provider, {"cooling_days": [30.0, 20.0]}) == [
        "cooling_days: expected low <= high, got [30.0, 20.0]"
    ]


def test_range_shape_and_items() -> None:
    assert problems_of(Provider, {"cooling_days": [1.0]}) == [
        "cooling_days: expected a [low, high] range, got [1.0] (list)"
    ]
    assert problems_of(Provider, {"cooling_days": 5}) == [
        "cooling_days: expected a [low, high] range, got 5 (int)"
    ]
    assert problems_of(Provider, {"cooling_days": [2, "3e1"]}) == [
        "cooling_days[1]: expected a number, got '3e1' (str); YAML reads 3e1 as text, write 3.0e+1"
    ]


def test_variable_tuple_bounds_apply_to_every_item() -> None:
    assert problems_of(Provider, {"weekly_shape": [1, -1]}) == [
        "weekly_shape: expected a list of numbers >= 0, got [1.0, -1.0]"
    ]
    assert load(Provider, {"weekly_shape": []}).weekly_shape == ()


def test_dict_bounds_apply_to_values() -> None:
    assert problems_of(Env, {"provider_mix": {"gmail": -1, "yahoo": 1}}) == [
        "provider_mix.gmail: expected a number >= 0, got -1.0"
    ]


def test_dict_keys_must_be_text() -> None:
    assert problems_of(Env, {"provider_mix": {1: 0.5}}) == [
        "provider_mix: expected string keys, got 1 (int)"
    ]


def test_literal_choices() -> None:
    assert problems_of(MTA, {"overflow": "share"}) == [
        "overflow: expected one of 'shared', 'queue', got 'share' (str); did you mean 'shared'?"
    ]
    assert problems_of(MTA, {"overflow": 1}) == [
        "overflow: expected one of 'shared', 'queue', got 1 (int)"
    ]


def test_setting_choices() -> None:
    assert problems_of(Provider, {"tier": "c"}) == ["tier: expected one of 'a', 'b', got 'c'"]


def test_nested_mapping_expected() -> None:
    assert problems_of(Root, {"env": {"mta": 3}}) == ["env.mta: expected a mapping, got 3 (int)"]
    assert problems_of(Root, [1]) == ["expected a mapping, got [1] (list)"]


def test_nested_paths_reach_dict_entries() -> None:
    problems = problems_of(Root, {"env": {"providers": {"gmail": {"campaign_start_hour": 24}}}})
    assert problems == [
        "env.providers.gmail.campaign_start_hour: expected an integer >= 0 and <= 23, got 24"
    ]


def test_cross_field_check_is_prefixed_with_nested_path() -> None:
    data = {"env": {"mta": {"max_age_hours": 2, "retry_interval_hours": 3}}}
    assert problems_of(Root, data) == [
        "env.mta.retry_interval_hours: expected <= max_age_hours (2.0), got 3.0"
    ]


def test_cross_field_check_waits_for_valid_fields() -> None:
    assert problems_of(MTA, {"max_age_hours": -1, "retry_interval_hours": 3}) == [
        "max_age_hours: expected a number > 0, got -1.0"
    ]


def test_all_problems_reported_at_once() -> None:
    data = {
        "seed": "one",
        "env": {
            "nmae": "y",
            "spike_start_day": -1,
            "mta": {"max_age_hours": "abc", "overflow": "queue", "retry_interval_hours": 30},
            "providers": {
                "gmail": {"cooling_days": [30, 20], "complaint_feedback": "yes"},
                "new": {"weekly_shape": [-1]},
            },
        },
    }
    with pytest.raises(ConfigError) as info:
        load(Root, data)
    assert info.value.problems == [
        "env.nmae: unknown key; did you mean 'name'?",
        "env.providers.gmail.complaint_feedback: expected true or false, got 'yes' (str)",
        "env.providers.gmail.cooling_days: expected low <= high, got [30.0, 20.0]",
        "env.providers.new.weekly_shape: expected a list of numbers >= 0, got [-1.0]",
        "env.mta.max_age_hours: expected a number, got 'abc' (str)",
        "env.mta.retry_interval_hours: expected a number > 0 and <= 24, got 30.0",
        "env.spike_start_day: expected an integer >= 0, got -1",
        "seed: expected an integer, got 'one' (str)",
    ]
    assert str(info.value) == "; ".join(info.value.problems)


# --- dicts of configs ----------------------------------------------------------------------


def test_default_dict_entry_is_merged_field_by_field() -> None:
    cfg = load(Env, {"providers": {"gmail": {"complaint_feedback": False}}})
    assert cfg.providers["gmail"] == Provider(
        campaign_start_hour=8, tier="b", complaint_feedback=False
    )
    assert cfg.providers["yahoo"] == Provider()


def test_new_dict_entry_starts_from_class_defaults() -> None:
    cfg = load(Env, {"providers": {"outlook": {"tier": "b"}}})
    assert cfg.providers == {**_default_providers(), "outlook": Provider(tier="b")}


def test_null_removes_a_dict_entry() -> None:
    assert set(load(Env, {"providers": {"yahoo": None}}).providers) == {"gmail"}


def test_nested_config_keeps_parent_default() -> None:
    @configclass
    class Custom(Config):
        mta: MTA = setting(MTA(max_age_hours=10.0), "An MTA with a custom default.")

    assert load(Custom, {"mta": {"overflow": "queue"}}).mta == MTA("queue", 10.0)


def test_plain_dict_is_replaced_whole() -> None:
    @configclass
    class Mix(Config):
        mix: dict[str, float] = setting_factory(lambda: {"a": 1.0, "b": 2.0}, "A mix.")

    assert load(Mix, {"mix": {"a": 3}}).mix == {"a": 3.0}


def test_built_configs_pass_through() -> None:
    mta = MTA(overflow="queue")
    assert load(Env, {"mta": mta}).mta is mta
    assert load(MTA, mta) is mta  # type: ignore[arg-type]


def test_required_field_without_default() -> None:
    @configclass
    class Needs(Config):
        name: str
        rate: float = setting(1.0, "A rate.")

    assert problems_of(Needs, {"rate": 2}) == ["name: missing required key"]


def test_long_values_are_shortened_in_messages() -> None:
    (problem,) = problems_of(Provider, {"weekly_shape": [-1] * 40})
    assert problem.endswith("...") and len(problem) < 140


# --- direct construction and declarations --------------------------------------------------


def test_direct_construction_validates() -> None:
    with pytest.raises(ConfigError) as info:
        Provider(cooling_days=(0.5, 0.2), campaign_start_hour=-1)
    assert info.value.problems == [
        "cooling_days: expected a [low, high] range with values >= 1, got [0.5, 0.2]",
        "cooling_days: expected low <= high, got [0.5, 0.2]",
        "campaign_start_hour: expected an integer >= 0 and <= 23, got -1",
    ]
    with pytest.raises(ConfigError, match=r"expected a \[low, high\] range, got \[1.0, 2.0\]"):
        Provider(cooling_days=[1.0, 2.0])  # type: ignore[arg-type]


def test_docs_lists_field_docs() -> None:
    assert MTA.docs() == {
        "overflow": "Where overflow goes.",
        "max_age_hours": "Messages older than this expire.",
        "retry_interval_hours": "Mean time between retries.",
    }


def test_bad_declarations_raise_type_error() -> None:
    with pytest.raises(TypeError, match="name: bounds need a numeric type"):

        @configclass
        class BoundedText(Config):
            name: str = setting("x", "A name.", ge=0)

    with pytest.raises(TypeError, match="items: unsupported type"):

        @configclass
        class Unsupported(Config):
            items: list[int] = setting_factory(list, "A list.")


def test_plain_dataclass_config_is_refused() -> None:
    @dataclass(frozen=True)
    class Plain(Config):
        rate: float = setting(1.0, "A rate.", gt=0)

    with pytest.raises(TypeError, match="Plain: declare config classes with @configclass"):
        Plain(rate=-1.0)


def test_configs_are_frozen() -> None:
    cfg = MTA()
    with pytest.raises(FrozenInstanceError):
        cfg.max_age_hours = 1.0  # type: ignore[misc]


# --- overrides -----------------------------------------------------------------------------


def test_override_values_are_yaml() -> None:
    data = {"mta": {"overflow": "queue"}}
    result = apply_overrides(
        data,
        ["providers.gmail.cooling_days=[1, 2]", "flag=true", "mta.max_age_hours = 3.0e-4", "a=b=c"],
    )
    assert result == {
        "mta": {"overflow": "queue", "max_age_hours": 3.0e-4},
        "providers": {"gmail": {"cooling_days": [1, 2]}},
        "flag": True,
        "a": "b=c",
    }
    assert data == {"mta": {"overflow": "queue"}}


@pytest.mark.parametrize("override", ["max_age_hours", "=3", "mta..x=1", "mta.=1"])
def test_malformed_override(override: str) -> None:
    with pytest.raises(ConfigError) as info:
        apply_overrides({}, [override])
    assert info.value.problems == [f"--set {override}: expected dotted.key=value"]


def test_override_inside_a_scalar_names_the_key() -> None:
    with pytest.raises(ConfigError) as info:
        apply_overrides({"mta": {"max_age_hours": 72.0}}, ["mta.max_age_hours.x=1", "y", "z=[1"])
    assert info.value.problems[:2] == [
        "--set mta.max_age_hours.x=1: mta.max_age_hours is 72.0 (float), not a mapping",
        "--set y: expected dotted.key=value",
    ]
    assert info.value.problems[2].startswith("--set z=[1: cannot read the value: ")


def test_override_of_one_field_of_default_entry_keeps_the_others() -> None:
    cfg = load_config(Env, None, ["providers.gmail.complaint_feedback=false"])
    assert cfg.providers["gmail"] == Provider(
        campaign_start_hour=8, tier="b", complaint_feedback=False
    )
    assert cfg.providers["yahoo"] == Provider()


def test_unknown_override_key_gets_suggestion() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(Env, None, ["mta.max_age=5"])
    assert info.value.problems == ["mta.max_age: unknown key; did you mean 'max_age_hours'?"]


def test_override_exponent_hint() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(Env, None, ["mta.max_age_hours=3e-4"])
    assert info.value.problems == [
        "mta.max_age_hours: expected a number, got '3e-4' (str); "
        "YAML reads 3e-4 as text, write 3.0e-4"
    ]


# --- plain data out ------------------------------------------------------------------------


def test_to_dict_is_plain_and_round_trips() -> None:
    cfg = load(
        Env,
        {"providers": {"yahoo": None, "new": {"tier": "b"}}, "provider_mix": {"gmail": 2}},
    )
    data = to_dict(cfg)
    assert data["providers"]["yahoo"] is None
    assert data["providers"]["gmail"]["cooling_days"] == [20.0, 30.0]
    assert yaml.safe_load(yaml.safe_dump(data)) == data
    assert load(Env, data) == cfg


@given(
    low=st.floats(1, 100),
    span=st.floats(0, 100),
    shape=st.lists(st.floats(0, 10), max_size=7),
    hour=st.integers(0, 23),
    feedback=st.booleans(),
    spike=st.none() | st.integers(0, 1000),
    overflow=st.sampled_from(["shared", "queue"]),
)
def test_to_dict_round_trips_any_valid_config(
    low: float,
    span: float,
    shape: list[float],
    hour: int,
    feedback: bool,
    spike: int | None,
    overflow: Literal["shared", "queue"],
) -> None:
    provider = Provider((low, low + span), feedback, tuple(shape), hour)
    cfg = Env(providers={"p": provider}, mta=MTA(overflow=overflow), spike_start_day=spike)
    assert load(Env, yaml.safe_load(yaml.safe_dump(to_dict(cfg)))) == cfg


def test_flatten_keys() -> None:
    cfg = Env(providers={"gmail": Provider()}, provider_mix={})
    flat = flatten(cfg)
    assert flat == {
        "providers.gmail.cooling_days": "[20.0, 30.0]",
        "providers.gmail.complaint_feedback": True,
        "providers.gmail.weekly_shape": "[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]",
        "providers.gmail.campaign_start_hour": 9,
        "providers.gmail.tier": "a",
        "providers.yahoo": "null",
        "mta.overflow": "shared",
        "mta.max_age_hours": 72.0,
        "mta.retry_interval_hours": 1.0,
        "provider_mix": "{}",
        "name": "x",
        "spike_start_day": "null",
    }
    assert set(flatten({"a": {"b": 1}}, prefix="env")) == {"env.a.b"}


def test_flattened_values_read_back_as_overrides() -> None:
    cfg = load(Env, {"spike_start_day": 3, "mta": {"overflow": "queue"}})
    overrides = [f"{key}={value}" for key, value in flatten(cfg).items()]
    assert load_config(Env, None, overrides) == cfg


# --- files ---------------------------------------------------------------------------------


def test_load_yaml_reads_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "env.yaml"
    path.write_text("mta:\n  max_age_hours: 48\n", encoding="utf-8")
    assert load_yaml(path) == {"mta": {"max_age_hours": 48}}
    assert load_yaml(str(path)) == {"mta": {"max_age_hours": 48}}


def test_load_yaml_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing yet\n", encoding="utf-8")
    assert load_yaml(path) == {}


def test_load_yaml_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.yaml"
    with pytest.raises(ConfigError) as info:
        load_yaml(path)
    assert info.value.problems == [f"{path}: no such file"]
    assert isinstance(info.value.__cause__, FileNotFoundError)


def test_load_yaml_syntax_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("mta:\n  max_age_hours: [1, 2\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_yaml(path)
    (problem,) = info.value.problems
    assert problem.startswith(f"{path}: invalid YAML: ")
    assert "line 3" in problem and "\n" not in problem
    assert isinstance(info.value.__cause__, yaml.YAMLError)


def test_load_yaml_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(ConfigError, match=r"latin1\.yaml: cannot read the file: ") as info:
        load_yaml(path)
    assert isinstance(info.value.__cause__, UnicodeDecodeError)


def test_load_yaml_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_yaml(path)
    assert info.value.problems == [
        f"{path}: expected a mapping at the top level, got [1, 2] (list)"
    ]


def test_load_config_file_then_overrides(tmp_path: Path) -> None:
    path = tmp_path / "env.yaml"
    path.write_text("mta:\n  max_age_hours: 48\n  overflow: queue\n", encoding="utf-8")
    cfg = load_config(Env, path, ["mta.max_age_hours=24"])
    assert cfg.mta == MTA(overflow="queue", max_age_hours=24.0)
    assert load_config(Env, path).mta.max_age_hours == 48.0
