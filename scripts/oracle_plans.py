"""Which plans would raise the oracle's ceiling: score plan families against its own set.

Usage: ``python scripts/oracle_plans.py --suite test --scenario early_spike_queue_mta
--seeds 32``.

The oracle (``agents/oracle.py``) picks, per episode, the best of a fixed set of plans with
perfect foresight, so a plan raises its ceiling only on the episodes where it beats every
plan of the set. This script replays the scenario under each candidate plan (the oracle's
allowance tracking, :func:`~ipwarmup.agents.oracle.track_allowance`) on the same seeds and
prints, per plan, its ``total_inbox_share`` lead over staying shared alone, the lead of the
oracle's set with the plan added, and on how many seeds the argmax would take it.

Candidates beyond the oracle's set (issue 8's queueing-MTA miss): staying shared until a
day and only then starting the pool, growing the pool mid-episode, and other headrooms,
above the allowance too (deferred mail is retried in queue mode, at the cost of pressure
and quality).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

import numpy as np
from gymnasium.utils import seeding

from ipwarmup.agents.oracle import OraclePolicy, plan_table, track_allowance
from ipwarmup.envs import build_config
from ipwarmup.envs.config import EnvConfig
from ipwarmup.envs.simulator import Simulator
from ipwarmup.training.evaluate import load_suite

Plan = Callable[[int], tuple[float, float, bool]]
"""Day -> pool size to move toward, headroom, whether to stay within spike tolerance."""


def constant(pool: float, headroom: float, within: bool) -> Plan:
    """Return a plan fixed from the first decision, as the oracle's are."""
    return lambda day: (pool, headroom, within)


def switch(before: float, after: float, day: int, headroom: float = 0.99) -> Plan:
    """Return a plan that moves toward ``before`` IPs, and toward ``after`` from ``day``."""
    return lambda today: (before if today < day else after, headroom, False)


def score(config: EnvConfig, plan: Plan, *, seeds: int, seed: int) -> np.ndarray:
    """Return each seed's ``total_inbox_share`` under ``plan``, (seeds,)."""
    sim = Simulator(config, seeds)
    sim.reset(np.arange(seeds), [seeding.np_random(seed + i)[0] for i in range(seeds)])
    policy, view = OraclePolicy(config), sim.privileged()
    steps_per_day = config.steps_per_episode // config.horizon_days
    for step in range(config.steps_per_episode):
        pool, headroom, within = plan(step // steps_per_day)
        sim.step(
            track_allowance(
                policy, view, np.full(seeds, pool), np.full(seeds, headroom),
                within_tolerance=np.full(seeds, within),
            )
        )  # fmt: skip
    totals, after = sim.state.accounting, sim.state.continuation
    inbox = totals["delivered_inbox"] + after["delivered_inbox"]
    share: np.ndarray = inbox / np.maximum(totals["demand"] + after["demand"], 1.0)
    return share


def candidates(max_ips: int) -> dict[str, Plan]:
    """Return the plans tried beyond the oracle's set, by name."""
    plans: dict[str, Plan] = {}
    for day in (7, 14, 21):
        plans[f"shared until day {day}, then 2 IPs"] = switch(0.0, 2.0, day)
    for start in (1, 2, 3):
        for day in (5, 9, 19):
            if start + 1 <= max_ips:
                plans[f"{start} IPs, {start + 1} from day {day}"] = switch(start, start + 1, day)
    for pool in (n for n in (2, 4) if n <= max_ips):
        for headroom in (0.8, 0.95, 1.0, 1.1, 1.2):
            plans[f"{pool} IPs at {headroom:g} of the allowance"] = constant(pool, headroom, False)
    return plans


def oracle_set(max_ips: int) -> dict[str, Plan]:
    """Return the oracle's own plans (``agents/oracle.py: plan_table``), by name."""
    out: dict[str, Plan] = {}
    for pool, headroom, within in plan_table(max_ips).tolist():
        name = f"{int(pool)} IPs at {headroom:g}" + (", within tolerance" if within else "")
        out[name] = constant(pool, headroom, bool(within))
    return out


def compare(
    own: dict[str, np.ndarray], tried: dict[str, np.ndarray], shared: np.ndarray
) -> list[tuple[str, float, float, int]]:
    """Return per plan: its lead alone, the oracle's lead with it, and on how many seeds.

    ``own`` holds the oracle's plans' per-seed scores in its order (the shared plan among
    them), ``tried`` the candidates'; a lead is a mean over seeds of a score less
    ``shared``'s. For the oracle's own plans the count is the seeds its argmax takes each
    on (ties to the earlier plan, as in the oracle) and the middle figure is NaN; for a
    candidate it is the seeds where it beats every plan of the set, which is where the set
    with it leads by more.
    """
    table = np.stack(list(own.values()))
    best_own = table.max(axis=0)
    picks = np.bincount(table.argmax(axis=0), minlength=len(own))
    rows = [("the oracle's set", float((best_own - shared).mean()), np.nan, len(shared))]
    for (name, scores), count in zip(own.items(), picks, strict=True):
        rows.append((name, float((scores - shared).mean()), np.nan, int(count)))
    for name, scores in tried.items():
        with_it = float((np.maximum(best_own, scores) - shared).mean())
        rows.append(
            (name, float((scores - shared).mean()), with_it, int((scores > best_own).sum()))
        )
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    """Print the plan comparison of one suite scenario."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="test", help="suite name or YAML path")
    parser.add_argument("--scenario", default="early_spike_queue_mta", help="suite entry name")
    parser.add_argument("--seeds", type=int, default=32, help="seeds")
    parser.add_argument("--seed", type=int, default=0, help="first seed")
    args = parser.parse_args(argv)
    entries = {e.name: e for e in load_suite(args.suite).entries}
    if args.scenario not in entries:
        raise SystemExit(f"--scenario: expected one of {sorted(entries)}, got {args.scenario!r}")
    entry = entries[args.scenario]
    config = build_config(scenario=entry.scenario, overrides=list(entry.overrides))
    run = {"seeds": args.seeds, "seed": args.seed}
    own = {
        name: score(config, plan, **run) for name, plan in oracle_set(config.pool.max_ips).items()
    }
    tried = {name: score(config, p, **run) for name, p in candidates(config.pool.max_ips).items()}
    shared = own["0 IPs at 0.99"]
    print(
        f"{args.scenario}, {args.seeds} seeds from {args.seed}: total_inbox_share lead over shared"
    )
    print("| plan | alone | the oracle's set with it | seeds taken |")
    print("|---|---|---|---|")
    for name, alone, with_it, taken in compare(own, tried, shared):
        middle = "-" if np.isnan(with_it) else f"{with_it:+.4f}"
        print(f"| {name} | {alone:+.4f} | {middle} | {taken} |")


if __name__ == "__main__":
    main()
