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


def repeat_factor(state: SimState) -> np.ndarray:
    """Return the duration factor each provider applies to this sender now, (B, P)."""
    d = state.draw
    factor: np.ndarray = np.minimum(d.repeat_offence_factor**state.offences, d.max_repeat_factor)
    return factor


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
    state.pressure[escalated] = 0.0
    open_ = escalated & ~state.blocked
    start = now[:, None, None]
    on_probation = state.throttled | (start < state.throttled_until + d.probation_hours[:, None, :])
    new_block = open_ & on_probation
    new_throttle = open_ & ~on_probation
    factor = repeat_factor(state)[:, None, :]
    if new_throttle.any():
        state.throttled |= new_throttle
        until = start + d.throttle_hours[:, None, :] * factor
        state.throttled_until = np.where(new_throttle, until, state.throttled_until)
    if new_block.any():
        state.throttled &= ~new_block
        state.blocked |= new_block
        until = start + d.block_hours[:, None, :] * factor
        state.blocked_until = np.where(new_block, until, state.blocked_until)
        penalty = d.block_penalty[:, None, :]
        state.reputation = np.where(
            new_block, np.maximum(state.reputation - penalty, 0.0), state.reputation
        )
        cold = d.cold_allowance[:, None, :]
        state.allowance = np.where(
            new_block, np.maximum(state.allowance * 0.5, cold), state.allowance
        )
        per_provider = new_block.sum(axis=1)  # (B, P)
        state.offences += per_provider
        state.domain_reputation = np.maximum(
            state.domain_reputation - d.domain_block_penalty * per_provider, 0.0
        )
    throttles: np.ndarray = new_throttle.sum(axis=(1, 2))
    blocks: np.ndarray = new_block.sum(axis=(1, 2))
    return throttles, blocks


def lift(state: SimState, now: np.ndarray) -> bool:
    """Lift the throttles and blocks whose time is up at hour ``now`` (B,); return if any."""
    t = now[:, None, None]
    ended_block = state.blocked & (state.blocked_until <= t)
    ended_throttle = state.throttled & (state.throttled_until <= t)
    if not (ended_block.any() or ended_throttle.any()):
        return False
    state.blocked &= ~ended_block
    state.throttled &= ~ended_throttle
    return True
