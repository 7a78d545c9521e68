"""Typed configuration of the simulator: pools, MTA, reward, and the env that holds them all.

Providers are configured in :mod:`ipwarmup.envs.provider_config` and the sender in
:mod:`ipwarmup.envs.scenario_config`; both are re-exported here.

Every default and range cites the DOMAIN.md bullet it comes from (``§N`` is the section of
``shared/DOMAIN.md``). Ranges written ``(low, high)`` are drawn uniformly per episode, so a
policy has to adapt to the provider it meets rather than memorise one.

Where DOMAIN.md has no number (Gmail, Yahoo and Microsoft publish no per-IP rate limits,
"Not found / unverified"), the value is an assumption chosen to reproduce the published
schedules' behaviour, and the comment says so.
"""

from __future__ import annotations

from typing import Literal

from ipwarmup.actions import ActionCodec
from ipwarmup.config import Config, configclass, setting, setting_factory
from ipwarmup.envs.provider_config import ProviderConfig, default_providers
from ipwarmup.envs.scenario_config import HOURS_PER_DAY, ScenarioConfig
from ipwarmup.observation import (
    MAX_AGE_SCALE_HOURS,
    MAX_HISTORY_PERIODS,
    MIN_RETRY_HOURS,
    RETRY_SCALE_HOURS,
    Layout,
)

__all__ = [
    "HOURS_PER_DAY",
    "EnvConfig",
    "MTAConfig",
    "ObservationConfig",
    "PoolConfig",
    "ProviderConfig",
    "RewardConfig",
    "ScenarioConfig",
    "SharedPoolConfig",
    "default_providers",
]


@configclass
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
    warming_ip_growth_per_day: float = setting(
        # §1 SendGrid automated warmup: each warming IP follows its own hourly cap keyed on its
        # warmup age, x1.40 a day, while the account's other IPs keep sending; SES managed
        # pools add an IP on a sudden rise and warm it beside the others.
        1.4,
        "Daily factor by which an IP whose caps are below the pool's leading IP grows on its "
        "own, up to that IP's caps (1 turns the automatic ramp off).",
        ge=1,
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


@configclass
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


@configclass
class MTAConfig(Config):
    """How the simulated MTA handles traffic above the caps, deferrals and retries."""

    overflow: Literal["shared", "queue"] = setting(
        # §1 SendGrid (older docs), Mailgun, SparkPost and SES early warmup: excess goes to
        # the shared pool; deferred mail goes there at its retry, a retry interval later
        # (§2 RFC 5321). "queue" is SendGrid's current behaviour: retry, expire at 72 h.
        "shared",
        "Where traffic above the dedicated caps and deferred traffic goes: 'shared' sends "
        "what the caps hold back to the shared pool at once and deferred mail at its retry; "
        "'queue' retries both on the dedicated IPs.",
    )
    max_age_hours: int = setting(
        # §2 SendGrid retries deferrals for 72 hours.
        72,
        "A queued message older than this expires and is lost.",
        ge=1,
        le=int(MAX_AGE_SCALE_HOURS),  # a week; the observation's mta.max_age reads it as 1
    )
    retry_interval_hours: float = setting(
        # §2 RFC 5321 at least 30 min; SendGrid ~15 min; KumoMTA 20 min; Exim 15 min; Postfix
        # backoff up to 4000 s. The MTA is simulated hour by hour: an interval under an hour
        # makes every queued message due each hour (a fluid message cannot be retried twice
        # within the hour that its provider's allowance limits anyway). In shared mode a
        # deferred message's one retry goes to the shared pool ceil(interval) hours after
        # the hour it was deferred in (envs/mta.py hold_hours).
        1.0,
        "Mean time between two attempts of a queued message (queue mode); in shared mode, "
        "the wait before deferred mail is retried on the shared pool, rounded up to hours.",
        ge=MIN_RETRY_HOURS,
        le=RETRY_SCALE_HOURS,  # a day; the observation's mta.retry_interval reads it as 1
    )


@configclass
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


@configclass
class ObservationConfig(Config):
    """What the policy sees beyond the last period (the encoder's table in ``observation``)."""

    history_periods: int = setting(
        # A day's replies give one point per provider of how much it took at the cap set:
        # its deferral and accept rates at that cap. Tolerances are hidden, so a policy
        # reads them off a few such points (the slope of deferrals against the cap) and
        # their trend; three past days with the current one make four points, cover the
        # queue's 72 h lifetime (mail deferred three days ago expires now, DOMAIN §2) and
        # add 3 x 9 features per provider (189 inputs with five providers, not 500+ for a
        # week), which the MLP learns from in a smoke budget. Older points are stale: the
        # allowance moves daily with reputation.
        3,
        "Past periods whose provider features the observation carries, most recent first "
        "(0: the last period only).",
        ge=0,
        le=MAX_HISTORY_PERIODS,
    )
    mta_inputs: bool = setting(
        True,
        "Whether the MTA's set-up (overflow mode, queue lifetime, retry interval) is an "
        "input: an ESP knows its own MTA.",
    )

    @property
    def layout(self) -> Layout:
        """The encoder's layout of these settings."""
        return Layout(history_periods=self.history_periods, mta_inputs=self.mta_inputs)


@configclass
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
    observation: ObservationConfig = setting_factory(
        ObservationConfig, "What the policy sees: past periods and the MTA's set-up."
    )
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
