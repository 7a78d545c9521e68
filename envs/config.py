"""Typed configuration of the simulator: providers, sender scenario, pools, MTA and reward.

Every default and range cites the DOMAIN.md bullet it comes from (``§N`` is the section of
``shared/DOMAIN.md``). Ranges written ``(low, high)`` are drawn uniformly per episode, so a
policy has to adapt to the provider it meets rather than memorise one.

Where DOMAIN.md has no number (Gmail, Yahoo and Microsoft publish no per-IP rate limits,
"Not found / unverified"), the value is an assumption chosen to reproduce the published
schedules' behaviour, and the comment says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ipwarmup.actions import ActionCodec
from ipwarmup.config import Config, setting, setting_factory

HOURS_PER_DAY = 24


@dataclass(frozen=True)
class ProviderConfig(Config):
    """One inbox provider's hidden tolerance, drawn per episode from these ranges."""

    cold_hourly_allowance_messages: tuple[float, float] = setting(
        (40.0, 120.0),
        "Messages per hour one brand-new IP may send before 4xx deferrals start.",
        gt=0,
    )
    full_trust_hourly_allowance_messages: tuple[float, float] = setting(
        (15_000.0, 40_000.0),
        "Messages per hour one fully trusted IP may send.",
        gt=0,
    )
    trust_growth_per_day: tuple[float, float] = setting(
        (1.5, 1.9),
        "Factor by which a fully used allowance grows per day of clean sending.",
        gt=1,
    )
    hold_utilization: float = setting(
        0.3,
        "Peak-hour use of the allowance below which it shrinks instead of growing.",
        gt=0,
        lt=1,
    )
    cooling_days: tuple[float, float] = setting(
        (20.0, 30.0),
        "Idle days after which a fully trusted IP's allowance is back to cold.",
        gt=0,
    )
    spike_tolerance: tuple[float, float] = setting(
        (2.0, 3.0),
        "Ratio of a day's volume to the recent average above which reputation suffers.",
        gt=1,
    )
    complaint_threshold: tuple[float, float] = setting(
        (0.001, 0.003),
        "Complaint rate (of inbox deliveries) at which reputation takes a heavy hit.",
        gt=0,
        lt=1,
    )
    bounce_threshold: tuple[float, float] = setting(
        (0.02, 0.05),
        "Bounce rate (of transmitted mail) at which reputation takes a heavy hit.",
        gt=0,
        lt=1,
    )
    escalation_threshold: tuple[float, float] = setting(
        (25.0, 60.0),
        "Accumulated ignored-deferral pressure at which the provider blocks the IP (5xx).",
        gt=0,
    )
    pressure_decay_per_hour: float = setting(
        # ~10 hours of memory: Adobe escalates soft bounces >30% "not resolved within 24 h"
        # (DOMAIN §2); KumoMTA's automation reacts within the hour and holds for 90 minutes.
        0.9,
        "Share of the ignored-deferral pressure that survives each hour.",
        ge=0,
        lt=1,
    )
    block_duration_days: tuple[float, float] = setting(
        (1.0, 2.0),
        "How long a block lasts.",
        gt=0,
    )
    block_reputation_penalty: float = setting(
        0.25,
        "Reputation lost at the moment of a block; it comes back over the memory.",
        ge=0,
        le=1,
    )
    reputation_memory_days: tuple[float, float] = setting(
        (25.0, 35.0),
        "Time constant of the reputation's moving average.",
        gt=0,
    )
    cold_reputation: tuple[float, float] = setting(
        (0.45, 0.55),
        "Reputation (0 bad .. 1 excellent) of an IP the provider has never seen.",
        ge=0,
        le=1,
    )
    reputation_volume_messages: tuple[float, float] = setting(
        (1_000.0, 3_000.0),
        "Daily messages per IP the provider needs to see before it trusts the IP's record.",
        gt=0,
    )
    base_inbox_rate: float = setting(
        0.898,
        "Inbox placement at good reputation (0.8) with a clean list.",
        gt=0,
        lt=1,
    )
    placement_sensitivity: float = setting(
        1.0,
        "Inbox-rate change per unit of reputation away from 0.8.",
        ge=0,
    )
    complaint_feedback: bool = setting(True, "Whether the provider runs a complaint feed (FBL).")
    complaint_feedback_delay_hours: float = setting(
        24.0,
        "Delay before complaints reach the sender through the feed.",
        ge=0,
        le=168,
    )

    def _check(self) -> list[str]:
        problems = []
        if self.cold_hourly_allowance_messages[1] > self.full_trust_hourly_allowance_messages[0]:
            problems.append(
                "cold_hourly_allowance_messages: expected below full_trust_hourly_allowance_"
                f"messages, got {list(self.cold_hourly_allowance_messages)} against "
                f"{list(self.full_trust_hourly_allowance_messages)}"
            )
        return problems


def _gmail() -> ProviderConfig:
    # §2 Gmail: 4.7.28 rate limits "typically 24-48 hours" -> block 1-2 days; 4xx is the
    # usual answer, blocks are rarer than at Microsoft/Yahoo (high escalation threshold).
    # §3 Gmail spam rate: keep below 0.1%, never reach 0.3% -> complaint threshold 0.1-0.3%.
    # §3 Validity 2026: Gmail inbox placement 89.8%.
    # §3 Postmaster shows data above ~250/day; Mandrill >= 5,000/day -> trust needs 1-3k/day.
    # Per-IP allowances are unpublished ("Not found"); KumoMTA's Google shaping (5
    # connections x 50 msgs/conn, §7) is the proxy for the full-trust order of magnitude.
    return ProviderConfig()


def _microsoft() -> ProviderConfig:
    # §2 Microsoft: "especially sensitive to fluctuations in volume", new senders "guilty
    # until proven innocent" -> lower cold allowance and reputation, slower trust growth.
    # §2 "S3150 is what you get when you don't slow down after seeing 4xx" -> low
    # escalation threshold; S3150 blocks persist (delisting portal) -> 3-7 days.
    # §3 Validity 2026: Microsoft inbox 77.4%; §3 SNDS: spam verdicts swing 10-90% -> high
    # placement sensitivity. §7 KumoMTA Outlook: 5 connections, 50 msgs/conn.
    return ProviderConfig(
        cold_hourly_allowance_messages=(10.0, 40.0),
        full_trust_hourly_allowance_messages=(3_000.0, 10_000.0),
        trust_growth_per_day=(1.35, 1.7),
        spike_tolerance=(1.5, 2.0),
        complaint_threshold=(0.001, 0.003),
        escalation_threshold=(6.0, 12.0),
        block_duration_days=(3.0, 7.0),
        cold_reputation=(0.35, 0.45),
        base_inbox_rate=0.774,
        placement_sensitivity=1.5,
    )


def _yahoo() -> ProviderConfig:
    # §2 Yahoo: TSS04 deferrals on "unexpected volume"; TSS09 "permanently deferred" blocks;
    # "escalate if it lasts >48 hours" and deferrals "can persist for weeks" -> 2-5 days.
    # §3 Yahoo publishes no complaint threshold; harm at ~1% invalid addresses -> lower bounce
    # threshold. §3 Validity 2026: Yahoo inbox 87.3%. §7 KumoMTA Yahoo: 20 msgs/conn.
    return ProviderConfig(
        cold_hourly_allowance_messages=(30.0, 80.0),
        full_trust_hourly_allowance_messages=(8_000.0, 25_000.0),
        trust_growth_per_day=(1.45, 1.8),
        spike_tolerance=(1.8, 2.5),
        bounce_threshold=(0.01, 0.03),
        escalation_threshold=(6.0, 12.0),
        block_duration_days=(2.0, 5.0),
        base_inbox_rate=0.873,
        placement_sensitivity=1.2,
    )


def _apple() -> ProviderConfig:
    # §2 Apple iCloud: 421 "deferred due to excessive volume", limits "usually clear within
    # a few hours" -> short blocks; Apple has no FBL -> no complaint feed.
    # §3 Validity 2026: Apple inbox 82%. §7 KumoMTA Apple: 10 connections, 5 msgs/conn, the
    # lowest per-connection figure -> the smallest full-trust allowance.
    return ProviderConfig(
        cold_hourly_allowance_messages=(10.0, 40.0),
        full_trust_hourly_allowance_messages=(2_000.0, 8_000.0),
        trust_growth_per_day=(1.45, 1.8),
        escalation_threshold=(15.0, 30.0),
        block_duration_days=(0.25, 1.0),
        base_inbox_rate=0.82,
        complaint_feedback=False,
    )


def _other() -> ProviderConfig:
    # §3 Validity 2026: global inbox 87.2% for the long tail (cable ISPs, gateways);
    # §7 KumoMTA default shaping (10 connections, 100 msgs/conn) for the order of magnitude.
    return ProviderConfig(
        full_trust_hourly_allowance_messages=(10_000.0, 30_000.0),
        escalation_threshold=(20.0, 40.0),
        block_duration_days=(1.0, 3.0),
        base_inbox_rate=0.872,
    )


def default_providers() -> dict[str, ProviderConfig]:
    """Return the five default providers (DESIGN.md: gmail, microsoft, yahoo, apple, other)."""
    return {
        "gmail": _gmail(),
        "microsoft": _microsoft(),
        "yahoo": _yahoo(),
        "apple": _apple(),
        "other": _other(),
    }


def _b2c_mix() -> dict[str, float]:
    # §4 "Suggested default mixes": B2C US ≈ Gmail 50%, Yahoo/AOL 20%, Microsoft 13%,
    # Apple iCloud 3%, other 14%.
    return {"gmail": 0.50, "microsoft": 0.13, "yahoo": 0.20, "apple": 0.03, "other": 0.14}


# A business-hours weighted day (mean 1.0): senders peak in the morning and early evening.
_DIURNAL_SHAPE = (
    0.35, 0.25, 0.2, 0.2, 0.25, 0.4, 0.7, 1.1, 1.45, 1.6, 1.6, 1.5,
    1.4, 1.4, 1.4, 1.35, 1.3, 1.3, 1.3, 1.25, 1.1, 0.9, 0.6, 0.45,
)  # fmt: skip


@dataclass(frozen=True)
class ScenarioConfig(Config):
    """The sender: how much mail, to whom, when, and how clean the list is."""

    name: str = setting("steady_b2c_transactional", "Short name of the scenario.")
    description: str = setting("", "One line for people reading reports.")
    daily_volume_messages: tuple[float, float] = setting(
        (80_000.0, 120_000.0),
        "Mean daily demand at the start of the episode, drawn per episode.",
        gt=0,
    )
    growth_per_day: tuple[float, float] = setting(
        (1.0, 1.0), "Multiplicative growth of the mean daily demand per day.", gt=0
    )
    provider_mix: dict[str, float] = setting_factory(
        _b2c_mix, "Share of recipients at each provider (normalised to sum 1).", ge=0
    )
    mix_concentration: float = setting(
        200.0,
        "Dirichlet concentration of the per-episode mix jitter (0 keeps the mix exact).",
        ge=0,
    )
    weekly_shape: tuple[float, ...] = setting(
        (1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0),
        "Relative volume Monday..Sunday (normalised to mean 1).",
        ge=0,
    )
    hourly_shape: tuple[float, ...] = setting(
        _DIURNAL_SHAPE, "Relative volume in each hour 0..23 (normalised to mean 1).", ge=0
    )
    volume_noise: float = setting(
        0.1, "Standard deviation of the daily log-normal volume noise.", ge=0, le=2
    )
    campaign_probability: float = setting(
        0.0, "Chance that a day carries a marketing campaign.", ge=0, le=1
    )
    campaign_multiplier: tuple[float, float] = setting(
        (3.0, 5.0), "A campaign day's volume as a multiple of a normal day.", ge=1
    )
    campaign_start_hour: int = setting(9, "Hour a campaign blast starts.", ge=0, le=23)
    campaign_duration_hours: int = setting(
        4, "Hours over which a campaign's extra volume is sent.", ge=1, le=24
    )
    spike_start_day: int | None = setting(
        None, "First day of a seasonal spike (a Black-Friday-like week), or none.", ge=0
    )
    spike_duration_days: int = setting(7, "Length of the seasonal spike.", ge=1)
    spike_multiplier: float = setting(5.0, "Volume multiple during the spike.", ge=1)
    bounce_rate: tuple[float, float] = setting(
        (0.003, 0.008),
        "Share of transmitted mail that hard-bounces (list quality).",
        ge=0,
        lt=1,
    )
    complaint_rate: tuple[float, float] = setting(
        (0.0002, 0.0006),
        "Share of inbox deliveries reported as spam.",
        ge=0,
        lt=1,
    )
    trap_rate: tuple[float, float] = setting(
        (0.0, 0.00002), "Share of transmitted mail that hits spam traps.", ge=0, lt=1
    )
    domain_reputation: tuple[float, float] = setting(
        (0.7, 0.8), "The sending domain's reputation at the start, per provider.", ge=0, le=1
    )

    def _check(self) -> list[str]:
        problems = []
        if len(self.weekly_shape) != 7 or sum(self.weekly_shape) <= 0:
            problems.append(
                "weekly_shape: expected 7 weights with a positive sum, "
                f"got {list(self.weekly_shape)}"
            )
        if len(self.hourly_shape) != HOURS_PER_DAY or sum(self.hourly_shape) <= 0:
            problems.append(
                "hourly_shape: expected 24 weights with a positive sum, "
                f"got {len(self.hourly_shape)} weights"
            )
        if sum(self.provider_mix.values()) <= 0:
            problems.append(
                f"provider_mix: expected shares with a positive sum, got {self.provider_mix}"
            )
        return problems


@dataclass(frozen=True)
class PoolConfig(Config):
    """The customer's pool of dedicated IPs and what the agent may do to it."""

    initial_ips: int = setting(1, "Dedicated IPs in the pool at the start (all cold).", ge=0)
    max_ips: int = setting(8, "Most dedicated IPs the pool may hold.", ge=1, le=64)
    initial_hourly_cap_messages: float = setting(
        # §1 SendGrid automated warmup: day 0 = 20 per hour per IP.
        20.0,
        "Hourly cap of a new IP over all providers, split by the provider mix.",
        gt=0,
    )
    min_hourly_cap_messages: float = setting(
        1.0, "Lowest hourly cap per IP and provider the agent can set.", gt=0
    )
    max_hourly_cap_messages: float = setting(
        # §1 SendGrid's table ends at ~19.6M per hour on day 41; beyond any real allowance.
        2.0e7,
        "Highest hourly cap per IP and provider the agent can set.",
        gt=0,
    )
    max_cap_change_per_day: float = setting(
        # §1 growth-factor summary: SendGrid 1.40x/day, Braze aggressive doubles daily.
        2.0,
        "Largest factor by which caps may move in one day (up or down).",
        gt=1,
    )
    pool_change_min_days: float = setting(
        1.0, "Least time between two changes of the pool size.", ge=0
    )
    ip_cost_per_day: float = setting(
        # §1 Amazon SES standard dedicated IP $24.95/month (secondary) -> $0.83 a day.
        0.83,
        "Price of one dedicated IP for one day, in dollars (reported, and in the reward).",
        ge=0,
    )

    def _check(self) -> list[str]:
        problems = []
        if self.initial_ips > self.max_ips:
            problems.append(
                f"initial_ips: expected at most max_ips ({self.max_ips}), got {self.initial_ips}"
            )
        if not (
            self.min_hourly_cap_messages
            <= self.initial_hourly_cap_messages
            <= self.max_hourly_cap_messages
        ):
            problems.append(
                "initial_hourly_cap_messages: expected between min_hourly_cap_messages and "
                f"max_hourly_cap_messages, got {self.initial_hourly_cap_messages}"
            )
        return problems


@dataclass(frozen=True)
class SharedPoolConfig(Config):
    """The ESP's shared pool: large, decently reputed, and exposed to noisy neighbours."""

    reputation: tuple[float, float] = setting(
        # §3 Validity: global inbox 83-87%, averaged over senders good and bad -> a shared
        # pool of mixed tenants sits below a clean dedicated sender's standing (0.8+).
        (0.6, 0.7),
        "Reputation of the shared pool's IPs at every provider.",
        ge=0,
        le=1,
    )
    incident_probability_per_day: float = setting(
        0.04, "Chance per day that another tenant starts a noisy-neighbour incident.", ge=0, le=1
    )
    incident_duration_days: tuple[float, float] = setting(
        (2.0, 6.0), "How long an incident lowers the shared pool's reputation.", gt=0
    )
    incident_severity: tuple[float, float] = setting(
        (0.15, 0.35), "Reputation the shared pool loses during an incident.", ge=0, le=1
    )


@dataclass(frozen=True)
class MTAConfig(Config):
    """How the simulated MTA handles traffic above the caps, deferrals and retries."""

    overflow: Literal["shared", "queue"] = setting(
        # §1 SendGrid (older docs), Mailgun, SparkPost and SES early warmup: excess goes to
        # the shared pool. "queue" is SendGrid's current behaviour: retry, expire at 72 h.
        "shared",
        "Where traffic above the dedicated caps and deferred traffic goes.",
    )
    max_age_hours: int = setting(
        # §2 SendGrid retries deferrals for 72 hours.
        72,
        "A queued message older than this expires and is lost.",
        ge=1,
        le=24 * 7,
    )
    retry_interval_hours: float = setting(
        # §2 RFC 5321 at least 30 min; SendGrid ~15 min; Postfix backoff up to 4000 s.
        1.0,
        "Mean time between two attempts of a queued message.",
        ge=1,
        le=24,
    )


@dataclass(frozen=True)
class RewardConfig(Config):
    """Weights of the per-step reward; see the env docstring for its formula and range."""

    dedicated_inbox_weight: float = setting(
        1.0, "Reward per unit share of handled mail placed in the inbox from dedicated IPs.", ge=0
    )
    shared_inbox_weight: float = setting(
        0.9, "Reward per unit share placed in the inbox from the shared pool.", ge=0
    )
    lost_penalty: float = setting(
        2.0, "Penalty per unit share of handled mail rejected or expired.", ge=0
    )
    block_penalty: float = setting(0.5, "Penalty per new block of an IP at a provider.", ge=0)
    ip_day_penalty: float = setting(0.01, "Penalty per dedicated IP per day.", ge=0)
    continuation_days: int = setting(
        # DOMAIN §8 A3: dedicated IPs are leased for months after the warmup (recurring
        # prices; SES, SendGrid and managed pools migrate the traffic fully). Assumption:
        # a month of that life stands for it in the return; 0 turns it off.
        30,
        "Days after the horizon, on the warmed caps, that the episode's last reward counts.",
        ge=0,
        le=366,
    )

    def _check(self) -> list[str]:
        if self.shared_inbox_weight > self.dedicated_inbox_weight:
            return [
                "shared_inbox_weight: expected at most dedicated_inbox_weight "
                f"({self.dedicated_inbox_weight}), got {self.shared_inbox_weight}"
            ]
        return []


@dataclass(frozen=True)
class EnvConfig(Config):
    """Everything the simulator needs; one episode is one warmup."""

    providers: dict[str, ProviderConfig] = setting_factory(
        default_providers, "Inbox providers by name, each with its hidden tolerance ranges."
    )
    scenario: ScenarioConfig = setting_factory(ScenarioConfig, "The sender.")
    pool: PoolConfig = setting_factory(PoolConfig, "The dedicated pool.")
    shared_pool: SharedPoolConfig = setting_factory(SharedPoolConfig, "The shared pool.")
    mta: MTAConfig = setting_factory(MTAConfig, "The MTA.")
    reward: RewardConfig = setting_factory(RewardConfig, "The reward weights.")
    horizon_days: int = setting(
        # §1 SES standard: 50k/day within 45 days; SendGrid leaves warmup after day 41.
        45,
        "Length of an episode in days.",
        ge=1,
        le=366,
    )
    decision_interval_hours: int = setting(
        24, "Hours between two decisions (a divisor of 24).", ge=1, le=24
    )

    def _check(self) -> list[str]:
        problems = []
        if HOURS_PER_DAY % self.decision_interval_hours:
            problems.append(
                "decision_interval_hours: expected a divisor of 24 (1, 2, 3, 4, 6, 8, 12, 24), "
                f"got {self.decision_interval_hours}"
            )
        if not self.providers:
            problems.append("providers: expected at least one provider, got none")
        unknown = sorted(set(self.scenario.provider_mix) - set(self.providers))
        missing = sorted(set(self.providers) - set(self.scenario.provider_mix))
        if unknown:
            problems.append(
                f"scenario.provider_mix: unknown providers {unknown}; "
                f"expected names from {sorted(self.providers)}"
            )
        if missing:
            problems.append(
                f"scenario.provider_mix: no share given for {missing}; write 0.0 for none"
            )
        return problems

    @property
    def provider_names(self) -> tuple[str, ...]:
        """Provider names in the order of the observation and action layout."""
        return tuple(self.providers)

    @property
    def action_codec(self) -> ActionCodec:
        """The meaning of an action in this configuration (shared with serving)."""
        return ActionCodec(
            n_providers=len(self.providers),
            max_cap_change_per_day=self.pool.max_cap_change_per_day,
            decision_interval_hours=self.decision_interval_hours,
            min_hourly_cap_messages=self.pool.min_hourly_cap_messages,
            max_hourly_cap_messages=self.pool.max_hourly_cap_messages,
        )

    @property
    def steps_per_episode(self) -> int:
        """Decisions in one episode."""
        return self.horizon_days * HOURS_PER_DAY // self.decision_interval_hours
