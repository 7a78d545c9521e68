"""Baseline policies: what the industry does today.

Each follows a published source, cited from DOMAIN.md.
"""

from __future__ import annotations

import numpy as np

from ipwarmup.agents.base import Policy
from ipwarmup.envs.config import EnvConfig

# DOMAIN §1 Twilio SendGrid automated IP warmup: hourly cap per IP by warmup age (days).
SENDGRID_HOURLY_CAPS = (
    20, 28, 39, 55, 77, 108, 151, 211, 295, 413, 579, 810, 1_000, 1_587, 2_222, 3_111, 4_356,
    6_098, 8_583, 11_953, 16_734, 23_427, 32_798, 45_917, 64_284, 89_998, 125_997, 176_395,
    246_953, 345_735, 484_029, 677_640, 948_696, 1_328_175, 1_859_444, 2_603_222, 3_644_511,
    5_102_316, 7_143_242, 10_000_539, 14_000_754, 19_601_056,
)  # fmt: skip


class HoldPolicy(Policy):
    """Change nothing: caps stay where they are and the pool keeps its size."""

    name = "hold"

    def _act(self, observation: np.ndarray) -> np.ndarray:
        return np.zeros((observation.shape[0], self.n_providers + 1))


class FixedSchedulePolicy(Policy):
    """Follow a published hourly cap per IP by warmup day, the same ramp for every provider.

    A schedule caps an IP's total traffic; the simulated MTA caps each provider, so the
    provider's cap is the schedule's cap times the provider's share of demand, which is
    how an IP's capped traffic splits across providers. The pool keeps its size.

    Args:
        config: the env configuration.
        hourly_caps: the cap per IP for warmup day 0, 1, ...; the last value holds after.
        name: the policy's name in reports.
    """

    def __init__(self, config: EnvConfig, hourly_caps: tuple[float, ...], name: str) -> None:
        super().__init__(config)
        self.hourly_caps = np.asarray(hourly_caps, dtype=float)
        self.name = name

    def _act(self, observation: np.ndarray) -> np.ndarray:
        view = self.view(observation)
        day = np.clip(np.rint(view.day).astype(int), 0, len(self.hourly_caps) - 1)
        demand = view.demand_per_hour
        share = demand / np.maximum(demand.sum(axis=1, keepdims=True), 1e-9)
        n_ips = np.maximum(view.n_ips, 1.0)[:, None]
        target = self.hourly_caps[day][:, None] * share
        current = view.cap_per_hour / n_ips
        actions = np.zeros((observation.shape[0], self.n_providers + 1))
        actions[:, : self.n_providers] = self.cap_action(current, target)
        return actions


def make_baseline(name: str, config: EnvConfig) -> Policy:
    """Build a baseline policy by name."""
    if name == "hold":
        return HoldPolicy(config)
    if name == "fixed-sendgrid":
        return FixedSchedulePolicy(config, SENDGRID_HOURLY_CAPS, "fixed-sendgrid")
    from ipwarmup.errors import ConfigError

    raise ConfigError(f"policy: unknown policy '{name}'; expected one of {BASELINE_NAMES}")


BASELINE_NAMES = ("hold", "fixed-sendgrid")
