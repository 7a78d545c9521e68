"""``kernel_record.read``: a pickled list of numbers read as float64, refusing any other type.

The fast check's type check is pickle's own: an exact ``float`` is BINFLOAT, an exact
``int`` BININT1, BININT2, BININT or LONG1; a bool, a subclass, a numpy scalar, a string or
a nested list writes other opcodes and must be refused. Each opcode's edges by hand, in the
plain function (where mutation testing sees it) and the compiled one.
"""

from __future__ import annotations

import decimal
import json
import math
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ipwarmup.serving import kernel_record

READERS = [kernel_record._read, kernel_record.read]
ROOT = Path(__file__).resolve().parents[2]


def _read(reader: Any, items: list[Any], size: int | None = None) -> np.ndarray | None:
    data = np.frombuffer(pickle.dumps(items, 2), dtype=np.uint8)
    values = np.full(len(items) if size is None else size, -7.0)
    return values if reader(data, values) else None


EDGES = [
    0, 1, 255, 256, 65_535, 65_536, -1, -255, 2**31 - 1, 2**31, -(2**31), -(2**31) - 1,
    2**40, -(2**40), 10**12, 2**55 - 1, -(2**55),
]  # fmt: skip


@pytest.mark.parametrize("reader", READERS)
def test_every_int_opcode_and_floats_bit_for_bit(reader: Any) -> None:
    floats = [0.5, -0.0, 1e-310, 210.2, -1e300, math.inf, -math.inf]
    values = _read(reader, [*EDGES, *floats])
    assert values is not None
    assert values[: len(EDGES)].tolist() == [float(x) for x in EDGES]
    assert values[len(EDGES) :].tobytes() == np.array(floats).tobytes()  # -0.0 kept
    nan = _read(reader, [math.nan, 3])
    assert nan is not None and math.isnan(nan[0]) and nan[1] == 3.0


@pytest.mark.parametrize("reader", READERS)
def test_a_list_longer_than_a_batch_is_read_whole(reader: Any) -> None:
    # pickle writes lists in batches of 1,000 (MARK ... APPENDS): 2,001 items are three.
    items = [float(i) if i % 2 else i for i in range(2_001)]
    values = _read(reader, items)
    assert values is not None and values.tolist() == [float(i) for i in range(2_001)]


class _Float(float):
    pass


class _Int(int):
    pass


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize(
    "bad",
    [True, False, np.float64(1.0), np.int64(3), _Float(1.5), _Int(2), decimal.Decimal(1),
     "1", None, [5.0], (5.0,), 2**55, -(2**55) - 1, 2**70],
)  # fmt: skip
def test_anything_but_an_exact_int_or_float_is_refused(reader: Any, bad: Any) -> None:
    assert _read(reader, [1.0, 2, bad, 4]) is None
    assert _read(reader, [1.0, 2, 3.0, 4]) is not None


@pytest.mark.parametrize("reader", READERS)
def test_a_wrong_length_header_or_ending_is_refused(reader: Any) -> None:
    assert _read(reader, [1, 2.0, 3], size=2) is None
    assert _read(reader, [1, 2.0, 3], size=4) is None
    good = pickle.dumps([1, 2.0, 3], 2)
    for data in (
        pickle.dumps([1, 2.0, 3], 4),  # another protocol's header
        good[:-1],  # no STOP
        good[:-2] + good[-1:],  # no APPENDS
        good + b".",  # something after STOP
        good[:8],  # cut inside a float
        good[:5],  # the header alone
        pickle.dumps((1, 2.0, 3), 2),  # a tuple
    ):
        values = np.zeros(3)
        assert not reader(np.frombuffer(data, dtype=np.uint8), values), data
    values = np.zeros(3)
    assert reader(np.frombuffer(good, dtype=np.uint8), values)
    assert values.tolist() == [1.0, 2.0, 3.0]


@pytest.mark.parametrize("reader", READERS)
def test_a_header_of_another_kind_is_refused_even_when_the_rest_reads(reader: Any) -> None:
    good = pickle.dumps([1, 2.0, 3], 2)
    assert good[:5] == bytes(kernel_record._HEADER)
    for data in (
        good[:2] + b"}" + good[3:],  # EMPTY_DICT, not EMPTY_LIST
        b"\x80\x03" + good[2:],  # protocol 3
        good[:3] + b"r" + good[4:],  # another memo opcode
        good[:4] + b"\x01" + good[5:],  # memo slot 1
        good[:3],  # shorter than the header
        good[:4],
        good[:5],  # the header alone
        good[:6],  # a MARK alone
        b"",
    ):
        values = np.zeros(3)
        assert not reader(np.frombuffer(data, dtype=np.uint8), values), data


def test_prepare_refuses_a_bool_even_when_the_values_would_pass() -> None:
    """``_prepare``: a record read as not all numbers is refused, whatever ``values`` holds."""
    from ipwarmup.serving import load_policy
    from tests.serving.shipped import default_bundle

    one = load_policy(default_bundle())._single
    record = json.loads((ROOT / "examples" / "telemetry-v1.json").read_text())
    flat = one._gather(record)
    assert flat is not None
    values = np.array(flat, dtype=np.float64)  # what a bool's 1 would pass as
    logs = np.empty(one._n_logs)
    assert kernel_record._prepare(one._pickled(flat), values.copy(), one._consts, one._layout, logs)
    flat[10 * 5 + 4] = True  # time.weekday: 1 would be valid, True is not
    assert values[10 * 5 + 4] == 0.0
    values[10 * 5 + 4] = 1.0
    assert not kernel_record._prepare(one._pickled(flat), values, one._consts, one._layout, logs)
