"""``decide``'s fast path on raw version-2 records: the pydantic path's decisions, per thread.

:meth:`OneRecord.decide <ipwarmup.serving.single.OneRecord.decide>` gathers a raw record's
numbers, runs the compiled kernel on arrays it keeps per thread and per record size, and
words the result. These tests hold its decisions to the pydantic path's (validate, then
the batch path) on many records, and show that the arrays are never shared: by threads
deciding at once (the kernels release the GIL, so they do run at once) and by a call that
re-enters ``decide`` on the same thread while the outer one holds its arrays.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipwarmup.errors import TelemetryError
from ipwarmup.serving import kernel, kernel_record
from ipwarmup.serving.policy import ServedPolicy
from tests.serving.test_fast_path import alike
from tests.serving.test_memory_kernel import _seeded_v2, _synthetic


@pytest.fixture(scope="module")
def memory(tmp_path_factory: pytest.TempPathFactory) -> ServedPolicy:
    """A synthetic bundle of the default layout: three past periods and the MTA's inputs."""
    return _synthetic(tmp_path_factory.mktemp("arrays"), ["mta.overflow=queue"])


def _pydantic_path(policy: ServedPolicy, record: dict[str, Any]) -> dict[str, Any]:
    return policy._decide_records([policy._validate(record)])[0]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1))
def test_the_fast_path_decides_raw_records_as_the_pydantic_path(
    memory: ServedPolicy, seed: int
) -> None:
    """Raw records of 0-6 past periods (each size its own arrays), in a shuffled order."""
    records = _seeded_v2(6, seed)
    np.random.default_rng(seed).shuffle(records)  # type: ignore[arg-type]
    for record in records:
        assert memory._single.decide(record) is not None  # the fast path took it
        alike(memory.decide(record), _pydantic_path(memory, record))


def test_the_example_fires_a_guardrail_and_decides_as_the_pydantic_path(
    memory: ServedPolicy,
) -> None:
    """The records that fire guardrails (reasons, pool holds) too, many times over one set."""
    records = _seeded_v2(60, seed=21)
    expected = [_pydantic_path(memory, record) for record in records]
    assert any(decision["guardrails"] for decision in expected)  # reasons are exercised
    assert any(not decision["guardrails"] for decision in expected)
    for _ in range(3):  # the arrays are reused from the second decision on
        for record, reference in zip(records, expected, strict=True):
            alike(memory.decide(record), reference)


def test_threads_deciding_at_once_keep_their_own_arrays(memory: ServedPolicy) -> None:
    """Four threads decide different records at once; each answer is its record's alone.

    Arrays shared between threads would hand one thread another's values or output
    between its two kernel calls (each releases the GIL), and the answer would change.
    """
    records = [r for r in _seeded_v2(64, seed=31) if r["pool"]["dedicated_ips"] > 0][:48]
    expected = [memory.decide(record) for record in records]
    assert len({str(decision["providers"]) for decision in expected}) == len(records)
    start = threading.Barrier(4)

    def work(first: int) -> list[tuple[int, dict[str, Any]]]:
        start.wait()
        return [(i, memory.decide(records[i]))
                for _ in range(30) for i in range(first, len(records), 4)]  # fmt: skip

    with ThreadPoolExecutor(4) as pool:
        answers = [answer for part in pool.map(work, range(4)) for answer in part]
    assert len(answers) == 30 * len(records)
    for i, decision in answers:
        assert decision == expected[i], i


def test_a_call_that_reenters_decide_gets_arrays_of_its_own(memory: ServedPolicy) -> None:
    """A decision started on this thread while another holds its arrays (a signal handler's).

    The inner decision runs between the outer one's two kernel calls, after the outer
    record's values are read: arrays shared with it would hand the outer call the inner
    record's values and logs.
    """
    outer, inner = _seeded_v2(2, seed=41)
    inner["history"] = outer["history"]  # the same size: the same arrays, were they shared
    inner["time"]["day"] = outer["time"]["day"]
    expected_outer, expected_inner = memory.decide(outer), memory.decide(inner)
    assert expected_outer != expected_inner
    seen: list[dict[str, Any]] = []

    def prepare(*args: Any) -> bool:
        ready: bool = kernel_record.prepare(*args)
        seen.append(memory.decide(inner))
        return ready

    parts = memory._single.decide(outer, (prepare, kernel.decide))
    assert parts is not None
    assert memory._decision(*parts) == expected_outer
    assert seen == [expected_inner]
    assert memory.decide(outer) == expected_outer  # and the arrays given back still serve


def test_the_arrays_are_kept_per_thread_and_per_size(memory: ServedPolicy) -> None:
    """After decisions of two sizes, this thread holds one set of each; another thread none."""
    few, many = _seeded_v2(2, seed=51)
    few["history"], few["time"]["day"] = few["history"][:1], 1.0
    many["history"] = [*many["history"], *many["history"]][:5]
    many["time"]["day"] = 200.0
    memory.decide(few)
    memory.decide(many)
    sizes = set(memory._single._spare.arrays)
    assert {
        len(memory._single._gather(few) or []),
        len(memory._single._gather(many) or []),
    } <= sizes
    elsewhere: list[set[int]] = []
    worker = threading.Thread(target=lambda: elsewhere.append(set(memory._single._spare.arrays)))
    worker.start()
    worker.join()
    assert elsewhere == [set()]


class _Entries(dict):  # type: ignore[type-arg]  # a caller's own mapping type
    pass


@pytest.mark.parametrize("where", ["providers", "history"])
@pytest.mark.parametrize(
    "shape",
    ["extra provider", "missing provider", "subclass", "list", "entry's extra key", "entry list"],
)
def test_a_period_of_another_shape_goes_the_long_way(
    memory: ServedPolicy, where: str, shape: str
) -> None:
    """A period's providers, or one provider's counts, not a plain dict of exactly its keys.

    The fast path refuses the record (pydantic words its problem, or decides it as its own
    normalised record), so ``decide`` answers as validating first does.
    """
    (record,) = _seeded_v2(1, seed=61)
    record["history"] = record["history"] or [record["providers"]]
    record["time"]["day"] = 1.0
    period = record["providers"] if where == "providers" else record["history"][0]
    spoilt = {
        "extra provider": {**period, "aol": period["gmail"]},
        "missing provider": {k: v for k, v in period.items() if k != "apple"},
        "subclass": _Entries(period),
        "list": list(period.values()),
        "entry's extra key": {**period, "yahoo": {**period["yahoo"], "opened": 3}},
        "entry list": {**period, "yahoo": list(period["yahoo"].values())},
    }[shape]
    if where == "providers":
        record["providers"] = spoilt
    else:
        record["history"][0] = spoilt
    assert memory._single.decide(record) is None
    try:
        expected: object = _pydantic_path(memory, record)
    except TelemetryError as error:
        with pytest.raises(TelemetryError) as raised:
            memory.decide(record)
        assert raised.value.problems == error.problems
        assert any(where in line for line in error.problems)
    else:
        assert shape == "subclass"  # pydantic reads a dict subclass as the dict it is
        alike(memory.decide(record), expected)
