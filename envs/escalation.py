"""Blocks: how a provider answers a sender that keeps pushing through its 4xx deferrals."""

from __future__ import annotations

import numpy as np

from ipwarmup.envs.state import SimState


def start_blocks(state: SimState, escalated: np.ndarray, now: np.ndarray) -> np.ndarray:
    """Block the IPs whose ignored-deferral pressure crossed the provider's threshold.

    DOMAIN §2: "S3150 is what you get when you don't slow down after seeing 4xx"; Yahoo
    escalates TSS04 deferrals to TSS09 "permanently deferred". A block lasts days and
    costs reputation that the ~30-day memory takes weeks to restore. Pressure of every
    escalated IP resets, blocked already or not.

    Args:
        state: the simulator state, updated in place.
        escalated: (B, K, P) bool, IPs whose pressure crossed the threshold this hour.
        now: (B,) the hour (since reset) the blocks start.

    Returns:
        New blocks per row, (B,).
    """
    d = state.draw
    new = escalated & ~state.blocked
    state.pressure[escalated] = 0.0
    if not new.any():
        return np.zeros(state.n_envs)
    state.blocked |= new
    until = now[:, None, None] + np.broadcast_to(d.block_hours[:, None, :], new.shape)
    state.blocked_until = np.where(new, until, state.blocked_until)
    penalty = d.block_penalty[:, None, :]
    state.reputation = np.where(new, np.maximum(state.reputation - penalty, 0.0), state.reputation)
    cold = d.cold_allowance[:, None, :]
    state.allowance = np.where(new, np.maximum(state.allowance * 0.5, cold), state.allowance)
    blocks: np.ndarray = new.sum(axis=(1, 2))
    return blocks


def end_blocks(state: SimState, now: np.ndarray) -> bool:
    """Lift the blocks whose time is up at hour ``now`` (B,); return whether any ended."""
    ended = state.blocked & (state.blocked_until <= now[:, None, None])
    if not ended.any():
        return False
    state.blocked &= ~ended
    return True
