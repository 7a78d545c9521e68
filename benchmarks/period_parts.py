"""CPU time of the compiled period's parts on real days of a 256-env batch (one thread).

Run ``python benchmarks/period_parts.py`` (``--commit C`` runs it again on commit ``C``
through ``benchmarks/at_commit.sh``, for a before/after in one go). It steps the batch
of ``vec_step_cpu.py`` (daily decisions, ``--actions random`` by default) through the
horizon and into the continuation, keeps a copy of every argument list that
:func:`~ipwarmup.envs.period_kernel.advance_period` got, and times, on copies of those:

* ``early``: the first 5 days (pools just opened), ``mid``: days 6-15, ``hold``: the first
  10 continuation days (caps held at what the providers accept, more IPs per row);
* per day: the whole ``advance_period``, then its parts called one by one from Python in
  its order: ``apply`` (the actions; ``hold_caps`` first in the continuation), ``hours``
  (``run_period_hours``), ``close`` (``close_arrays``), ``end_day`` and ``ramp+refresh``
  (the reward is left out: a few microseconds).

Each figure is CPU milliseconds per day, the mean over the days of the best of the
repeats; the parts add up to about the whole (each call from Python costs a few
microseconds more). It prints, it does not assert.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy loads: one core, as env_throughput.py

import argparse  # noqa: E402
import copy  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from _common import daily_batch, load  # noqa: E402  # the script's own folder

import ipwarmup.envs  # noqa: E402
from ipwarmup.envs import period_kernel as pk  # noqa: E402
from ipwarmup.envs import simulator  # noqa: E402
from ipwarmup.envs.days import end_day_arrays  # noqa: E402
from ipwarmup.envs.mta import run_period_hours  # noqa: E402
from ipwarmup.envs.outcomes import close_arrays, refresh_arrays  # noqa: E402
from ipwarmup.envs.pool import apply_actions_arrays, ramp_arrays  # noqa: E402

Arguments = dict[str, Any]
ARGUMENT_NAMES = pk._advance_period.__code__.co_varnames[: pk._advance_period.__code__.co_argcount]


def _draw(g: Arguments, name: str) -> Any:
    """Return the provider draw's field ``name`` (B, P) from ``advance_period``'s block."""
    return g["draw"][getattr(pk, "_" + name.upper())]


def _apply(g: Arguments) -> None:
    s = g["settings"]
    if g["hold"]:
        pk.hold_caps(g["n_ips"], g["caps"], g["allowance"], g["blocked"], g["throttled"],
                     _draw(g, "throttle_acceptance"), s[pk.MIN_CAP], s[pk.MAX_CAP])  # fmt: skip
    apply_actions_arrays(
        g["actions"], s[pk.LOG_STEP], s[pk.MIN_CAP], s[pk.MAX_CAP], s[pk.POOL_CHANGE_MIN_HOURS],
        int(s[pk.MAX_IPS]), s[pk.INITIAL_CAP], g["hour"], g["n_ips"], g["last_pool_change_hour"],
        g["caps"], g["allowance"], g["reputation"], g["pressure"], g["blocked"],
        g["blocked_until"], g["throttled"], g["throttled_until"], g["recent_volume"],
        g["previous_day_sent"], g["peak_history"], g["ip_age_days"], g["domain_reputation"],
        g["mix"], _draw(g, "cold_allowance"), _draw(g, "cold_reputation"),
        _draw(g, "domain_block_penalty"),
    )  # fmt: skip


def _hours(g: Arguments) -> None:
    s, period, events = g["settings"], g["period"], g["events"]
    d = [_draw(g, name) for name in (
        "pressure_decay", "escalation_threshold", "throttle_acceptance", "probation_hours",
        "throttle_hours", "block_hours", "block_penalty", "cold_allowance",
        "repeat_offence_factor", "max_repeat_factor", "domain_block_penalty",
    )]  # fmt: skip
    run_period_hours(
        int(s[pk.HOURS_PER_STEP]), g["hour_of_day"], g["ring_clock"], s[pk.QUEUE_MODE] > 0.0,
        s[pk.RETRY_INTERVAL_HOURS], g["hour"], g["n_ips"], g["demand_today"],
        g["accept_noise_today"], g["caps"], g["allowance"], g["reputation"], g["pressure"],
        g["blocked"], g["blocked_until"], g["throttled"], g["throttled_until"], g["day_peak"],
        g["day_overshoot"], g["offences"], g["domain_reputation"], g["queue_total"],
        g["queue_cohorts"], g["queue_scale"], *d, period[0], period[1], period[2], period[3],
        period[4], period[5], g["accepted_ip"], events[0], events[1],
    )  # fmt: skip


def _close(g: Arguments) -> None:
    s, period, events = g["settings"], g["period"], g["events"]
    hours = int(s[pk.HOURS_PER_STEP])
    close_arrays(
        hours, (g["hour_of_day"] + hours) % 24, g["hour"], g["n_ips"], g["reputation"],
        g["domain_reputation"], _draw(g, "base_inbox_rate"), _draw(g, "placement_sensitivity"),
        _draw(g, "ip_reputation_weight"), g["shared_reputation"], g["shared_share"],
        g["quality_today"], g["incident_until_day"], g["incident_severity"], g["bounce_rate"],
        g["complaint_rate_today"], g["complaint_noise_today"], g["complaint_lag"],
        g["complaint_feed"], g["complaint_history"], g["day_sent"], g["day_shared"],
        g["queue_total"], period[0], period[1], period[2], period[3], period[4], period[5],
        g["accepted_ip"], events[0], events[1], g["out"], g["accounting"],
    )  # fmt: skip


def _end_day(g: Arguments) -> None:
    d = [_draw(g, name) for name in (
        "cold_allowance", "full_allowance", "trust_growth", "cooling_factor",
        "peak_memory_days", "spike_tolerance", "cold_reputation", "reputation_volume",
        "memory_days",
    )]  # fmt: skip
    end_day_arrays(
        g["ring_clock"] + int(g["settings"][pk.HOURS_PER_STEP]), g["hold_utilization"],
        g["n_ips"], g["mix"], g["quality_today"], g["day_sent"], g["day_peak"],
        g["day_overshoot"], g["day_shared"], g["peak_history"], g["recent_volume"],
        g["previous_day_sent"], g["reputation"], g["allowance"], g["ip_age_days"],
        g["shared_share"], g["domain_reputation"], *d,
    )  # fmt: skip


def _ramp_refresh(g: Arguments) -> None:
    ramp_arrays(g["caps"], g["n_ips"], g["settings"][pk.WARMING_GROWTH])
    refresh_arrays(
        g["caps"], g["n_ips"], g["ip_age_days"], g["hour"], g["start_weekday"],
        g["cap_per_hour"], g["telemetry_ips"], g["mean_ip_age_days"], g["telemetry_day"],
        g["weekday"], g["telemetry_hour"],
    )  # fmt: skip


PARTS: dict[str, Callable[[Arguments], None]] = {
    "apply": _apply,
    "hours": _hours,
    "close": _close,
    "end_day": _end_day,
    "ramp+refresh": _ramp_refresh,
}


def _captured_days(argv: list[str]) -> tuple[Any, list[Arguments]]:
    """Step the batch through the horizon and 10 continuation days; return its arguments."""
    batch = daily_batch(__doc__.splitlines()[0], ["--threads", "1", *argv])
    captured: list[Arguments] = []
    advance_period = simulator.advance_period

    def spy(*arguments: Any) -> int:
        day = dict(zip(ARGUMENT_NAMES, copy.deepcopy(arguments), strict=True))
        # The step reuses its accumulators and the kernel zeroes them at each period; the
        # parts timed on their own (run_period_hours, close_arrays) add to them, so they
        # start from zeros as the kernel's do.
        for name in ("period", "accepted_ip", "events"):
            day[name][...] = 0.0
        captured.append(day)
        return int(advance_period(*arguments))

    simulator.advance_period = spy  # the simulator calls the module's name at each step
    try:
        batch.env.reset()
        for action in batch.actions[: batch.env.config.horizon_days + 11]:
            batch.env.step(action)
    finally:
        simulator.advance_period = advance_period
    return batch, captured


def _time(days: list[Arguments], run: Callable[[Arguments], Any], repeats: int) -> float:
    """Return CPU ms per day: each day's best over ``repeats`` fresh copies, averaged."""
    total = 0.0
    for day in days:
        best = float("inf")
        for _ in range(repeats):
            arguments = copy.deepcopy(day)
            start = time.process_time()
            run(arguments)
            best = min(best, time.process_time() - start)
        total += best
    return 1e3 * total / len(days)


def main(argv: list[str] | None = None) -> int:
    """Print the parts' CPU time per early, mid and continuation day."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actions", choices=("zeros", "random"), default="random")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--commit", help="run it again on this commit (benchmarks/at_commit.sh)")
    args = parser.parse_args(argv)
    started_load = load()
    batch, captured = _captured_days(["--actions", args.actions])
    continuation = [day for day in captured if day["hold"]]
    groups = {"early": captured[:5], "mid": captured[5:15], "hold": continuation[:10]}
    print(f"{ipwarmup.envs.__file__}  n_envs {batch.args.n_envs}  actions {args.actions}  "
          f"threads 1, CPU ms per day (best of {args.repeats})")  # fmt: skip
    print(f"{'day':6} {'ips/row':>7} {'advance_period':>14} " + " ".join(f"{p:>12}" for p in PARTS))
    whole = lambda g: simulator.advance_period(*g.values())  # noqa: E731
    for name, days in groups.items():
        for day in days:  # warm-up: kernels loaded, caches filled
            whole(copy.deepcopy(day))
            for part in PARTS.values():
                part(copy.deepcopy(day))
        ips = sum(float(day["n_ips"].mean()) for day in days) / len(days)
        parts = [_time(days, part, args.repeats) for part in PARTS.values()]
        print(f"{name:6} {ips:7.2f} {_time(days, whole, args.repeats):14.3f} "
              + " ".join(f"{value:12.3f}" for value in parts))  # fmt: skip
    print(f"load {started_load} -> {load()}")
    if args.commit:
        sys.stdout.flush()
        script = Path(__file__).resolve()
        rest = ["--actions", args.actions, "--repeats", str(args.repeats)]
        at_commit = script.parent / "at_commit.sh"
        return subprocess.run([str(at_commit), args.commit, str(script), *rest]).returncode
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
