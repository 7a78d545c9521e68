"""A batch's decisions: the guardrails applied to every row at once, then each row written.

``ServedPolicy._decide_observed`` runs the network on a batch of observations and hands the
actions here. The guardrails are :mod:`ipwarmup.serving.guardrails`' vectorised ones; the
one-record path (:mod:`ipwarmup.serving.single`) applies the same conditions to scalars in
its kernel, and the tests hold the two to each other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ipwarmup.actions import GROW, SHRINK, ActionCodec
from ipwarmup.serving import guardrails as gr
from ipwarmup.serving.record import COUNT_FIELDS


def batch_decisions(
    counts: np.ndarray, n_ips: np.ndarray, actions: np.ndarray, bad: np.ndarray, *,
    guardrails: gr.GuardrailSettings, codec: ActionCodec, providers: tuple[str, ...],
    period_hours: int, max_ips: int, write: Callable[..., dict[str, Any]],
) -> list[dict[str, Any]]:  # fmt: skip
    """Apply the guardrails to a batch (vectorised), then write one decision per row.

    Args:
        counts: (B, P, 10) each record's counts, as ``record_arrays`` gives them.
        n_ips: (B,) each record's dedicated IPs.
        actions: (B, P + 1) the actions, clipped (the fallback rule's on ``bad`` rows).
        bad: (B,) rows whose network output was not finite (the fallback rule decided).
        guardrails: the guardrail settings in force.
        codec: the action codec (cap factors, pool changes, cap bounds).
        providers: the provider names, in the policy's order.
        period_hours: the hours between decisions.
        max_ips: the largest pool.
        write: :meth:`DecisionWriter.write <ipwarmup.serving.decision.DecisionWriter.write>`.

    Raises:
        ValueError: a cap came out NaN or infinite (JSON cannot carry it; the clamps and
            the fallback rule keep this from happening).
    """
    g, field = guardrails, {name: i for i, name in enumerate(COUNT_FIELDS)}

    def col(name: str) -> np.ndarray:
        return counts[:, :, field[name]]

    ips = n_ips.astype(np.int64)
    has_ips = (ips > 0)[:, None]
    factors = codec.cap_factors(actions)
    c = gr.Counts(
        rejected=col("rejected"), deferred=col("deferred"),
        sent_dedicated=col("sent_dedicated"), bounced=col("bounced"),
        transmitted=col("accepted") + col("sent_shared"), complaints=col("complaints"),
    )  # fmt: skip
    growth = gr.growth_bound(g, factors, period_hours)
    cuts = [gr.block(g, c), gr.deferrals(g, c), gr.bounces(g, c),
            gr.complaints(g, c, providers)]  # fmt: skip
    allowed = factors
    for bound in (growth, *cuts):
        allowed = np.where(bound.mask & has_ips, np.minimum(allowed, bound.factor), allowed)
    per_ip_now = col("dedicated_cap_per_hour") / np.maximum(ips, 1)[:, None]
    per_ip_next, clamp = gr.cap_bounds(per_ip_now * allowed, codec.min_hourly_cap_messages,
                                       codec.max_hourly_cap_messages)  # fmt: skip
    provider_hits = [growth, *cuts, clamp]
    masks: np.ndarray = np.stack([h.mask for h in provider_hits]) & has_ips[None]  # (H, B, P)
    cut_rows: np.ndarray = np.any(masks[1:-1], axis=(0, 2))
    hit_rows = np.any(masks, axis=(0, 2))
    # Pool: the policy's change, then its bounds and guardrails, in this order.
    pool = codec.pool_change(actions)
    at_max = (pool == GROW) & (ips >= max_ips)
    pool = np.where(at_max, 0, pool)
    held = (pool == GROW) & cut_rows
    pool = np.where(held, 0, pool)
    low = gr.low_volume(g, col("demand").sum(axis=1) * (24 / period_hours) * 30)
    pool = np.where(low.mask, np.where(ips > 0, SHRINK, 0), pool)
    empty = (pool == SHRINK) & (ips == 0)
    pool = np.where(empty, 0, pool)
    change = np.divide(per_ip_next, per_ip_now, out=np.full_like(per_ip_now, np.nan),
                       where=per_ip_now >= 1e-6)  # fmt: skip
    # JSON has no NaN or infinity: checked here for the whole batch, not walked per
    # decision when rendered. A finite per-IP cap is within the bundle's bounds, so the
    # pool's cap (times at most max_ips) and the ratio (over at least 1e-6) are finite.
    if not np.isfinite(per_ip_next).all():
        raise ValueError("a decision holds NaN or infinity, which JSON cannot carry")
    # Lists, not arrays, from here: per-element numpy access costs ~100 ns each.
    rows = zip(
        ips.tolist(), factors.tolist(), per_ip_next.tolist(), change.tolist(),
        actions[:, -1].tolist(), codec.pool_change(actions).tolist(), pool.tolist(),
        bad.tolist(), strict=True,
    )  # fmt: skip
    # Rows where anything beyond the policy's own move happened: the rest skip all checks.
    special = (hit_rows | at_max | held | low.mask | empty).tolist()
    # Which guardrails fired per row and provider, one bit each (bit k: provider_hits[k]).
    bits = 1 << np.arange(len(provider_hits))
    fired = np.tensordot(bits, masks, axes=1).tolist()  # (B, P) ints
    hit_list = hit_rows.tolist()
    decisions = []
    for i, (n, factor, next_cap, ratio, pool_value, proposal, action, fallback) in enumerate(rows):
        hits: list[list[tuple[str, str]]] | None = None
        if hit_list[i]:
            hits = [
                [(h.name, h.reason(i, j)) for k, h in enumerate(provider_hits) if code >> k & 1]
                for j, code in enumerate(fired[i])
            ]
        notes: list[tuple[str | None, str]] = []
        if special[i]:
            if at_max[i]:
                notes.append(("pool_max", gr.pool_max_reason(max_ips)))
            if held[i]:
                where = [p for j, p in enumerate(providers) if masks[1:-1, i, j].any()]
                notes.append(("pool_hold", gr.pool_hold_reason(where)))
            if low.mask[i]:
                notes.append(("low_volume", low.reason(i, 0)))
            if empty[i]:
                notes.append((None, gr.EMPTY))
        decisions.append(write(n, fallback, factor, next_cap, ratio, hits,
                                        pool_value, proposal, action, notes))  # fmt: skip
    return decisions
