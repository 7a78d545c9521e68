"""CPU and wall time of a 256-env day on one thread and on two threads (two row chunks).

Run ``python benchmarks/thread_chunks.py`` (``--actions zeros|random``, ``--repeats N``).
It steps the batch of ``vec_step_cpu.py`` (daily decisions) on two threads, keeps a copy
of what :func:`~ipwarmup.envs.threads.advance_rows` got for each of days 6-15 (the period
and the next day's draws and layout), and runs each day again through ``advance_rows`` (a
fresh copy of the day each time) both ways, alternated within each repeat so that load
changes hit both: in one chunk on the calling thread, and in two halves, the second on the
package's helper thread. It prints, per day (best over the repeats, mean over the days),
each way's CPU time (``time.process_time``, every thread's) and wall time, and the ratios
of two threads to one: a CPU ratio of 1.0 would mean that the second thread costs no CPU
of its own, a wall ratio of 0.5 that it halves the time. It prints, it does not assert.
(The day's draws advance the batch's live generators; the timings do not depend on which
numbers are drawn.)
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy loads, as env_throughput.py

import argparse  # noqa: E402
import copy  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

from _common import daily_batch, load  # noqa: E402  # the script's own folder

import ipwarmup.envs  # noqa: E402
from ipwarmup.envs import simulator, threads  # noqa: E402

Day = tuple[Any, ...]  # advance_rows' uniforms, normals, layout and arguments


def _captured_days(actions: str) -> tuple[Any, list[Day]]:
    """Step the batch on two threads into the episode; return days 6-15's call arguments."""
    batch = daily_batch(__doc__.splitlines()[0], ["--threads", "2", "--actions", actions])
    captured: list[Day] = []
    advance_rows = simulator.advance_rows

    def spy(n_chunks: int, generators: Any, *rest: Any) -> int:
        captured.append(copy.deepcopy(rest))
        return int(advance_rows(n_chunks, generators, *rest))

    simulator.advance_rows = spy  # the simulator calls the module's name at each step
    try:
        batch.env.reset()
        for action in batch.actions[:15]:
            batch.env.step(action)
    finally:
        simulator.advance_rows = advance_rows
    if len(captured) < 15:
        raise SystemExit(f"expected 15 threaded calls, got {len(captured)}: is threads > 1?")
    return batch, captured[5:15]


def _run(generators: Any, day: Day, n_chunks: int) -> tuple[float, float]:
    """Return the process's CPU time (every thread's) and the wall time of one day, in s."""
    start, start_cpu = time.perf_counter(), time.process_time()
    threads.advance_rows(n_chunks, generators, *day)
    return time.process_time() - start_cpu, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    """Print a day's CPU and wall time on one thread and on two, and their ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actions", choices=("zeros", "random"), default="random")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args(argv)
    started_load = load()
    batch, days = _captured_days(args.actions)
    generators = batch.env.simulator.generators.typed
    for day in days[:2]:  # warm-up: kernels loaded
        _run(generators, copy.deepcopy(day), 2)
    # The two ways alternate within each repeat of each day, so load changes hit both.
    ways = (1, 2)  # chunks: the whole day on the calling thread, or two halves at once
    cpu = {way: [float("inf")] * len(days) for way in ways}
    wall = {way: [float("inf")] * len(days) for way in ways}
    for _ in range(args.repeats):
        for i, day in enumerate(days):
            for way in ways:
                spent, elapsed = _run(generators, copy.deepcopy(day), way)
                cpu[way][i] = min(cpu[way][i], spent)
                wall[way][i] = min(wall[way][i], elapsed)
    results = {
        way: (1e3 * sum(cpu[way]) / len(days), 1e3 * sum(wall[way]) / len(days)) for way in ways
    }
    print(
        f"{ipwarmup.envs.__file__}  n_envs {batch.args.n_envs}  actions {args.actions}: "
        f"ms per day (best of {args.repeats}, mean of {len(days)} days)"
    )
    for way, label in ((1, "one chunk, one thread"), (2, "two chunks, two threads")):
        spent, elapsed = results[way]
        print(f"{label:<24} CPU {spent:7.3f}  wall {elapsed:7.3f}")
    print(
        f"two threads / one: CPU {results[2][0] / results[1][0]:.2f}, "
        f"wall {results[2][1] / results[1][1]:.2f}"
    )
    print(f"load {started_load} -> {load()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
