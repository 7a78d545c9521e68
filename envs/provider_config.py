"""Typed configuration of the inbox providers: each one's hidden tolerance, and the defaults.

Every default and range cites the DOMAIN.md bullet it comes from (``§N`` is the section of
``shared/DOMAIN.md``). Ranges written ``(low, high)`` are drawn uniformly per episode, so a
policy has to adapt to the provider it meets rather than memorise one.

Where DOMAIN.md has no number (Gmail, Yahoo and Microsoft publish no per-IP rate limits,
"Not found / unverified"), the value is an assumption chosen to reproduce the published
schedules' behaviour, and the comment says so.
"""

from __future__ import annotations

from ipwarmup.config import Config, configclass, setting

# A provider's overshoot counter saturates so one terrible hour cannot outweigh a day; the
# ignored-deferral pressure therefore never exceeds MAX_OVERSHOOT_PER_HOUR / (1 - decay).
MAX_OVERSHOOT_PER_HOUR = 5.0
# An escalation threshold must be crossed by a sender that ignores every 4xx for a day:
# at most this share of the pressure's ceiling (0.9^22 < 0.1, so a saturated day gets there).
REACHABLE_SHARE_OF_CEILING = 0.9


@configclass
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
    peak_memory_days: int = setting(
        # An assumption, no public number: Google asks for a consistent rate, not the same
        # volume every day, and ISPs keep reputation data about 30 days (DOMAIN §3), so a
        # weekly newsletter's campaign hour keeps its allowance across the quiet days
        # between sends. Cooling still reaches cold in `cooling_days` of silence.
        7,
        "Days a busy hour keeps the allowance from shrinking (the busiest of these counts).",
        ge=1,
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
        # Below 0.9 of the pressure's ceiling (50 at decay 0.9): a sender that pushes through
        # every 4xx is throttled, then blocked, whatever the draw (see _check).
        (25.0, 45.0),
        "Accumulated ignored-deferral pressure at which the provider escalates: a throttle "
        "(4xx) first, a block (5xx) if the pressure crosses it again while throttled.",
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
    throttle_duration_hours: tuple[float, float] = setting(
        # §2/§8B Gmail 421 4.7.28 "temporarily rate limited": practitioners report 24-48 h,
        # and it lifts with no request once behaviour changes.
        (24.0, 48.0),
        "How long a rate limit (4xx throttle) lasts once the provider imposes it.",
        gt=0,
    )
    probation_hours: float = setting(
        # §2 Adobe: soft bounces >30% "not resolved within 24 h" escalate; Yahoo: act if
        # deferrals last 48 h. An assumption: a day after a throttle lifts, the provider still
        # remembers it, and a new escalation then is a block.
        24.0,
        "Hours after a throttle lifts during which a new escalation blocks the IP.",
        ge=0,
    )
    acceptance_noise: float = setting(
        # Assumption, no public number: acceptance varies hour to hour with the provider's
        # load (§2 Apple: 451 4.7.1 at top-of-hour peaks; EOP's "server busy"), so what an
        # ESP sees accepted is a sample, not the hidden allowance itself.
        0.1,
        "Log-normal spread of the hourly acceptance around the allowance (0: exact).",
        ge=0,
        le=2,
    )
    throttle_acceptance: float = setting(
        # Assumption, no public number: a rate-limited IP still gets some mail through (Braze:
        # 5,000 of a 100,000 send accepted in a cold IP's first hour, §2 Gmail).
        0.2,
        "Share of its allowance a throttled IP still has accepted; the rest is deferred.",
        gt=0,
        le=1,
    )
    block_duration_days: tuple[float, float] = setting(
        # §8B Gmail: the permanent forms (550 5.7.28, 550 5.7.1) need the sender to change;
        # no published duration, an assumption of a few days.
        (1.0, 3.0),
        "How long a block (5xx, mail rejected and lost) lasts at a first offence.",
        gt=0,
    )
    repeat_offence_factor: float = setting(
        # §8B "Repeat offenders: not found" for the big providers; BlueTie blocks 12 h on a
        # first offence and longer after. An assumption, configurable: each earlier block of
        # this sender at this provider doubles the next throttle's and block's duration.
        2.0,
        "Factor on throttle and block durations per earlier block of the sender here.",
        ge=1,
    )
    max_repeat_factor: float = setting(
        8.0, "Cap on the repeat-offence factor (a block never lasts more than 8x).", ge=1
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
    domain_block_penalty: float = setting(
        # §8B Gmail 4.7.28 keys on the IP, SPF and DKIM domains: a block of one IP is also a
        # mark against the sending domain. Assumption of size, no public number.
        0.05,
        "Domain reputation lost at a block, and when a throttled or blocked IP is dropped "
        "(IP hopping does not shed the domain's record).",
        ge=0,
        le=1,
    )
    ip_reputation_weight: float = setting(
        # §2 Gmail keys limits on IP and domains; Microsoft's SNDS and S3150 are per IP.
        # Assumption of the split, no public number.
        0.6,
        "Share of the placement decision resting on the IP's reputation; the rest on the domain's.",
        ge=0,
        le=1,
    )
    cold_reputation: tuple[float, float] = setting(
        (0.45, 0.55),
        "Reputation (0 bad .. 1 excellent) of an IP the provider has never seen.",
        ge=0,
        le=1,
    )
    reputation_volume_messages: tuple[float, float] = setting(
        # Assumption anchored to the eligibility line issue 8 sets, Resend's (DOMAIN §5: over
        # 500 a day, and under 30k a month "may not be enough to keep the IPs warm"): at
        # 1,000 a day a provider with a third to a half of the mail sees 300-500 of it. So a
        # sender at the line earns part of its record and a 3k-a-day sender all of it on
        # weekdays, while a 300-a-day sender never does. Was (1,000, 3,000), which put the
        # line nearer Mandrill's 5,000 a day and left a 3k-a-day B2B sender better shared.
        (300.0, 1_000.0),
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
        ceiling = MAX_OVERSHOOT_PER_HOUR / (1.0 - self.pressure_decay_per_hour)
        reachable = REACHABLE_SHARE_OF_CEILING * ceiling
        if self.escalation_threshold[1] > reachable:
            problems.append(
                f"escalation_threshold: expected at most {reachable:g} (0.9 of the pressure's "
                f"ceiling {ceiling:g} at pressure_decay_per_hour {self.pressure_decay_per_hour}), "
                f"so that a sender ignoring every 4xx is blocked; got "
                f"{list(self.escalation_threshold)}"
            )
        if self.cooling_days[0] <= self.peak_memory_days:
            problems.append(
                f"cooling_days: expected above peak_memory_days ({self.peak_memory_days}), "
                "since an idle IP holds its allowance that long before it cools; got "
                f"{list(self.cooling_days)}"
            )
        if self.cold_hourly_allowance_messages[1] > self.full_trust_hourly_allowance_messages[0]:
            problems.append(
                "cold_hourly_allowance_messages: expected below full_trust_hourly_allowance_"
                f"messages, got {list(self.cold_hourly_allowance_messages)} against "
                f"{list(self.full_trust_hourly_allowance_messages)}"
            )
        return problems


def _gmail() -> ProviderConfig:
    # §2/§8B Gmail: 4.7.28 rate limits (4xx, mail deferred and retried) "typically 24-48
    # hours"; the permanent 550 5.7.28 if the sender keeps pushing; 4xx is the usual answer,
    # blocks are rarer than at Microsoft/Yahoo (high escalation threshold). 4.7.28 keys on
    # the SPF and DKIM domains too -> a block marks the domain most here, and placement
    # rests on the domain more than elsewhere.
    # §3 Gmail spam rate: keep below 0.1%, never reach 0.3% -> complaint threshold 0.1-0.3%.
    # §3 Validity 2026: Gmail inbox placement 89.8%.
    # §3 Postmaster shows data above ~250/day; Mandrill >= 5,000/day -> trust needs 1-3k/day.
    # Per-IP allowances are unpublished ("Not found"); KumoMTA's Google shaping (5
    # connections x 50 msgs/conn, §7) is the proxy for the full-trust order of magnitude.
    return ProviderConfig(domain_block_penalty=0.1, ip_reputation_weight=0.5)


def _microsoft() -> ProviderConfig:
    # §2 Microsoft: "especially sensitive to fluctuations in volume", new senders "guilty
    # until proven innocent" -> lower cold allowance and reputation, slower trust growth.
    # §2 "S3150 is what you get when you don't slow down after seeing 4xx" -> low
    # escalation threshold; 451 4.7.650 (S775) rate limits and EOP's 4.7.500 clear in 1-4 h;
    # S3150 lasts until a delisting request succeeds: answers within 12-24 h, first requests
    # often refused, then "conditionally mitigated" (§8B) -> days to two weeks. SNDS and
    # S3150 are per IP -> placement rests on the IP more than elsewhere.
    # §3 Validity 2026: Microsoft inbox 77.4%; §3 SNDS: spam verdicts swing 10-90% -> high
    # placement sensitivity. §7 KumoMTA Outlook: 5 connections, 50 msgs/conn.
    return ProviderConfig(
        cold_hourly_allowance_messages=(10.0, 40.0),
        full_trust_hourly_allowance_messages=(3_000.0, 10_000.0),
        trust_growth_per_day=(1.35, 1.7),
        spike_tolerance=(1.5, 2.0),
        complaint_threshold=(0.001, 0.003),
        escalation_threshold=(6.0, 12.0),
        throttle_duration_hours=(1.0, 4.0),
        block_duration_days=(2.0, 14.0),
        domain_block_penalty=0.03,
        ip_reputation_weight=0.7,
        cold_reputation=(0.35, 0.45),
        base_inbox_rate=0.774,
        placement_sensitivity=1.5,
    )


def _yahoo() -> ProviderConfig:
    # §2 Yahoo: TSS04 deferrals on "unexpected volume"; TSS09 "permanently deferred" blocks;
    # TSS04 deferrals: resend after 4 h, escalate if they last >48 h, and they "can persist
    # for weeks" after the cause is removed (§2, §8B) -> a throttle of 1-14 days; TSS09
    # "permanently deferred, retrying will NOT succeed" needs contact with Yahoo -> 3-10 days.
    # §3 Yahoo publishes no complaint threshold; harm at ~1% invalid addresses -> lower bounce
    # threshold. §3 Validity 2026: Yahoo inbox 87.3%. §7 KumoMTA Yahoo: 20 msgs/conn.
    return ProviderConfig(
        cold_hourly_allowance_messages=(30.0, 80.0),
        full_trust_hourly_allowance_messages=(8_000.0, 25_000.0),
        trust_growth_per_day=(1.45, 1.8),
        spike_tolerance=(1.8, 2.5),
        bounce_threshold=(0.01, 0.03),
        escalation_threshold=(6.0, 12.0),
        throttle_duration_hours=(24.0, 336.0),
        block_duration_days=(3.0, 10.0),
        base_inbox_rate=0.873,
        placement_sensitivity=1.2,
    )


def _apple() -> ProviderConfig:
    # §2 Apple iCloud: 421 "deferred due to excessive volume", limits "usually clear within
    # a few hours" -> throttles of 2-6 h; 550 5.7.1 [CS01] policy rejections for a sender
    # that keeps pushing -> blocks of a day or two (no published duration, an assumption);
    # Apple has no FBL -> no complaint feed.
    # §3 Validity 2026: Apple inbox 82%. §7 KumoMTA Apple: 10 connections, 5 msgs/conn, the
    # lowest per-connection figure -> the smallest full-trust allowance.
    return ProviderConfig(
        cold_hourly_allowance_messages=(10.0, 40.0),
        full_trust_hourly_allowance_messages=(2_000.0, 8_000.0),
        trust_growth_per_day=(1.45, 1.8),
        escalation_threshold=(15.0, 30.0),
        throttle_duration_hours=(2.0, 6.0),
        block_duration_days=(1.0, 2.0),
        base_inbox_rate=0.82,
        complaint_feedback=False,
    )


def _other() -> ProviderConfig:
    # §3 Validity 2026: global inbox 87.2% for the long tail (cable ISPs, gateways);
    # §7 KumoMTA default shaping (10 connections, 100 msgs/conn) for the order of magnitude.
    return ProviderConfig(
        full_trust_hourly_allowance_messages=(10_000.0, 30_000.0),
        escalation_threshold=(20.0, 40.0),
        throttle_duration_hours=(1.0, 24.0),
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
