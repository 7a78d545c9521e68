"""Baseline policies: what the industry does today, each after a published source.

All read only the observation (what an ESP sees). The oracle, which reads the hidden
state, lives in :mod:`ipwarmup.agents.oracle`.
"""

from __future__ import annotations

import numpy as np

from ipwarmup import rules
from ipwarmup.agents.base import BasePolicy
from ipwarmup.envs.config import EnvConfig

# DOMAIN §1 Twilio SendGrid automated IP warmup: hourly cap per IP by warmup age (days).
SENDGRID_HOURLY_CAPS = (  # pragma: no mutate (transcribed from DOMAIN §1)
    20, 28, 39, 55, 77, 108, 151, 211, 295, 413, 579, 810, 1_000, 1_587, 2_222, 3_111, 4_356,
    6_098, 8_583, 11_953, 16_734, 23_427, 32_798, 45_917, 64_284, 89_998, 125_997, 176_395,
    246_953, 345_735, 484_029, 677_640, 948_696, 1_328_175, 1_859_444, 2_603_222, 3_644_511,
    5_102_316, 7_143_242, 10_000_539, 14_000_754, 19_601_056,
)  # fmt: skip
# DOMAIN §1 SparkPost / Bird Auto IP Warmup: daily volume per stage 1..29.
SPARKPOST_DAILY_STAGES = (  # pragma: no mutate (transcribed from DOMAIN §1)
    200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 40_000, 50_000, 75_000, 100_000, 150_000,
    200_000, 250_000, 325_000, 400_000, 500_000, 600_000, 750_000, 1_000_000, 1_250_000,
    1_750_000, 2_000_000, 3_000_000, 4_250_000, 5_000_000, 6_000_000, 7_500_000, 10_000_000,
)  # fmt: skip
# DOMAIN §1 Braze moderate schedule, days 1..21 (daily volume); "then keep scaling".
BRAZE_MODERATE_DAILY = (  # pragma: no mutate (transcribed from DOMAIN §1)
    50, 100, 500, 1_000, 2_000, 4_000, 8_000, 16_000, 25_000, 35_000, 50_000, 75_000, 100_000,
    150_000, 200_000, 275_000, 375_000, 500_000, 650_000, 825_000, 1_000_000,
)  # fmt: skip
# DOMAIN §7 KumoMTA warmup helper: a daily cap is spread over `active_sending_hours`
# (default 12), which turns a daily schedule into an hourly cap.
ACTIVE_SENDING_HOURS = 12
# DOMAIN §5 pool sizing rule of thumb: below 100k a month stay shared; one IP per 500k a
# day ("one IP per 500k/day for redundancy"; Mandrill: one IP "up to 500,000 per day").
SHARED_BELOW_MONTHLY = 100_000
MESSAGES_PER_IP_PER_DAY = 500_000


def _braze_daily(days: int) -> tuple[float, ...]:
    # "then keep scaling": continue at the schedule's last daily growth (1.0M / 825k).
    growth = BRAZE_MODERATE_DAILY[-1] / BRAZE_MODERATE_DAILY[-2]
    extra = [BRAZE_MODERATE_DAILY[-1] * growth ** (i + 1) for i in range(max(days - 21, 0))]
    return tuple(float(v) for v in (*BRAZE_MODERATE_DAILY, *extra))


def rule_of_thumb_ips(daily_messages: np.ndarray, max_ips: int) -> np.ndarray:
    """Return the pool size the published rule of thumb gives for a daily volume."""
    ips = np.ceil(daily_messages / MESSAGES_PER_IP_PER_DAY)
    ips = np.where(daily_messages * 30 < SHARED_BELOW_MONTHLY, 0.0, np.maximum(ips, 1.0))
    result: np.ndarray = np.minimum(ips, max_ips)
    return result


class HoldPolicy(BasePolicy):
    """Change nothing: caps stay where they are and the pool keeps its size."""

    name = "hold"

    def _act(self, observation: np.ndarray, memory: np.ndarray) -> np.ndarray:
        return np.zeros((observation.shape[0], self.n_providers + 1))


class HoldSharedPolicy(BasePolicy):
    """Never use the dedicated pool: release every dedicated IP and send on shared.

    The right answer for a low-volume sender (DOMAIN §5: Resend wants >500/day and
    30k/month; Mailtrap >100k/month).
    """

    name = "hold-shared"

    def _act(self, observation: np.ndarray, memory: np.ndarray) -> np.ndarray:
        actions = np.full((observation.shape[0], self.n_providers + 1), -1.0)
        return actions


class _SizedPolicy(BasePolicy):
    """A policy whose pool is sized once, at the first decision, by the rule of thumb.

    Memory column 0 holds the target pool size.
    """

    memory_size = 1

    def _pool(self, view_daily: np.ndarray, n_ips: np.ndarray, memory: np.ndarray) -> np.ndarray:
        unset = np.isnan(memory[:, 0])
        memory[unset, 0] = rule_of_thumb_ips(view_daily[unset], self.config.pool.max_ips)
        return self.pool_action(n_ips, memory[:, 0])


class FixedSchedulePolicy(_SizedPolicy):
    """Follow a published cap per IP by warmup day, the same ramp for every provider.

    A schedule caps an IP's total traffic; the simulated MTA caps each provider, so a
    provider's cap is the schedule's cap times the provider's share of demand, which is how
    an IP's capped traffic splits across providers. The pool is sized once by the rule of
    thumb and never changed.

    Args:
        config: the env configuration.
        hourly_caps: the cap per IP and hour for warmup day 0, 1, ...; the last holds after.
        name: the policy's name in reports.
    """

    def __init__(self, config: EnvConfig, hourly_caps: tuple[float, ...], name: str) -> None:
        super().__init__(config)
        self.hourly_caps = np.asarray(hourly_caps, dtype=float)
        self.name = name

    def _act(self, observation: np.ndarray, memory: np.ndarray) -> np.ndarray:
        view = self.view(observation)
        # The warmup day under way: rounding the day itself would move to the next day's
        # cap at noon with decisions more frequent than daily (and round 0.5 and 1.5 apart).
        steps_per_day = 24 // self.config.decision_interval_hours
        day = np.rint(view.day * steps_per_day).astype(int) // steps_per_day
        day = np.clip(day, 0, len(self.hourly_caps) - 1)
        target = self.hourly_caps[day][:, None] * rules.shares(view.demand_per_hour)
        actions = np.zeros((observation.shape[0], self.n_providers + 1))
        actions[:, :-1] = self.cap_action(rules.per_ip(view.cap_per_hour, view.n_ips), target)
        daily = view.demand_per_hour.sum(axis=1) * 24
        actions[:, -1] = self._pool(daily, view.n_ips, memory)
        return actions


class SparkPostPolicy(_SizedPolicy):
    """SparkPost's Auto IP Warmup: advance a stage only after sending >90% of its volume.

    DOMAIN §1: "each day, if the IP delivered >90% of its stage volume, it moves up one
    stage; otherwise it holds". A stage's daily volume becomes an hourly cap over
    ``ACTIVE_SENDING_HOURS``. Memory: column 0 the pool target, column 1 the stage index.
    """

    name = "fixed-sparkpost"
    memory_size = 2

    def _act(self, observation: np.ndarray, memory: np.ndarray) -> np.ndarray:
        view = self.view(observation)
        stages = np.asarray(SPARKPOST_DAILY_STAGES, dtype=float)
        start = np.isnan(memory[:, 1])
        memory[start, 1] = 0
        stage = memory[:, 1].astype(int)
        accepted = view.sent_share * (1 - view.deferral_rate - view.reject_rate)
        per_ip_sent = (accepted * view.demand_per_hour).sum(axis=1) * (
            self.config.decision_interval_hours / np.maximum(view.n_ips, 1)
        )
        steps_per_day = 24 // self.config.decision_interval_hours
        day_end = np.rint(view.day * steps_per_day) % steps_per_day == 0
        advance = ~start & day_end & (per_ip_sent > 0.9 * stages[stage] / steps_per_day)
        stage = np.minimum(stage + advance, len(stages) - 1)
        memory[:, 1] = stage
        hourly = stages[stage] / ACTIVE_SENDING_HOURS
        target = hourly[:, None] * rules.shares(view.demand_per_hour)
        actions = np.zeros((observation.shape[0], self.n_providers + 1))
        actions[:, :-1] = self.cap_action(rules.per_ip(view.cap_per_hour, view.n_ips), target)
        actions[:, -1] = self._pool(view.demand_per_hour.sum(axis=1) * 24, view.n_ips, memory)
        return actions


class AIMDPolicy(BasePolicy):
    """Additive increase, multiplicative decrease per provider, as MTAs' automation does.

    DOMAIN §6 Haraka adaptive-rate: on 421 rate limits the delay grows 1.5x (Gmail 2x) and a
    circuit breaker pauses the provider; §7 KumoMTA automation suspends or throttles a
    provider on its deferral texts. Here, per provider and decision:

    * rejections (a block): pause, cutting the cap as fast as allowed;
    * deferrals above 5%, complaints above 0.1% (Gmail's line, §3) or bounces above 5%
      (SES, Braze, §3): multiply the cap by 1/1.5;
    * otherwise, if demand exceeded the cap: add ``increase_per_day`` messages per hour;
    * an IP is added when the per-IP cap reaches ``per_ip_ceiling`` and demand still
      exceeds the pool's caps.

    Args:
        config: the env configuration.
        increase_per_day: additive increase of the cap per IP and hour, over all providers.
        per_ip_ceiling: hourly cap per IP at which the pool grows instead (500k a day, §5).
    """

    name = "aimd"

    def __init__(
        self,
        config: EnvConfig,
        increase_per_day: float = 500.0,
        per_ip_ceiling: float = MESSAGES_PER_IP_PER_DAY / 24,
    ) -> None:
        super().__init__(config)
        self.increase = increase_per_day * config.decision_interval_hours / 24
        self.per_ip_ceiling = per_ip_ceiling

    def _act(self, observation: np.ndarray, memory: np.ndarray) -> np.ndarray:
        view = self.view(observation)
        target, grow = rules.aimd(
            view, increase_per_hour=self.increase, per_ip_ceiling=self.per_ip_ceiling
        )
        actions = np.zeros((observation.shape[0], self.n_providers + 1))
        actions[:, :-1] = self.cap_action(rules.per_ip(view.cap_per_hour, view.n_ips), target)
        actions[:, -1] = np.where(grow, 1.0, 0.0)
        return actions


def fixed_sendgrid(config: EnvConfig) -> BasePolicy:
    """SendGrid's automated warmup hourly caps (DOMAIN §1)."""
    return FixedSchedulePolicy(config, SENDGRID_HOURLY_CAPS, "fixed-sendgrid")


def fixed_braze(config: EnvConfig) -> BasePolicy:
    """Braze's moderate schedule (DOMAIN §1), daily volumes over 12 sending hours."""
    daily = _braze_daily(config.horizon_days)
    hourly = tuple(v / ACTIVE_SENDING_HOURS for v in daily)
    return FixedSchedulePolicy(config, hourly, "fixed-braze")
