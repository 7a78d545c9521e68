"""The HTTP fast path (orjson) answers every body exactly as the strict path does.

Valid records are read with orjson, which keeps the last of repeated keys silently; the
endpoint trusts that read only when the body's colons number exactly the keys of valid
records and the records validate. These tests post bodies built to slip past that check
(repeated keys with valid records around them, colons in strings, NaN, huge integers)
and compare each answer, status and JSON, with the strict path's.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipwarmup.serving import load_policy
from ipwarmup.serving.endpoint import Endpoint, record_keys, render
from ipwarmup.serving.http import BATCH_PATH, DECIDE_PATH
from ipwarmup.serving.policy import ServedPolicy
from tests.serving.shipped import default_bundle

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE: dict[str, Any] = json.loads((ROOT / "examples" / "telemetry-v1.json").read_text())
POLICY: ServedPolicy = load_policy(default_bundle())


def _endpoints(batch: bool) -> tuple[Endpoint, Endpoint]:
    """The endpoint as served, and the same with the fast path turned off."""

    def work(payload: Any) -> Any:
        return {"decisions": POLICY.decide_batch(payload)} if batch else POLICY.decide(payload)

    def make() -> Endpoint:
        return Endpoint(
            BATCH_PATH if batch else DECIDE_PATH, work, max_body_bytes=1 << 20,
            body_timeout=1.0, limiter=anyio.CapacityLimiter(1),
            providers=POLICY.providers, batch=batch,
        )  # fmt: skip

    strict = make()
    strict._fast_payload = lambda body: None  # type: ignore[method-assign]
    return make(), strict


ONE, ONE_STRICT = _endpoints(batch=False)
MANY, MANY_STRICT = _endpoints(batch=True)


def _both(body: bytes, batch: bool) -> tuple[tuple[int, Any], tuple[int, Any]]:
    fast, strict = (MANY, MANY_STRICT) if batch else (ONE, ONE_STRICT)
    (s1, b1), (s2, b2) = fast._answer(body), strict._answer(body)
    return (s1, json.loads(b1)), (s2, json.loads(b2))


def test_record_keys_counts_a_valid_record() -> None:
    text = json.dumps(EXAMPLE)
    assert record_keys(POLICY.providers) == text.count(":") == 65


def test_a_valid_record_takes_the_fast_path_and_decides_the_same() -> None:
    body = json.dumps(EXAMPLE).encode()
    assert ONE._fast_payload(body) == EXAMPLE
    fast, strict = _both(body, batch=False)
    assert fast == strict == (200, POLICY.decide(copy.deepcopy(EXAMPLE)))
    fleet = f"[{body.decode()}, {body.decode()}]".encode()
    assert MANY._fast_payload(fleet) == [EXAMPLE, EXAMPLE]
    assert _both(fleet, batch=True)[0] == (200, {"decisions": POLICY.decide_batch([EXAMPLE] * 2)})


def test_a_repeated_key_in_a_valid_record_is_still_refused() -> None:
    text = json.dumps(EXAMPLE)
    # The second "demand" wins in orjson; the record stays valid, only the colons tell.
    body = text.replace('"demand": 41071', '"demand": 41071, "demand": 5', 1).encode()
    fast, strict = _both(body, batch=False)
    assert fast == strict
    assert fast[0] == 400
    assert fast[1]["problems"] == [
        "telemetry.providers.gmail.demand: repeated key; send each key once"
    ]
    batch = f"[{json.dumps(EXAMPLE)}, {body.decode()}]".encode()
    fast, strict = _both(batch, batch=True)
    assert fast == strict and fast[0] == 400


def test_a_repeated_key_that_hides_a_missing_one_is_still_refused() -> None:
    record = copy.deepcopy(EXAMPLE)
    del record["providers"]["gmail"]["queued"]  # one key fewer, one repeated: same colons
    text = json.dumps(record).replace('"demand": 41071', '"demand": 41071, "demand": 41071', 1)
    assert text.count(":") == record_keys(POLICY.providers)
    fast, strict = _both(text.encode(), batch=False)
    assert fast == strict and fast[0] == 400


def test_the_render_refuses_nan_and_writes_what_orjson_cannot() -> None:
    for bad in ({"a": [1.0, {"b": math.inf}]}, [(-math.inf,)], {"a": np.float64("nan")}):
        with pytest.raises(ValueError, match="NaN or infinity"):
            render(200, bad)
    assert render(200, {"a": [True, 3, None, "x", 2.5, (1.0,)]})[0] == 200
    assert json.loads(render(200, {"key": "\ud800"})[1]) == {"key": "\ud800"}
    assert render(200, {"a": 1.5, "b": None})[1] == b'{"a":1.5,"b":null}'


_EDITS = [
    ("41071", "NaN"),
    ("41071", "1e400"),
    ("41071", "100000000000000000000000000000000"),
    ("41071", "-3"),
    ('"queued": 0', '"queued": 0, "a:b": 1'),
    ('"queued": 0', '"que:ued": 0'),
    ('"day": 10.0', '"day": 10.0, "day": 11.0'),
    ('"schema_version": 1', '"schema_version": 1.0'),
    ('"weekday": 0', '"weekday": 0.5'),
    ('"providers": {', '"providers": {"x": 1, '),
    (
        "{",
        "[",
    ),
]


@settings(max_examples=150, deadline=None)
@given(
    edits=st.lists(st.sampled_from(_EDITS), max_size=3),
    batch=st.booleans(),
    size=st.integers(0, 3),
)
def test_any_edited_body_gets_the_strict_paths_answer(
    edits: list[tuple[str, str]], batch: bool, size: int
) -> None:
    text = json.dumps(EXAMPLE)
    for old, new in edits:
        text = text.replace(old, new, 1)
    body = (f"[{', '.join([text] * size)}]" if batch else text).encode()
    fast, strict = _both(body, batch=batch)
    assert fast == strict


EXAMPLE_V2: dict[str, Any] = json.loads((ROOT / "examples" / "telemetry.json").read_text())


def test_a_version_2_record_counts_its_past_periods_keys_and_takes_the_fast_path() -> None:
    # 7 top keys, 3 time, 2 pool, 3 mta; 5 providers of 10 counts (55) now and per period.
    text = json.dumps(EXAMPLE_V2)
    assert len(EXAMPLE_V2["history"]) == 3
    assert record_keys(POLICY.providers, 3) == text.count(":") == 7 + 3 + 2 + 3 + 55 * 4
    assert record_keys(POLICY.providers, 0) == 70
    assert ONE._fast_payload(text.encode()) == EXAMPLE_V2
    fleet = f"[{json.dumps(EXAMPLE)}, {text}]".encode()
    assert MANY._fast_payload(fleet) == [EXAMPLE, EXAMPLE_V2]
    fast, strict = _both(fleet, batch=True)
    assert fast == strict == (200, {"decisions": POLICY.decide_batch([EXAMPLE, EXAMPLE_V2])})


@pytest.mark.parametrize(
    ("old", "new"),
    [
        # A repeated count in a past period: orjson keeps the second, the colons tell.
        ('"deferred": 0,', '"deferred": 0, "deferred": 0,'),
        # A repeated history whose first value (dropped by orjson) was longer.
        ('"history": [', '"history": [], "history": ['),
        # mta without history, and a history that is not an array: the strict path.
        ('"history": [', '"x": ['),
        ('"history": [', '"history": 3, "y": ['),
    ],
)
def test_a_version_2_body_that_drops_a_key_is_answered_by_the_strict_path(
    old: str, new: str
) -> None:
    text = json.dumps(EXAMPLE_V2)
    assert old in text
    body = text.replace(old, new, 1).encode()
    assert ONE._fast_payload(body) is None
    fast, strict = _both(body, batch=False)
    assert fast == strict and fast[0] in (400, 422)


@pytest.mark.parametrize(
    ("body", "batch"),
    [(b"[1, 2]", True), (b'["x", {}]', True), (b'{"a": 1}', True), (b"[1]", False)],
)
def test_a_body_of_the_wrong_shape_is_answered_by_the_strict_path(body: bytes, batch: bool) -> None:
    endpoint = MANY if batch else ONE
    assert endpoint._fast_payload(body) is None
    fast, strict = _both(body, batch=batch)
    assert fast == strict and fast[0] == 422
