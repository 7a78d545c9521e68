"""Draw senders from a world: one concrete env config per env and episode (issue 10).

A world (:class:`~ipwarmup.envs.world_config.WorldConfig`, shipped as YAML in
``configs/worlds/``) is a distribution over senders, MTAs and provider tolerances.
:class:`WorldSampler` turns a fixed number of uniforms into one
:class:`~ipwarmup.envs.config.EnvConfig`: the sender's numbers are points (its episode is
that sender), the providers' tolerances stay ranges, scaled per provider, from which the
simulator draws as for any config. :meth:`WorldSampler.from_uniforms` is a pure function of
the uniforms, so each transform can be checked by hand.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ipwarmup.config import load, load_yaml
from ipwarmup.envs.config import EnvConfig, ProviderConfig, ScenarioConfig
from ipwarmup.envs.provider_config import MAX_OVERSHOOT_PER_HOUR, REACHABLE_SHARE_OF_CEILING
from ipwarmup.envs.scenario_config import WEEKDAY_NAMES
from ipwarmup.envs.scenarios import shipped_names, shipped_path
from ipwarmup.envs.world_config import GROWTH_KINDS, WorldConfig
from ipwarmup.errors import ConfigError

__all__ = [
    "N_PROVIDER_SCALES",
    "N_WORLD_UNIFORMS",
    "WORLD_STREAM",
    "WorldSampler",
    "load_world",
    "log_uniform",
    "pick",
    "world_names",
    "world_path",
]

# The uniforms of one draw, in this order (then 7 that order the weekdays of campaigns).
U_NAMES = (
    "volume", "growth_kind", "growth", "mix", "concentration", "quality", "pattern",
    "noise", "campaigns", "campaign_probability", "campaign_days", "multiplier_a",
    "multiplier_b", "campaign_hour", "campaign_duration", "spike", "spike_start",
    "spike_duration", "spike_multiplier", "overflow",
)  # fmt: skip
U = {name: i for i, name in enumerate(U_NAMES)}
N_WORLD_UNIFORMS = len(U_NAMES) + 7
# Per provider: allowance, trust growth and escalation scales.
N_PROVIDER_SCALES = 3
# A world's draws come from their own stream of each env's seed, apart from the episode's.
WORLD_STREAM = 0x574F524C


def uniform(bounds: tuple[float, float], u: float) -> float:
    """Return the point a share ``u`` of the way from ``bounds[0]`` to ``bounds[1]``."""
    return bounds[0] + (bounds[1] - bounds[0]) * u


def log_uniform(bounds: tuple[float, float], u: float) -> float:
    """Return ``low * (high / low) ** u``: a log-uniform draw when ``u`` is uniform."""
    low, high = bounds
    return float(low * (high / low) ** u)


def pick(weights: Sequence[float], u: float) -> int:
    """Return the index whose share of the cumulative ``weights`` holds ``u`` (in [0, 1))."""
    total = float(sum(weights))
    edge = 0.0
    for index, weight in enumerate(weights):
        edge += weight / total
        if u < edge:  # never at a zero weight: its edge is the last one's, already passed
            return index
    return max(i for i, w in enumerate(weights) if w > 0)  # u within rounding of 1


def floored(bounds: tuple[float, float], u: float) -> int:
    """Return the whole part of the uniform point ``u`` (in [0, 1)) of ``bounds``."""
    return int(np.floor(uniform(bounds, u)))


def world_names() -> list[str]:
    """Return the names of the shipped worlds (``configs/worlds/``), sorted."""
    return shipped_names("world")


def world_path(name_or_path: str | Path) -> Path:
    """Resolve a world name (``default``) or a YAML path to a file path.

    Raises:
        ConfigError: an unknown name (the closest shipped one is suggested).
    """
    return shipped_path("world", name_or_path)


def load_world(name_or_path: str | Path) -> WorldConfig:
    """Load a world by shipped name or YAML path (named after the file's stem by default).

    Raises:
        ConfigError: listing every bad field at once, each with its path.
    """
    path = world_path(name_or_path)
    data = load_yaml(path)
    data.setdefault("name", path.stem)
    return load(WorldConfig, data, path=f"world ({path.name})")


class WorldSampler:
    """Draw env configs from a world over a base env config.

    Args:
        world: the distribution.
        config: the env settings every draw keeps (pool, reward, horizon, providers' fixed
            behaviour); each draw replaces its sender, scales its providers' tolerance
            ranges and sets its MTA's overflow.

    Raises:
        ConfigError: a mix of the world names other providers than the env's.
    """

    def __init__(self, *, world: WorldConfig, config: EnvConfig) -> None:
        self.world = world
        self.config = config
        names = set(config.providers)
        problems = [
            f"world.provider_mixes.{key}.shares: expected a share for each of the env's "
            f"providers {sorted(names)}, got {sorted(mix.shares)}"
            for key, mix in world.provider_mixes.items()
            if set(mix.shares) != names
        ]
        if problems:
            raise ConfigError(problems)
        self._mixes = list(world.provider_mixes.items())
        self._patterns = list(world.weekly_patterns.items())
        self._growth = [(kind, world.growth_kinds.get(kind, 0.0)) for kind in GROWTH_KINDS]
        self._queue = dataclasses.replace(config.mta, overflow="queue")
        self._shared = dataclasses.replace(config.mta, overflow="shared")

    def draw(self, rng: np.random.Generator) -> EnvConfig:
        """Return one env config drawn with ``rng`` (a fixed number of draws)."""
        uniforms = rng.random(N_WORLD_UNIFORMS)
        scales = rng.random((N_PROVIDER_SCALES, len(self.config.providers)))
        return self.from_uniforms(uniforms, scales)

    def from_uniforms(self, u: np.ndarray, scales: np.ndarray) -> EnvConfig:
        """Return the env config that uniforms in [0, 1) stand for.

        ``u`` is (N_WORLD_UNIFORMS,), ``scales`` (N_PROVIDER_SCALES, P): a provider's
        allowance, trust-growth and escalation scales.
        """
        mta = self._queue if u[U["overflow"]] < self.world.queue_share else self._shared
        providers = {
            name: self._provider(provider, scales[:, p])
            for p, (name, provider) in enumerate(self.config.providers.items())
        }
        return dataclasses.replace(
            self.config, scenario=self.scenario(u), providers=providers, mta=mta
        )

    def scenario(self, u: np.ndarray) -> ScenarioConfig:
        """Return the sender that uniforms ``u`` (N_WORLD_UNIFORMS,) stand for."""
        w = self.world
        volume = log_uniform(w.daily_volume_messages, u[U["volume"]])
        kind, _ = self._growth[pick([g for _, g in self._growth], u[U["growth_kind"]])]
        growth, added = 1.0, 0.0
        if kind == "multiplicative":
            growth = uniform(w.multiplicative_growth_per_day, u[U["growth"]])
        elif kind == "shrinking":
            growth = uniform(w.shrinking_per_day, u[U["growth"]])
        elif kind == "linear":
            added = volume * uniform(w.linear_growth_share_per_day, u[U["growth"]])
        mix_name, mix = self._mixes[pick([m.weight for _, m in self._mixes], u[U["mix"]])]
        pattern_name, pattern = self._patterns[
            pick([p.weight for _, p in self._patterns], u[U["pattern"]])
        ]
        quality = float(u[U["quality"]])  # 0 the cleanest list, 1 the poorest
        domain = uniform((w.domain_reputation[1], w.domain_reputation[0]), quality)
        fields: dict[str, object] = {
            "name": f"{w.name}-draw",
            "description": f"{volume:,.0f}/day, {kind} growth, {mix_name} mix, {pattern_name}",
            "daily_volume_messages": (volume, volume),
            "growth_per_day": (growth, growth),
            "growth_messages_per_day": (added, added),
            "provider_mix": dict(mix.shares),
            "mix_concentration": log_uniform(w.mix_concentration, u[U["concentration"]]),
            "weekly_shape": pattern.weekly_shape,
            "volume_noise": uniform(w.volume_noise, u[U["noise"]]),
            "bounce_rate": _point(log_uniform(w.bounce_rate, quality)),
            "complaint_rate": _point(log_uniform(w.complaint_rate, quality)),
            "trap_rate": _point(log_uniform(w.trap_rate, quality)),
            "domain_reputation": (domain, domain),
        }
        if u[U["campaigns"]] < w.campaign_sender_share:
            fields.update(self._campaigns(u))
        if u[U["spike"]] < w.spike_share:
            fields["spike_start_day"] = floored(w.spike_start_day, u[U["spike_start"]])
            fields["spike_duration_days"] = floored(w.spike_duration_days, u[U["spike_duration"]])
            fields["spike_multiplier"] = uniform(w.spike_multiplier, u[U["spike_multiplier"]])
        return ScenarioConfig(**fields)  # type: ignore[arg-type]  # checked by the class

    def _campaigns(self, u: np.ndarray) -> dict[str, object]:
        """Return a campaign sender's fields: probability, weekdays, multiple and hours."""
        w = self.world
        # 1..max days (u < 1), the weekdays whose uniforms are smallest
        count = 1 + int(u[U["campaign_days"]] * w.max_campaign_days_per_week)
        order = np.argsort(u[len(U_NAMES) :])[:count]
        days = tuple(WEEKDAY_NAMES[i] for i in sorted(order))
        a = uniform(w.campaign_multiplier, u[U["multiplier_a"]])
        b = uniform(w.campaign_multiplier, u[U["multiplier_b"]])
        return {
            "campaign_probability": uniform(w.campaign_probability, u[U["campaign_probability"]]),
            "campaign_weekdays": days,
            "campaign_multiplier": (min(a, b), max(a, b)),
            "campaign_start_hour": floored(w.campaign_start_hour, u[U["campaign_hour"]]),
            "campaign_duration_hours": floored(
                w.campaign_duration_hours, u[U["campaign_duration"]]
            ),
        }

    def _provider(self, provider: ProviderConfig, u: np.ndarray) -> ProviderConfig:
        """Return ``provider`` with its tolerance ranges scaled by the draws ``u`` (3,)."""
        w = self.world
        allowance = log_uniform(w.allowance_scale, u[0])
        trust = uniform(w.trust_growth_scale, u[1])
        escalation = uniform(w.escalation_scale, u[2])
        ceiling = MAX_OVERSHOOT_PER_HOUR / (1.0 - provider.pressure_decay_per_hour)
        reachable = REACHABLE_SHARE_OF_CEILING * ceiling
        low, high = provider.escalation_threshold
        high = min(high * escalation, reachable)
        cold, full, growth = (
            provider.cold_hourly_allowance_messages,
            provider.full_trust_hourly_allowance_messages,
            provider.trust_growth_per_day,
        )
        return _scaled(
            provider,
            cold_hourly_allowance_messages=(cold[0] * allowance, cold[1] * allowance),
            full_trust_hourly_allowance_messages=(full[0] * allowance, full[1] * allowance),
            trust_growth_per_day=(1 + (growth[0] - 1) * trust, 1 + (growth[1] - 1) * trust),
            escalation_threshold=(min(low * escalation, high), high),
        )


def _scaled(provider: ProviderConfig, **ranges: tuple[float, float]) -> ProviderConfig:
    """Return ``provider`` with ``ranges`` replaced, without validating it again.

    Validation is a third of a draw's time (70 envs x 5 providers per episode), and the
    scaled ranges are valid by construction: positive factors keep each range's order and
    sign, allowances share one factor (cold stays below full trust), growth stays above 1,
    and the escalation threshold is capped where it is still reachable.
    ``tests/envs/test_world.py`` validates 300 draws' providers again to check it.
    """
    scaled = copy.copy(provider)
    for name, value in ranges.items():
        object.__setattr__(scaled, name, value)  # a frozen dataclass: set on the fresh copy
    return scaled


def _point(value: float) -> tuple[float, float]:
    return (value, value)
