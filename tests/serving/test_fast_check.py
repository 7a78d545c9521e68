"""``decide``'s fast check accepts exactly what pydantic accepts, and decides the same.

``ServedPolicy.decide`` first tries :meth:`ipwarmup.serving.single.OneRecord.decide` on the
raw record: plain dicts with exactly the expected keys, ``int``/``float`` numbers, then the
kernel's bounds (read from the record's JSON Schema) and consistency checks. Anything it
refuses goes to pydantic (``ServedPolicy._validate``). The differential tests here hold the
two to each other on valid records and on many kinds of invalid ones: a record the fast
check takes must be one pydantic takes, decided the same to the last bit; a JSON record
(dicts, lists, str, int, float, bool, None) it refuses must be one pydantic refuses; and
``decide`` answers as the pydantic path does either way, the same problems included.
"""

from __future__ import annotations

import copy
import json
import math
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipwarmup.errors import TelemetryError
from ipwarmup.serving import load_policy
from ipwarmup.serving.policy import ServedPolicy
from ipwarmup.serving.record import RELATIVE_TOLERANCE
from ipwarmup.serving.single import record_bounds
from ipwarmup.serving.telemetry import COUNT_FIELDS, MAX_COUNT, MAX_DAYS
from tests.serving.shipped import default_bundle
from tests.serving.test_fast_path import realistic_records

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE: dict[str, Any] = json.loads((ROOT / "examples" / "telemetry-v1.json").read_text())
PROVIDERS = ("gmail", "microsoft", "yahoo", "apple", "other")


@pytest.fixture(scope="module")
def policy() -> ServedPolicy:
    return load_policy(default_bundle())


class _Int(int):
    pass


class _Float(float):
    pass


class _Dict(dict):  # type: ignore[type-arg]  # a dict subclass, as a caller might pass
    pass


_LEAVES = [
    *(f"providers.{p}.{f}" for p in PROVIDERS for f in COUNT_FIELDS),
    "pool.dedicated_ips", "pool.mean_ip_age_days", "time.day", "time.weekday", "time.hour",
    "schema_version", "period_hours",
]  # fmt: skip
_SECTIONS = ["", "time", "pool", "providers", *(f"providers.{p}" for p in PROVIDERS)]
_TRICKY = st.sampled_from([
    True, False, None, "1", [1], {"value": 1}, math.nan, math.inf, -math.inf, -1, -1e-300,
    -0.0, 0, 1, 1.0, 2.5, 3.0, 6, 7, 8, 9, 12, 23, 23.5, 24, 25, 24.0, 36_500, 36_500.5,
    MAX_DAYS, math.nextafter(MAX_DAYS, math.inf), MAX_COUNT, 10**12, 10**12 + 1,
    math.nextafter(MAX_COUNT, math.inf), 10**13, 10**400, -(10**400), 5e-324,
    np.float64(3.0), np.int64(3), np.float32(2.0), Decimal("1"), Fraction(1, 2), _Int(3),
    _Float(3.0),
])  # fmt: skip
_NUMBERS = st.one_of(
    _TRICKY, st.floats(), st.integers(), st.floats(-1.0, 30.0), st.integers(-2, 30)
)


def _parent(record: Any, path: str) -> tuple[Any, str]:
    head, _, leaf = path.rpartition(".")
    node = record
    for key in filter(None, head.split(".")):
        node = node.get(key) if type(node) is dict else None
    return node, leaf


@st.composite
def spoiled_records(draw: st.DrawFn) -> Any:
    """A realistic record spoiled 0 to 3 times (a spoiling may leave it valid)."""
    record: Any = draw(realistic_records())
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["set", "delete", "add", "section", "total", "total"]))
        parent, leaf = _parent(record, draw(st.sampled_from(_LEAVES + _SECTIONS[1:])))
        if type(parent) is not dict:
            continue
        if kind == "set":
            parent[leaf] = draw(_NUMBERS)
        elif kind == "delete":
            parent.pop(leaf, None)
        elif kind == "add":
            section, _ = _parent(record, draw(st.sampled_from(_SECTIONS)) + ".x")
            if type(section) is dict:
                section[draw(st.sampled_from(["extra", "Demand", "gmail", "day", 1]))] = 0
        elif kind == "section" and leaf in parent:
            old = parent[leaf]
            parent[leaf] = draw(st.sampled_from([_Dict(old) if type(old) is dict else old,
                                                 [old], None, "x", 0]))  # fmt: skip
        else:  # totals at and around the consistency rules' tolerance
            entries = record.get("providers")
            entry = entries.get(draw(st.sampled_from(PROVIDERS))) if type(entries) is dict else None
            needed = ("sent_dedicated", "accepted", "sent_shared")
            if type(entry) is not dict or not all(
                type(entry.get(k)) in (int, float) and abs(entry[k]) < 1e13 for k in needed
            ):
                continue
            over = draw(st.sampled_from([0.0, 1e-7, 9.9e-7, 1e-6, 1.01e-6, 2e-6, 1e-3, 1.0]))
            if draw(st.booleans()):
                entry["deferred"] = 0.0
                entry["rejected"] = 0.0
                entry["accepted"] = entry["sent_dedicated"] * (1.0 + over) + draw(
                    st.sampled_from([0.0, 0.5, 1.0])
                )
            else:
                entry["bounced"] = (entry["accepted"] + entry["sent_shared"]) * (1.0 + over)
    return record


def _plain(value: object) -> bool:
    """Whether ``value`` holds only what ``json.loads`` makes."""
    if type(value) is dict:
        return all(type(k) is str and _plain(v) for k, v in value.items())
    if type(value) is list:
        return all(_plain(v) for v in value)
    return value is None or type(value) in (bool, int, float, str)


def _long_way(policy: ServedPolicy, record: object) -> tuple[dict[str, Any] | None, Any]:
    """pydantic's validation, then the decision of the validated record; or the problems."""
    try:
        clean = policy._validate(record)
    except TelemetryError as error:
        return None, error.problems
    return policy._decide_one(clean), None


def _same_answer(policy: ServedPolicy, record: object) -> None:
    snapshot = copy.deepcopy(record)
    fast = policy._single.decide(record)
    decision, problems = _long_way(policy, record)
    if fast is not None:
        assert problems is None, f"the fast check took a record pydantic refuses: {problems}"
        assert policy._decision(*fast) == decision
    elif _plain(record):
        assert problems is not None, "the fast check refused a valid JSON record"
    try:
        answer = policy.decide(record)
    except TelemetryError as error:
        assert error.problems == problems
    else:
        assert answer == decision
    assert record == snapshot  # nothing was changed (NaN is the same object in both)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(record=spoiled_records())
def test_the_fast_check_and_pydantic_agree(policy: ServedPolicy, record: Any) -> None:
    _same_answer(policy, record)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(leaf=st.sampled_from(_LEAVES), value=_NUMBERS)
def test_any_number_anywhere_is_judged_as_pydantic_judges_it(
    policy: ServedPolicy, leaf: str, value: Any
) -> None:
    record = copy.deepcopy(EXAMPLE)
    parent, key = _parent(record, leaf)
    parent[key] = value
    _same_answer(policy, record)


def test_valid_records_of_every_kind_take_the_fast_path(policy: ServedPolicy) -> None:
    """Integral floats, ints, -0.0 and every bound itself are taken, and decided alike."""
    record = copy.deepcopy(EXAMPLE)
    assert policy._single.decide(record) is not None
    record.update(schema_version=1.0, period_hours=24.0)
    record["time"].update(day=MAX_DAYS, weekday=6.0, hour=23)
    record["pool"].update(dedicated_ips=float(policy.max_ips), mean_ip_age_days=-0.0)
    record["providers"]["gmail"].update(demand=MAX_COUNT, queued=10**12, deferred=-0.0)
    assert policy._single.decide(record) is not None
    _same_answer(policy, record)
    decision = policy.decide(record)
    assert type(decision["pool"]["dedicated_ips"]) is int  # 8.0 IPs are 8


@pytest.mark.parametrize("which", ["attempts", "bounced"])
@pytest.mark.parametrize("base", [123_456.7, 0.5, 0.0])
def test_the_consistency_boundary_is_pydantics_to_the_last_bit(
    policy: ServedPolicy, which: str, base: float
) -> None:
    """Step a total across the tolerance one float at a time: both sides flip together.

    ``base`` is the side the total may not exceed; below 1 the tolerance is 1e-6 absolute.
    """
    record = copy.deepcopy(EXAMPLE)
    gmail = record["providers"]["gmail"]
    gmail.update(sent_dedicated=base, accepted=0.0, deferred=0.0, rejected=0.0,
                 sent_shared=0.0, bounced=0.0)  # fmt: skip
    field = "accepted"
    if which == "bounced":
        field = "bounced"
        gmail.update(sent_dedicated=0.0, sent_shared=base)
    # The edge: total = base + tolerance * max(total, 1.0), near enough.
    value = max(base / (1.0 - RELATIVE_TOLERANCE), base + RELATIVE_TOLERANCE)
    for _ in range(16):
        value = math.nextafter(value, 0.0)
    seen = set()
    for _ in range(32):
        gmail[field] = value
        seen.add(policy._single.decide(record) is not None)
        _same_answer(policy, record)
        value = math.nextafter(value, math.inf)
    assert seen == {True, False}  # the walk crossed the boundary


@pytest.mark.parametrize(
    "record",
    [
        [1, 24, {}, {}, {}],  # five items, but not an object
        "abcde",
        _Dict(EXAMPLE),
        {**EXAMPLE, "extra": 1},
        {key: value for key, value in EXAMPLE.items() if key != "pool"},
        {**{key: value for key, value in EXAMPLE.items() if key != "pool"}, "Pool": {}},
    ],
)
def test_a_record_of_the_wrong_shape_goes_the_long_way(policy: ServedPolicy, record: Any) -> None:
    assert policy._single.decide(record) is None
    _same_answer(policy, record)


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [("time", "weekday", 2.5), ("time", "hour", 23.5), ("pool", "dedicated_ips", 0.5),
     ("", "schema_version", 1.5), ("", "period_hours", 23.999)],
)  # fmt: skip
def test_a_fraction_where_a_whole_number_belongs_goes_the_long_way(
    policy: ServedPolicy, section: str, key: str, value: float
) -> None:
    record = copy.deepcopy(EXAMPLE)
    (record[section] if section else record)[key] = value
    assert policy._single.decide(record) is None
    _same_answer(policy, record)


def test_the_bounds_are_the_schemas() -> None:
    """The kernel's bounds, read from the JSON Schema, on a two-provider record."""
    lowest, highest, whole = record_bounds(("a", "b"), 8, 24)
    assert lowest == [0.0] * 20 + [0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 24.0]
    assert highest == [MAX_COUNT] * 20 + [8.0, MAX_DAYS, MAX_DAYS, 6.0, 23.0, 1.0, 24.0]
    assert whole == [0.0] * 20 + [1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0]
    lowest, highest, _ = record_bounds(("a",), 3, 5)  # 5 h is not a period: nothing passes
    assert math.isnan(lowest[-1]) and math.isnan(highest[-1]) and highest[10] == 3.0


@pytest.mark.parametrize(
    "edit",
    [
        lambda s: s.pop("additionalProperties"),
        lambda s: s.update(additionalProperties=True),
        lambda s: s.update(type="array"),
        lambda s: s["required"].pop(),
        lambda s: s["properties"].pop("pool"),
        lambda s: s["properties"].update(extra={"type": "number"}),
        lambda s: s["$defs"]["provider"]["properties"]["demand"].update(exclusiveMinimum=0),
        lambda s: s["$defs"]["provider"]["properties"]["demand"].update(type="string"),
        lambda s: s["properties"]["time"]["properties"]["hour"].update(enum=[0, 1]),
        lambda s: s["properties"]["providers"]["properties"].update(gmail={"type": "object"}),
    ],
)
def test_a_schema_the_fast_check_cannot_read_is_refused_at_load(
    monkeypatch: pytest.MonkeyPatch, edit: Any
) -> None:
    """A change to the record's types that the bounds reader does not know stops the load.

    Otherwise the fast check would go on with bounds the types no longer have.
    """
    from ipwarmup.serving import schema_bounds  # where record_bounds reads the schema

    real = schema_bounds.json_schema(PROVIDERS, 8)
    record_bounds(PROVIDERS, 8, 24)  # the real schema reads

    def edited(providers: Any, max_ips: int, **layout: Any) -> dict[str, Any]:
        schema = copy.deepcopy(real)
        edit(schema)
        return schema

    monkeypatch.setattr(schema_bounds, "json_schema", edited)
    with pytest.raises(RuntimeError, match="the fast path"):
        record_bounds(PROVIDERS, 8, 24)


def test_an_open_bound_lets_no_infinity_through(monkeypatch: pytest.MonkeyPatch) -> None:
    """A number without minimum or maximum reads as unbounded; the kernel still wants it finite."""
    from ipwarmup.serving import schema_bounds  # where record_bounds reads the schema

    real = schema_bounds.json_schema(PROVIDERS, 8)
    schema = copy.deepcopy(real)
    for bound in ("minimum", "maximum"):
        schema["properties"]["time"]["properties"]["day"].pop(bound)
    monkeypatch.setattr(schema_bounds, "json_schema", lambda providers, max_ips, **layout: schema)
    lowest, highest, _ = record_bounds(PROVIDERS, 8, 24)
    day = 10 * len(PROVIDERS) + 2
    assert (lowest[day], highest[day]) == (-math.inf, math.inf)
    from ipwarmup.serving import kernel, kernel_record

    values = np.zeros(10 * len(PROVIDERS) + 7)
    values[-2:] = (1.0, 24.0)
    encoder = np.zeros(kernel._ENCODER)  # the encoder's block: only the layout's P is read
    encoder[kernel._N_PROVIDERS] = len(PROVIDERS)
    e = kernel._ENCODER
    consts = np.array([*encoder, *lowest, *highest, *([0.0] * len(values)), RELATIVE_TOLERANCE])
    layout = np.zeros(10, dtype=np.int64)
    layout[6:9] = (e, e + len(values), e + 2 * len(values))
    layout[2] = e + 3 * len(values) - 12  # the tolerance is scalar 12

    for check in (kernel_record._check, kernel_record.check):
        assert check(values, consts, layout)
        for bad in (math.inf, -math.inf, math.nan):
            values[day] = bad
            assert not check(values, consts, layout)
        values[day] = -1e300
        assert check(values, consts, layout)
        values[day] = 0.0


def _small_policy(names: tuple[str, ...], **guardrails: float) -> Any:
    """A OneRecord over a random one-layer network for these providers."""
    from ipwarmup.actions import ActionCodec
    from ipwarmup.serving import guardrails as gr
    from ipwarmup.serving.single import OneRecord

    rng, p = np.random.default_rng(0), len(names)
    size = 9 * p + 6
    return OneRecord(
        providers=names, mean=np.zeros(size), inv_std=np.full(size, 0.5), clip_obs=10.0,
        layers=[(rng.normal(size=(size, p + 1)), rng.normal(size=p + 1), "tanh")],
        low=-np.ones(p + 1), high=np.ones(p + 1),
        codec=ActionCodec(n_providers=p, max_cap_change_per_day=2.0, decision_interval_hours=24,
                          min_hourly_cap_messages=1.0, max_hourly_cap_messages=1e6),
        guardrails=gr.GuardrailSettings(**guardrails), horizon_days=45, max_ips=8,
    )  # fmt: skip


def test_a_one_provider_policy_reads_its_one_entry() -> None:
    """With one provider the entries are read one by one (itemgetter of one key is no tuple)."""
    from ipwarmup.serving.telemetry import validate

    one = _small_policy(("gmail",))
    record = copy.deepcopy(EXAMPLE)
    record["providers"] = {"gmail": record["providers"]["gmail"]}
    parts = one.decide(record)
    assert parts is not None and len(parts[2]) == 1
    assert parts == one.decide(validate(record, ("gmail",), max_ips=8))
    record["providers"]["gmail"]["deferred"] = -1
    assert one.decide(record) is None


@pytest.mark.parametrize("size", [7, 8, 9, 17])
def test_the_monthly_volume_is_numpys_sum_at_any_number_of_providers(size: int) -> None:
    """The low-volume floor set between numpy's sum and the in-order sum: numpy's decides.

    From 8 terms numpy sums pairwise, which differs from the kernel's in-order sum in the
    last bits; a floor exactly at numpy's monthly volume must not fire, one ulp above must.
    """
    names = tuple(f"p{i}" for i in range(size))
    entry = dict.fromkeys(COUNT_FIELDS, 0.0)
    demands = (10 ** np.random.default_rng(0).uniform(-2, 5, size=size)).tolist()
    record = copy.deepcopy(EXAMPLE)
    record["providers"] = {
        name: {**entry, "demand": d} for name, d in zip(names, demands, strict=True)
    }
    numpy_monthly = float(np.array([demands]).sum(axis=1)[0]) * (24 / 24) * 30
    # From 8 terms these draws sum differently in order: the test tells the two apart.
    assert (sum(demands, 0.0) * 30 == numpy_monthly) is (size < 8)
    for floor, fires in ((numpy_monthly, False), (math.nextafter(numpy_monthly, math.inf), True)):
        parts = _small_policy(names, min_monthly_messages=floor).decide(record)
        assert parts is not None
        assert any(rule == "low_volume" for rule, _ in parts[-1]) is fires
