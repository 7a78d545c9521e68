"""Paired evaluation of policies on a suite of scenarios, with bootstrap intervals.

Every policy meets the same scenarios with the same seeds: row ``i`` of every batch is
seeded ``seed + i``, and the simulator draws its randomness independently of the actions,
so two policies face the same providers, demand and incidents (paired). Policies run in
the batched simulator, all seeds of a scenario at once.

KPIs (per episode; the JSON report and the README use these names):

* ``inbox_share``: delivered to the inbox / demand.
* ``dedicated_share``: accepted on dedicated IPs / demand.
* ``days_to_warm``: first day (1 = the first) on which the dedicated pool accepted at
  least 95% of the day's demand at every provider; ``horizon_days + 1`` if never.
* ``deferral_rate``: 4xx deferrals / attempts on dedicated IPs (0 without attempts).
* ``lost_share``: (rejected + expired) / demand.
* ``block_events``: IP-provider blocks started.
* ``ip_days``: dedicated IPs held, summed over days (cost).
* ``final_reputation``: hidden reputation of the dedicated IPs at the end, mean over
  providers (the shared pool's when the pool is empty).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium.utils import seeding

from ipwarmup.agents.base import attach
from ipwarmup.agents.registry import REFERENCE, make_policy
from ipwarmup.config import load_yaml
from ipwarmup.envs.config import HOURS_PER_DAY, EnvConfig
from ipwarmup.envs.env import build_config
from ipwarmup.envs.simulator import Simulator
from ipwarmup.errors import ConfigError
from ipwarmup.policy import Policy
from ipwarmup.training.stats import estimate, probability_of_improvement

KPIS = (
    "inbox_share",
    "dedicated_share",
    "days_to_warm",
    "deferral_rate",
    "lost_share",
    "block_events",
    "ip_days",
    "final_reputation",
)
HIGHER_IS_BETTER = {
    "inbox_share": True,
    "dedicated_share": True,
    "days_to_warm": False,
    "deferral_rate": False,
    "lost_share": False,
    "block_events": False,
    "ip_days": False,
    "final_reputation": True,
}
WARM_SHARE = 0.95


@dataclass(frozen=True)
class SuiteEntry:
    """One scenario of a suite, with env overrides of its own."""

    name: str
    scenario: str
    overrides: tuple[str, ...] = ()


@dataclass(frozen=True)
class Suite:
    """A named list of scenarios that every policy is evaluated on."""

    name: str
    entries: tuple[SuiteEntry, ...]


def load_suite(name_or_path: str | Path) -> Suite:
    """Load a suite by shipped name (``validation``, ``test``) or YAML path."""
    from importlib import resources

    text = str(name_or_path)
    path = Path(text)
    if not (text.endswith((".yaml", ".yml")) or "/" in text):
        path = Path(str(resources.files("ipwarmup.configs"))) / "suites" / f"{text}.yaml"
        if not path.is_file():
            raise ConfigError(f"suite: unknown suite '{text}'; expected validation, test or a path")
    data = load_yaml(path)
    problems = []
    entries = []
    raw = data.get("scenarios")
    if not isinstance(raw, list) or not raw:
        problems.append(f"suite.scenarios: expected a non-empty list, got {raw!r}")
        raw = []
    for i, item in enumerate(raw):
        where = f"suite.scenarios[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("scenario"), str):
            problems.append(f"{where}: expected a mapping with a 'scenario' name, got {item!r}")
            continue
        unknown = sorted(set(item) - {"name", "scenario", "overrides"})
        if unknown:
            problems.append(f"{where}: unknown keys {unknown}; expected name, scenario, overrides")
        overrides = item.get("overrides", [])
        if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
            problems.append(f"{where}.overrides: expected a list of 'key=value' strings")
            overrides = []
        name = str(item.get("name", item["scenario"]))
        entries.append(SuiteEntry(name, item["scenario"], tuple(overrides)))
    names = [e.name for e in entries]
    if len(set(names)) != len(names):
        problems.append(f"suite.scenarios: names must be unique, got {names}")
    if problems:
        raise ConfigError([f"{path}: {p}" for p in problems])
    return Suite(str(data.get("name", path.stem)), tuple(entries))


@dataclass
class Episodes:
    """KPIs of one policy on one scenario, one value per seed, plus a seed-0 trace."""

    kpis: dict[str, np.ndarray]
    accepted_per_day: np.ndarray  # (days, P) of seed 0
    demand_per_day: np.ndarray  # (days, P) of seed 0


def run_scenario(policy: Policy, config: EnvConfig, seeds: int, seed: int) -> Episodes:
    """Run ``policy`` for one episode on each of ``seeds`` rows seeded ``seed + i``."""
    sim = Simulator(config, seeds)
    generators = [seeding.np_random(seed + i)[0] for i in range(seeds)]
    obs = sim.reset(np.arange(seeds), generators)
    attach(policy, sim)
    steps_per_day = HOURS_PER_DAY // config.decision_interval_hours
    days = config.horizon_days
    accepted = np.zeros((days, seeds, sim.n_providers))
    demand = np.zeros((days, seeds, sim.n_providers))
    state = None
    episode_start = np.ones(seeds, dtype=bool)
    for step in range(config.steps_per_episode):
        actions, state = policy.predict(obs, state, episode_start)
        result = sim.step(actions)
        obs, episode_start = result.observation, np.zeros(seeds, dtype=bool)
        accepted[step // steps_per_day] += sim.telemetry.accepted
        demand[step // steps_per_day] += sim.telemetry.demand
    acc = sim.accounting
    total = np.maximum(acc["demand"], 1.0)
    warm = ((accepted >= WARM_SHARE * demand) | (demand <= 0)).all(axis=2)  # (days, seeds)
    first_warm = np.where(warm.any(axis=0), warm.argmax(axis=0) + 1, days + 1)
    kpis = {
        "inbox_share": acc["delivered_inbox"] / total,
        "dedicated_share": acc["accepted_dedicated"] / total,
        "days_to_warm": first_warm.astype(float),
        "deferral_rate": np.divide(
            acc["deferrals"],
            acc["sent_dedicated"],
            out=np.zeros(seeds),
            where=acc["sent_dedicated"] > 0,
        ),
        "lost_share": (acc["rejected"] + acc["expired"]) / total,
        "block_events": acc["block_events"].copy(),
        "ip_days": acc["ip_days"].copy(),
        "final_reputation": sim.privileged().final_reputation(),
    }
    return Episodes(kpis, accepted[:, 0], demand[:, 0])


@dataclass
class Evaluation:
    """Everything one evaluation measured, keyed policy -> scenario -> KPI."""

    suite: Suite
    policies: list[str]
    seeds: int
    seed: int
    scores: dict[str, dict[str, dict[str, np.ndarray]]] = field(default_factory=dict)
    traces: dict[str, dict[str, Episodes]] = field(default_factory=dict)
    configs: dict[str, EnvConfig] = field(default_factory=dict)

    def matrix(self, policy: str, kpi: str) -> np.ndarray:
        """Return one KPI of one policy as (scenarios, seeds)."""
        return np.array([self.scores[policy][e.name][kpi] for e in self.suite.entries])


def evaluate(
    policies: Sequence[str],
    suite: Suite,
    *,
    seeds: int,
    seed: int = 0,
    overrides: Sequence[str] = (),
    factories: Mapping[str, Callable[[EnvConfig], Policy]] | None = None,
) -> Evaluation:
    """Run every policy on every scenario of the suite with the same seeds.

    The reference baseline (``fixed-sendgrid``) always runs, for the paired differences.

    Args:
        policies: baseline names or model paths (see ``make_policy``), or names in
            ``factories``.
        suite: the scenarios.
        seeds: seeds per scenario.
        seed: the first seed.
        overrides: env ``key=value`` overrides for every scenario.
        factories: policies built in memory (a model being trained), by name.
    """
    factories = dict(factories or {})
    if seeds < 2:
        raise ConfigError(f"--seeds: expected at least 2 seeds for intervals, got {seeds}")
    names = list(dict.fromkeys([*policies, REFERENCE]))
    result = Evaluation(suite, names, seeds, seed)
    for entry in suite.entries:
        config = build_config(None, entry.scenario, [*entry.overrides, *overrides])
        result.configs[entry.name] = config
    for name in names:
        result.scores[name] = {}
        result.traces[name] = {}
        for entry in suite.entries:
            config = result.configs[entry.name]
            policy = factories[name](config) if name in factories else make_policy(name, config)
            episodes = run_scenario(policy, config, seeds, seed)
            result.scores[name][entry.name] = episodes.kpis
            result.traces[name][entry.name] = episodes
    return result


def report(result: Evaluation, *, bootstrap_seed: int = 0) -> dict[str, Any]:
    """Return the JSON report: ``results``, ``overall``, ``versus`` and the run's facts."""
    rng = np.random.default_rng(bootstrap_seed)
    results: dict[str, Any] = {}
    overall: dict[str, Any] = {}
    versus: dict[str, Any] = {}
    for name in result.policies:
        results[name] = {
            e.name: {
                kpi: estimate(result.scores[name][e.name][kpi][None, :], rng).as_dict()
                for kpi in KPIS
            }
            for e in result.suite.entries
        }
        overall[name] = {kpi: estimate(result.matrix(name, kpi), rng).as_dict() for kpi in KPIS}
        versus[name] = {}
        for kpi in KPIS:
            ours, theirs = result.matrix(name, kpi), result.matrix(REFERENCE, kpi)
            entry = estimate(ours - theirs, rng).as_dict()
            entry["prob_improvement"] = probability_of_improvement(
                ours, theirs, HIGHER_IS_BETTER[kpi]
            )
            versus[name][kpi] = entry
    return {
        "suite": result.suite.name,
        "scenarios": [e.name for e in result.suite.entries],
        "seeds": result.seeds,
        "seed": result.seed,
        "reference": REFERENCE,
        "kpis": list(KPIS),
        "higher_is_better": HIGHER_IS_BETTER,
        "results": results,
        "overall": overall,
        "versus": versus,
    }
