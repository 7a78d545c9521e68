"""Simulator throughput: how fast the IP-warmup env steps, next to Gymnasium's CartPole-v1.

Run ``python benchmarks/env_throughput.py`` (``--quick`` for a smoke run, ``--json PATH``
to also write every figure as JSON, ``--paired-only`` for section 5 alone, ``--threads N``
for the simulator's thread count). It prints, it does not assert: the targets at the end
are informational and the exit code is 0 whether they pass or miss.

What is measured, all in this one process so the ratios compare like with like:

1. One ``IPWarmupEnv`` (scenario ``steady_b2c_transactional``): decision-steps/s and
   simulated env-hours/s at ``decision_interval_hours`` 24 and 1, and the wall time of a
   whole 45-day episode (``reset`` + 45 daily steps, the 30-day continuation after the
   horizon included). Target (issue 9): episode < 10 ms. Target: at 1-hour decisions, 10x
   the env-hours/s of the code before the numba hour loop (commit ``64f2eeb``, numpy's
   hour loop), judged on CPU time against that commit run in this same benchmark, on this
   machine: ``single_step_cpu.py`` on that commit (``benchmarks/at_commit.sh``,
   ``--before-commit``) and on this checkout, each in a child process, in
   ``--before-pairs`` alternating runs (3) for zeros and for random actions, the verdict
   on the ratio of each side's best run (worse of zeros/random), as section 5 judges by
   the best alternating repeats, with the median of the pairs' ratios beside; then
   section 1's in-process figure (worse of zeros/random) over the first zeros pair's
   commit figure, and the older reading, the ratio to CartPole's single env against the
   one recorded at that commit on another machine (:data:`BEFORE_1H_RATIO`), which does
   not carry over between machines as well.
2. ``make_vec_env`` at 1, 16 and 256 envs (24-hour steps): vec steps/s, env-steps/s
   (vec steps x n) and simulated env-hours/s. Target (issue 9): at 256 envs, simulated
   env-hours/s at least CartPole's vector env-steps/s (ratio >= 1.0), measured in
   alternating repeats of the two (section 5) so that load changes hit both alike; the
   ratio by each loop's own CPU time is printed beside (the verdict stays on wall time).
   Each ratio is given twice: over the hours the agent steps through, and over every
   hour the simulator runs, which adds each episode's continuation after the horizon
   (``reward.continuation_days``, 30 days per 45 by default; see :func:`vec_stepper`).
3. CartPole-v1 as ``gymnasium.make`` builds it (with its default wrappers) and its numpy
   vector env (``make_vec(..., vectorization_mode="vector_entry_point")``, i.e.
   ``CartPoleVectorEnv``) at 1, 16 and 256 envs: env-steps/s.
4. Ratios: simulated env-hours/s over CartPole env-steps/s, and its inverse, "one
   simulated env-hour costs X CartPole env-steps" (single env against single env, and
   the batched simulator against the CartPole vector env at the same n).

Method: ``time.perf_counter`` around loops of pre-drawn actions (all zeros, and uniform
in [-1, 1] for the warmup env; uniform in {0, 1} for CartPole). Each loop is warmed up
and calibrated to run for a fixed minimum time, then repeated; the table shows the best
repeat and the median. Episode ends are part of every loop: the single envs are reset on
truncation/termination inside the timed region, the vector envs reset themselves (the
warmup loops cover whole episodes so each repeat holds the same share of resets;
CartPole's vector env counts its next-step autoreset steps as steps). Numpy's thread
pools are limited to one thread before numpy is imported. The simulator runs a batch of
at least ``ipwarmup.envs.threads.MIN_ROWS`` rows on several threads (one chunk of rows per
thread): ``--threads 1`` gives one core's figures; the default is the package's (the
machine's cores, or ``NUMBA_NUM_THREADS``), printed at the top. CPU time counts every
thread, so the ratio by CPU time is what one core's worth of work gives.

The hour loop is a numba kernel compiled with ``cache=True``: every timed loop is warmed up
first, so compilation is never timed; section 0 states what the first call costs in a
fresh process, with the on-disk cache (the normal case) and without it (a cold compile),
with how many kernel signatures each process loaded from the cache and compiled. The
cached figure comes from the second of two fresh processes: the first one after a change to
``envs/`` (or in a new checkout, whose ``__pycache__`` is its own) compiles and writes it.
"""

from __future__ import annotations

import os

# Before numpy (and anything importing it) loads: one BLAS/OpenMP thread, no telemetry.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import asdict, dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
from _common import (  # noqa: E402  # own folder
    ACTION_POOL,
    load,
    rate,
    rule,
    set_threads,
    single_env,
    stepper,
    write_json,
)

import ipwarmup.envs  # noqa: E402

SCENARIO = "steady_b2c_transactional"
VEC_SIZES = (1, 16, 256)
EPISODE_TARGET_MS = 10.0
VEC_TARGET_N = 256
VEC_TARGET_RATIO = 1.0  # env-hours/s over CartPole vector env-steps/s at VEC_TARGET_N
ONE_HOUR_SPEEDUP_TARGET = 10.0
# Single env at 1-hour decisions before issue 9's speed work (commit 64f2eeb, numpy hour
# loop): this script's figure (worse of zeros/random, best repeat), and its ratio to
# CartPole's single env in the same run (145,436 env-steps/s), load 0.29 at start and
# 1.39 at end (1-minute averages).
BEFORE_1H_ENV_HOURS = 2_464.0
BEFORE_1H_RATIO = 0.0169
BEFORE_1H_NOTE = "commit 64f2eeb (numpy hour loop), load 0.29-1.39"
BEFORE_COMMIT = "64f2eeb"  # the numpy hour loop, run again here for the 1-hour target
SEED = 0


@dataclass
class Settings:
    """How long and how often each loop runs.

    Attributes:
        repeats: timed repeats per measurement (best and median are reported).
        min_seconds: minimum duration of one timed repeat; loops are calibrated to it.
        episodes: timed 45-day episodes for the episode-time figure.
    """

    repeats: int
    min_seconds: float
    episodes: int


@dataclass
class Measurement:
    """One timed loop and the rates derived from it.

    Attributes:
        name: short label for the table.
        steps: calls to ``step`` per repeat (vec steps for vector envs).
        n_envs: envs advanced by one call (1 for a single env).
        hours_per_step: simulated hours per env-step (None for CartPole).
        seconds: wall time of each timed repeat.
        cpu_seconds: this process's CPU time of each timed repeat: what the run itself
            cost, less moved than wall time by other processes queueing for the cores.
    """

    name: str
    steps: int
    n_envs: int
    hours_per_step: int | None
    seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)

    def steps_per_s(self, stat: str = "best") -> float:
        """Calls to ``step`` per second, from the best or the median repeat."""
        elapsed = min(self.seconds) if stat == "best" else statistics.median(self.seconds)
        return self.steps / elapsed

    def env_steps_per_s(self, stat: str = "best") -> float:
        """Env-steps per second: ``step`` calls times envs per call."""
        return self.steps_per_s(stat) * self.n_envs

    def env_hours_per_s(self, stat: str = "best") -> float:
        """Simulated env-hours per second (warmup env only)."""
        assert self.hours_per_step is not None
        return self.env_steps_per_s(stat) * self.hours_per_step

    def cpu_env_hours_per_s(self) -> float:
        """Simulated env-hours per CPU second of the best repeat (warmup env only)."""
        assert self.hours_per_step is not None
        return self.steps * self.n_envs * self.hours_per_step / min(self.cpu_seconds)

    def to_json(self) -> dict[str, Any]:
        """Return the raw timings and every derived rate as plain data."""
        data: dict[str, Any] = asdict(self)
        for stat in ("best", "median"):
            data[f"steps_per_s_{stat}"] = self.steps_per_s(stat)
            data[f"env_steps_per_s_{stat}"] = self.env_steps_per_s(stat)
            if self.hours_per_step is not None:
                data[f"env_hours_per_s_{stat}"] = self.env_hours_per_s(stat)
        if self.hours_per_step is not None:
            data["cpu_env_hours_per_s_best"] = self.cpu_env_hours_per_s()
        return data


def _timed(run: Callable[[int], None], count: int) -> tuple[float, float]:
    """Return the wall and CPU seconds of ``run(count)``."""
    gc.collect()
    start, start_cpu = time.perf_counter(), time.process_time()
    run(count)
    return time.perf_counter() - start, time.process_time() - start_cpu


def _repeat(measurement: Measurement, run: Callable[[int], None]) -> None:
    """Time one more repeat of ``run(measurement.steps)`` into ``measurement``."""
    wall, cpu = _timed(run, measurement.steps)
    measurement.seconds.append(wall)
    measurement.cpu_seconds.append(cpu)


def measure(
    measurement: Measurement,
    run: Callable[[int], None],
    settings: Settings,
    unit: int = 1,
) -> Measurement:
    """Warm up, calibrate and time ``run(count)``, filling ``measurement`` in place.

    Args:
        measurement: the record to fill; its ``steps`` is set to the calibrated count.
        run: advances the env ``count`` steps from wherever it stands.
        settings: repeats and minimum duration.
        unit: the count is a multiple of it (an episode length, so resets stay in step).
    """
    warm = unit * max(1, math.ceil(20 / unit))
    elapsed = _timed(run, warm)[0]  # warm-up, also a first estimate
    while elapsed < settings.min_seconds / 10:
        warm *= 4
        elapsed = _timed(run, warm)[0]
    per_step = elapsed / warm
    count = unit * max(1, math.ceil(settings.min_seconds / per_step / unit))
    measurement.steps = count
    measurement.seconds, measurement.cpu_seconds = [], []
    for _ in range(settings.repeats):
        _repeat(measurement, run)
    return measurement


# ----------------------------------------------------------------------------- ipwarmup
def bench_single(interval: int, kind: str, settings: Settings) -> Measurement:
    """Time one ``IPWarmupEnv`` stepping with pre-drawn actions, resetting on truncation."""
    single = single_env(interval, kind)
    episode = single.env.config.steps_per_episode
    record = Measurement(f"single {interval}h {kind}", 0, 1, interval)
    return measure(record, single.run, settings, unit=episode)


def bench_episode(kind: str, settings: Settings) -> dict[str, Any]:
    """Time whole daily-step episodes: ``reset`` plus every step up to truncation."""
    single = single_env(24, kind)
    env = single.env
    episode = env.config.steps_per_episode
    actions = single.actions[:episode]
    problems: list[str] = []

    def one_episode() -> tuple[float, float]:
        gc.collect()
        start, start_cpu = time.perf_counter(), time.process_time()
        env.reset()
        ends = [env.step(a)[3] for a in actions]
        elapsed = time.perf_counter() - start, time.process_time() - start_cpu
        if not ends[-1] or any(ends[:-1]):
            first = ends.index(True) + 1 if any(ends) else "never"
            problems.append(f"expected truncation at step {episode} only, first at: {first}")
        return elapsed

    for _ in range(3):
        one_episode()  # warm-up
    timings = [one_episode() for _ in range(settings.episodes)]
    times = [wall for wall, _ in timings]
    cpu_times = [cpu for _, cpu in timings]
    return {
        "actions": kind,
        "steps": episode,
        "horizon_days": env.config.horizon_days,
        "episodes": settings.episodes,
        "seconds": times,
        "cpu_seconds": cpu_times,
        "cpu_best_ms": 1e3 * min(cpu_times),
        "mean_ms": 1e3 * statistics.fmean(times),
        "best_ms": 1e3 * min(times),
        "median_ms": 1e3 * statistics.median(times),
        "problems": sorted(set(problems)),
    }


def vec_stepper(n_envs: int, kind: str) -> tuple[Callable[[int], None], int, int, float]:
    """Return a loop stepping ``make_vec_env`` (24-hour steps), its episode length, interval.

    And the hours simulated per hour an agent steps through: at the horizon each row also
    runs ``reward.continuation_days`` days on its warmed caps (the same hour loop, draws
    and days, for the episode's last reward), so a whole episode simulates
    ``(horizon_days + continuation_days) / horizon_days`` times its agent's hours.
    """
    with warnings.catch_warnings():
        # SB3's VecEnv warns that the batch defines no render_mode; noise here.
        warnings.filterwarnings("ignore", message=".*render_mode.*", category=UserWarning)
        env = ipwarmup.envs.make_vec_env(
            scenario=SCENARIO, overrides=["decision_interval_hours=24"], n_envs=n_envs, seed=SEED
        )
    episode = env.config.steps_per_episode
    rng = np.random.default_rng(SEED)
    shape = (2 * episode, n_envs, env.action_space.shape[0])
    if kind == "zeros":
        actions = np.zeros(shape, dtype=np.float32)
    else:
        actions = rng.uniform(-1.0, 1.0, shape).astype(np.float32)
    n_actions = len(actions)
    env.reset()

    def run(count: int) -> None:
        step = env.step
        for i in range(count):
            step(actions[i % n_actions])

    config = env.config
    simulated = (config.horizon_days + config.reward.continuation_days) / config.horizon_days
    return run, episode, config.decision_interval_hours, simulated


def bench_vec(n_envs: int, kind: str, settings: Settings) -> Measurement:
    """Time ``make_vec_env`` (24-hour steps), which resets finished envs itself."""
    run, episode, interval, _ = vec_stepper(n_envs, kind)
    record = Measurement(f"vec {n_envs} {kind}", 0, n_envs, interval)
    return measure(record, run, settings, unit=episode)


def _single_step_child(commit: str | None, kind: str, quick: bool) -> dict[str, Any]:
    """Run ``single_step_cpu.py`` (1-hour decisions, actions ``kind``) in a child process.

    ``commit`` None: this checkout's package, with this interpreter; else the package at
    ``commit`` (``benchmarks/at_commit.sh``: the commit's tree, this script's copy), so
    the figure comes from this machine and this run. Returns its CPU microseconds per step
    and env-hours per CPU second, or why it could not run.
    """
    here = Path(__file__).resolve().parent
    steps = "1000" if quick else "5000"
    script = [str(here / "single_step_cpu.py"), "--actions", kind, "--steps", steps,
              "--repeats", "5"]  # fmt: skip
    if commit is None:
        command = [sys.executable, *script]
    else:
        command = ["bash", str(here / "at_commit.sh"), commit, *script]
    try:
        # at_commit.sh runs `python` from PATH: this interpreter's, first.
        path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
        done = subprocess.run(
            command, cwd=here.parent, capture_output=True, text=True, timeout=600, check=False,
            env={**os.environ, "PATH": path},
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as error:
        return {"commit": commit, "error": f"{type(error).__name__}: {error}"}
    found = re.search(r"([0-9.]+) us CPU per step", done.stdout)
    if done.returncode != 0 or found is None:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"commit": commit, "error": f"{kind}: exit {done.returncode}: {last}"}
    us = float(found.group(1))
    # The script's first word: the package it imported (this checkout's, or the commit's).
    package = done.stdout.split(maxsplit=1)[0]
    return {"commit": commit, "package": package, "cpu_us_per_step": us,
            "env_hours_per_cpu_s": 1e6 / us}  # fmt: skip


def bench_one_hour_pairs(commit: str, quick: bool, pairs: int) -> dict[str, Any]:
    """Time 1-hour decisions at ``commit`` and here in ``pairs`` alternating child runs.

    For zeros, then random actions, each pair runs ``single_step_cpu.py`` on the package at
    ``commit``, then on this one, the same script with the same arguments in the same kind
    of process (one run of each read from 9.4x to 12.2x on one machine in one session).
    The ratio of each side's best run (``best_ratio``: the least disturbed figure of each,
    as section 5 judges by the best alternating repeats) is the verdict's; the median of
    the pairs' ratios stands beside it (a slow spell of minutes can still fall on one side
    of a pair: one pair read 64f2eeb at 389 us and this checkout at 46 us, against 300-340
    and 29-31 the rest of the session). Returns per kind the pairs (CPU microseconds per
    step of each side and their ratio, before over now), both ratios, and the worse kind's
    of each; or why a run failed.
    """
    checkout = Path(__file__).resolve().parent.parent
    packages: dict[str, str] = {}
    kinds: dict[str, Any] = {}
    for kind in ("zeros", "random"):
        runs: list[dict[str, float]] = []
        for _ in range(pairs):
            before = _single_step_child(commit, kind, quick)
            if "error" in before:
                return {"commit": commit, "error": before["error"]}
            now = _single_step_child(None, kind, quick)
            if "error" in now:
                return {"commit": commit, "error": f"this checkout: {now['error']}"}
            if not Path(now["package"]).resolve().is_relative_to(checkout):
                return {"commit": commit, "error": f"this checkout's child imported "
                        f"{now['package']}, not the package under {checkout}"}  # fmt: skip
            packages = {"before": before["package"], "now": now["package"]}
            before_us, now_us = before["cpu_us_per_step"], now["cpu_us_per_step"]
            runs.append({"before_us": before_us, "now_us": now_us, "ratio": before_us / now_us})
        median = float(np.median([run["ratio"] for run in runs]))
        best_before = min(run["before_us"] for run in runs)
        best_now = min(run["now_us"] for run in runs)
        kinds[kind] = {"pairs": runs, "median_ratio": median, "best_before_us": best_before,
                       "best_now_us": best_now, "best_ratio": best_before / best_now}  # fmt: skip
    zeros = kinds["zeros"]["pairs"][0]
    return {
        "commit": commit,
        "kinds": kinds,
        "best_ratio": min(k["best_ratio"] for k in kinds.values()),
        "median_ratio": min(k["median_ratio"] for k in kinds.values()),
        "packages": packages,
        # The first zeros pair's before side, for the in-process comparison of section 1.
        "cpu_us_per_step": zeros["before_us"],
        "env_hours_per_cpu_s": 1e6 / zeros["before_us"],
    }


# ----------------------------------------------------------------------------- CartPole
def bench_cartpole_single(settings: Settings) -> Measurement:
    """Time ``gymnasium.make("CartPole-v1")`` with random actions, resetting on episode end."""
    env = gym.make("CartPole-v1")
    rng = np.random.default_rng(SEED)
    actions = rng.integers(0, 2, ACTION_POOL).tolist()
    env.reset(seed=SEED)
    run = stepper(env, actions)

    return measure(Measurement("CartPole single", 0, 1, None), run, settings)


def cartpole_vec_stepper(n_envs: int) -> Callable[[int], None]:
    """Return a loop stepping CartPole's numpy vector env with random actions."""
    env = gym.make_vec("CartPole-v1", num_envs=n_envs, vectorization_mode="vector_entry_point")
    rng = np.random.default_rng(SEED)
    actions = rng.integers(0, 2, (256, n_envs))
    n_actions = len(actions)
    env.reset(seed=SEED)

    def run(count: int) -> None:
        step = env.step
        for i in range(count):
            step(actions[i % n_actions])

    return run


def bench_cartpole_vec(n_envs: int, settings: Settings) -> Measurement:
    """Time CartPole's numpy vector env (it autoresets on the step after an episode ends)."""
    run = cartpole_vec_stepper(n_envs)
    return measure(Measurement(f"CartPole vec {n_envs}", 0, n_envs, None), run, settings)


def bench_paired(n_envs: int, kind: str, settings: Settings) -> dict[str, Any]:
    """Time the simulator's and CartPole's vector envs in alternating repeats.

    Both are calibrated first; then each repeat times one, then the other, so a change of
    the machine's load between repeats hits both alike. Returns both measurements, the
    ratio of their best repeats and the median of the per-pair ratios (the hours the agent
    steps through), and the same ratios over every simulated hour, the continuation's
    included (``simulated`` times the former: the loops run whole episodes).
    """
    run, episode, interval, simulated = vec_stepper(n_envs, kind)
    once = Settings(repeats=1, min_seconds=settings.min_seconds, episodes=0)  # calibration
    ours = Measurement(f"paired vec {n_envs} {kind}", 0, n_envs, interval)
    measure(ours, run, once, unit=episode)
    cp_run = cartpole_vec_stepper(n_envs)
    cartpole = measure(Measurement(f"paired CartPole vec {n_envs}", 0, n_envs, None), cp_run, once)
    for record in (ours, cartpole):
        record.seconds, record.cpu_seconds = [], []
    pair_ratios = []
    for _ in range(settings.repeats):
        _repeat(ours, run)
        _repeat(cartpole, cp_run)
        hours = ours.steps * n_envs * interval / ours.seconds[-1]
        pair_ratios.append(hours / (cartpole.steps * n_envs / cartpole.seconds[-1]))
    cartpole_cpu_steps = cartpole.steps * n_envs / min(cartpole.cpu_seconds)
    return {
        "n_envs": n_envs,
        "actions": kind,
        "ipwarmup": ours,
        "cartpole": cartpole,
        "ratio_best": ours.env_hours_per_s() / cartpole.env_steps_per_s(),
        # The same by each loop's own CPU time (best repeats): what a core of its own gives.
        "ratio_cpu": ours.cpu_env_hours_per_s() / cartpole_cpu_steps,
        "ratio_median_of_pairs": statistics.median(pair_ratios),
        "pair_ratios": pair_ratios,
        "simulated_per_agent_hour": simulated,
        "simulated_ratio_best": simulated * ours.env_hours_per_s() / cartpole.env_steps_per_s(),
        "simulated_ratio_cpu": simulated * ours.cpu_env_hours_per_s() / cartpole_cpu_steps,
        "simulated_ratio_median_of_pairs": simulated * statistics.median(pair_ratios),
    }


def print_paired(paired: list[dict[str, Any]]) -> None:
    """Print section 5: the alternating repeats' rates and ratios, worse of the actions."""
    print(rule(f"5. Alternating repeats at n={VEC_TARGET_N}: ipwarmup vec vs CartPole vec"))
    print(
        f"{'actions':<8} {'env-h/s':>12} {'CP steps/s':>12} {'ratio (best)':>13} "
        f"{'median of pairs':>16} {'by CPU time':>12}"
    )
    for pair in paired:
        print(
            f"{pair['actions']:<8} {rate(pair['ipwarmup'].env_hours_per_s()):>12} "
            f"{rate(pair['cartpole'].env_steps_per_s()):>12} {pair['ratio_best']:>13.3f} "
            f"{pair['ratio_median_of_pairs']:>16.3f} {pair['ratio_cpu']:>12.3f}"
        )
    simulated = paired[0]["simulated_per_agent_hour"]
    print(
        f"Over every simulated hour, the continuation's included ({simulated:.3f} simulated "
        "hours per agent hour):"
    )
    print(f"{'actions':<8} {'ratio (best)':>13} {'median of pairs':>16} {'by CPU time':>12}")
    for pair in paired:
        print(
            f"{pair['actions']:<8} {pair['simulated_ratio_best']:>13.3f} "
            f"{pair['simulated_ratio_median_of_pairs']:>16.3f} "
            f"{pair['simulated_ratio_cpu']:>12.3f}"
        )


_FIRST_CALL = """
import json, time
t0 = time.perf_counter()
import numpy as np
import ipwarmup.envs
try:
    from ipwarmup.envs.compiled import cache_counts
except ImportError:  # a commit from before the counts (benchmarks/at_commit.sh)
    cache_counts = None
t1 = time.perf_counter()
env = ipwarmup.envs.IPWarmupEnv(scenario={scenario!r})
env.reset(seed=0)
action = np.zeros(env.action_space.shape, dtype=np.float32)
t2 = time.perf_counter()
env.step(action)
t3 = time.perf_counter()
env.step(action)
t4 = time.perf_counter()
counts = cache_counts() if cache_counts else None
print(json.dumps({{"import_s": t1 - t0, "first_step_s": t3 - t2, "second_step_s": t4 - t3,
                  "loaded": counts and counts.loaded, "compiled": counts and counts.compiled}}))
"""
FIRST_CALL_RUNS = (
    # The first process may find the cache stale (a changed module, a new checkout): it
    # compiles and writes it. The second is what every later process pays.
    ("first", False),
    ("cached", False),
    ("cold compile", True),  # NUMBA_CACHE_DIR: an empty folder
)


def bench_first_call() -> dict[str, dict[str, Any]]:
    """Time the first step in fresh processes, with numba's on-disk cache and without it.

    Three processes in turn: ``first`` (whatever the cache holds now; it compiles and
    writes the cache if a module changed since the last run), ``cached`` (the cache the
    first one left: what each later process pays), ``cold compile`` (``NUMBA_CACHE_DIR``
    points at an empty temporary folder, so everything compiles). Each reports how many
    kernel signatures it loaded from the cache and how many it compiled
    (:func:`ipwarmup.envs.compiled.cache_counts`), so a label never hides a compile.
    """
    code = _FIRST_CALL.format(scenario=SCENARIO)
    results = {}
    with tempfile.TemporaryDirectory() as empty:
        for label, cold in FIRST_CALL_RUNS:
            env = {**os.environ, **({"NUMBA_CACHE_DIR": empty} if cold else {})}
            out = subprocess.run(
                [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
            )
            results[label] = json.loads(out.stdout.strip().splitlines()[-1])
    return results


# ----------------------------------------------------------------------------- output


def environment_info(quick: bool, settings: Settings) -> dict[str, Any]:
    """Describe the machine and library versions the figures come from."""
    import stable_baselines3

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
        "gymnasium": gym.__version__,
        "stable_baselines3": stable_baselines3.__version__,
        "threads": {v: os.environ[v] for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")},
        "scenario": SCENARIO,
        "quick": quick,
        "repeats": settings.repeats,
        "min_seconds_per_repeat": settings.min_seconds,
        "load": load(),
    }


def main(argv: list[str] | None = None) -> int:
    """Run every measurement, print the tables and targets, optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter repeats (smoke)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write figures as JSON")
    parser.add_argument("--paired-only", action="store_true", help="section 5 only")
    parser.add_argument("--threads", type=int, default=None, help="simulator threads")
    parser.add_argument(
        "--before-commit",
        default=BEFORE_COMMIT,
        help=f"commit run again for the 1-hour target (default {BEFORE_COMMIT}; none: skip)",
    )
    parser.add_argument(
        "--before-pairs",
        type=int,
        default=3,
        help="alternating runs of that commit and this checkout (default 3; 1 with --quick)",
    )
    args = parser.parse_args(argv)
    if args.before_pairs < 1:
        parser.error(f"--before-pairs: expected at least 1, got {args.before_pairs}")
    threads = set_threads(args.threads)
    settings = (
        Settings(repeats=2, min_seconds=0.03, episodes=5)
        if args.quick
        else Settings(repeats=5, min_seconds=0.25, episodes=20)
    )
    started = time.perf_counter()
    info = environment_info(args.quick, settings)
    info["numba_threads"] = threads
    print("ipwarmup env throughput" + (" (--quick)" if args.quick else ""))
    print(
        f"python {info['python']}  numpy {info['numpy']}  gymnasium {info['gymnasium']}  "
        f"stable-baselines3 {info['stable_baselines3']}"
    )
    print(f"platform {info['platform']}  os.cpu_count() = {info['cpu_count']}")
    print(
        "OMP_NUM_THREADS=OPENBLAS_NUM_THREADS=1 set before importing numpy; all in one "
        f"process; the simulator's batches on {threads} thread(s) (--threads)"
    )
    if args.paired_only:
        print_paired([bench_paired(VEC_TARGET_N, kind, settings) for kind in ("zeros", "random")])
        print(f"load average at end: {load()} (1/5/15 min)")
        return 0
    print(
        f"scenario {SCENARIO}; {settings.repeats} repeats of >= {settings.min_seconds:g} s "
        "per figure after a warm-up"
    )
    print(
        f"rates from the best repeat (median beside); load average at start: {info['load']}"
        " (1/5/15 min)"
    )

    # 0. numba's first call, in fresh processes (the timed loops below are warmed up)
    first_call = bench_first_call()
    print(rule("0. First step in a fresh process (numba hour kernel; never in a timed loop)"))
    for label, times in first_call.items():
        print(
            f"{label:<13} import {1e3 * times['import_s']:8.1f} ms   first step "
            f"{1e3 * times['first_step_s']:8.1f} ms   second step "
            f"{1e3 * times['second_step_s']:6.2f} ms   kernels loaded {times['loaded']} "
            f"compiled {times['compiled']}"
        )

    # 1. single env
    singles = [bench_single(h, kind, settings) for h in (24, 1) for kind in ("zeros", "random")]
    print(rule("1. Single IPWarmupEnv (resets on truncation included)"))
    print(
        f"{'interval':<9} {'actions':<8} {'steps/s':>10} {'us/step':>9} "
        f"{'env-hours/s':>13} {'(median)':>13} {'per CPU s':>13}"
    )
    for m in singles:
        interval, kind = m.name.split()[1:]
        print(
            f"{interval:<9} {kind:<8} {rate(m.steps_per_s()):>10} "
            f"{1e6 / m.steps_per_s():>9.1f} {rate(m.env_hours_per_s()):>13} "
            f"{rate(m.env_hours_per_s('median')):>13} {rate(m.cpu_env_hours_per_s()):>13}"
        )
    before_1h: dict[str, Any] = {"commit": None, "error": "skipped (--before-commit none)"}
    if args.before_commit != "none":
        pairs = 1 if args.quick else args.before_pairs
        before_1h = bench_one_hour_pairs(args.before_commit, args.quick, pairs)
    if "error" in before_1h:
        print(f"1h before ({args.before_commit}): not measured: {before_1h['error']}")
    else:
        print(
            f"1h, {before_1h['commit']} and this checkout in alternating child runs "
            "(single_step_cpu.py; benchmarks/at_commit.sh for the commit), CPU us per step; "
            f"packages {before_1h['packages']['before']} and {before_1h['packages']['now']}:"
        )
        for kind, result in before_1h["kinds"].items():
            for i, run in enumerate(result["pairs"], 1):
                print(
                    f"  {kind:<6} pair {i}: {before_1h['commit']} {run['before_us']:.1f}, "
                    f"this checkout {run['now_us']:.2f}: {run['ratio']:.2f}x"
                )
            print(
                f"  {kind:<6} best of each side {result['best_before_us']:.1f} / "
                f"{result['best_now_us']:.2f}: {result['best_ratio']:.2f}x; median of the "
                f"pairs {result['median_ratio']:.2f}x"
            )
    episodes = [bench_episode(kind, settings) for kind in ("zeros", "random")]
    ep0 = episodes[0]
    print(f"\n45-day episode (reset + {ep0['steps']} x 24h steps), {ep0['episodes']} episodes:")
    for ep in episodes:
        print(
            f"  {ep['actions']:<7} mean {ep['mean_ms']:6.2f} ms  best {ep['best_ms']:6.2f} ms  "
            f"median {ep['median_ms']:6.2f} ms  CPU best {ep['cpu_best_ms']:6.2f} ms   "
            f"target < {EPISODE_TARGET_MS:g} ms"
        )
        for problem in ep["problems"]:
            print(f"  PROBLEM: {problem}")

    # 2. vec env
    vecs = {
        (n, kind): bench_vec(n, kind, settings) for n in VEC_SIZES for kind in ("zeros", "random")
    }
    print(rule("2. make_vec_env, 24h steps (auto-resets included)"))
    print(
        f"{'n_envs':>6} {'actions':<8} {'vec steps/s':>11} {'env-steps/s':>12} "
        f"{'env-hours/s':>13} {'(median)':>13}"
    )
    for (n, kind), m in vecs.items():
        print(
            f"{n:>6} {kind:<8} {rate(m.steps_per_s()):>11} {rate(m.env_steps_per_s()):>12} "
            f"{rate(m.env_hours_per_s()):>13} {rate(m.env_hours_per_s('median')):>13}"
        )

    # 3. CartPole
    cp_single = bench_cartpole_single(settings)
    cp_vecs = {n: bench_cartpole_vec(n, settings) for n in VEC_SIZES}
    print(rule("3. CartPole-v1, random actions (resets included)"))
    print(f"{'env':<36} {'env-steps/s':>12} {'(median)':>12} {'us/call':>9}")
    rows = [("gym.make single (default wrappers)", cp_single)]
    rows += [(f"make_vec vector_entry_point n={n}", m) for n, m in cp_vecs.items()]
    for label, m in rows:
        print(
            f"{label:<36} {rate(m.env_steps_per_s()):>12} "
            f"{rate(m.env_steps_per_s('median')):>12} {1e6 / m.steps_per_s():>9.1f}"
        )

    # 4. ratios (best repeats)
    ratios: list[dict[str, Any]] = []
    print(rule("4. Ratios: simulated env-hours/s over CartPole env-steps/s (best repeats)"))
    print(
        f"{'ipwarmup':<22} {'vs CartPole':<16} {'env-h/s':>12} {'CP steps/s':>12} "
        f"{'ratio':>8} {'CP steps/sim-h':>15}"
    )

    def add_ratio(label: str, m: Measurement, cp_label: str, cp: Measurement) -> None:
        hours, steps = m.env_hours_per_s(), cp.env_steps_per_s()
        ratios.append(
            {
                "ipwarmup": label,
                "cartpole": cp_label,
                "env_hours_per_s": hours,
                "cartpole_env_steps_per_s": steps,
                "ratio": hours / steps,
                "cartpole_steps_per_sim_hour": steps / hours,
            }
        )
        print(
            f"{label:<22} {cp_label:<16} {rate(hours):>12} {rate(steps):>12} "
            f"{hours / steps:>8.3f} {steps / hours:>15.3f}"
        )

    for m in singles:
        add_ratio(m.name, m, "single", cp_single)
    for (n, _kind), m in vecs.items():
        add_ratio(m.name, m, f"vector n={n}", cp_vecs[n])
    print("ratio > 1: the simulator covers more env-hours than CartPole takes steps per second;")
    print("CP steps/sim-h: one simulated env-hour costs that many CartPole env-steps of time.")

    # 5. the ratio at 256 envs, in alternating repeats
    paired = [bench_paired(VEC_TARGET_N, kind, settings) for kind in ("zeros", "random")]
    print_paired(paired)

    # Targets: the verdict is on the best episode / repeat (other load only ever slows a
    # run), taking the worse of the two action sets; the typical figure (mean episode,
    # median of the paired ratios) gets its own verdict in brackets.
    ep_best = max(ep["best_ms"] for ep in episodes)
    ep_mean = max(ep["mean_ms"] for ep in episodes)
    ep_cpu = max(ep["cpu_best_ms"] for ep in episodes)
    ratio_best = min(pair["ratio_best"] for pair in paired)
    ratio_typical = min(pair["ratio_median_of_pairs"] for pair in paired)
    ratio_cpu = min(pair["ratio_cpu"] for pair in paired)
    simulated_best = min(pair["simulated_ratio_best"] for pair in paired)
    simulated_typical = min(pair["simulated_ratio_median_of_pairs"] for pair in paired)
    simulated_cpu = min(pair["simulated_ratio_cpu"] for pair in paired)
    one_hour = [m for m in singles if m.hours_per_step == 1]
    hours_1h = min(m.env_hours_per_s() for m in one_hour)
    ratio_1h = hours_1h / cp_single.env_steps_per_s()
    speedup_1h = ratio_1h / BEFORE_1H_RATIO
    speedup_1h_absolute = hours_1h / BEFORE_1H_ENV_HOURS
    # The verdict: the before commit's best run over this checkout's, in alternating child
    # runs (worse of zeros/random); the recorded ratio when that could not run. Beside it,
    # section 1's CPU figure over the first zeros pair's commit figure.
    cpu_hours_1h = min(m.cpu_env_hours_per_s() for m in one_hour)
    same_run = "error" not in before_1h
    speedup_1h_same_run = (
        cpu_hours_1h / before_1h["env_hours_per_cpu_s"] if same_run else float("nan")
    )
    speedup_1h_pairs = before_1h["median_ratio"] if same_run else float("nan")
    speedup_1h_best = before_1h["best_ratio"] if same_run else float("nan")
    targets = {
        "episode_ms": {
            "target": f"< {EPISODE_TARGET_MS:g}",
            "best": ep_best,
            "mean": ep_mean,
            "cpu_best": ep_cpu,
            "statistic": "best episode, worse of zeros/random",
            "pass": ep_best < EPISODE_TARGET_MS,
            "typical_pass": ep_mean < EPISODE_TARGET_MS,
        },
        "vec256_ratio_to_cartpole_vec": {
            "target": f">= {VEC_TARGET_RATIO:g}",
            "best": ratio_best,
            "median_of_pairs": ratio_typical,
            "cpu": ratio_cpu,
            "statistic": "ratio of best alternating repeats, worse of zeros/random",
            "pass": ratio_best >= VEC_TARGET_RATIO,
            "typical_pass": ratio_typical >= VEC_TARGET_RATIO,
        },
        "vec256_simulated_ratio_to_cartpole_vec": {
            "target": f">= {VEC_TARGET_RATIO:g}",
            "best": simulated_best,
            "median_of_pairs": simulated_typical,
            "cpu": simulated_cpu,
            "statistic": "as vec256_ratio_to_cartpole_vec, over every simulated hour "
            "(the continuation's included)",
            "pass": simulated_best >= VEC_TARGET_RATIO,
            "typical_pass": simulated_typical >= VEC_TARGET_RATIO,
            "cpu_pass": simulated_cpu >= VEC_TARGET_RATIO,
        },
        "one_hour_speedup": {
            "target": f">= {ONE_HOUR_SPEEDUP_TARGET:g}x before",
            "before": {
                "env_hours_per_s": BEFORE_1H_ENV_HOURS,
                "ratio_to_cartpole_single": BEFORE_1H_RATIO,
                "note": BEFORE_1H_NOTE,
            },
            "env_hours_per_s": hours_1h,
            "ratio_to_cartpole_single": ratio_1h,
            "speedup_of_ratio": speedup_1h,
            "speedup_absolute": speedup_1h_absolute,
            "before_same_run": before_1h,
            "cpu_env_hours_per_s": cpu_hours_1h,
            "speedup_same_run_cpu": speedup_1h_same_run,
            "speedup_best_of_pairs": speedup_1h_best,
            "speedup_median_of_pairs": speedup_1h_pairs,
            "statistic": "the before commit's best over this checkout's best of alternating "
            "child runs (single_step_cpu.py, CPU time, best repeat each), worse of "
            "zeros/random; else the ratio to CartPole single",
            "pass": (speedup_1h_best if same_run else speedup_1h) >= ONE_HOUR_SPEEDUP_TARGET,
            "pairs_median_pass": (
                speedup_1h_pairs >= ONE_HOUR_SPEEDUP_TARGET if same_run else None
            ),
            "same_run_pass": speedup_1h_same_run >= ONE_HOUR_SPEEDUP_TARGET if same_run else None,
            "ratio_pass": speedup_1h >= ONE_HOUR_SPEEDUP_TARGET,
            "typical_pass": speedup_1h_absolute >= ONE_HOUR_SPEEDUP_TARGET,
        },
    }

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "MISS"

    t_ep = targets["episode_ms"]
    t_vec = targets["vec256_ratio_to_cartpole_vec"]
    t_sim = targets["vec256_simulated_ratio_to_cartpole_vec"]
    t_1h = targets["one_hour_speedup"]
    print(rule("Targets (informational; exit code 0 either way; worse of zeros/random)"))
    print(
        f"{verdict(t_ep['pass'])}  45-day episode < {EPISODE_TARGET_MS:g} ms: best "
        f"{ep_best:.2f} ms  [mean {ep_mean:.2f} ms: {verdict(t_ep['typical_pass'])}; "
        f"CPU time of the best: {ep_cpu:.2f} ms]"
    )
    print(
        f"{verdict(t_vec['pass'])}  vec n={VEC_TARGET_N} env-hours/s over CartPole vector "
        f"env-steps/s >= {VEC_TARGET_RATIO:g}: {ratio_best:.3f}  "
        f"[median of pairs {ratio_typical:.3f}: {verdict(t_vec['typical_pass'])}; "
        f"by CPU time {ratio_cpu:.3f}]"
    )
    print(
        f"{verdict(t_sim['pass'])}  the same over every simulated hour (continuation "
        f"included): {simulated_best:.3f}  [median of pairs {simulated_typical:.3f}: "
        f"{verdict(t_sim['typical_pass'])}; by CPU time {simulated_cpu:.3f}: "
        f"{verdict(t_sim['cpu_pass'])}]"
    )
    if same_run:
        each = ", ".join(
            f"{kind} {result['best_ratio']:.2f}x" for kind, result in before_1h["kinds"].items()
        )
        print(
            f"{verdict(t_1h['pass'])}  1-hour decisions >= {ONE_HOUR_SPEEDUP_TARGET:g}x "
            f"{before_1h['commit']} run here: best run of each side {speedup_1h_best:.2f}x "
            f"({each})  [median of pairs {speedup_1h_pairs:.2f}x: "
            f"{verdict(t_1h['pairs_median_pass'])}]"
        )
        print(
            f"{verdict(t_1h['same_run_pass'])}  (section 1) {rate(cpu_hours_1h)} env-hours "
            f"per CPU s, worse of zeros/random = {speedup_1h_same_run:.2f}x the first zeros pair's "
            f"{rate(before_1h['env_hours_per_cpu_s'])}"
        )
    else:
        print(f"      1-hour decisions: {args.before_commit} not run here; the recorded ratio:")
    print(
        f"{verdict(t_1h['ratio_pass'])}  (recorded) {rate(hours_1h)} env-hours/s, "
        f"{ratio_1h:.4f} of CartPole single = {speedup_1h:.2f}x the before ratio "
        f"{BEFORE_1H_RATIO} [absolute {speedup_1h_absolute:.2f}x {rate(BEFORE_1H_ENV_HOURS)}: "
        f"{verdict(t_1h['typical_pass'])}]"
    )
    print(f"  recorded before: {BEFORE_1H_NOTE}")
    print(f"load average at end: {load()} (1/5/15 min)")
    total = time.perf_counter() - started
    print(f"\ntotal benchmark time {total:.1f} s")

    if args.json is not None:
        report = {
            "environment": info,
            "single": [m.to_json() for m in singles],
            "episode": episodes,
            "vec": [m.to_json() for m in vecs.values()],
            "cartpole_single": cp_single.to_json(),
            "cartpole_vec": [m.to_json() for m in cp_vecs.values()],
            "paired": [
                {
                    **pair,
                    "ipwarmup": pair["ipwarmup"].to_json(),
                    "cartpole": pair["cartpole"].to_json(),
                }
                for pair in paired
            ],
            "first_call": first_call,
            "ratios": ratios,
            "targets": targets,
            "total_seconds": total,
        }
        write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
