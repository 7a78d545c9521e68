"""Paired evaluation of policies on a suite of scenarios, with bootstrap intervals.

Every policy meets the same scenarios with the same seeds: row ``i`` of every batch is
seeded ``seed + i``, and the simulator draws its randomness independently of the actions,
so two policies face the same providers, demand and incidents (paired). Policies run in
the batched simulator, all seeds of a scenario at once.

The KPIs (per episode) and their directions and formats are declared once, in
:mod:`ipwarmup.training.kpis`; the report keeps each seed's value beside the intervals, so
paired intervals can be recomputed from the JSON file.
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
from ipwarmup.envs.simulator import OUTCOME_KEYS, Simulator
from ipwarmup.errors import ConfigError
from ipwarmup.policy import Policy
from ipwarmup.training.kpis import DAILY_KEYS, EpisodeRecord, compute_kpis, kpi_table
from ipwarmup.training.stats import estimate, probability_of_improvement


@dataclass(frozen=True)
class SuiteEntry:
    """One scenario of a suite, with env overrides of its own."""

    name: str
    scenario: str  # a shipped scenario name, or a file path resolved against the suite's folder
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
    if not _is_path(text):
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
        scenario = _suite_scenario(item["scenario"], path.parent)
        if scenario is None:
            problems.append(
                f"{where}.scenario: expected a scenario file, relative to the suite's folder, "
                f"got {item['scenario']!r} (no file {path.parent.resolve() / item['scenario']})"
            )
            continue
        name = str(item.get("name", Path(scenario).stem if _is_path(scenario) else scenario))
        entries.append(SuiteEntry(name, scenario, tuple(overrides)))
    names = [e.name for e in entries]
    if len(set(names)) != len(names):
        problems.append(f"suite.scenarios: names must be unique, got {names}")
    if problems:
        raise ConfigError([f"{path}: {p}" for p in problems])
    return Suite(str(data.get("name", path.stem)), tuple(entries))


def _is_path(scenario: str) -> bool:
    """Return whether a suite's scenario is a file path rather than a shipped name."""
    return scenario.endswith((".yaml", ".yml")) or "/" in scenario


def _suite_scenario(scenario: str, folder: Path) -> str | None:
    """Resolve a suite entry's scenario: a shipped name as is, a path against ``folder``.

    A suite names its scenario files relative to itself, so it runs from any working
    directory; the path is made absolute for the same reason. Returns None for a path with
    no file there.
    """
    if not _is_path(scenario):
        return scenario
    path = (folder / Path(scenario).expanduser()).resolve()  # an absolute path stays itself
    return str(path) if path.is_file() else None


@dataclass
class Episodes:
    """One policy's episodes on one scenario: the record and its KPIs, one value per seed."""

    record: EpisodeRecord
    kpis: dict[str, np.ndarray]


def run_scenario(policy: Policy, config: EnvConfig, seeds: int, seed: int) -> Episodes:
    """Run ``policy`` for one episode on each of ``seeds`` rows seeded ``seed + i``."""
    sim = Simulator(config, seeds)
    generators = [seeding.np_random(seed + i)[0] for i in range(seeds)]
    obs = sim.reset(np.arange(seeds), generators)
    attach(policy, sim)
    steps_per_day = HOURS_PER_DAY // config.decision_interval_hours
    daily = {key: np.zeros((config.horizon_days, seeds, sim.n_providers)) for key in DAILY_KEYS}
    state = None
    episode_start = np.ones(seeds, dtype=bool)
    for step in range(config.steps_per_episode):
        actions, state = policy.predict(obs, state, episode_start)
        result = sim.step(actions)
        obs, episode_start = result.observation, np.zeros(seeds, dtype=bool)
        counts = _period_counts(sim)
        for key in DAILY_KEYS:
            daily[key][step // steps_per_day] += counts[key]
    record = EpisodeRecord(
        totals={key: value.copy() for key, value in sim.accounting.items()},
        daily=daily,
        final_reputation=sim.privileged().final_reputation(),
        horizon_days=config.horizon_days,
        provider_names=config.provider_names,
        continuation={key: value.copy() for key, value in sim.state.continuation.items()},
    )
    return Episodes(record, compute_kpis(record))


def _period_counts(sim: Simulator) -> dict[str, np.ndarray]:
    """Return the last period's per-provider counts of every ``DAILY_KEYS`` entry, (B, P)."""
    t = sim.telemetry
    return {
        "demand": t.demand,
        "sent_dedicated": t.sent_dedicated,
        "accepted_dedicated": t.accepted,
        "deferred": t.deferred,
        "rejected": t.rejected,
        "transmitted": t.transmitted,
        **{key: sim.outcome[key] for key in OUTCOME_KEYS},
    }


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
        config = build_config(scenario=entry.scenario, overrides=[*entry.overrides, *overrides])
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
    """Return the JSON report of an evaluation.

    Keys: ``suite``, ``scenarios``, ``seeds``, ``seed``, ``reference``, ``kpis`` (names in
    table order), ``higher_is_better``, ``results[policy][scenario][kpi]`` and
    ``overall[policy][kpi]`` (``{mean, ci_low, ci_high, iqm}``), ``versus[policy][kpi]``
    (the paired difference against the reference, with ``prob_improvement``) and
    ``per_seed[policy][scenario][kpi]``: the value of every episode, the one seeded
    ``seed + i`` at index ``i``, from which any paired figure can be recomputed.
    """
    rng = np.random.default_rng(bootstrap_seed)
    table = kpi_table()
    results: dict[str, Any] = {}
    overall: dict[str, Any] = {}
    versus: dict[str, Any] = {}
    per_seed: dict[str, Any] = {}
    for name in result.policies:
        scores = result.scores[name]
        results[name] = {
            e.name: {
                k.name: estimate(scores[e.name][k.name][None, :], rng).as_dict() for k in table
            }
            for e in result.suite.entries
        }
        overall[name] = {
            k.name: estimate(result.matrix(name, k.name), rng).as_dict() for k in table
        }
        versus[name] = {}
        for k in table:
            ours, theirs = result.matrix(name, k.name), result.matrix(REFERENCE, k.name)
            entry = estimate(ours - theirs, rng).as_dict()
            entry["prob_improvement"] = probability_of_improvement(ours, theirs, k.higher_is_better)
            versus[name][k.name] = entry
        per_seed[name] = {
            e.name: {k.name: [float(v) for v in scores[e.name][k.name]] for k in table}
            for e in result.suite.entries
        }
    return {
        "suite": result.suite.name,
        "scenarios": [e.name for e in result.suite.entries],
        "seeds": result.seeds,
        "seed": result.seed,
        "reference": REFERENCE,
        "kpis": [k.name for k in table],
        "higher_is_better": {k.name: k.higher_is_better for k in table},
        "results": results,
        "overall": overall,
        "versus": versus,
        "per_seed": per_seed,
    }
