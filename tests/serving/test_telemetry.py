"""The production telemetry record: parity with the simulator, examples, bad input, schema."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipwarmup.agents.registry import make_policy
from ipwarmup.envs import IPWarmupEnv
from ipwarmup.errors import TelemetryError
from ipwarmup.observation import Layout, feature_bounds
from ipwarmup.serving.telemetry import (
    COUNT_FIELDS,
    MAX_COUNT,
    MAX_DAYS,
    PERIOD_HOURS,
    POOL_KEYS,
    TIME_KEYS,
    TOP_KEYS,
    encode_record,
    json_schema,
    record_from_telemetry,
    to_telemetry,
    validate,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PROVIDERS = ("gmail", "microsoft", "yahoo", "apple", "other")
MAX_IPS = 8
HORIZON_DAYS = 45
INVALID_KINDS = (
    "negative_count", "not_a_number", "nan", "missing_provider", "unknown_provider",
    "wrong_schema_version", "bad_period", "too_many_ips", "inconsistent_counts", "huge_number",
    "missing_field", "unknown_field", "boolean_count", "not_an_object",
)  # fmt: skip


def example() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / "telemetry-v1.json").read_text())
    return data


def problems_of(record: object) -> list[str]:
    with pytest.raises(TelemetryError) as caught:
        validate(record, PROVIDERS, max_ips=MAX_IPS)
    return caught.value.problems


# --------------------------------------------------------------------------- parity


def _random_actions(env: IPWarmupEnv, rng: np.random.Generator) -> Callable[..., np.ndarray]:
    def act(_obs: np.ndarray, _step: int) -> np.ndarray:
        action = rng.uniform(-1.0, 1.0, size=env.action_space.shape)
        action[-1] = rng.uniform(-0.6, 0.6)  # grow or shrink the pool now and then
        return action

    return act


def _aggressive(env: IPWarmupEnv) -> Callable[..., np.ndarray]:
    # Caps up every step: deferrals, blocks and 5xx rejections follow.
    def act(_obs: np.ndarray, _step: int) -> np.ndarray:
        action = np.ones(env.action_space.shape)
        action[-1] = 0.0
        return action

    return act


def _baseline(env: IPWarmupEnv, name: str) -> Callable[..., np.ndarray]:
    policy = make_policy(name, env.config)
    state: Any = None

    def act(obs: np.ndarray, step: int) -> np.ndarray:
        nonlocal state
        action, state = policy.predict(obs, state, np.array([step == 0]))
        return action

    return act


PARITY_CASES = [
    ("steady_b2c_transactional", (), "fixed-sendgrid", 0),
    ("bursty_b2c_marketing", ("mta.overflow=queue",), "random", 1),
    ("b2b_microsoft_heavy", ("decision_interval_hours=6",), "aggressive", 2),
    ("poor_list_quality", ("decision_interval_hours=6", "mta.overflow=queue"), "aimd", 3),
    ("fast_growing_startup", ("decision_interval_hours=6", "mta.overflow=queue"), "random", 4),
    ("bursty_b2c_marketing", ("mta.overflow=queue",), "aggressive", 5),
    ("low_volume", (), "random", 6),
]


@pytest.mark.parametrize(("scenario", "overrides", "policy", "seed"), PARITY_CASES)
def test_serving_encodes_simulator_telemetry_exactly_like_the_simulator(
    scenario: str, overrides: tuple[str, ...], policy: str, seed: int
) -> None:
    env = IPWarmupEnv(scenario=scenario, overrides=list(overrides))
    config = env.config
    names, hours = config.provider_names, config.decision_interval_hours
    assert names == PROVIDERS
    act = {
        "random": _random_actions(env, np.random.default_rng(seed)),
        "aggressive": _aggressive(env),
    }
    choose = act.get(policy) or _baseline(env, policy)
    obs, _ = env.reset(seed=seed)
    seen = {"deferred": 0.0, "rejected": 0.0, "queued": 0.0, "complaints": 0.0}
    # The default layout: the ESP sends its MTA's set-up and its last three records' counts.
    layout = config.observation.layout
    assert layout == Layout(history_periods=3, mta_inputs=True)
    mta = {"overflow": config.mta.overflow, "max_age_hours": config.mta.max_age_hours,
           "retry_interval_hours": config.mta.retry_interval_hours}  # fmt: skip
    past: list[dict[str, Any]] = []
    for step in range(config.horizon_days * 24 // hours + 1):  # reset state, then every step
        sim = env.simulator
        record = record_from_telemetry(sim.telemetry, 0, names, period_hours=hours, mta=mta,
                                       history=past[:3])  # fmt: skip
        assert len(record["history"]) == min(step, 3)
        past.insert(0, record["providers"])
        kwargs = {"horizon_days": config.horizon_days, "max_ips": config.pool.max_ips,
                  "layout": layout}  # fmt: skip
        served = encode_record(record, names, **kwargs)
        np.testing.assert_array_equal(served, sim.observe()[0], err_msg=f"step {step}")
        wire = json.loads(json.dumps(record))
        np.testing.assert_array_equal(encode_record(wire, names, **kwargs), sim.observe()[0])
        assert served.dtype == np.float32 and served.shape == env.observation_space.shape
        if step:  # the derived quantities too, not only the (clipped) features
            clean = validate(wire, names, max_ips=config.pool.max_ips, layout=layout)
            rebuilt = to_telemetry(clean, names)
            for field in vars(rebuilt):
                np.testing.assert_allclose(
                    getattr(rebuilt, field), getattr(sim.telemetry, field), rtol=1e-12, atol=1e-9
                )
        for key in seen:
            seen[key] += sum(entry[key] for entry in record["providers"].values())
        if step < config.horizon_days * 24 // hours:
            obs, *_ = env.step(choose(obs, step))
    assert seen["complaints"] > 0
    if policy == "aggressive":
        assert seen["deferred"] > 0 and seen["rejected"] > 0  # blocks were exercised
    if policy == "random" and "mta.overflow=queue" in overrides:
        assert seen["queued"] > 0


def test_record_from_telemetry_before_the_first_period_carries_the_expected_demand() -> None:
    env = IPWarmupEnv(scenario="steady_b2c_transactional")
    env.reset(seed=0)
    t = env.simulator.telemetry
    record = record_from_telemetry(t, 0, PROVIDERS, period_hours=24)
    assert float(t.demand.sum()) == 0.0 < float(t.demand_per_hour.sum())
    for j, name in enumerate(PROVIDERS):
        assert record["providers"][name]["demand"] == pytest.approx(24 * t.demand_per_hour[0, j])


# --------------------------------------------------------------------------- examples


def test_example_is_valid_and_normalised_to_floats() -> None:
    record = example()
    snapshot = copy.deepcopy(record)
    clean = validate(record, PROVIDERS, max_ips=MAX_IPS)
    assert record == snapshot
    assert list(clean) == list(TOP_KEYS)
    assert list(clean["providers"]) == list(PROVIDERS)
    for entry in clean["providers"].values():
        assert list(entry) == list(COUNT_FIELDS)
        assert all(type(value) is float for value in entry.values())
    assert clean["period_hours"] == 24 and type(clean["pool"]["dedicated_ips"]) is int
    assert validate(clean, PROVIDERS, max_ips=MAX_IPS) == clean
    obs = encode_record(record, PROVIDERS, horizon_days=HORIZON_DAYS, max_ips=MAX_IPS)
    assert obs.shape == (9 * len(PROVIDERS) + 6,)


def test_every_kind_of_invalid_example_is_shipped() -> None:
    assert sorted(path.stem for path in (EXAMPLES / "invalid").glob("*.json")) == sorted(
        INVALID_KINDS
    )
    readme = (EXAMPLES / "README.md").read_text()
    assert all(f"`{kind}`" in readme for kind in INVALID_KINDS)


@pytest.mark.parametrize("kind", INVALID_KINDS)
def test_invalid_example_reports_exactly_the_expected_problems(kind: str) -> None:
    record = json.loads((EXAMPLES / "invalid" / f"{kind}.json").read_text())
    expected = (EXAMPLES / "invalid" / f"{kind}.expected").read_text().splitlines()
    assert expected
    assert problems_of(record) == expected


# --------------------------------------------------------------------------- messages


def test_several_problems_are_reported_at_once_in_schema_order() -> None:
    record = example()
    record["providers"]["yahoo"]["accepted"] = "abc"
    record["providers"]["gmail"]["deferred"] = -3
    record["time"]["hour"] = 24
    assert problems_of(record) == [
        "telemetry.time.hour: expected an integer from 0 to 23, got 24",
        "telemetry.providers.gmail.deferred: expected a count >= 0, got -3",
        "telemetry.providers.yahoo.accepted: expected a number, got 'abc' (str)",
    ]


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("schema_version", "1", "expected 1 or 2, got '1' (str)"),
        ("schema_version", True, "expected 1 or 2, got True (bool)"),
        ("schema_version", 3, "expected 1 or 2, got 3"),
        ("period_hours", 24.5, "expected one of [1, 2, 3, 4, 6, 8, 12, 24], got 24.5"),
        ("time.weekday", 3.5, "expected an integer from 0 to 6, got 3.5"),
        ("time.weekday", float("nan"), "expected an integer from 0 to 6, got nan"),
        ("time.day", -1, "expected a number >= 0, got -1"),
        ("time.day", 1e9, f"expected a number <= {MAX_DAYS:g}, got 1000000000.0"),
        ("pool", [], "expected a JSON object, got list"),
        ("providers.gmail", None, "expected a JSON object, got NoneType"),
        ("providers.gmail.queued", None, "expected a number, got None (NoneType)"),
        ("providers.gmail.queued", float("-inf"), "expected a finite number, got -inf"),
        ("providers.gmail.queued", 10**400, "expected a count <= 1e+12, got 1000"),
        ("pool.dedicated_ips", -1, "expected an integer from 0 to 8, got -1"),
    ],
)
def test_bad_value_message(path: str, value: object, message: str) -> None:
    record = example()
    *parents, leaf = path.split(".")
    node = record
    for key in parents:
        node = node[key]
    node[leaf] = value
    (problem,) = problems_of(record)
    assert problem.startswith(f"telemetry.{path}: {message}")
    assert len(problem) < 200  # huge values are abbreviated


def test_integral_floats_and_numpy_scalars_are_accepted() -> None:
    record = example()
    record["period_hours"] = 24.0
    record["time"]["weekday"] = np.int64(2)
    record["pool"]["dedicated_ips"] = 1.0
    record["providers"]["gmail"]["queued"] = np.float32(5.0)
    clean = validate(record, PROVIDERS, max_ips=MAX_IPS)
    assert clean["period_hours"] == 24 and clean["time"]["weekday"] == 2
    assert type(clean["providers"]["gmail"]["queued"]) is float


def test_consistency_allows_float_rounding_only() -> None:
    record = example()
    gmail = record["providers"]["gmail"]
    gmail["accepted"], gmail["deferred"], gmail["rejected"] = gmail["sent_dedicated"], 0, 0
    gmail["deferred"] = gmail["sent_dedicated"] * 1e-7
    validate(record, PROVIDERS, max_ips=MAX_IPS)
    gmail["deferred"] = gmail["sent_dedicated"] * 1e-5
    (problem,) = problems_of(record)
    assert problem.startswith("telemetry.providers.gmail: accepted + deferred + rejected (")


def test_consistency_is_not_checked_over_invalid_counts() -> None:
    record = example()
    record["providers"]["gmail"]["sent_dedicated"] = "many"
    assert problems_of(record) == [
        "telemetry.providers.gmail.sent_dedicated: expected a number, got 'many' (str)"
    ]


def test_unknown_provider_names_the_known_ones_and_misspelt_keys_get_a_suggestion() -> None:
    record = example()
    record["providers"]["gmial"] = record["providers"].pop("gmail")
    record["time"]["weekdays"] = record["time"].pop("weekday")
    assert problems_of(record) == [
        "telemetry.time.weekday: missing",
        "telemetry.time.weekdays: unknown key; did you mean 'weekday'?",
        "telemetry.providers.gmail: missing",
        "telemetry.providers.gmial: unknown provider; expected one of "
        "['gmail', 'microsoft', 'yahoo', 'apple', 'other']",
    ]


# --------------------------------------------------------------------------- properties

_SECTIONS = {"": TOP_KEYS, "time": TIME_KEYS, "pool": POOL_KEYS, "providers": PROVIDERS}
_SECTIONS.update({f"providers.{name}": COUNT_FIELDS for name in PROVIDERS})
_LEAVES = [
    f"{section}.{key}".lstrip(".")
    for section, keys in _SECTIONS.items()
    for key in keys
    if f"{section}.{key}".lstrip(".") not in _SECTIONS
]

_bad_values = st.one_of(
    st.sampled_from([float("nan"), float("inf"), float("-inf"), None, True, False]),
    st.floats(max_value=-1e-9, allow_nan=False, allow_infinity=False),
    st.integers(max_value=-1),
    st.floats(min_value=1e13, allow_infinity=False),
    st.integers(min_value=10**13),
    st.text(max_size=8),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)
_non_objects = st.one_of(
    st.none(), st.integers(), st.text(max_size=5), st.lists(st.integers(), max_size=2)
)


def _node(record: Any, path: str) -> Any:
    for key in filter(None, path.split(".")):
        if not isinstance(record, dict) or key not in record:
            return None
        record = record[key]
    return record


def _parent(record: Any, path: str) -> tuple[dict[str, Any] | None, str]:
    head, _, leaf = path.rpartition(".")
    parent = _node(record, head)
    return (parent if isinstance(parent, dict) else None), leaf


@st.composite
def corrupted_records(draw: st.DrawFn) -> Any:
    """Spoil the example 1 to 3 times; no spoiling can repair an earlier one."""
    record: Any = example()
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["set", "delete", "add", "renest", "wrap", "replace"]))
        if kind == "replace":
            return draw(_non_objects)
        if kind in ("set", "wrap"):
            parent, leaf = _parent(record, draw(st.sampled_from(_LEAVES)))
            if parent is None:
                continue
            old = parent.get(leaf)
            parent[leaf] = (
                draw(_bad_values)
                if kind == "set"
                else draw(st.sampled_from([[old], {"value": old}]))
            )
        elif kind == "delete":
            parent, leaf = _parent(record, draw(st.sampled_from(_LEAVES + list(_SECTIONS)[1:])))
            if parent is not None:
                parent.pop(leaf, None)
        elif kind == "add":
            section = draw(st.sampled_from(list(_SECTIONS)))
            target = _node(record, section)
            key = draw(st.text(min_size=1, max_size=10))
            key = f"{key}_extra" if key in _SECTIONS[section] else key
            if isinstance(target, dict):
                target[key] = draw(st.one_of(_bad_values, st.integers(0, 10)))
        else:
            parent, leaf = _parent(record, draw(st.sampled_from(list(_SECTIONS)[1:])))
            if parent is not None and leaf in parent:
                parent[leaf] = draw(_non_objects)
    if record == example():  # every corruption was skipped
        record["providers"]["gmail"]["deferred"] = -1
    return record


@settings(max_examples=300, deadline=None)
@given(corrupted_records())
def test_corrupted_records_raise_telemetry_errors_and_stay_unchanged(record: Any) -> None:
    snapshot = copy.deepcopy(record)
    problems = problems_of(record)
    assert problems
    assert all(line.startswith(("telemetry.", "telemetry:")) for line in problems)
    assert record == snapshot


@st.composite
def valid_records(draw: st.DrawFn) -> dict[str, Any]:
    """Draw plausible records whose counts agree with each other."""
    count = st.one_of(st.floats(0.0, MAX_COUNT), st.integers(0, 10**9))
    fraction = st.floats(0.0, 1.0)
    providers = {}
    for name in PROVIDERS:
        sent = draw(count)
        shares = [draw(fraction) for _ in range(3)]
        total = max(sum(shares), 1.0)
        accepted, deferred, rejected = (sent * share / total for share in shares)
        shared = draw(count)
        providers[name] = {
            "demand": draw(count),
            "dedicated_cap_per_hour": draw(count),
            "sent_dedicated": sent,
            "accepted": accepted,
            "deferred": deferred,
            "rejected": rejected,
            "bounced": min((accepted + shared) * draw(fraction), MAX_COUNT),
            "complaints": draw(count),
            "queued": draw(count),
            "sent_shared": shared,
        }
    return {
        "schema_version": draw(st.sampled_from([1, 1.0])),
        "period_hours": draw(st.sampled_from(PERIOD_HOURS)),
        "time": {
            "day": draw(st.floats(0.0, MAX_DAYS)),
            "weekday": draw(st.one_of(st.integers(0, 6), st.integers(0, 6).map(float))),  # 3 or 3.0
            "hour": draw(st.integers(0, 23)),
        },
        "pool": {
            "dedicated_ips": draw(st.integers(0, MAX_IPS)),
            "mean_ip_age_days": draw(st.floats(0.0, MAX_DAYS)),
        },
        "providers": dict(reversed(providers.items())),  # order on the wire does not matter
    }


@settings(max_examples=200, deadline=None)
@given(valid_records())
def test_valid_records_encode_within_the_observation_bounds(record: dict[str, Any]) -> None:
    obs = encode_record(record, PROVIDERS, horizon_days=HORIZON_DAYS, max_ips=MAX_IPS)
    low, high = feature_bounds(len(PROVIDERS))
    assert obs.dtype == np.float32 and obs.shape == low.shape
    assert np.all(np.isfinite(obs)) and np.all(obs >= low) and np.all(obs <= high)
    clean = validate(record, PROVIDERS, max_ips=MAX_IPS)
    assert validate(clean, PROVIDERS, max_ips=MAX_IPS) == clean
    gmail, t = clean["providers"]["gmail"], to_telemetry(clean, PROVIDERS)
    assert t.transmitted[0, 0] == gmail["accepted"] + gmail["sent_shared"]
    assert t.demand_per_hour[0, 0] == gmail["demand"] / clean["period_hours"]


# --------------------------------------------------------------------------- schema


def test_json_schema_structure_names_every_provider() -> None:
    schema = json_schema(PROVIDERS, MAX_IPS)  # a bundle of the last period: version 1
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert "v1" in schema["$id"] and "version 1" in schema["title"]
    assert schema["required"] == list(TOP_KEYS) and schema["additionalProperties"] is False
    props = schema["properties"]
    assert props["schema_version"] == {"const": 1}
    assert props["period_hours"]["enum"] == list(PERIOD_HOURS)
    assert props["providers"]["required"] == list(PROVIDERS)
    assert props["providers"]["additionalProperties"] is False
    assert set(props["providers"]["properties"]) == set(PROVIDERS)
    assert props["time"]["required"] == list(TIME_KEYS)
    assert props["pool"]["properties"]["dedicated_ips"]["maximum"] == MAX_IPS
    provider = schema["$defs"]["provider"]
    assert provider["required"] == list(COUNT_FIELDS) and provider["additionalProperties"] is False
    assert all(provider["properties"][f]["maximum"] == MAX_COUNT for f in COUNT_FIELDS)
    json.dumps(schema, allow_nan=False)  # plain JSON


def test_json_schema_accepts_the_example_and_rejects_what_it_can_express() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json_schema(PROVIDERS, MAX_IPS)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    assert not list(validator.iter_errors(example()))
    for kind in INVALID_KINDS:
        record = json.loads((EXAMPLES / "invalid" / f"{kind}.json").read_text())
        rejected = bool(list(validator.iter_errors(record)))
        # Consistency between counts is beyond JSON Schema; validate() checks it.
        assert rejected == (kind != "inconsistent_counts"), kind


# --------------------------------------------------------------------------- imports


def test_serving_telemetry_imports_no_training_stack() -> None:
    code = (
        "import sys, ipwarmup.serving.telemetry; "
        "bad=[m for m in ('gymnasium','torch','stable_baselines3','mlflow') if m in sys.modules]; "
        "print(bad)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


# --------------------------------------------------------------------------- never breaks

_ANY_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**4300, max_value=10**4400)
    | st.floats()
    | st.text(max_size=6),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(leaf=st.sampled_from(_LEAVES + list(_SECTIONS)[1:]), value=_ANY_JSON)
def test_any_value_anywhere_raises_only_the_telemetry_error(leaf: str, value: Any) -> None:
    record = example()
    parent, key = _parent(record, leaf)
    assert parent is not None
    parent[key] = value
    try:
        validate(record, PROVIDERS, max_ips=MAX_IPS)
    except TelemetryError as error:
        assert 1 <= len(error.problems) <= 50
        assert all(len(line) < 300 for line in error.problems)


@settings(max_examples=100, deadline=None)
@given(_ANY_JSON)
def test_any_json_as_a_record_raises_only_the_telemetry_error(value: Any) -> None:
    with pytest.raises(TelemetryError):
        validate(value, PROVIDERS, max_ips=MAX_IPS)


@pytest.mark.parametrize("digits", [4301, 5000, 100_000])
def test_integers_of_thousands_of_digits_are_named_not_printed(digits: int) -> None:
    record = example()
    record["providers"]["gmail"]["queued"] = 10**digits
    record["time"]["hour"] = -(10**digits)
    problems = problems_of(record)
    assert problems[0].startswith("telemetry.time.hour: expected an integer from 0 to 23, got a ")
    assert "negative integer of about" in problems[0]
    assert problems[1] == (
        f"telemetry.providers.gmail.queued: expected a count <= 1e+12, got an integer of about "
        f"{int((10**digits).bit_length() * 0.30102999566398120)} digits"
    ) or problems[1].startswith("telemetry.providers.gmail.queued: expected a count <= 1e+12, got")


def test_thousands_of_unknown_keys_give_fifty_short_lines() -> None:
    record = example()
    record.update({f"key{i}": "x" * 10 for i in range(4835)})
    record["providers"]["gmail"]["k" * 5000] = 1
    problems = problems_of(record)
    assert len(problems) == 50
    assert problems[0] == (
        "telemetry.key0: unknown key; expected one of "
        "['schema_version', 'period_hours', 'time', 'pool', 'providers']"
    )
    assert problems[-1] == "telemetry: 4786 more unknown keys not listed"
    few = example()
    few["providers"]["gmail"]["k" * 5000] = 1
    (line,) = problems_of(few)
    assert line.startswith("telemetry.providers.gmail." + "k" * 37 + "...: unknown key; ")
    assert len(line) < 400


def test_at_most_fifty_problems_say_how_many_were_left_out() -> None:
    record = example()
    for entry in record["providers"].values():
        for key in entry:
            entry[key] = -1
    for i in range(20):
        record["time"][f"x{i}"] = 1
    problems = problems_of(record)
    assert len(problems) == 50
    assert problems[-1] == "telemetry: 21 more problems not listed"


def test_a_problem_cut_after_an_entry_of_two_lines_is_still_counted() -> None:
    # gmail's entry is inconsistent twice (two lines), then 49 unknown keys: 51 lines in
    # all, from 50 problems. 49 are listed and the line after them counts the other two.
    record = example()
    gmail = {"accepted": 10.0, "deferred": 0.0, "rejected": 0.0, "sent_dedicated": 0.0}
    record["providers"]["gmail"].update(gmail, bounced=100.0, sent_shared=0.0)
    keys = [(p, f"x{i}") for p in ("microsoft", "yahoo", "apple", "other") for i in range(13)]
    for provider, key in keys[:49]:
        record["providers"][provider][key] = 0
    problems = problems_of(record)
    assert len(problems) == 50
    assert problems[:2] == [
        "telemetry.providers.gmail: accepted + deferred + rejected (10) exceeds sent_dedicated (0)",
        "telemetry.providers.gmail: bounced (100) exceeds accepted + sent_shared (10)",
    ]
    assert problems[-2].startswith("telemetry.providers.other.x7: unknown key")
    assert problems[-1] == "telemetry: 2 more problems not listed"


class _Unreadable(Mapping[str, Any]):
    """A mapping with the example's keys whose values raise when read."""

    def __init__(self, error: type[Exception]) -> None:
        self.keys_of = example()
        self.error = error

    def __getitem__(self, key: str) -> Any:
        raise self.error(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys_of)

    def __len__(self) -> int:
        return len(self.keys_of)


class _Endless(Mapping[str, Any]):
    """A mapping whose every value is computed from itself: nested past any limit."""

    def __getitem__(self, key: str) -> Any:
        return self[key]

    def __iter__(self) -> Iterator[str]:
        return iter(TOP_KEYS)

    def __len__(self) -> int:
        return len(TOP_KEYS)


@pytest.mark.parametrize(
    ("record", "kind"),
    [
        (_Unreadable(ValueError), "ValueError"),
        (_Unreadable(TypeError), "TypeError"),
        (_Unreadable(OverflowError), "OverflowError"),
        # Last: a RecursionError inside a line tracer (coverage, scripts/mutation) stops it.
        (_Endless(), "RecursionError"),
    ],
)
def test_a_record_that_cannot_be_read_gets_one_line(record: object, kind: str) -> None:
    assert problems_of(record) == [f"telemetry: cannot be validated ({kind})"]


def test_a_mapping_that_fails_to_read_is_named_not_a_crash() -> None:
    # pydantic reports a mapping whose reads raise KeyError as ``mapping_type`` at the root.
    assert problems_of(_Unreadable(KeyError)) == [
        "telemetry: expected a JSON object, got _Unreadable"
    ]
    record = example()
    record["time"] = _Unreadable(KeyError)
    assert problems_of(record) == ["telemetry.time: expected a JSON object, got _Unreadable"]
