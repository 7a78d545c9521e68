"""How inbox providers judge a sending IP: hidden tolerances, allowance, reputation, placement.

Each function works on numpy arrays with a leading batch axis and is pure: the simulator
owns the state and passes it in. Shapes: ``B`` environments, ``K`` IP slots, ``P``
providers. Numbers come from ``envs/config.py``, which cites DOMAIN.md for each.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from ipwarmup.envs.compiled import ufunc
from ipwarmup.envs.config import ProviderConfig
from ipwarmup.envs.provider_config import MAX_OVERSHOOT_PER_HOUR

__all__ = ["MAX_OVERSHOOT_PER_HOUR"]  # re-exported: the hour loop and the MTA emulator use it

# Reputation at which a provider places mail at its published average inbox rate
# (Validity's 2026 per-provider figures, DOMAIN §3, are averages over senders in good standing).
GOOD_REPUTATION = 0.8
# Best daily "quality" a clean, consistent sender earns (reputation tends to it).
QUALITY_CEILING = 0.95
# How a list's rates count against its standing: by the square of their ratio to the
# provider's thresholds (see daily_quality; an assumption, no public number).
QUALITY_PENALTY_EXPONENT = 2.0
# Spam-trap hits per transmitted message at which a provider treats the list as harvested
# (§3 spam traps: one hit can list quickly; an assumption of scale, no public number).
SPAM_TRAP_RATE_LIMIT = 1e-4


@dataclass
class ProviderDraw:
    """Hidden per-episode tolerances of every provider, each of shape (B, P)."""

    cold_allowance: np.ndarray
    full_allowance: np.ndarray
    trust_growth: np.ndarray
    cooling_factor: np.ndarray
    peak_memory_days: np.ndarray
    spike_tolerance: np.ndarray
    complaint_threshold: np.ndarray
    bounce_threshold: np.ndarray
    escalation_threshold: np.ndarray
    pressure_decay: np.ndarray
    throttle_hours: np.ndarray
    throttle_acceptance: np.ndarray
    acceptance_noise: np.ndarray
    probation_hours: np.ndarray
    block_hours: np.ndarray
    block_penalty: np.ndarray
    repeat_offence_factor: np.ndarray
    max_repeat_factor: np.ndarray
    domain_block_penalty: np.ndarray
    ip_reputation_weight: np.ndarray
    memory_days: np.ndarray
    cold_reputation: np.ndarray
    reputation_volume: np.ndarray
    base_inbox_rate: np.ndarray
    placement_sensitivity: np.ndarray

    def __post_init__(self) -> None:
        """Lay every field out as a row of one (F, B, P) array.

        The compiled period then reads them all in one argument (see draw_block).

        Raises:
            ValueError: the fields are not all of one shape.
        """
        names = [f.name for f in fields(self)]
        values = [np.asarray(getattr(self, name), dtype=np.float64) for name in names]
        shapes = {value.shape for value in values}
        if len(shapes) != 1:
            raise ValueError(
                f"ProviderDraw: expected every field of one shape, got {sorted(shapes)}"
            )
        for name, row in zip(names, np.stack(values), strict=True):
            object.__setattr__(self, name, row)

    def __setattr__(self, name: str, value: object) -> None:
        # Once laid out, a field assigned a new array takes its values into its row, so
        # the block the compiled period reads stays the draw (draw_block trusts it).
        if name in _FIELD_NAMES and _laid_out(self) is not None:
            getattr(self, name)[...] = value
        else:
            object.__setattr__(self, name, value)

    def rows(self, index: np.ndarray) -> dict[str, np.ndarray]:
        """Return every field's rows at ``index`` (for writing into a batch)."""
        return {f.name: getattr(self, f.name)[index] for f in fields(self)}


DRAW_FIELDS = tuple(f.name for f in fields(ProviderDraw))
"""The draw's fields in order: the rows of :func:`draw_block`."""
_FIELD_NAMES = frozenset(DRAW_FIELDS)


def _laid_out(draw: ProviderDraw) -> np.ndarray | None:
    """Return the (F, B, P) array whose rows the draw's fields are, or None (not yet)."""
    fields_now = draw.__dict__
    last = fields_now.get(DRAW_FIELDS[-1])
    block = getattr(last, "base", None)
    if not isinstance(block, np.ndarray) or block.shape[0] != len(DRAW_FIELDS):
        return None
    return block if getattr(fields_now.get(DRAW_FIELDS[0]), "base", None) is block else None


def draw_block(draw: ProviderDraw) -> np.ndarray:
    """Return the draw as one (F, B, P) array whose rows its fields are."""
    block = _laid_out(draw)
    assert block is not None  # every ProviderDraw is laid out at construction
    return block


_RANGED = (
    "cold_hourly_allowance_messages",
    "full_trust_hourly_allowance_messages",
    "trust_growth_per_day",
    "cooling_days",
    "spike_tolerance",
    "complaint_threshold",
    "bounce_threshold",
    "escalation_threshold",
    "block_duration_days",
    "reputation_memory_days",
    "cold_reputation",
    "reputation_volume_messages",
    "throttle_duration_hours",
)
N_PROVIDER_UNIFORMS = len(_RANGED)


def draw_providers(providers: list[ProviderConfig], uniforms: np.ndarray) -> ProviderDraw:
    """Turn uniforms of shape (B, N_PROVIDER_UNIFORMS, P) into each provider's tolerances."""
    low = np.array([[getattr(p, name)[0] for p in providers] for name in _RANGED])
    high = np.array([[getattr(p, name)[1] for p in providers] for name in _RANGED])
    # Log-uniform would favour small values; plain uniform keeps the configured midpoint
    # as the typical provider, which is what the DOMAIN figures describe.
    v = low[None] + (high - low)[None] * uniforms
    cold, full = v[:, 0], v[:, 1]
    cooling_days = v[:, 3]

    def const(name: str) -> np.ndarray:
        row = np.array([float(getattr(p, name)) for p in providers])
        return np.broadcast_to(row, cold.shape).copy()

    return ProviderDraw(
        cold_allowance=cold,
        full_allowance=full,
        trust_growth=v[:, 2],
        # An idle IP falls from full trust to cold in `cooling_days` (DOMAIN §3: most ISPs
        # keep reputation data 30 days; SendGrid re-warms after 30 idle days): it holds for
        # `peak_memory_days` on its last busy hour (see update_allowance), then shrinks.
        cooling_factor=(cold / full) ** (1.0 / (cooling_days - const("peak_memory_days"))),
        peak_memory_days=const("peak_memory_days"),
        spike_tolerance=v[:, 4],
        complaint_threshold=v[:, 5],
        bounce_threshold=v[:, 6],
        escalation_threshold=v[:, 7],
        pressure_decay=const("pressure_decay_per_hour"),
        throttle_hours=v[:, 12],
        throttle_acceptance=const("throttle_acceptance"),
        acceptance_noise=const("acceptance_noise"),
        probation_hours=const("probation_hours"),
        block_hours=v[:, 8] * 24.0,
        block_penalty=const("block_reputation_penalty"),
        repeat_offence_factor=const("repeat_offence_factor"),
        max_repeat_factor=const("max_repeat_factor"),
        domain_block_penalty=const("domain_block_penalty"),
        ip_reputation_weight=const("ip_reputation_weight"),
        memory_days=v[:, 9],
        cold_reputation=v[:, 10],
        reputation_volume=v[:, 11],
        base_inbox_rate=const("base_inbox_rate"),
        placement_sensitivity=const("placement_sensitivity"),
    )


# Each formula is a numba ufunc, written once for one element: numpy arrays broadcast
# through it from Python, and the compiled period (``envs/period_kernel.py``) calls it on
# scalars. ``np.clip(x, lo, hi)`` is ``min(max(x, lo), hi)`` for the finite values here.
def _inbox_rate(
    reputation: float, domain_reputation: float, base: float, sensitivity: float, weight: float
) -> float:
    combined = weight * reputation + (1 - weight) * domain_reputation
    return min(max(base + sensitivity * (combined - GOOD_REPUTATION), 0.02), 0.99)


def _trust_ceiling(reputation: float) -> float:
    return min(max((reputation - 0.2) / (GOOD_REPUTATION - 0.2), 0.02), 1.0)


def _daily_quality(
    complaint_rate: float,
    bounce_rate: float,
    trap_rate: float,
    complaint_threshold: float,
    bounce_threshold: float,
) -> float:
    k = QUALITY_PENALTY_EXPONENT
    penalty = (
        0.5 * min(max(complaint_rate / complaint_threshold, 0.0), 2.0) ** k
        + 0.3 * min(max(bounce_rate / bounce_threshold, 0.0), 2.0) ** k
        + 0.3 * min(max(trap_rate / SPAM_TRAP_RATE_LIMIT, 0.0), 2.0) ** k
    )
    return float(min(max(QUALITY_CEILING - penalty, 0.0), 1.0))


def _update_reputation(
    reputation: float,
    quality: float,
    volume: float,
    cold_reputation: float,
    reputation_volume: float,
    memory_days: float,
) -> float:
    confidence = min(max(volume / reputation_volume, 0.0), 1.0)
    target = confidence * quality + (1.0 - confidence) * cold_reputation
    return reputation + (target - reputation) / memory_days


def _update_allowance(
    allowance: float,
    peak_hour_sent: float,
    held_peak: float,
    hold_utilization: float,
    trust_growth: float,
    cooling_factor: float,
    full_allowance: float,
    cold_allowance: float,
    reputation: float,
) -> float:
    use = min(max(peak_hour_sent / allowance, 0.0), 1.0)
    if use >= hold_utilization:  # grow; only the branch taken pays for its logarithm
        step = (use - hold_utilization) / (1.0 - hold_utilization) * np.log(trust_growth)
    else:  # shrink, by the busiest hour the provider remembers
        held = max(min(max(held_peak / allowance, 0.0), 1.0), use)
        step = min((hold_utilization - held) / hold_utilization * np.log(cooling_factor), 0.0)
    ceiling = max(full_allowance * trust_ceiling_one(reputation), cold_allowance)
    return float(min(max(allowance * np.exp(step), cold_allowance), ceiling))


def _spike_penalty(volume: float, reference_volume: float, tolerance: float) -> float:
    ratio = volume / max(reference_volume, 1.0)
    excess = np.log(max(ratio / tolerance, 1.0)) / np.log(2.0)
    return float(0.2 * min(max(excess, 0.0), 1.0))


inbox_rate_one: Callable[..., Any] = ufunc(5, _inbox_rate)
"""The ufunc of :func:`inbox_rate` (its arguments in order, ``ip_weight`` last)."""
trust_ceiling_one: Callable[..., Any] = ufunc(1, _trust_ceiling)
"""The ufunc of :func:`trust_ceiling`."""
daily_quality_one: Callable[..., Any] = ufunc(5, _daily_quality)
"""The ufunc of :func:`daily_quality`, the two thresholds last."""
update_reputation_one: Callable[..., Any] = ufunc(6, _update_reputation)
"""The ufunc of :func:`update_reputation`."""
update_allowance_one: Callable[..., Any] = ufunc(9, _update_allowance)
"""The ufunc of :func:`update_allowance`: ``held_peak`` third, then ``hold_utilization``,
the draw's ``trust_growth, cooling_factor, full_allowance, cold_allowance``, ``reputation``."""
spike_penalty_one: Callable[..., Any] = ufunc(3, _spike_penalty)
"""The ufunc of :func:`spike_penalty`."""


def inbox_rate(
    reputation: np.ndarray,
    domain_reputation: np.ndarray,
    base_inbox_rate: np.ndarray,
    sensitivity: np.ndarray,
    *,
    ip_weight: np.ndarray,
) -> np.ndarray:
    """Share of delivered mail placed in the inbox rather than the spam folder.

    At good reputation (0.8) a provider places mail at its published average (DOMAIN §3
    Validity 2026: Gmail 89.8%, Yahoo 87.3%, Microsoft 77.4%, Apple 82%); every 0.1 of
    reputation below moves placement by ``0.1 * sensitivity``. Postmaster's LOW tier
    ("likely be marked as spam") sits near reputation 0.3. The judgement weighs the IP's
    reputation by ``ip_weight`` and the domain's by the rest, per provider (DOMAIN §2:
    Gmail 4.7.28 keys on the IP and the SPF and DKIM domains; Microsoft's SNDS is per IP).
    """
    rate: np.ndarray = inbox_rate_one(
        reputation, domain_reputation, base_inbox_rate, sensitivity, ip_weight
    )
    return rate


def trust_ceiling(reputation: np.ndarray) -> np.ndarray:
    """Share of the full-trust allowance a provider grants at this reputation."""
    ceiling: np.ndarray = trust_ceiling_one(reputation)
    return ceiling


def daily_quality(
    complaint_rate: np.ndarray,
    bounce_rate: np.ndarray,
    trap_rate: np.ndarray,
    draw: ProviderDraw,
) -> np.ndarray:
    """Score (0..1) of one day's list behaviour at each provider, shape (B, P).

    Complaints weigh most (DOMAIN §3: Gmail keep below 0.1%, never 0.3%); bounces next
    (ESPs act at 2-5%); spam-trap hits list an IP quickly (§3 spam traps).

    Each rate counts by the square of its ratio to the provider's threshold
    (``QUALITY_PENALTY_EXPONENT``). Assumption, no public number: thresholds are where
    providers act (Gmail "never reach 0.3%", ESPs pause at 5% bounces), and mail well under
    them earns a sender the top tier (Postmaster HIGH, "rarely marked by the spam filter";
    Sender Score 91-100 places 88%, DOMAIN §8 A1), so the harm is small far below a threshold
    and grows as the rate nears it. A linear penalty made a list at a third of every
    threshold (a clean B2C sender) lose a fifth of its standing and never overtake the
    shared pool.
    """
    quality: np.ndarray = daily_quality_one(
        complaint_rate, bounce_rate, trap_rate, draw.complaint_threshold, draw.bounce_threshold
    )
    return quality


def update_reputation(
    reputation: np.ndarray,
    quality: np.ndarray,
    volume: np.ndarray,
    cold_reputation: np.ndarray,
    reputation_volume: np.ndarray,
    memory_days: np.ndarray,
) -> np.ndarray:
    """Move reputation one day along its ~30-day moving average.

    The provider trusts a day's record in proportion to the volume it saw (DOMAIN §5:
    Resend, below 30k/month "may not be enough to keep the IPs warm"; Mandrill wants
    5,000/day). What it does not trust drifts back to the neutral judgement of an unknown
    IP, so a low-volume dedicated IP never earns the shared pool's standing.
    """
    updated: np.ndarray = update_reputation_one(
        reputation, quality, volume, cold_reputation, reputation_volume, memory_days
    )
    return updated


def update_allowance(
    allowance: np.ndarray,
    peak_hour_sent: np.ndarray,
    hold_utilization: float | np.ndarray,
    draw: ProviderDraw,
    reputation: np.ndarray,
    *,
    held_peak: np.ndarray | None = None,
) -> np.ndarray:
    """Grow or shrink an IP's earned hourly allowance after one day.

    Using the allowance fully today grows it by ``trust_growth`` (DOMAIN §1: SendGrid's
    1.40x a day must run clean for a typical sender). It shrinks only when ``held_peak``,
    the busiest hour of the last ``peak_memory_days`` (see end_day; today's peak when
    None), used less than ``hold_utilization`` of it, down to cold after ``cooling_days``
    of silence (SES adaptive warmup: "when volume to an ISP drops, that ISP's warm-up
    percentage drops too"). So a weekly campaign keeps the allowance it earned across the
    quiet days between sends, and only growth needs today's use. The result stays between
    the cold allowance and the full-trust allowance scaled by reputation.
    """
    held = peak_hour_sent if held_peak is None else held_peak
    # numba's ufunc loop can leave a spurious divide-by-zero flag (no element divides by
    # zero, checked one by one): numpy would turn it into a warning.
    with np.errstate(divide="ignore"):
        updated: np.ndarray = update_allowance_one(
            allowance,
            peak_hour_sent,
            held,
            hold_utilization,
            draw.trust_growth,
            draw.cooling_factor,
            draw.full_allowance,
            draw.cold_allowance,
            reputation,
        )
    return updated


def spike_penalty(
    volume: np.ndarray, reference_volume: np.ndarray, tolerance: np.ndarray
) -> np.ndarray:
    """Quality lost for a day's volume far above what the provider saw before.

    DOMAIN §2 Google: "immediately doubling previously sent volumes suddenly could result in
    rate limiting"; Microsoft is "especially sensitive to fluctuations in volume". The
    reference is the larger of the recent average and the day before (see end_day): a ramp
    at the provider's own trust growth is not a spike, a jump over a quiet week is.
    """
    penalty: np.ndarray = spike_penalty_one(volume, reference_volume, tolerance)
    return penalty
