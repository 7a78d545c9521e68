"""Typed configuration of a world: the distribution of senders a policy trains on (issue 10).

A world is not a list of scenarios: every episode of every env draws a new sender from it
(:mod:`ipwarmup.envs.world` turns the draws into a concrete
:class:`~ipwarmup.envs.config.EnvConfig`). Every range cites the DOMAIN.md bullet it comes
from (``§N`` is the section of ``shared/DOMAIN.md``) or says it is an assumption and why.
Ranges written ``(low, high)`` are drawn uniformly unless the field says log-uniform.
"""

from __future__ import annotations

from typing import Literal, get_args

from ipwarmup.config import Config, configclass, setting, setting_factory

GrowthKind = Literal["none", "multiplicative", "linear", "shrinking"]
GROWTH_KINDS: tuple[GrowthKind, ...] = get_args(GrowthKind)


@configclass
class MixArchetype(Config):
    """A kind of recipient list: its provider shares and how often senders have it."""

    weight: float = setting(1.0, "Relative chance that a sender's list is of this kind.", ge=0)
    shares: dict[str, float] = setting_factory(
        dict, "Share of recipients at each provider (normalised to sum 1).", ge=0
    )


@configclass
class WeeklyPattern(Config):
    """A week's shape of the sender's volume and how often senders have it."""

    weight: float = setting(1.0, "Relative chance that a sender sends on this pattern.", ge=0)
    weekly_shape: tuple[float, ...] = setting(
        (1.0,) * 7, "Relative volume Monday..Sunday (normalised to mean 1).", ge=0
    )


def _mixes() -> dict[str, MixArchetype]:
    return {
        # §4 "Suggested default mixes": B2C US Gmail 50%, Yahoo/AOL 20%, Microsoft 13%,
        # Apple 3%, other 14%.
        "b2c": MixArchetype(
            weight=0.45,
            shares={"gmail": 0.50, "microsoft": 0.13, "yahoo": 0.20, "apple": 0.03, "other": 0.14},
        ),
        # §4 B2B: Google Workspace 30-40%, Microsoft 365 30-40%, gateways in "other".
        "b2b_microsoft": MixArchetype(
            weight=0.3,
            shares={"gmail": 0.33, "microsoft": 0.40, "yahoo": 0.03, "apple": 0.02, "other": 0.22},
        ),
        # §4 Mapp: UK Gmail 33%, Microsoft 23%, Verizon 18%; 1&1, Orange in "other".
        "eu": MixArchetype(
            weight=0.25,
            shares={"gmail": 0.33, "microsoft": 0.23, "yahoo": 0.18, "apple": 0.04, "other": 0.22},
        ),
    }


def _patterns() -> dict[str, WeeklyPattern]:
    return {
        # Transactional B2C mail: every day alike (steady_b2c_transactional).
        "b2c_flat": WeeklyPattern(weight=0.4, weekly_shape=(1.0, 1.0, 1.0, 1.0, 1.0, 0.9, 0.9)),
        # B2C marketing: lighter weekends (bursty_b2c_marketing).
        "b2c_marketing": WeeklyPattern(
            weight=0.3, weekly_shape=(1.1, 1.2, 1.2, 1.1, 1.0, 0.7, 0.7)
        ),
        # B2B: business days carry the load, quiet weekends (b2b_microsoft_heavy).
        "b2b_quiet_weekends": WeeklyPattern(
            weight=0.3, weekly_shape=(1.3, 1.3, 1.3, 1.3, 1.2, 0.3, 0.3)
        ),
    }


def _growth_weights() -> dict[str, float]:
    # Assumption: DOMAIN has no census of how senders' volumes move; most senders that
    # move to dedicated IPs are steady, some grow (§1 KumoMTA ramps "roughly linear"; the
    # fast_growing_startup scenario), a few shrink.
    return {"none": 0.4, "multiplicative": 0.25, "linear": 0.2, "shrinking": 0.15}


@configclass
class WorldConfig(Config):
    """The distribution of senders, MTAs and provider tolerances drawn per episode."""

    name: str = setting("default", "Short name of the world.")
    description: str = setting("", "One line for people reading reports.")
    daily_volume_messages: tuple[float, float] = setting(
        # §5 Resend: dedicated only above 500/day and 30k/month, so 100/day is well under
        # the line (a sixth of the draws are under it, enough for a policy to learn to stay
        # shared there; from 300/day it was 6%, and a 200-400/day sender sat at the edge);
        # §5 one IP per ~500k/day, "others cite 1-2 (up to 2.5) M/day per IP": 3M/day
        # needs several IPs (max_ips 8). Log-uniform: every decade alike.
        (100.0, 3_000_000.0),
        "Mean daily demand at the start of the episode, drawn log-uniform.",
        gt=0,
    )
    growth_kinds: dict[str, float] = setting_factory(
        _growth_weights,
        "Relative chance of each growth kind: none, multiplicative, linear, shrinking.",
        ge=0,
    )
    multiplicative_growth_per_day: tuple[float, float] = setting(
        # fast_growing_startup 5-8%/day, the test suite's slow_trust_startup 3-5%/day;
        # 1% is a sender doubling in ten weeks (assumption for the low end).
        (1.01, 1.08),
        "Daily growth factor of a multiplicatively growing sender.",
        gt=1,
    )
    linear_growth_share_per_day: tuple[float, float] = setting(
        # §1 KumoMTA: ramps "roughly linear (+2.5k to +25k/day)" on 100k-1M/day targets,
        # i.e. 0.5-5% of the start volume a day; a sender's list may grow alike (assumption).
        (0.005, 0.05),
        "Messages a linearly growing sender adds per day, as a share of its start volume.",
        gt=0,
    )
    shrinking_per_day: tuple[float, float] = setting(
        # Assumption, no DOMAIN figure: list churn and a fading product lose 0.5-3% a day
        # (a quarter to three quarters of the volume over a 45-day horizon).
        (0.97, 0.995),
        "Daily factor of a shrinking sender's volume.",
        gt=0,
        lt=1,
    )
    provider_mixes: dict[str, MixArchetype] = setting_factory(
        _mixes, "Kinds of recipient lists: provider shares and their chance."
    )
    mix_concentration: tuple[float, float] = setting(
        # Assumption: the shipped scenarios jitter their mix at concentration 200 (a few
        # points); down to 5 a mix strays far from its archetype (a random Dirichlet
        # around it, share standard deviations up to ~0.2). Log-uniform.
        (5.0, 300.0),
        "Dirichlet concentration of the sender's mix around its archetype, log-uniform.",
        gt=0,
    )
    bounce_rate: tuple[float, float] = setting(
        # Clean to poor: §3 readiness checklist bounce <1%, practitioners <2%, Resend <4%,
        # SES <5% and a pause above 10%. Spans the shipped 0.2-6% (poor_list_quality 3-6%)
        # and beyond, up to 8%. Log-uniform along the list's quality.
        (0.001, 0.08),
        "Hard-bounce share of transmitted mail, from the cleanest list to the poorest.",
        gt=0,
        lt=1,
    )
    complaint_rate: tuple[float, float] = setting(
        # §3 checklist <0.05%, Resend/Braze 0.08%, Gmail never 0.3%, SES review at 0.5%.
        # Spans the shipped 0.01-0.4% and beyond, up to 0.6%. Log-uniform along quality.
        (0.00005, 0.006),
        "Spam-complaint share of inbox deliveries, from the cleanest list to the poorest.",
        gt=0,
        lt=1,
    )
    trap_rate: tuple[float, float] = setting(
        # §3 spam traps: pristine traps list an IP fast. Shipped 0-0.02% (poor list); up to
        # 0.05% beyond it (assumption). Log-uniform along quality; 1e-6 is a clean list.
        (0.000001, 0.0005),
        "Spam-trap share of transmitted mail, from the cleanest list to the poorest.",
        gt=0,
        lt=1,
    )
    domain_reputation: tuple[float, float] = setting(
        # Shipped 0.5-0.8 (poor_list_quality 0.5-0.65); a poor list drags its domain down
        # (§3), so the poorest list has the lowest and the cleanest the highest.
        (0.45, 0.85),
        "The sending domain's reputation at the start, from the poorest list to the cleanest.",
        ge=0,
        le=1,
    )
    weekly_patterns: dict[str, WeeklyPattern] = setting_factory(
        _patterns, "Weekly shapes of senders' volume and their chance."
    )
    volume_noise: tuple[float, float] = setting(
        # The shipped scenarios' 0.08-0.2.
        (0.05, 0.25),
        "Standard deviation of the daily log-normal volume noise.",
        ge=0,
        le=2,
    )
    campaign_sender_share: float = setting(
        # Assumption: DOMAIN has no share of marketing senders; §7 SparkPost names senders of
        # "1-2 campaigns/week" a common hard case. Four in ten send campaigns here.
        0.4,
        "Share of senders that send marketing campaigns.",
        ge=0,
        le=1,
    )
    campaign_probability: tuple[float, float] = setting(
        # bursty_b2c_marketing 0.3, the test suite's eu_mix_marketing 0.45; up to every
        # campaign day (§7 SparkPost's newsletter on fixed weekdays).
        (0.2, 1.0),
        "Chance that one of the sender's campaign weekdays carries a campaign.",
        ge=0,
        le=1,
    )
    max_campaign_days_per_week: int = setting(
        # §7 SparkPost: "1-2 campaigns/week"; up to 3 for a busier marketer (assumption).
        3,
        "Most weekdays a campaign sender may send campaigns on (at least one).",
        ge=1,
        le=7,
    )
    campaign_multiplier: tuple[float, float] = setting(
        # bursty_b2c_marketing 3-5x; down to 1.5x and up to 8x beyond it (assumption: a big
        # announcement to the whole list).
        (1.5, 8.0),
        "Span of a campaign day's volume as a multiple of a normal day (two draws sorted).",
        ge=1,
    )
    campaign_start_hour: tuple[float, float] = setting(
        (6.0, 18.0), "Hour a campaign blast starts (floored), business hours.", ge=0, lt=24
    )
    campaign_duration_hours: tuple[float, float] = setting(
        (1.0, 8.0), "Hours over which a campaign's extra volume is sent (floored).", ge=1, le=24
    )
    spike_share: float = setting(
        # Assumption: a retailer's Black-Friday-like week (seasonal_spike) is an occasional
        # event, not the rule.
        0.15,
        "Share of senders with a seasonal spike within the horizon.",
        ge=0,
        le=1,
    )
    spike_start_day: tuple[float, float] = setting(
        # seasonal_spike day 25, the test suite's early spike day 12; from day 5 on.
        (5.0, 35.0),
        "First day of the spike (floored).",
        ge=0,
    )
    spike_duration_days: tuple[float, float] = setting(
        (3.0, 10.0), "Length of the spike in days (floored).", ge=1
    )
    spike_multiplier: tuple[float, float] = setting(
        # seasonal_spike 5x; §2 "immediately doubling ... could result in rate limiting".
        (2.0, 6.0),
        "Volume multiple during the spike.",
        ge=1,
    )
    queue_share: float = setting(
        # §1: SendGrid (current docs) queues and retries; Mailgun, SparkPost, SES early
        # warmup and SendGrid's older docs overflow to shared. Both are common: half each.
        0.5,
        "Share of episodes whose MTA queues overflow ('queue'); the rest send it to shared.",
        ge=0,
        le=1,
    )
    allowance_scale: tuple[float, float] = setting(
        # Per-IP allowances are unpublished (§ "Not found"); the test suite's strict
        # Microsoft (2-5k/h full trust against 3-10k/h) needs 0.5x. From 0.4x to 2.5x of each
        # provider's cold and full-trust ranges, log-uniform, per provider and episode.
        (0.4, 2.5),
        "Factor on a provider's cold and full-trust allowance ranges, log-uniform.",
        gt=0,
    )
    trust_growth_scale: tuple[float, float] = setting(
        # The test suite's slow trust (1.3-1.5 against Gmail's 1.5-1.9) needs 0.55x of the
        # growth above 1; SendGrid's 1.40x and Braze's doubling (§1) bound the fast end.
        (0.5, 1.3),
        "Factor on a provider's daily trust growth above 1 (both ends of its range).",
        gt=0,
    )
    escalation_scale: tuple[float, float] = setting(
        # The test suite's strict Microsoft escalates at 4-8 against 6-12: 0.67x; from 0.5x
        # to 1.5x, capped where a sender ignoring every 4xx is still blocked.
        (0.5, 1.5),
        "Factor on a provider's escalation threshold range (capped at the reachable pressure).",
        gt=0,
    )

    def _check(self) -> list[str]:
        problems = []
        unknown = sorted(set(self.growth_kinds) - set(GROWTH_KINDS))
        if unknown or sum(self.growth_kinds.values()) <= 0:
            problems.append(
                f"growth_kinds: expected weights of {list(GROWTH_KINDS)} with a positive sum, "
                f"got {self.growth_kinds}"
            )
        for field, table in (
            ("provider_mixes", self.provider_mixes),
            ("weekly_patterns", self.weekly_patterns),
        ):
            if sum(entry.weight for entry in table.values()) <= 0:
                weights = {name: entry.weight for name, entry in table.items()}
                problems.append(
                    f"{field}: expected entries with a positive total weight, got {weights}"
                )
        for name, mix in self.provider_mixes.items():
            if sum(mix.shares.values()) <= 0:
                problems.append(
                    f"provider_mixes.{name}.shares: expected shares with a positive sum, "
                    f"got {mix.shares}"
                )
        for name, pattern in self.weekly_patterns.items():
            if len(pattern.weekly_shape) != 7 or sum(pattern.weekly_shape) <= 0:
                problems.append(
                    f"weekly_patterns.{name}.weekly_shape: expected 7 weights with a positive "
                    f"sum, got {list(pattern.weekly_shape)}"
                )
        return problems
