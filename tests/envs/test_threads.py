"""A batch's rows on several threads: the same bits as one thread, and only where it pays.

The chunk count is forced (``simulator.chunks``) so these run the threaded path on any
machine, whatever its cores. The quick tests come first (mutation runs stop at the first
failure).
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest
from gymnasium.utils import seeding

from ipwarmup.envs import build_config, simulator, threads
from ipwarmup.envs.config import HOURS_PER_DAY, EnvConfig
from ipwarmup.envs.draws import RowGenerators, day_arrays
from ipwarmup.envs.sender import N_DAILY_UNIFORMS
from ipwarmup.envs.simulator import Simulator, StepResult
from ipwarmup.envs.state import SimState


def _arrays(state: SimState) -> dict[str, np.ndarray]:
    """Every array of ``state`` by dotted name: draws, clock, pool, telemetry, accounting."""
    out: dict[str, np.ndarray] = {}
    for field in dataclasses.fields(state):
        value = getattr(state, field.name)
        if isinstance(value, np.ndarray):
            out[field.name] = value
        elif isinstance(value, dict):
            out.update({f"{field.name}.{k}": v for k, v in value.items()})
        elif dataclasses.is_dataclass(value):
            out.update({f"{field.name}.{k}": v for k, v in vars(value).items()})
    return out


def _episode(config: EnvConfig, rows: int, seed: int) -> tuple[list[StepResult], Simulator]:
    """Drive ``rows`` rows hard through a whole episode (the continuation included)."""
    sim = Simulator(config, rows)
    sim.reset(np.arange(rows), [seeding.np_random(seed + i)[0] for i in range(rows)])
    rng = np.random.default_rng(seed)
    results = []
    for _ in range(config.steps_per_episode):
        actions = rng.uniform(-0.2, 1.0, size=(rows, sim.codec.size))
        actions[:, -1] = rng.choice([-1.0, 0.0, 1.0, 1.0], size=rows)
        results.append(sim.step(actions))
    return results, sim


@pytest.fixture
def forced(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, int]]:
    """Force the chunk count the simulator asks for: ``forced["chunks"] = N``."""
    setting = {"chunks": 1}
    monkeypatch.setattr(simulator, "chunks", lambda n_rows: min(setting["chunks"], n_rows))
    yield setting


def test_generators_are_distinct_when_no_two_rows_share_a_bit_generator() -> None:
    """``RowGenerators.distinct`` follows the rows' bit generators as they are replaced."""
    a, b = np.random.default_rng(1), np.random.default_rng(2)
    rows = RowGenerators([a, b])
    assert rows.distinct
    rows[1] = np.random.Generator(a.bit_generator)  # another Generator, the same stream
    assert not rows.distinct
    rows[1] = b
    assert rows.distinct
    assert not RowGenerators.repeat(a, 3).distinct
    assert RowGenerators.repeat(a, 1).distinct
    assert rows.copies(np.array([0, 0])).distinct  # copies draw from streams of their own


def test_a_days_draw_arrays_hold_the_uniforms_and_two_planes_of_hourly_normals() -> None:
    """What draw_days fills and start_day reads: acceptance, then complaint normals."""
    uniforms, normals = day_arrays(3, 5)
    assert uniforms.shape == (3, N_DAILY_UNIFORMS)
    assert normals.shape == (3, 2, HOURS_PER_DAY, 5)


def test_a_batch_runs_on_threads_from_min_rows_on_the_main_thread_only() -> None:
    """One chunk below ``MIN_ROWS`` rows, off the main thread, and with one thread."""
    before = threads.thread_count()
    try:
        threads.set_threads(3)
        assert threads.thread_count() == 3
        assert threads.chunks(1) == 1
        assert threads.chunks(threads.MIN_ROWS - 1) == 1
        assert threads.chunks(threads.MIN_ROWS) == 3
        assert threads.chunks(1000) == 3
        seen: list[int] = []
        worker = threading.Thread(target=lambda: seen.append(threads.chunks(1000)))
        worker.start()
        worker.join()
        assert seen == [1]
        threads.set_threads(2)
        assert threads.chunks(1000) == 2
        threads.set_threads(1)
        assert threads.chunks(1000) == 1
        with pytest.raises(ValueError, match="count: expected at least 1 thread, got 0"):
            threads.set_threads(0)
        assert threads.thread_count() == 1
    finally:
        threads.set_threads(before)


def test_an_error_in_a_helpers_chunk_is_raised_after_every_chunk_ended(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The caller never goes on while a helper still writes its rows."""
    ended: list[int] = []

    def chunk(lo: int, hi: int, *rest: object) -> int:
        if lo > 0:
            time.sleep(0.05)
            ended.append(lo)
            raise RuntimeError(f"rows {lo}-{hi}")
        return 1

    monkeypatch.setattr(threads, "advance_chunk", chunk)
    hour = np.zeros(10)
    arguments = (None,) * 9 + (hour,)
    with pytest.raises(RuntimeError, match="rows 5-10"):
        threads.advance_rows(2, None, hour, hour, (), arguments)
    assert ended == [5]


def test_helpers_are_reused_while_enough_and_a_smaller_pool_is_shut_down(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A pool serves calls that need as many helpers or fewer; a larger need replaces it."""
    monkeypatch.setattr(threads, "_helpers", None)
    one = threads._helper_pool(1)
    assert threads._helper_pool(1) is one
    two = threads._helper_pool(2)
    assert two is not one
    assert threads._helper_pool(1) is two
    assert threads._helper_pool(2) is two
    with pytest.raises(RuntimeError, match="shutdown"):
        one.submit(int)  # its thread ended: no helper is left behind
    assert two.submit(int, "7").result() == 7
    two.shutdown()


def test_the_default_thread_count_is_numbas() -> None:
    """``NUMBA_NUM_THREADS``, else the machine's cores, as numba reads it."""
    code = "from ipwarmup.envs import threads; print(threads.thread_count())"
    for value in ("1", "3"):
        env = {**os.environ, "NUMBA_NUM_THREADS": value}
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        assert done.stdout.strip() == value


def test_rows_sharing_a_generator_draw_their_day_in_row_order(
    forced: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two rows on one generator take the one-thread path, which reads it row after row."""
    config = build_config(scenario="low_volume", overrides=["decision_interval_hours=24"])
    threaded: list[int] = []
    monkeypatch.setattr(simulator, "advance_rows", lambda *args: threaded.append(1))
    shared = seeding.np_random(5)[0]
    results = []
    for chunks in (1, 2):
        forced["chunks"] = chunks
        generator = np.random.Generator(type(shared.bit_generator)(0))
        generator.bit_generator.state = shared.bit_generator.state
        sim = Simulator(config, 4)
        sim.reset(np.arange(4), [generator, generator, seeding.np_random(6)[0], generator])
        assert not sim.generators.distinct
        steps = []
        for _ in range(3):
            demand = sim.state.demand_today.copy()
            steps.append(sim.step(np.zeros((4, sim.codec.size))))
            for row in range(4):  # each step ends at midnight: every row drew a new day
                assert not np.array_equal(sim.state.demand_today[row], demand[row])
        results.append(steps)
    for mine, theirs in zip(results[1], results[0], strict=True):
        np.testing.assert_array_equal(mine.observation, theirs.observation)
    assert threaded == []  # two chunks were asked for, none ran


def test_the_threaded_kernels_run_where_asked_and_not_at_one_row(
    forced: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks above one call the threaded kernel, which starts the day; one chunk never does."""
    config = build_config(scenario="low_volume", overrides=["decision_interval_hours=24"])
    calls = {"threaded": 0, "day": 0}
    threaded, day = simulator.advance_rows, simulator.draw_days

    def count_threaded(*args: object) -> int:
        calls["threaded"] += 1
        return int(threaded(*args))

    def count_day(*args: object) -> None:
        calls["day"] += 1
        day(*args)

    monkeypatch.setattr(simulator, "advance_rows", count_threaded)
    monkeypatch.setattr(simulator, "draw_days", count_day)
    forced["chunks"] = 2
    _episode(config, 1, seed=3)
    days = config.steps_per_episode + config.reward.continuation_days
    # One row: min(2, 1) chunk; reset's day, then one a day (each step ends at midnight),
    # the continuation's too.
    assert calls == {"threaded": 0, "day": 1 + days}
    calls.update(threaded=0, day=0)
    _episode(config, 4, seed=3)
    assert calls == {"threaded": days, "day": 1}  # the threaded kernel starts the days


@pytest.mark.parametrize(
    ("overrides", "chunks"),
    [
        (("mta.overflow=queue",), 3),
        (("decision_interval_hours=6", "pool.initial_ips=2"), 2),
        (("decision_interval_hours=24",), 7),
    ],
)
def test_rows_in_chunks_give_the_bits_of_one_thread(
    forced: dict[str, int], overrides: tuple[str, ...], chunks: int
) -> None:
    """Observations, rewards, continuations and every state array equal, bit for bit.

    A hard-driven batch (blocks, throttles, queues, pool moves, incidents) through a whole
    episode and its continuation, once on one thread and once in chunks.
    """
    config = build_config(
        scenario="bursty_b2c_marketing",
        overrides=[*overrides, "shared_pool.incident_probability_per_day=0.3"],
    )
    forced["chunks"] = 1
    alone, one = _episode(config, 9, seed=40)
    forced["chunks"] = chunks
    chunked, many = _episode(config, 9, seed=40)
    st = one.state
    for key in ("block_events", "throttle_events", "deferrals", "rejected"):
        assert (st.accounting[key] > 0).sum() >= 5, key  # most rows meet events
    assert st.continuation["accepted_dedicated"].sum() > 0
    for mine, theirs in zip(chunked, alone, strict=True):
        np.testing.assert_array_equal(mine.observation, theirs.observation)
        np.testing.assert_array_equal(mine.reward, theirs.reward)
        np.testing.assert_array_equal(mine.continuation_reward, theirs.continuation_reward)
    theirs_arrays = _arrays(st)
    for name, value in _arrays(many.state).items():
        np.testing.assert_array_equal(value, theirs_arrays[name], err_msg=name)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_child_runs_the_threaded_kernels(forced: dict[str, int]) -> None:
    """After the parent ran a threaded period, a forked child runs one to the same bits.

    ``scripts/mutation`` forks a process that has run the simulator: the child starts
    helper threads of its own (the parent's stayed behind).
    """
    config = build_config(scenario="low_volume", overrides=["decision_interval_hours=24"])
    forced["chunks"] = 2
    parent, _ = _episode(config, 4, seed=8)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: run the same episode, say whether it matched
        code = 1
        try:
            child, _ = _episode(config, 4, seed=8)
            same = all(
                np.array_equal(c.observation, p.observation)
                for c, p in zip(child, parent, strict=True)
            )
            os.write(write, b"same" if same else b"differs")
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    deadline = time.monotonic() + 120.0  # a child waiting on the parent's helpers hangs
    done, status = os.waitpid(pid, os.WNOHANG)
    while done == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
        done, status = os.waitpid(pid, os.WNOHANG)
    if done == 0:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail("the forked child did not finish its episode in 120 s")
    answer = os.read(read, 16)
    os.close(read)
    assert os.waitstatus_to_exitcode(status) == 0
    assert answer == b"same"
