"""Where the time of one step of a single ``IPWarmupEnv`` goes, part by part.

Run ``python benchmarks/single_step_profile.py`` (``--interval 1`` or ``24`` hours per
decision, ``--actions zeros`` or ``random``). It steps one env as ``single_step_cpu.py``
does (resets and the continuation at the horizon included), once plainly and once with a
clock around each part, and prints each part's exclusive time per step (its own, without
the timed parts it calls) and its share, all from the repeat whose total was the least.
The compiled period is timed apart for the step's own period and for the continuation's
days (720 one-hour periods in 30 calls at the horizon, spread over the episode's steps).
At 256 envs ``vec_step_profile.py`` does this by CPU time; a single env's step is ~30 µs,
where ``time.process_time`` (~0.3 µs a call here) would time itself, so this clock is
``time.perf_counter_ns`` (wall time, ~0.05 µs): run it on a quiet machine.

Then it times what the parts cannot show, each alone: numba's dispatch of the compiled
period's arguments (a compiled function that takes the arguments a step passed and does
nothing), the compiled period on a copy of those arguments (a step's own period, not at a
day's end, called again and again at that hour of the day), what a timed call costs more
than a bare one (the wrappers' time lands in the callers' own), and the observation. It
prints, it does not assert.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy loads: one core, as env_throughput.py

import argparse  # noqa: E402
import copy  # noqa: E402
import functools  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import numba  # noqa: E402
import numpy as np  # noqa: E402
from _common import Clock, load, single_env  # noqa: E402  # the script's own folder

import ipwarmup.envs  # noqa: E402
from ipwarmup import actions as core_actions  # noqa: E402
from ipwarmup import observation  # noqa: E402
from ipwarmup.envs import env as envs_env  # noqa: E402
from ipwarmup.envs import outcomes, period_kernel, simulator  # noqa: E402

STEP_PERIOD = "advance_period: the step's (dispatch, period)"
CONTINUATION_PERIODS = "advance_period: continuation's days"
# Where advance_period's arguments hold the clock and the continuation's flag.
_NAMES = period_kernel._advance_period.__code__.co_varnames
HOUR_OF_DAY, HOLD = _NAMES.index("hour_of_day"), _NAMES.index("hold")


PARTS: tuple[tuple[str, Any, str], ...] = (
    ("IPWarmupEnv.step (its own Python)", envs_env.IPWarmupEnv, "step"),
    ("IPWarmupEnv._info (the info dict)", envs_env.IPWarmupEnv, "_info"),
    ("IPWarmupEnv.reset", envs_env.IPWarmupEnv, "reset"),
    ("ActionCodec.check (the action's check)", core_actions.ActionCodec, "check"),
    ("Simulator.step (its own Python)", simulator.Simulator, "step"),
    ("Simulator._advance (its own Python)", simulator.Simulator, "_advance"),
    ("PeriodBuffers.bind", outcomes.PeriodBuffers, "bind"),
    ("Simulator._start_day (its own Python)", simulator.Simulator, "_start_day"),
    ("draw_days (the day's draws)", simulator, "draw_days"),
    ("start_day (the day's layout)", simulator, "start_day"),
    ("Simulator.observe and encode", simulator, "encode"),
    ("shift_history", simulator, "shift_history"),
    ("Simulator._continuation (copy, generators)", simulator.Simulator, "_continuation"),
    ("Simulator.continuation_info", simulator.Simulator, "continuation_info"),
)


def _noop(*args: Any) -> int:
    return 0


def _dispatch_probe(count: int) -> Callable[..., int]:
    """Return a compiled function of ``count`` arguments that does nothing with them."""
    names = ", ".join(f"a{i}" for i in range(count))
    namespace: dict[str, Any] = {}
    exec(f"def probe({names}):\n    return 0\n", namespace)  # a fixed template of argument names
    return numba.njit(namespace["probe"])  # type: ignore[no-any-return]


def _best_per_call(function: Callable[[], Any], calls: int, repeats: int) -> float:
    """Return the best mean wall seconds of ``calls`` calls of ``function``."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            function()
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def main(argv: list[str] | None = None) -> int:
    """Time the env's steps plainly, then part by part, and print the parts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interval", type=int, choices=(1, 24), default=1)
    parser.add_argument("--actions", choices=("zeros", "random"), default="zeros")
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    started_load = load()
    stepper = single_env(args.interval, args.actions)
    env, run = stepper.env, stepper.run
    run(3_000)  # warm-up: kernels loaded or compiled, caches filled
    plain_cpu = plain_wall = float("inf")
    for _ in range(args.repeats):
        cpu, wall = time.process_time(), time.perf_counter()
        run(args.steps)
        plain_cpu = min(plain_cpu, (time.process_time() - cpu) / args.steps)
        plain_wall = min(plain_wall, (time.perf_counter() - wall) / args.steps)

    # A part the package does not have (an older commit, benchmarks/at_commit.sh) is left
    # out and named: its time shows in its caller's.
    parts = [part for part in PARTS if hasattr(part[1], part[2])]
    for name, owner, attr in PARTS:
        if (name, owner, attr) not in parts:
            print(f"not timed here (no {attr} at this commit): {name}")
    originals = [(owner, attr, getattr(owner, attr)) for _, owner, attr in parts]
    original_period = simulator.advance_period
    captured: list[tuple[Any, ...]] = []  # a step's period arguments, before it ran

    def period_parts(clock: Clock) -> Callable[..., Any]:
        """Return advance_period timed apart for a step's period and the continuation's."""
        step = clock.wrap(STEP_PERIOD, original_period)
        continuation = clock.wrap(CONTINUATION_PERIODS, original_period)

        def route(*arguments: Any) -> Any:
            if arguments[HOLD]:
                return continuation(*arguments)
            # One to copy, not at the day's end (at 1-hour decisions: hour 23 ends the day).
            if not captured and (arguments[HOUR_OF_DAY] + args.interval) % 24 != 0:
                captured.append(copy.deepcopy(arguments))
            return step(*arguments)

        return route

    repeats: list[tuple[float, dict[str, float]]] = []  # (ns per step, each part's ns)
    try:
        for _ in range(args.repeats):
            clock = Clock(time.perf_counter_ns)
            simulator.advance_period = period_parts(clock)
            for name, owner, attr in parts:
                setattr(owner, attr, clock.wrap(name, getattr(owner, attr)))
            start = time.perf_counter_ns()
            run(args.steps)
            total = (time.perf_counter_ns() - start) / args.steps
            for owner, attr, original in originals:
                setattr(owner, attr, original)
            simulator.advance_period = original_period
            repeats.append((total, {name: own / args.steps for name, own in clock.own.items()}))
    finally:
        for owner, attr, original in originals:
            setattr(owner, attr, original)
        simulator.advance_period = original_period
    timed, best = min(repeats, key=lambda repeat: repeat[0])  # every figure from one repeat
    print(
        f"{ipwarmup.envs.__file__}  single env  {args.interval}h  actions {args.actions}: "
        f"{1e6 * plain_cpu:.2f} us CPU, {1e6 * plain_wall:.2f} us wall per step plainly "
        f"(best of {args.repeats} x {args.steps} steps), {timed / 1e3:.2f} us wall timed part "
        f"by part (its best repeat, whose parts follow); load {started_load} -> {load()}"
    )
    print(f"{'part (exclusive wall time)':<46} {'us/step':>8} {'share':>6}")
    for name, value in sorted(best.items(), key=lambda item: -item[1]):
        print(f"{name:<46} {value / 1e3:>8.2f} {value / timed:>6.1%}")
    outside = timed - sum(best.values())
    print(f"{'the loop and what no part covers':<46} {outside / 1e3:>8.2f} "
          f"{outside / timed:>6.1%}")  # fmt: skip

    if captured:
        arguments = captured[0]
        probe = _dispatch_probe(len(arguments))
        probe(*arguments)  # compile
        dispatch = _best_per_call(lambda: probe(*arguments), 20_000, args.repeats)
        period = float("inf")
        for _ in range(args.repeats):  # a fresh copy each time: the state moves on
            copies = copy.deepcopy(arguments)
            call = functools.partial(original_period, *copies)
            period = min(period, _best_per_call(call, 2_000, 1))
        print(
            f"\nnumba's dispatch of advance_period's {len(arguments)} arguments alone (a "
            f"compiled function of them that does nothing): {1e6 * dispatch:.2f} us a call; "
            f"advance_period alone on a copy of a step's arguments (its state as the step "
            f"found it, not at a day's end), called 2,000 times at that hour of the day: "
            f"{1e6 * period:.2f} us a call"
        )
    # What a timed call costs beyond the call itself (its wrapper's frame and two clock
    # reads): a wrapped call inside a wrapped call, against the same two calls bare.
    calibration = Clock(time.perf_counter_ns)
    inner = calibration.wrap("inner", _noop)

    def bare() -> None:
        _noop()

    def nested() -> None:
        inner()

    outer = calibration.wrap("outer", nested)
    overhead = (
        _best_per_call(outer, 100_000, args.repeats) - _best_per_call(bare, 100_000, args.repeats)
    ) / 2
    print(
        f"\neach timed call costs ~{1e6 * overhead:.2f} us of wall time more than a bare "
        "call, counted in its caller's own time above (the step's are in the loop's)"
    )
    sim = env.simulator
    telemetry, config = sim.state.telemetry, sim.config
    whole = _best_per_call(sim.observe, 20_000, args.repeats)
    logs = np.empty((1, sim.n_providers, 3))
    loops = _best_per_call(
        lambda: observation.log_inputs(
            telemetry.demand_per_hour, telemetry.cap_per_hour, telemetry.queued, logs
        ),
        20_000,
        args.repeats,
    )
    print(
        f"Simulator.observe alone: {1e6 * whole:.2f} us a call, of which its first compiled "
        f"loop (log_inputs, dispatch included) {1e6 * loops:.2f} us; horizon "
        f"{config.horizon_days} days"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
