"""Escalation: how a provider answers a sender that keeps pushing through its 4xx deferrals.

Per IP and provider, the ladder DOMAIN §8B recommends ("a 4xx throttle lifting in hours if
the sender backs off, then a 5xx block lasting days if pressure continues"):

* ignored-deferral pressure crosses the provider's threshold: a **throttle** (Gmail 421
  4.7.28, Microsoft 451 4.7.650, Yahoo 421 TSS04, Apple 421 4.7.1). The IP keeps
  ``throttle_acceptance`` of its allowance; the rest is deferred, retried or spilled, never
  lost. It lifts after ``throttle_duration_hours`` (hours at Microsoft and Apple, a day or
  two at Gmail, up to weeks at Yahoo).
* the pressure crosses the threshold again while throttled, or within ``probation_hours``
  of the throttle lifting (the sender did not slow down after the 4xx; Microsoft staff:
  "S3150 is what you get when you don't slow down after seeing 4xx"): a **block** (550
  5.7.28, S3150, TSS09, CS01). Mail is rejected and lost for ``block_duration_days``; the
  IP loses reputation, which its ~30-day memory takes weeks to restore, and half its
  allowance, and the domain loses ``domain_block_penalty``.
* a **repeat offender** waits longer: every earlier block of the sender at a provider, on
  any of its IPs (providers key on the netblock and the domains too, §8B), multiplies the
  next throttle's and block's duration by ``repeat_offence_factor``, up to
  ``max_repeat_factor``.
"""

from __future__ import annotations

from collections.abc import Callable

import numba
import numpy as np

from ipwarmup.envs.state import SimState


def acceptance_limit(state: SimState) -> np.ndarray:
    """Return what each IP's provider accepts an hour now, (B, K, P).

    The allowance, cut to ``throttle_acceptance`` of it while throttled; a blocked IP's
    limit is not zeroed here (its callers treat blocks their own way).
    """
    share = np.where(state.throttled, state.draw.throttle_acceptance[:, None, :], 1.0)
    limit: np.ndarray = state.allowance * share
    return limit


def _limit_one(allowance: float, throttled: bool, throttle_acceptance: float) -> float:
    """Return :func:`acceptance_limit` of one IP at one provider (the compiled period's)."""
    return allowance * (throttle_acceptance if throttled else 1.0)


limit_one: Callable[[float, bool, float], float] = numba.njit(cache=True)(_limit_one)


def repeat_factor(state: SimState) -> np.ndarray:
    """Return the duration factor each provider applies to this sender now, (B, P)."""
    d = state.draw
    factor: np.ndarray = np.minimum(d.repeat_offence_factor**state.offences, d.max_repeat_factor)
    return factor


def _escalate_arrays(
    escalated: np.ndarray,
    now: np.ndarray,
    pressure: np.ndarray,
    blocked: np.ndarray,
    blocked_until: np.ndarray,
    throttled: np.ndarray,
    throttled_until: np.ndarray,
    reputation: np.ndarray,
    allowance: np.ndarray,
    offences: np.ndarray,
    domain_reputation: np.ndarray,
    probation_hours: np.ndarray,
    throttle_hours: np.ndarray,
    block_hours: np.ndarray,
    block_penalty: np.ndarray,
    cold_allowance: np.ndarray,
    repeat_offence_factor: np.ndarray,
    max_repeat_factor: np.ndarray,
    domain_block_penalty: np.ndarray,
    throttles: np.ndarray,
    blocks: np.ndarray,
) -> None:
    """Run :func:`escalate` on the state's arrays, updated in place (B, K, P unless noted).

    ``offences``, ``domain_reputation`` and the draws are (B, P); ``now`` (B,) the hour;
    ``throttles`` and ``blocks`` (B,) get each row's new throttles and blocks added.
    Every provider's duration factor is read before any offence of this call counts.
    """
    n_rows, n_slots, n_providers = escalated.shape
    for b in range(n_rows):
        start = now[b]
        for p in range(n_providers):
            factor = min(repeat_offence_factor[b, p] ** offences[b, p], max_repeat_factor[b, p])
            new_blocks = 0
            for k in range(n_slots):
                if not escalated[b, k, p]:
                    continue
                pressure[b, k, p] = 0.0
                if blocked[b, k, p]:
                    continue
                if throttled[b, k, p] or start < throttled_until[b, k, p] + probation_hours[b, p]:
                    throttled[b, k, p] = False
                    blocked[b, k, p] = True
                    blocked_until[b, k, p] = start + block_hours[b, p] * factor
                    reputation[b, k, p] = max(reputation[b, k, p] - block_penalty[b, p], 0.0)
                    allowance[b, k, p] = max(allowance[b, k, p] * 0.5, cold_allowance[b, p])
                    new_blocks += 1
                else:
                    throttled[b, k, p] = True
                    throttled_until[b, k, p] = start + throttle_hours[b, p] * factor
                    throttles[b] += 1
            if new_blocks:
                offences[b, p] += new_blocks
                domain_reputation[b, p] = max(
                    domain_reputation[b, p] - domain_block_penalty[b, p] * new_blocks, 0.0
                )
                blocks[b] += new_blocks


escalate_arrays: Callable[..., None] = numba.njit(cache=True)(_escalate_arrays)
"""The compiled :func:`_escalate_arrays` (the plain function stays importable for tracing)."""


def escalate(
    state: SimState, escalated: np.ndarray, now: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Throttle or block the IPs whose ignored-deferral pressure crossed the threshold.

    An open IP is throttled; one throttled now or within its provider's probation is
    blocked; a blocked one stays blocked. The pressure of every escalated IP resets.

    Args:
        state: the simulator state, updated in place.
        escalated: (B, K, P) bool, IPs whose pressure crossed the threshold this hour.
        now: (B,) the hour (since reset) the escalation starts.

    Returns:
        New throttles and new blocks per row, each (B,).
    """
    d = state.draw
    throttles = np.zeros(state.n_envs, dtype=np.int64)
    blocks = np.zeros(state.n_envs, dtype=np.int64)
    escalate_arrays(
        np.ascontiguousarray(escalated, dtype=bool),
        np.asarray(now, dtype=np.int64),
        state.pressure,
        state.blocked,
        state.blocked_until,
        state.throttled,
        state.throttled_until,
        state.reputation,
        state.allowance,
        state.offences,
        state.domain_reputation,
        d.probation_hours,
        d.throttle_hours,
        d.block_hours,
        d.block_penalty,
        d.cold_allowance,
        d.repeat_offence_factor,
        d.max_repeat_factor,
        d.domain_block_penalty,
        throttles,
        blocks,
    )
    return throttles, blocks


def _lift_arrays(
    now: np.ndarray,
    blocked: np.ndarray,
    blocked_until: np.ndarray,
    throttled: np.ndarray,
    throttled_until: np.ndarray,
) -> bool:
    """Run :func:`lift` on the state's arrays (B, K, P), updated in place; return if any."""
    n_rows, n_slots, n_providers = blocked.shape
    lifted = False
    for b in range(n_rows):
        t = now[b]
        for k in range(n_slots):
            for p in range(n_providers):
                if blocked[b, k, p] and blocked_until[b, k, p] <= t:
                    blocked[b, k, p] = False
                    lifted = True
                if throttled[b, k, p] and throttled_until[b, k, p] <= t:
                    throttled[b, k, p] = False
                    lifted = True
    return lifted


lift_arrays: Callable[..., bool] = numba.njit(cache=True)(_lift_arrays)
"""The compiled :func:`_lift_arrays`."""


def lift(state: SimState, now: np.ndarray) -> bool:
    """Lift the throttles and blocks whose time is up at hour ``now`` (B,); return if any."""
    return bool(
        lift_arrays(
            np.asarray(now, dtype=np.int64),
            state.blocked,
            state.blocked_until,
            state.throttled,
            state.throttled_until,
        )
    )
