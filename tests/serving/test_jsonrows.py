"""The batch body reader (``serving/jsonrows.py``) reads what the orjson path reads, alike.

``read_batch`` turns a batch body's bytes into the kernel's values without Python objects;
whenever it accepts a body, its values must be, bit for bit, those the orjson path gets
(``orjson.loads``, then ``Fleet.row``'s gather and pickle read), and the endpoint's answer
that path's answer. Bodies are written here in the forms JSON allows (any key order,
whitespace, number spellings); what the reader refuses goes the orjson way, so those
bodies are answered as before.
"""

from __future__ import annotations

import copy
import json
import math
import random
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipwarmup.serving import digits, jsonrows, load_policy
from ipwarmup.serving.endpoint import Endpoint
from ipwarmup.serving.http import BATCH_PATH, create_app
from ipwarmup.serving.policy import ServedPolicy
from ipwarmup.serving.record import COUNT_FIELDS
from ipwarmup.serving.telemetry import validate
from tests.serving.shipped import default_bundle
from tests.serving.test_fleet import _episode

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE: dict[str, Any] = json.loads((ROOT / "examples" / "telemetry.json").read_text())
EXAMPLE_V1: dict[str, Any] = json.loads((ROOT / "examples" / "telemetry-v1.json").read_text())
LAST = load_policy(default_bundle())
"""Of the last period alone: takes records of both versions."""
MEMORY = load_policy(ROOT / "models" / "default")
"""Three past periods and the MTA: takes version 2 only."""
EPISODE = _episode("bursty_b2c_marketing", ["mta.overflow=queue"], 7)[:12]


def _read(policy: ServedPolicy, body: bytes, max_records: int = 100) -> Any:
    one = policy._single
    return jsonrows.read_batch(np.frombuffer(body, dtype=np.uint8), *policy._fleet._names,
                               one._history, one._accepts_v1, max_records)  # fmt: skip


def _orjson_rows(policy: ServedPolicy, body: bytes) -> tuple[np.ndarray, np.ndarray] | None:
    """The values and starts the orjson path reads from the body, or None if it refuses one."""
    rows = [policy._fleet.row(record) for record in orjson.loads(body)]
    if any(row is None for row in rows):
        return None
    values = [row[0] for row in rows]  # type: ignore[index]
    return np.concatenate(values), np.array([0, *np.cumsum([v.size for v in values])])


def _same_as_orjson(policy: ServedPolicy, body: bytes) -> bool:
    """Whether the reader accepted the body (asserting it then read the orjson path's values)."""
    n, values, starts = _read(policy, body, max_records=10_000)
    if n < 0:
        return False
    expected = _orjson_rows(policy, body)
    assert expected is not None, "read a body whose records the fast check refuses"
    assert n == len(orjson.loads(body)) and values.tobytes() == expected[0].tobytes()
    assert starts.tolist() == expected[1].tolist()
    return True


def _write(node: Any, rng: random.Random, spell: bool) -> str:
    """Write JSON as a client might: keys in any order, any whitespace, numbers respelt."""
    space = rng.choice(["", " ", "\n", "\t", "\r\n  "])
    if isinstance(node, dict):
        items = list(node.items())
        rng.shuffle(items)
        inner = f",{space}".join(f'{space}"{k}"{space}:{space}{_write(v, rng, spell)}'
                                 for k, v in items)  # fmt: skip
        return "{" + inner + space + "}"
    if isinstance(node, list):
        return "[" + f",{space}".join(_write(v, rng, spell) for v in node) + space + "]"
    if isinstance(node, str):
        return json.dumps(node)
    if not spell:
        return json.dumps(node)
    value = float(node)
    if value.is_integer() and abs(value) < 1e12:
        whole = int(value)
        tenfold = f"{whole}0E-1" if whole else "0E-1"  # JSON has no leading zero
        return rng.choice([f"{whole}", f"{whole}.0", f"{whole}e0", tenfold,
                           f"{whole}.000e+00", f"{whole * 100}e-2"])  # fmt: skip
    return rng.choice([repr(value), repr(value).upper(), json.dumps(node)])


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), size=st.integers(1, 6), spell=st.booleans())
def test_a_batch_written_any_valid_way_is_read_as_the_orjson_path_reads_it(
    seed: int, size: int, spell: bool
) -> None:
    rng = random.Random(seed)
    records = [copy.deepcopy(rng.choice(EPISODE)) for _ in range(size)]
    for record in records:  # a history of any length the record allows
        record["history"] = record["history"][: rng.randint(0, 3)] * rng.randint(1, 3)
    body = _write(records, rng, spell).encode()
    if all(_orjson_rows(MEMORY, f"[{_write(r, rng, False)}]".encode()) for r in records):
        assert _same_as_orjson(MEMORY, body)  # every form written here is read
        assert _same_as_orjson(LAST, body)
    else:  # a history shorter than the warmup's age: read, then refused by the check
        assert MEMORY._fleet.read_body(body, 100) is None


def test_a_last_period_bundle_reads_both_versions_and_a_memory_bundle_only_version_2() -> None:
    body = json.dumps([EXAMPLE_V1, EXAMPLE, {**EXAMPLE, "history": []}]).encode()
    assert _same_as_orjson(LAST, body)
    n, values, starts = _read(LAST, body)
    # 10P + 7 values for version 1, 10P + 11 + 10P for each past period (3, then none).
    assert n == 3 and np.diff(starts).tolist() == [57, 211, 61]
    assert _read(MEMORY, body)[0] == -1
    # Fewer past periods than the bundle reads: padded with zeros up to K = 3.
    short = {**EXAMPLE, "history": EXAMPLE["history"][:1]}
    n, values, starts = _read(MEMORY, json.dumps([short]).encode())
    assert n == 1 and values.size == 211 and values[61 + 50 : 211].tolist() == [0.0] * 100
    assert values[60] == 1.0  # one past period given
    assert values[61] == EXAMPLE["history"][0]["gmail"]["demand"]


def _with(literal: str, key: str = "mean_ip_age_days") -> bytes:
    """A batch of the version-1 example with ``key`` (10.0 there) written as ``literal``."""
    text, old = json.dumps(EXAMPLE_V1), f'"{key}": 10.0'
    assert old in text
    return ("[" + text.replace(old, f'"{key}": {literal}') + "]").encode()


@pytest.mark.parametrize(
    ("literal", "expected"),
    [
        ("210.2", 210.2), ("0", 0.0), ("7", 7.0), ("1e2", 100.0), ("5E+3", 5000.0),
        ("2.5e-1", 0.25), ("0.000000000000000000001", 1e-21),
        ("123456789012345", 123456789012345.0),
        ("1.23456789012345", 1.23456789012345), ("0.1", 0.1), ("1e22", 1e22), ("3e-22", 3e-22),
        ("12.5", 12.5), ("0.0", 0.0), ("1e-9", 1e-9), ("3.5E+19", 3.5e19),
        # Beyond Clinger's fast path (16 to 18 digits, or 10**23 and beyond): Eisel-Lemire.
        ("1234567890123456.0", 1234567890123456.0), ("1.0000000000000001", 1.0), ("1e24", 1e24),
        ("0.30000000000000004", 0.1 + 0.2), ("18479.033626202105", 18479.033626202105),
        ("12345678901234567.8", 12345678901234567.8),
        ("2.2250738585072014e-308", 2.2250738585072014e-308),
        ("1.7976931348623157e308", 1.7976931348623157e308),
        ("9007199254740995.0", 9007199254740996.0),
    ],
)  # fmt: skip
def test_a_number_is_read_to_the_float_python_reads(literal: str, expected: float) -> None:
    n, values, _ = _read(LAST, _with(literal))
    assert n == 1 and values[51] == expected == float(literal) == float(orjson.loads(literal))


def test_minus_zero_is_an_int_zero_but_a_float_minus_zero() -> None:
    def read(literal: str) -> float:
        n, values, _ = _read(LAST, _with(literal, "day"))
        assert n == 1
        return float(values[52])

    assert math.copysign(1.0, read("-0")) == 1.0  # Python's json: the int 0
    assert math.copysign(1.0, read("-0.0")) == -1.0 == math.copysign(1.0, orjson.loads("-0.0"))
    assert math.copysign(1.0, read("-0e3")) == -1.0
    assert read("-12.5") == -12.5 and read("-1.0000000000000002") == -1.0000000000000002


@pytest.mark.parametrize(
    "literal",
    ["1234567890123456", "1234567890123456.789", "0.1234567890123456789", "01", "1.", ".5",
     "12345678901234567890.5",
     # 946311641522224.5 exactly, but its 16 digits (once the zeros go) are beyond 2**53:
     # Eisel-Lemire cannot settle it, and Clinger's path would round twice.
     "946311641522224500e-3",
     "+1", "-", "1e", "1e+",
     "NaN", "Infinity", "-Infinity", "true", "null", '"1"', "[1]", "{}", "1e999999", "1e400",
     "1e-400", "4e-320", "1.8e308",
     "1e23"],  # 10**23 lies exactly halfway between two floats: Eisel-Lemire leaves ties
)  # fmt: skip
def test_a_number_the_reader_cannot_read_exactly_is_left_to_orjson(literal: str) -> None:
    assert _read(LAST, _with(literal))[0] == -1


@settings(max_examples=300, deadline=None)
@given(value=st.floats(allow_nan=False, allow_infinity=False))
def test_any_float_as_python_writes_it_is_read_exactly_or_left_to_orjson(value: float) -> None:
    n, values, _ = _read(LAST, _with(repr(value)))
    if n == 1:
        assert values[51] == value
        assert math.copysign(1.0, values[51]) == math.copysign(1.0, value)
    else:  # subnormal, or a rounding Eisel-Lemire leaves to a slower algorithm
        assert n == -1 and value != 0.0


def test_full_precision_floats_are_read_nearly_always() -> None:
    # What a client writes for a float it computed: repr's 16 or 17 digits, far from every
    # bound. Eisel-Lemire settles them all here, and the episode's records are read whole.
    rng = random.Random(11)
    floats = [rng.uniform(0.0, 1e6) for _ in range(2000)] + [rng.random() for _ in range(2000)]
    text = json.dumps({f"x{i}": value for i, value in enumerate(floats)})
    data = np.frombuffer(text.encode(), dtype=np.uint8)
    assert sum(len(repr(v).replace(".", "").lstrip("0")) > 15 for v in floats) > 3500
    body = _write(EPISODE, random.Random(1), False).encode()
    assert body.count(b".") > 1500 and _same_as_orjson(MEMORY, body)
    for value in floats:
        whole, scale = _digits(repr(value))
        assert digits.lemire(np.uint64(whole), scale) == (True, value)
    assert data.size > 0


def _digits(literal: str) -> tuple[int, int]:
    """A literal's significant digits as a whole number, and its decimal exponent."""
    mantissa, _, exponent = literal.partition("e")
    whole, _, fraction = mantissa.partition(".")
    return int(whole + fraction), (int(exponent) if exponent else 0) - len(fraction)


@settings(max_examples=300, deadline=None)
@given(whole=st.integers(1, 10**18 - 1), exp10=st.integers(-340, 300))
def test_eisel_lemire_rounds_as_python_or_refuses(whole: int, exp10: int) -> None:
    ok, value = digits.lemire(np.uint64(whole), exp10)
    if ok:
        assert value == float(f"{whole}e{exp10}")
    assert digits._lemire(np.uint64(whole), exp10) == (ok, value)


@pytest.mark.parametrize(
    ("whole", "exp10"),
    [(1, 23), (9007199254740993, 0), (1, -330), (1, 309), (2, 308), (5, -324)],
)
def test_eisel_lemire_refuses_ties_subnormals_and_infinities(whole: int, exp10: int) -> None:
    # 10**23 and 2**53 + 1 lie exactly halfway between two floats; 1e-330 and 5e-324 are
    # subnormal; 1e309 and 2e308 overflow (1e309's exponent is past the table too).
    assert digits.lemire(np.uint64(whole), exp10) == (False, 0.0)
    assert digits._lemire(np.uint64(whole), exp10) == (False, 0.0)
    assert digits.lemire(np.uint64(17976931348623157), 292) == (True, 1.7976931348623157e308)


def _cut_after_a_number(last: str | None = None) -> bytes:
    """The example's batch, cut right after its last number (written as ``last``)."""
    text = json.dumps([EXAMPLE])
    end = text.rindex("}}]}]")
    cut = text[:end]
    if last is not None:
        cut = cut[: cut.rindex(" ") + 1] + last
    assert cut[-1].isdigit()
    return cut.encode()


def _edit(old: str, new: str, record: dict[str, Any] = EXAMPLE) -> bytes:
    text = json.dumps(record)
    assert old in text
    return f"[{text.replace(old, new, 1)}]".encode()


@pytest.mark.parametrize(
    "body",
    [
        _edit('"demand"', '"dem\\u0061nd"'),  # an escape, though it spells the key
        _edit('"deferred": 0,', '"deferred": 0, "deferred": 0,'),  # a repeated key
        _edit('"deferred": 0,', ""),  # a missing key
        _edit('"deferred": 0,', '"deferred": 0, "x": 0,'),  # an unknown key
        _edit('"hour": 0', '"hour": 0, "hour": 0'),
        _edit('"overflow": "shared"', '"overflow": "spill"'),
        _edit('"overflow": "shared"', '"overflow": 0'),
        _edit('"schema_version": 2', '"schema_version": 1'),
        _edit('"gmail": {', '"gmail": {}, "x": {'),
        _edit('"history": [', '"history": {'),
        _edit("}}]", "}},]"),  # a trailing comma
        _edit('"pool": {', '"pool": ['),
        f"[{json.dumps({**EXAMPLE, 'history': EXAMPLE['history'] * 5})}]".encode(),  # 15 > 14
        f"[{json.dumps(EXAMPLE_V1)}]".encode(),  # version 1, for a bundle that needs 2
        b"[]",
        b"{}",
        b"",
        b"[1]",
        b"[{}]",
        b"[null]",
        f"[{json.dumps(EXAMPLE)}] x".encode(),
        f"[{json.dumps(EXAMPLE)}".encode(),
        f"{json.dumps(EXAMPLE)}".encode(),
        f"[{json.dumps(EXAMPLE)}\v]".encode(),  # not JSON whitespace
        _edit('"gmail"', '"gm\xe9il"'),
        _edit('"demand"', 'ddemand"'),  # a key without its opening quote
        _cut_after_a_number(),  # the body ends inside the last record
        _cut_after_a_number("1e5"),
        b'[{"schema_ver',  # the body ends inside a key
    ],
)
def test_a_body_the_reader_refuses_gets_the_orjson_paths_answer(body: bytes) -> None:
    assert _read(MEMORY, body)[0] == -1
    assert MEMORY.decide_batch_body(body, max_records=100) is None
    served, without = _batch_endpoints(MEMORY)
    assert served._answer(body) == without._answer(body)


def test_more_records_than_allowed_are_left_to_the_orjson_path() -> None:
    body = json.dumps([EXAMPLE] * 3).encode()
    assert _read(MEMORY, body, max_records=3)[0] == 3
    assert _read(MEMORY, body, max_records=2)[0] == -1


def test_a_long_batch_of_short_records_grows_its_arrays() -> None:
    # Records of zeros without history: each number one byte, and 150 values of padding
    # (three past periods the body does not hold) each, more than the first guess.
    text = json.dumps(MEMORY._single.zeros_record(2), separators=(",", ":")).replace(".0", "")
    body = f"[{','.join([text] * 500)}]".encode()
    assert len(body) // 8 + 10 * 5 * 15 + 11 < 500 * 211  # _read_batch's first guess
    n, values, starts = _read(MEMORY, body, max_records=1000)
    assert n == 500 and values.size == 500 * 211 == starts[-1]
    assert np.count_nonzero(values) == 500 * 4  # version 2, 24 h, the MTA's 72 h and 1 h
    assert _same_as_orjson(MEMORY, body)


def _batch_endpoints(policy: ServedPolicy) -> tuple[Endpoint, Endpoint]:
    """The batch endpoint as served, and without the reader (the orjson path alone)."""

    def make(from_bytes: Any) -> Endpoint:
        return Endpoint(
            BATCH_PATH, lambda payload: {"decisions": policy.decide_batch(payload)},
            max_body_bytes=1 << 22, body_timeout=1.0, limiter=anyio.CapacityLimiter(1),
            providers=policy.providers, batch=True, from_bytes=from_bytes,
        )  # fmt: skip

    def read(body: bytes) -> Any:
        decisions = policy.decide_batch_body(body, max_records=100)
        return None if decisions is None else {"decisions": decisions}

    return make(read), make(None)


def test_the_endpoint_answers_a_read_batch_as_the_orjson_path_does() -> None:
    served, without = _batch_endpoints(MEMORY)
    body = _write(EPISODE, random.Random(3), True).encode()
    assert _read(MEMORY, body)[0] == len(EPISODE)
    status, answer = served._answer(body)
    assert (status, answer) == without._answer(body)
    assert status == 200 and json.loads(answer) == {"decisions": MEMORY.decide_batch(EPISODE)}
    # Refused by the check (a count out of bounds): the orjson path words the problem.
    bad = _edit('"demand": 52298', '"demand": -3')
    assert _read(MEMORY, bad)[0] == 1 and MEMORY.decide_batch_body(bad, max_records=9) is None
    status, answer = served._answer(bad)
    assert (status, answer) == without._answer(bad) and status == 422


def test_the_plain_python_reader_reads_as_the_compiled_one() -> None:
    """``_read_batch`` as written (where coverage and mutation testing see it)."""
    one = MEMORY._single
    body = _write(EPISODE[:3], random.Random(5), True).encode()
    data = np.frombuffer(body, dtype=np.uint8)
    args = (*MEMORY._fleet._names, one._history, one._accepts_v1, 10)
    n, values, starts = jsonrows._read_batch(data, *args)
    expected = jsonrows.read_batch(data, *args)
    assert n == expected[0] == 3
    assert values.tobytes() == expected[1].tobytes() and starts.tolist() == expected[2].tolist()


def test_a_cap_that_is_not_finite_stops_the_batch_before_any_decision_is_written() -> None:
    # The batch endpoint no longer walks its answer for NaN: _decisions checks the caps.
    n, values, starts = _read(MEMORY, json.dumps([EXAMPLE, EXAMPLE]).encode())
    assert n == 2
    counts = values[np.add.outer(starts[:-1], np.arange(50))].reshape(2, 5, 10)
    actions = np.zeros((2, 6))
    assert len(MEMORY._decisions(counts, np.ones(2), actions, np.zeros(2, dtype=bool))) == 2
    counts[1, 3, 1] = np.nan  # apple's cap in force: validation never lets one through
    with pytest.raises(ValueError, match="JSON cannot carry"):
        MEMORY._decisions(counts, np.ones(2), actions, np.zeros(2, dtype=bool))


@pytest.mark.parametrize(
    ("whole", "exp10", "settled"),
    [
        # The first 128-bit product's low bits leave the rounding open: the second product
        # settles it, with a carry into the high word or without one.
        (93104809652061658, -21, True), (22984249124875287, -22, True),
        (23732759485518381, -9, True), (87254990991653862, -7, True),
        (83977745249047924, 16, True), (56500656966085758, 23, True),
        (38547371202549755, 9, True),
        # Still open after it: each an exact tie (5091217114623905.5 lies halfway between
        # two floats 1 apart), left to orjson.
        (50912171146239055, -1, False), (47721938307100495, -1, False),
        (38144115342980750, -3, False),
    ],
)  # fmt: skip
def test_eisel_lemire_settles_with_the_second_product_or_refuses(
    whole: int, exp10: int, settled: bool
) -> None:
    expected = (True, float(f"{whole}e{exp10}")) if settled else (False, 0.0)
    assert digits.lemire(np.uint64(whole), exp10) == expected
    assert digits._lemire(np.uint64(whole), exp10) == expected


def test_an_escape_or_a_control_byte_never_matches_a_name_even_one_that_holds_it() -> None:
    # One provider, named as the key table says; its key written raw in the body. A raw
    # backslash in JSON starts an escape ("a\\b" is a, backspace) and a raw tab is not JSON:
    # the reader refuses both, even for a name spelt with those very bytes.
    counts = ", ".join(f'"{name}": 0' for name in COUNT_FIELDS)
    for name, ok in (("ab", True), ("a\\b", False), ("a\tb", False), ("a\x01b", False)):
        text = (
            '[{"schema_version": 1, "period_hours": 24, "time": {"day": 0, "weekday": 0, '
            '"hour": 0}, "pool": {"dedicated_ips": 0, "mean_ip_age_days": 0}, '
            f'"providers": {{"{name}": {{{counts}}}}}}}]'
        )
        data = np.frombuffer(text.encode(), dtype=np.uint8)
        table = jsonrows.key_table((name,))
        expected = 1 if ok else -1
        assert jsonrows.read_batch(data, *table, 0, True, 9)[0] == expected, name
        assert jsonrows._read_batch(data, *table, 0, True, 9)[0] == expected, name


def test_an_exponent_too_long_for_an_int64_is_refused_not_wrapped() -> None:
    # 2**64 + 5: an int64 would wrap it to 5 and read 1e5.
    assert _read(LAST, _with("1e18446744073709551621"))[0] == -1
    assert _read(LAST, _with("1e1000"))[0] == -1 and _read(LAST, _with("1e5"))[0] == 1


def test_a_record_of_the_widest_layout_fits_at_the_very_end_of_the_buffer() -> None:
    # Records of zeros without history (211 values each, 150 of them padding), then one
    # with 14 past periods (761 values), the body padded so that the first guess of the
    # values' size leaves 0 to 21 values more than the widest record's room at its start.
    short = json.dumps(MEMORY._single.zeros_record(2), separators=(",", ":"))
    long = json.loads(short)
    long["history"] = [long["providers"]] * 14
    widest, n = 10 * 5 * 15 + 11, 40
    body = "[" + ",".join([short] * n + [json.dumps(long, separators=(",", ":"))]) + "]"
    body = body[:1] + " " * (8 * (n * 211 - len(body) // 8)) + body[1:]
    assert len(body) // 8 + widest - n * 211 == widest  # the room the first guess leaves
    got = _read(MEMORY, body.encode(), max_records=100)
    assert got[0] == n + 1 and got[2][-1] == n * 211 + widest
    assert _same_as_orjson(MEMORY, body.encode())


def test_the_endpoint_answers_from_the_bytes_when_it_can_and_does_not_walk_a_batch() -> None:
    # A fake reader (a unit test of the endpoint alone): what it returns is the answer,
    # None hands the body on, and an exception is a 500. A batch's numbers are checked
    # by ServedPolicy._decisions, so the endpoint writes them without walking them.
    def endpoint(from_bytes: Any) -> Endpoint:
        return Endpoint(
            BATCH_PATH, lambda payload: {"decisions": MEMORY.decide_batch(payload)},
            max_body_bytes=1 << 20, body_timeout=1.0, limiter=anyio.CapacityLimiter(1),
            providers=MEMORY.providers, batch=True, from_bytes=from_bytes,
        )  # fmt: skip

    body = json.dumps([EXAMPLE]).encode()
    assert endpoint(lambda _: {"decisions": []})._answer(body) == (200, b'{"decisions":[]}')
    assert endpoint(lambda _: None)._answer(body) == endpoint(None)._answer(body)
    assert endpoint(lambda _: {"x": math.nan})._answer(body) == (200, b'{"x":null}')

    def broken(_: bytes) -> Any:
        raise RuntimeError("a bug")

    status, answer = endpoint(broken)._answer(body)
    assert status == 500 and b"internal error" in answer
    # The orjson path's answer is not walked either (a batch's work is decide_batch).
    nan_work = endpoint(None)
    nan_work.work = lambda payload: {"x": math.nan}
    assert nan_work._answer(body) == (200, b'{"x":null}')
    # Nor the strict parser's (a colon in a string keeps a body off the orjson path).
    assert nan_work._answer(b'[{"x": "a:b"}]') == (200, b'{"x":null}')


def test_the_served_batch_route_reads_bodies_of_up_to_its_records_limit() -> None:
    app = create_app(MEMORY, max_batch_records=2)
    (route,) = [r for r in app.routes if getattr(r, "path", None) == BATCH_PATH]
    assert route.methods == {"POST"}  # type: ignore[attr-defined]
    endpoint: Endpoint = route.endpoint  # type: ignore[attr-defined]
    two, three = json.dumps([EXAMPLE] * 2).encode(), json.dumps([EXAMPLE] * 3).encode()
    status, answer = endpoint._answer(two)
    assert status == 200 and json.loads(answer) == {"decisions": MEMORY.decide_batch([EXAMPLE] * 2)}
    assert endpoint.from_bytes(two) is not None and endpoint.from_bytes(three) is None
    status, answer = endpoint._answer(three)
    assert status == 422 and json.loads(answer)["problems"] == ["records: at most 2 records, got 3"]


def test_a_record_of_zeros_is_valid_in_each_version_and_takes_the_fast_check() -> None:
    # The warm-ups (OneRecord's kernels, the fleet's reader) run on these records.
    for version, keys in ((1, 5), (2, 7)):
        record = LAST._single.zeros_record(version)
        assert len(record) == keys and record["schema_version"] == version
        clean = validate(record, LAST.providers, max_ips=LAST.max_ips, layout=LAST.layout)
        assert clean["pool"]["dedicated_ips"] == 0 and LAST._single.decide(record) is not None
    assert "history" in MEMORY._single.zeros_record(2) and MEMORY._single.decide(
        MEMORY._single.zeros_record(2)
    )


def test_a_last_period_bundle_decides_a_body_of_both_versions_from_its_bytes() -> None:
    # Each record checked with its own version's bounds (version 1's say schema_version 1).
    batch = [EXAMPLE_V1, EXAMPLE, EXAMPLE_V1]
    decisions = LAST.decide_batch_body(json.dumps(batch).encode(), max_records=9)
    assert decisions is not None and decisions == LAST.decide_batch(copy.deepcopy(batch))
    assert decisions[0] == decisions[2] != decisions[1]
