"""Tracking overhead: what MLflow logging costs per metric and as a share of training.

Run ``python benchmarks/tracking_overhead.py`` (``--quick`` for a smoke run). It prints,
it does not assert; the target (tracking under 5% of a training run) is informational.

What is measured, on a fresh SQLite store in a temporary folder:

1. Per-metric cost: ``mlflow.log_metric`` called once per metric inside an active fluent
   run (one store transaction each; 200 metrics), against ``Run.log_metrics`` from
   ``ipwarmup.training.tracking`` (buffered, written with ``log_batch`` in chunks;
   5,000 metrics as SB3 logs them, 15 per step, the final flush included). Best of a
   few repeats, in ms per metric, and their ratio.
2. Share of a training run: PPO (``MlpPolicy``, ``make_vec_env(n_envs=16, seed=0)``,
   ``n_steps=128``, ``batch_size=512``) trained for 20,480 timesteps (10 iterations)
   with a logger that has no outputs, and with ``SB3MLflowOutput`` attached (the run's
   start and end included). Runs alternate, each on a fresh model with the same seed;
   the share is (with - without) / with on the best runs, after an untimed warm-up run.
   A few dozen milliseconds of tracking hide in the noise of training itself, so the
   time spent in tracking (creating the run, the output's ``write`` calls, the final
   flush and end) is also timed directly, as a share of its run; the verdict uses that.
   Torch runs on one thread, so other load on the machine disturbs the figures less.
"""

from __future__ import annotations

import os

os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"  # before MLflow loads

import argparse
import logging
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import mlflow
import stable_baselines3
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.logger import Logger

import ipwarmup.envs
from ipwarmup.training.run_logging import SB3MLflowOutput
from ipwarmup.training.tracking import Run, Tracker

METRICS_PER_STEP = 15  # about what SB3's PPO logs per iteration
TARGET_SHARE = 0.05


def bench_naive(tracker: Tracker, count: int, repeats: int) -> float:
    """Return the best seconds per metric of ``mlflow.log_metric``, one call per metric."""
    best = float("inf")
    for repeat in range(repeats):
        with mlflow.start_run(experiment_id=tracker.experiment_id, run_name=f"naive-{repeat}"):
            mlflow.log_metric("warmup", 0.0, step=0)  # the run's first write, untimed
            start = time.perf_counter()
            for i in range(count):
                mlflow.log_metric(f"train/m{i % METRICS_PER_STEP}", i * 0.5, step=i)
            best = min(best, (time.perf_counter() - start) / count)
    return best


def bench_batched(tracker: Tracker, count: int, repeats: int) -> float:
    """Return the best seconds per metric of ``Run.log_metrics``, final flush included."""
    best = float("inf")
    steps = -(-count // METRICS_PER_STEP)
    for repeat in range(repeats):
        with tracker.start(f"batched-{repeat}") as run:
            run.log_metrics({"warmup": 0.0}, step=0)
            run.flush()  # the run's first write, untimed
            start = time.perf_counter()
            for step in range(steps):
                run.log_metrics(
                    {f"train/m{k}": step * 0.5 + k for k in range(METRICS_PER_STEP)}, step
                )
            run.flush()
            best = min(best, (time.perf_counter() - start) / (steps * METRICS_PER_STEP))
    return best


class TimedOutput(SB3MLflowOutput):
    """``SB3MLflowOutput`` that adds the time spent in ``write`` and ``close`` to a total."""

    def __init__(self, run: Run, clock: list[float]) -> None:
        super().__init__(run)
        self.clock = clock

    def write(
        self, key_values: dict[str, Any], key_excluded: dict[str, tuple[str, ...]], step: int = 0
    ) -> None:
        """Forward to ``SB3MLflowOutput.write``, timed."""
        start = time.perf_counter()
        super().write(key_values, key_excluded, step)
        self.clock[0] += time.perf_counter() - start
        self.clock[1] += 1


def train_once(tracker: Tracker | None, timesteps: int) -> dict[str, float]:
    """Train a fresh PPO for ``timesteps``; with a tracker, log through ``SB3MLflowOutput``."""
    with warnings.catch_warnings():
        # SB3's VecEnv wrapper warns that the batch defines no render_mode; noise here.
        warnings.filterwarnings("ignore", message=".*render_mode.*", category=UserWarning)
        env = ipwarmup.envs.make_vec_env(n_envs=16, seed=0)
    model = PPO("MlpPolicy", env, n_steps=128, batch_size=512, verbose=0, seed=0, device="cpu")
    clock = [0.0, 0.0]  # seconds in the output's write calls, their number
    if tracker is None:
        model.set_logger(Logger(None, []))
        start = time.perf_counter()
        model.learn(timesteps)
        return {"seconds": time.perf_counter() - start}
    start = time.perf_counter()
    run = tracker.start("ppo")
    started = time.perf_counter()
    with run:
        model.set_logger(Logger(None, [TimedOutput(run, clock)]))
        model.learn(timesteps)
        learned = time.perf_counter()
    ended = time.perf_counter()
    return {
        "seconds": ended - start,
        "start": started - start,
        "writes": clock[0],
        "end": ended - learned,  # the final flush and set_terminated
        "tracking": started - start + clock[0] + ended - learned,
        "dumps": clock[1],
        "keys": len(tracker.get_run(run.run_id)["metrics"]),
    }


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def main(argv: list[str] | None = None) -> int:
    """Run both measurements and print them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer metrics, shorter training")
    args = parser.parse_args(argv)
    naive_count, batched_count = (50, 1000) if args.quick else (200, 5000)
    repeats, pairs = (1, 1) if args.quick else (3, 3)
    timesteps = 4096 if args.quick else 20_480
    logging.getLogger("mlflow").setLevel(logging.WARNING)  # no table-creation chatter
    torch.set_num_threads(1)  # one core, as the env benchmark: steadier under other load
    started, load = time.perf_counter(), _load()
    print("ipwarmup tracking overhead" + (" (--quick)" if args.quick else ""))
    print(
        f"python {sys.version.split()[0]}  mlflow {mlflow.__version__}  "
        f"stable-baselines3 {stable_baselines3.__version__}  torch {torch.__version__}  "
        f"torch threads {torch.get_num_threads()}  os.cpu_count() = {os.cpu_count()}"
    )
    with tempfile.TemporaryDirectory() as folder:
        made = time.perf_counter()
        tracker = Tracker(f"sqlite:///{Path(folder) / 'mlflow.db'}", "overhead")
        print(f"store: fresh SQLite file, tables created in {time.perf_counter() - made:.1f} s")

        naive = bench_naive(tracker, naive_count, repeats)
        batched = bench_batched(tracker, batched_count, repeats)
        print(f"\n1. Per-metric cost (best of {repeats})")
        print(
            f"  mlflow.log_metric, one call each ({naive_count:>5,} metrics): "
            f"{1e3 * naive:8.3f} ms/metric"
        )
        print(
            f"  Run.log_metrics, batched         ({batched_count:>5,} metrics): "
            f"{1e3 * batched:8.3f} ms/metric"
        )
        print(f"  ratio naive / batched: {naive / batched:,.0f}x")

        train_once(None, 2048)  # warm-up: torch and SB3 initialise on the first run
        timings: dict[str, list[dict[str, float]]] = {"without": [], "with": []}
        for pair in range(pairs):  # alternate which goes first, so a drift in load cancels
            for label in ("without", "with") if pair % 2 == 0 else ("with", "without"):
                timings[label].append(train_once(tracker if label == "with" else None, timesteps))
    without = min(t["seconds"] for t in timings["without"])
    with_ = min(t["seconds"] for t in timings["with"])
    share = (with_ - without) / with_
    noise = max(
        (max(t["seconds"] for t in runs) - min(t["seconds"] for t in runs))
        / min(t["seconds"] for t in runs)
        for runs in timings.values()
    )
    direct = max(t["tracking"] / t["seconds"] for t in timings["with"])
    first = timings["with"][0]
    dumps, keys = first["dumps"], first["keys"]
    iterations = timesteps // (16 * 128)
    print(
        f"\n2. Share of a PPO run: {timesteps:,} timesteps ({iterations} iterations), "
        f"{pairs} runs each way, alternating"
    )
    for label, best in (("without", without), ("with", with_)):
        each = ", ".join(f"{t['seconds']:.2f}" for t in timings[label])
        print(f"  {label + ' tracking:':<18}{best:7.2f} s   (each: {each})")
    print(f"  {dumps:.0f} SB3 dumps, {keys} metric keys, {dumps * METRICS_PER_STEP:.0f} metrics")
    print(
        f"  share (with - without) / with, best runs: {100 * share:+.2f}%; runs of one kind "
        f"differ by up to {100 * noise:.1f}%"
    )
    print("  timed directly, per tracked run (ms): run start + SB3 output writes + flush and end")
    for t in timings["with"]:
        print(
            f"    {1e3 * t['start']:6.1f} + {1e3 * t['writes']:6.1f} + {1e3 * t['end']:6.1f} "
            f"= {1e3 * t['tracking']:6.1f} ms of {t['seconds']:.2f} s "
            f"= {100 * t['tracking'] / t['seconds']:.2f}%"
        )
    per_dump = max(t["writes"] / t["dumps"] for t in timings["with"])
    print(f"  per PPO iteration (one dump, metrics buffered): {1e3 * per_dump:.3f} ms")
    naive_seconds = dumps * METRICS_PER_STEP * naive
    print(
        f"  the same metrics as one mlflow.log_metric call each: about "
        f"{1e3 * naive_seconds:.0f} ms = {100 * naive_seconds / with_:.2f}% of the best run"
    )
    verdict = "PASS" if direct < TARGET_SHARE else "MISS"
    print(
        f"\n{verdict}  tracking < {100 * TARGET_SHARE:g}% of training time: at most "
        f"{100 * direct:.2f}% timed directly (with/without difference {100 * share:+.2f}%)"
    )
    print(f"load average at start {load}, at end {_load()} (1/5/15 min)")
    print(f"total benchmark time {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
