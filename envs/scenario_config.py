"""Typed configuration of the sender scenario: volume, provider mix, shapes, list quality.

Every default and range cites the DOMAIN.md bullet it comes from (``§N`` is the section of
``shared/DOMAIN.md``). Ranges written ``(low, high)`` are drawn uniformly per episode, so a
policy has to adapt to the provider it meets rather than memorise one.
"""

from __future__ import annotations

from typing import Literal, get_args

from ipwarmup.config import Config, configclass, setting, setting_factory

HOURS_PER_DAY = 24

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAY_NAMES: tuple[Weekday, ...] = get_args(Weekday)  # Monday first, as weekly_shape


def _b2c_mix() -> dict[str, float]:
    # §4 "Suggested default mixes": B2C US ≈ Gmail 50%, Yahoo/AOL 20%, Microsoft 13%,
    # Apple iCloud 3%, other 14%.
    return {"gmail": 0.50, "microsoft": 0.13, "yahoo": 0.20, "apple": 0.03, "other": 0.14}


# A business-hours weighted day (mean 1.0): senders peak in the morning and early evening.
_DIURNAL_SHAPE = (
    0.35, 0.25, 0.2, 0.2, 0.25, 0.4, 0.7, 1.1, 1.45, 1.6, 1.6, 1.5,
    1.4, 1.4, 1.4, 1.35, 1.3, 1.3, 1.3, 1.25, 1.1, 0.9, 0.6, 0.45,
)  # fmt: skip


@configclass
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
        (1.0, 1.0),
        "Multiplicative growth of the mean daily demand per day (exclusive with linear).",
        gt=0,
    )
    growth_messages_per_day: tuple[float, float] = setting(
        # DOMAIN gives no figure for how senders' lists grow; ramps come in both kinds (§1
        # KumoMTA "roughly linear (+2.5k to +25k/day)"; §6 MailerQ schedules "exponential
        # or linear"), so a sender may too. Assumption; 0 keeps the sender as it was.
        (0.0, 0.0),
        "Messages added to the mean daily demand per day (linear; negative shrinks, floor 0).",
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
        0.0, "Chance that a campaign weekday carries a marketing campaign.", ge=0, le=1
    )
    campaign_weekdays: tuple[Weekday, ...] = setting(
        # §7 SparkPost: senders of "1-2 campaigns/week" are the hard case for auto warmup;
        # [tue, thu] with probability 1 is one. Every day by default keeps the old draws.
        WEEKDAY_NAMES,
        "Weekdays (mon..sun) on which campaigns may happen; every day by default.",
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
        days = self.campaign_weekdays
        if not days or len(set(days)) != len(days):
            problems.append(
                "campaign_weekdays: expected distinct weekday names (mon..sun), at least one, "
                f"got {list(self.campaign_weekdays)}"
            )
        if self.growth_per_day != (1.0, 1.0) and self.growth_messages_per_day != (0.0, 0.0):
            # One uniform draws the episode's growth; two kinds at once would be one
            # correlated draw that no real sender's plan describes.
            problems.append(
                "growth_messages_per_day: expected [0.0, 0.0] when growth_per_day is set "
                "(linear and multiplicative growth are exclusive), got "
                f"{list(self.growth_messages_per_day)} with growth_per_day "
                f"{list(self.growth_per_day)}"
            )
        if sum(self.provider_mix.values()) <= 0:
            problems.append(
                f"provider_mix: expected shares with a positive sum, got {self.provider_mix}"
            )
        return problems
