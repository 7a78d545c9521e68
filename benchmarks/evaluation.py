"""Paired evaluation harness timing: every baseline on the validation suite, batched vs one by one.

Run ``python benchmarks/evaluation.py`` (``--seeds N`` for the seeds per scenario, default
32; ``--quick`` for a smoke run at 8 seeds with fewer repeats; ``--json PATH`` to also
write every figure as JSON). It prints, it does not assert: the target at the end is
informational and the exit code is 0 whether it passes or misses.

What is measured, all in this one process so the ratios compare like with like:

1. ``evaluate(all baselines, load_suite("validation"), seeds=N, seed=0)``: wall time of
   the whole harness (config building, policy construction and every batched episode),
   and apart from it the time of ``report(...)``, the bootstrap intervals. The issue's
   claim: "the validation suite for all baselines at 32 seeds takes seconds, not
   minutes" (target here: under 60 s).
2. Per policy, its part of the harness: ``run_scenario(make_policy(name, config), config,
   N, 0)`` over the suite's entries, with the configs built beforehand. (Timing
   ``evaluate([name], ...)`` alone would also run the reference ``fixed-sendgrid``.) The
   sum of the parts next to the whole shows what the harness adds around them.
3. Simulated env-hours per second: policies x scenarios x seeds x horizon_days x 24 over
   the wall time, for the whole harness and per policy.
4. The peer, the same work the slow way: a Python loop of single ``IPWarmupEnv``
   episodes (``reset(seed=s)``, then ``policy.predict`` one observation at a time; the
   oracle is bound to ``env.simulator.privileged()`` after each reset) for every policy
   and scenario at a few seeds (4; 2 with ``--quick``). Env and policy construction are
   timed apart from the episodes; the full grid is extrapolated as construction plus
   episodes x (N / subset seeds) per (policy, scenario), and set against the batched
   time as a speedup. The loop also checks that it reproduces the harness: the KPIs that
   the single env's accounting gives must equal the batched ones for the same seeds.

Method: ``time.perf_counter`` around each call, after an untimed warm-up run of the
harness (its time is shown as the first call) and of the single-env loop. The batched
figures are repeated; the table shows the best repeat and the median. The single-env
loop runs once (it is the slow side; its per-episode spread is shown), and the
speedup uses the batched median, which does not favour the batched side. Numpy's
thread pools are limited to one thread before numpy is imported, so the figures are for
one core.
"""

from __future__ import annotations

import os

# Before numpy (and anything importing it) loads: one BLAS/OpenMP thread, no telemetry.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import argparse  # noqa: E402
import gc  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, TypeVar  # noqa: E402

import numpy as np  # noqa: E402
from _common import load, rate, rule, write_json  # noqa: E402  # the script's own folder

from ipwarmup.agents.base import attach  # noqa: E402
from ipwarmup.agents.registry import BASELINES, make_policy  # noqa: E402
from ipwarmup.envs import EnvConfig, IPWarmupEnv, build_config  # noqa: E402
from ipwarmup.policy import Policy  # noqa: E402
from ipwarmup.training.evaluate import (  # noqa: E402
    Evaluation,
    Suite,
    evaluate,
    load_suite,
    report,
    run_scenario,
)

SUITE = "validation"
SEED = 0
TARGET_SECONDS = 60.0  # "seconds, not minutes"
HOURS_PER_DAY = 24
# KPIs the single env's accounting gives directly (days_to_warm needs the daily trace).
CHECKED_KPIS = (
    "inbox_share",
    "dedicated_share",
    "deferral_rate",
    "lost_share",
    "block_events",
    "ip_days",
    "final_reputation",
)

T = TypeVar("T")


@dataclass
class Settings:
    """How much work each measurement does.

    Attributes:
        seeds: seeds per scenario in the batched harness (the full grid).
        repeats: timed repeats of each batched measurement (best and median reported).
        single_seeds: seeds per (policy, scenario) the single-env loop actually runs.
    """

    seeds: int
    repeats: int
    single_seeds: int


@dataclass
class Timing:
    """Wall times of repeated runs of one piece of work.

    Attributes:
        name: short label for the table.
        env_hours: simulated env-hours one run covers (0 when it simulates nothing).
        seconds: wall time of each timed repeat.
    """

    name: str
    env_hours: float
    seconds: list[float] = field(default_factory=list)

    def time(self, stat: str = "best") -> float:
        """Return the best (minimum) or the median repeat, in seconds."""
        return min(self.seconds) if stat == "best" else statistics.median(self.seconds)

    def env_hours_per_s(self, stat: str = "best") -> float:
        """Return simulated env-hours per second of the best or the median repeat."""
        return self.env_hours / self.time(stat)

    def to_json(self) -> dict[str, Any]:
        """Return the raw timings and the derived figures as plain data."""
        data: dict[str, Any] = {
            "name": self.name,
            "env_hours": self.env_hours,
            "seconds": self.seconds,
        }
        for stat in ("best", "median"):
            data[f"seconds_{stat}"] = self.time(stat)
            if self.env_hours:
                data[f"env_hours_per_s_{stat}"] = self.env_hours_per_s(stat)
        return data


@dataclass
class SingleLoop:
    """The single-env loop of one policy over every scenario of the suite.

    Attributes:
        policy: the baseline's name.
        setup_seconds: env and policy construction, summed over scenarios.
        episode_seconds: wall time of each episode (``reset`` to truncation).
        episode_hours: simulated env-hours of each episode, in the same order.
        max_kpi_diff: largest absolute difference from the batched KPIs, per KPI.
    """

    policy: str
    setup_seconds: float = 0.0
    episode_seconds: list[float] = field(default_factory=list)
    episode_hours: list[float] = field(default_factory=list)
    max_kpi_diff: dict[str, float] = field(default_factory=dict)

    def extrapolated(self, measured_seeds: int, seeds: int) -> float:
        """Return the estimated seconds of the full grid: setup + episodes scaled to seeds."""
        return self.setup_seconds + sum(self.episode_seconds) * seeds / measured_seeds

    def env_hours_per_s(self) -> float:
        """Return simulated env-hours per second of the episodes actually run."""
        return sum(self.episode_hours) / sum(self.episode_seconds)


def _timed(run: Callable[[], T]) -> tuple[float, T]:
    gc.collect()
    start = time.perf_counter()
    value = run()
    return time.perf_counter() - start, value


def _repeat(timing: Timing, run: Callable[[], T], repeats: int) -> T:
    """Time ``run()`` ``repeats`` times into ``timing``; return the last run's value."""
    elapsed, value = _timed(run)
    timing.seconds.append(elapsed)
    for _ in range(repeats - 1):
        elapsed, value = _timed(run)
        timing.seconds.append(elapsed)
    return value


def _suite_hours(configs: dict[str, EnvConfig], seeds: int) -> float:
    """Return the simulated env-hours of one policy over the suite at ``seeds`` seeds."""
    return float(sum(c.horizon_days * HOURS_PER_DAY for c in configs.values()) * seeds)


# ----------------------------------------------------------------------------- batched
def bench_harness(suite: Suite, settings: Settings) -> tuple[Timing, Timing, Timing, Evaluation]:
    """Time the first call, the repeated calls of ``evaluate`` and those of ``report``.

    Args:
        suite: the scenarios every baseline runs on.
        settings: seeds and repeats.

    Returns:
        The first (warm-up) call, the timed ``evaluate`` repeats, the timed ``report``
        repeats, and the last evaluation (for the grid's size and the KPI check).
    """
    policies = list(BASELINES)

    def run() -> Evaluation:
        return evaluate(policies, suite, seeds=settings.seeds, seed=SEED)

    first_seconds, result = _timed(run)
    hours = len(result.policies) * _suite_hours(result.configs, settings.seeds)
    first = Timing("evaluate, first call", hours, [first_seconds])
    whole = Timing("evaluate", hours)
    result = _repeat(whole, run, settings.repeats)
    boot = Timing("report (bootstrap)", 0.0)
    _repeat(boot, lambda: report(result), settings.repeats)
    return first, whole, boot, result


def bench_policies(suite: Suite, settings: Settings) -> list[Timing]:
    """Time each baseline's part: ``run_scenario`` over the suite, configs built beforehand."""
    configs = {
        e.name: build_config(scenario=e.scenario, overrides=e.overrides) for e in suite.entries
    }
    hours = _suite_hours(configs, settings.seeds)
    timings = []
    for name in BASELINES:

        def run(name: str = name) -> None:
            for config in configs.values():
                run_scenario(make_policy(name, config), config, settings.seeds, SEED)

        timing = Timing(name, hours)
        _repeat(timing, run, settings.repeats)
        timings.append(timing)
    return timings


# ----------------------------------------------------------------------------- single env
def _episode(env: IPWarmupEnv, policy: Policy, seed: int) -> dict[str, float]:
    """Play one episode the slow way; return the KPIs its accounting gives."""
    obs, _ = env.reset(seed=seed)
    attach(policy, env.simulator)
    state = None
    episode_start = np.ones(1, dtype=bool)
    not_start = np.zeros(1, dtype=bool)
    truncated = terminated = False
    info: dict[str, Any] = {}
    while not (truncated or terminated):
        action, state = policy.predict(obs, state, episode_start)
        episode_start = not_start
        obs, _, terminated, truncated, info = env.step(action)
    acc = info["accounting"]
    total = max(acc["demand"], 1.0)
    sent = acc["sent_dedicated"]
    return {
        "inbox_share": acc["delivered_inbox"] / total,
        "dedicated_share": acc["accepted_dedicated"] / total,
        "deferral_rate": acc["deferrals"] / sent if sent > 0 else 0.0,
        "lost_share": (acc["rejected"] + acc["expired"]) / total,
        "block_events": acc["block_events"],
        "ip_days": acc["ip_days"],
        "final_reputation": float(env.simulator.privileged().final_reputation()[0]),
    }


def bench_single(
    suite: Suite, settings: Settings, batched: Evaluation | None, policies: list[str]
) -> list[SingleLoop]:
    """Run every policy on every scenario at ``single_seeds`` seeds, one env episode at a time.

    Args:
        suite: the scenarios.
        settings: how many seeds to actually run.
        batched: the harness's result at the same seed, to check the KPIs against (None
            for the warm-up run).
        policies: the baselines to run.
    """
    loops = []
    for name in policies:
        loop = SingleLoop(name)
        for entry in suite.entries:
            gc.collect()
            start = time.perf_counter()
            env = IPWarmupEnv(scenario=entry.scenario, overrides=entry.overrides)
            policy = make_policy(name, env.config)
            loop.setup_seconds += time.perf_counter() - start
            hours = float(env.config.horizon_days * HOURS_PER_DAY)
            for i in range(settings.single_seeds):
                start = time.perf_counter()
                kpis = _episode(env, policy, SEED + i)
                loop.episode_seconds.append(time.perf_counter() - start)
                loop.episode_hours.append(hours)
                if batched is None:
                    continue
                for kpi in CHECKED_KPIS:
                    diff = abs(kpis[kpi] - float(batched.scores[name][entry.name][kpi][i]))
                    loop.max_kpi_diff[kpi] = max(loop.max_kpi_diff.get(kpi, 0.0), diff)
        loops.append(loop)
    return loops


# ----------------------------------------------------------------------------- output


def environment_info(quick: bool, settings: Settings, suite: Suite) -> dict[str, Any]:
    """Describe the machine, library versions and the grid the figures come from."""
    import gymnasium

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
        "gymnasium": gymnasium.__version__,
        "threads": {v: os.environ[v] for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")},
        "suite": suite.name,
        "scenarios": [e.name for e in suite.entries],
        "policies": list(BASELINES),
        "seeds": settings.seeds,
        "seed": SEED,
        "single_seeds": settings.single_seeds,
        "repeats": settings.repeats,
        "quick": quick,
        "load": load(),
    }


def main(argv: list[str] | None = None) -> int:
    """Run every measurement, print the tables and the target, optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seeds", type=int, metavar="N", help="seeds per scenario (default 32; 8 with --quick)"
    )
    parser.add_argument("--quick", action="store_true", help="8 seeds, fewer repeats (smoke)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write figures as JSON")
    args = parser.parse_args(argv)
    seeds = args.seeds if args.seeds is not None else (8 if args.quick else 32)
    if seeds < 2:
        parser.error(f"--seeds: expected at least 2 (evaluate needs them), got {seeds}")
    settings = (
        Settings(seeds=seeds, repeats=2, single_seeds=min(2, seeds))
        if args.quick
        else Settings(seeds=seeds, repeats=3, single_seeds=min(4, seeds))
    )
    started = time.perf_counter()
    suite = load_suite(SUITE)
    info = environment_info(args.quick, settings, suite)
    n_policies, n_scenarios = len(BASELINES), len(suite.entries)
    print("ipwarmup paired evaluation harness" + (" (--quick)" if args.quick else ""))
    print(f"python {info['python']}  numpy {info['numpy']}  gymnasium {info['gymnasium']}")
    print(f"platform {info['platform']}  os.cpu_count() = {info['cpu_count']}")
    print(
        "one core: OMP_NUM_THREADS=OPENBLAS_NUM_THREADS=1 set before importing numpy; "
        "all in one process"
    )
    print(
        f"grid: {n_policies} baselines x {n_scenarios} scenarios ('{suite.name}' suite) x "
        f"{seeds} seeds = {n_policies * n_scenarios * seeds} episodes; seed {SEED}"
    )
    print(
        f"{settings.repeats} timed repeats per batched figure after a warm-up call; "
        f"best (median beside); load average at start: {info['load']} (1/5/15 min)"
    )

    # 1 + 3. the whole harness, and the bootstrap apart
    first, whole, boot, result = bench_harness(suite, settings)
    days = sorted({c.horizon_days for c in result.configs.values()})
    intervals = sorted({c.decision_interval_hours for c in result.configs.values()})
    print(rule("1. Whole harness: evaluate(all baselines) and report(...)"))
    header = f"{'call':<22} {'best s':>8} {'median s':>9} {'env-hours/s':>13} {'(median)':>13}"
    print(header + "  repeats")
    for t in (first, whole):
        print(
            f"{t.name:<22} {t.time():>8.2f} {t.time('median'):>9.2f} "
            f"{rate(t.env_hours_per_s()):>13} {rate(t.env_hours_per_s('median')):>13}"
            f"  {len(t.seconds)}"
        )
    print(
        f"{boot.name:<22} {boot.time():>8.2f} {boot.time('median'):>9.2f} "
        f"{'':>13} {'':>13}  {len(boot.seconds)}"
    )
    total_best = whole.time() + boot.time()
    print(f"{'evaluate + report':<22} {total_best:>8.2f}   (sum of the best repeats)")
    print(
        f"env-hours = {len(result.policies)} policies x {n_scenarios} scenarios x {seeds} "
        f"seeds x horizon {'/'.join(map(str, days))} days x 24 = {rate(whole.env_hours)}; "
        f"decisions every {'/'.join(map(str, intervals))} h"
    )

    # 2. per policy
    parts = bench_policies(suite, settings)
    parts_best = sum(t.time() for t in parts)
    print(rule("2. Per policy: run_scenario over the suite (configs built beforehand)"))
    print(
        f"{'policy':<16} {'best s':>8} {'median s':>9} {'share':>6} {'env-hours/s':>13} "
        f"{'ms/scenario':>12}"
    )
    for t in parts:
        print(
            f"{t.name:<16} {t.time():>8.3f} {t.time('median'):>9.3f} "
            f"{t.time() / parts_best:>6.1%} {rate(t.env_hours_per_s()):>13} "
            f"{1e3 * t.time() / n_scenarios:>12.1f}"
        )
    print(
        f"{'sum of parts':<16} {parts_best:>8.3f}   evaluate best {whole.time():.3f} s: "
        f"the harness adds {whole.time() - parts_best:+.3f} s (configs, bookkeeping, noise)"
    )

    # 4. the single-env loop (run before printing 3, which quotes its rate)
    names = list(BASELINES)
    bench_single(suite, Settings(settings.seeds, 1, 1), None, names[:1])  # warm-up
    loops = bench_single(suite, settings, result, names)
    sub = settings.single_seeds
    single_rate = sum(sum(lp.episode_hours) for lp in loops) / sum(
        sum(lp.episode_seconds) for lp in loops
    )

    # 3. simulated env-hours per second
    rates = sorted((t.env_hours_per_s(), t.name) for t in parts)
    print(rule("3. Simulated env-hours/s (best repeats)"))
    print(
        f"whole harness, evaluate only:    {rate(whole.env_hours_per_s()):>11}  "
        f"(median {rate(whole.env_hours_per_s('median'))})"
    )
    print(f"whole harness, evaluate + report: {rate(whole.env_hours / total_best):>10}")
    print(
        f"per policy, batched:             {rate(rates[0][0]):>11} ({rates[0][1]}) to "
        f"{rate(rates[-1][0])} ({rates[-1][1]})"
    )
    print(f"single-env loop, all policies:   {rate(single_rate):>11}")
    print(
        rule(
            f"4. Peer: single IPWarmupEnv episodes in a Python loop "
            f"({n_policies} x {n_scenarios} x {sub} seeds run, extrapolated to {seeds})"
        )
    )
    print(
        f"{'policy':<16} {'ms/episode':>10} {'(max)':>7} {'setup s':>8} {'run s':>7} "
        f"{'est. full s':>11} {'batched s':>9} {'speedup':>8}"
    )
    single_rows: list[dict[str, Any]] = []
    for loop, part in zip(loops, parts, strict=True):
        ep = loop.episode_seconds
        est = loop.extrapolated(sub, seeds)
        speedup = est / part.time("median")
        single_rows.append(
            {
                "policy": loop.policy,
                "setup_seconds": loop.setup_seconds,
                "episode_seconds": ep,
                "measured_seconds": loop.setup_seconds + sum(ep),
                "env_hours_per_s": loop.env_hours_per_s(),
                "extrapolated_seconds": est,
                "batched_median_seconds": part.time("median"),
                "speedup": speedup,
                "max_kpi_diff": loop.max_kpi_diff,
            }
        )
        print(
            f"{loop.policy:<16} {1e3 * statistics.fmean(ep):>10.1f} {1e3 * max(ep):>7.1f} "
            f"{loop.setup_seconds:>8.3f} {sum(ep):>7.2f} {est:>11.2f} "
            f"{part.time('median'):>9.3f} {speedup:>7.1f}x"
        )
    measured = sum(r["measured_seconds"] for r in single_rows)
    single_est = sum(r["extrapolated_seconds"] for r in single_rows)
    ratio = single_est / whole.time("median")
    ratio_best = single_est / whole.time()
    worst = {
        kpi: max(lp.max_kpi_diff[kpi] for lp in loops) for kpi in CHECKED_KPIS
    }  # over every policy, scenario and seed run
    print(
        f"single-env loop: {n_policies * n_scenarios * sub} episodes run in {measured:.2f} s, "
        f"{rate(single_rate)} env-hours/s"
    )
    print(
        f"full grid the slow way (est.): {single_est:.1f} s   batched evaluate: "
        f"{whole.time('median'):.2f} s median ({whole.time():.2f} s best)"
    )
    print(
        f"ratio batched/single-loop, in env-hours/s: {ratio:.1f}x on the median "
        f"({ratio_best:.1f}x on the best); the batched harness takes "
        f"{1 / ratio:.1%} of the single-loop time"
    )
    agree = all(v == 0.0 for v in worst.values())
    print(
        "same work: single-env KPIs vs the batched harness, max |diff| over "
        f"{n_policies * n_scenarios * sub} episodes: "
        + ("all 0 (identical)" if agree else ", ".join(f"{k} {v:.3g}" for k, v in worst.items()))
    )

    # Target: the verdict is on the best repeat (other load only ever slows a run); the
    # median gets its own verdict in brackets.
    def verdict(ok: bool) -> str:
        return "PASS" if ok else "MISS"

    target = {
        "claim": "the validation suite for all baselines at 32 seeds takes seconds, not minutes",
        "target_seconds": f"< {TARGET_SECONDS:g}",
        "seeds": seeds,
        "best": whole.time(),
        "median": whole.time("median"),
        "with_report_best": total_best,
        "pass": whole.time() < TARGET_SECONDS,
        "typical_pass": whole.time("median") < TARGET_SECONDS,
    }
    print(rule("Target (informational; exit code 0 either way)"))
    print(
        f"{verdict(target['pass'])}  evaluate(all baselines, {suite.name}, seeds={seeds}) "
        f"< {TARGET_SECONDS:g} s: best {whole.time():.2f} s (+ report {boot.time():.2f} s)  "
        f"[median {whole.time('median'):.2f} s: {verdict(target['typical_pass'])}]"
    )
    if seeds != 32:
        print("  (the claim is for 32 seeds; this run used a different count)")
    print(
        f"      the single-env loop would take ~{single_est:.0f} s for the same grid "
        f"({verdict(single_est < TARGET_SECONDS)} by the same bar)"
    )
    print(f"load average at end: {load()} (1/5/15 min)")
    total = time.perf_counter() - started
    print(f"\ntotal benchmark time {total:.1f} s")

    if args.json is not None:
        data = {
            "environment": info,
            "evaluate_first_call": first.to_json(),
            "evaluate": whole.to_json(),
            "report": boot.to_json(),
            "per_policy": [t.to_json() for t in parts],
            "per_policy_sum_best_seconds": parts_best,
            "single_loop": {
                "seeds_run": sub,
                "per_policy": single_rows,
                "measured_seconds": measured,
                "env_hours_per_s": single_rate,
                "extrapolated_seconds": single_est,
                "ratio_batched_over_single_median": ratio,
                "ratio_batched_over_single_best": ratio_best,
                "max_kpi_diff": worst,
                "kpis_identical": agree,
            },
            "target": target,
            "total_seconds": total,
        }
        write_json(args.json, data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
