"""The end of a period's arithmetic, compiled: placement, complaints, telemetry, accounting.

:func:`~ipwarmup.envs.outcomes.close_period` computes the placement rates in Python (they
are the providers' model, :func:`~ipwarmup.envs.providers.inbox_rate`) and hands them with
the period's accumulators to :func:`split_period`, which does the per-element rest in one
call: a few dozen numpy calls on (B, P) arrays of a few elements each cost more in fixed
overhead than in arithmetic, every period.

Each value is computed as the numpy version did, on the same operands in the same order
(no ``fastmath``). Sums over IPs add the active slots in slot order and sums over
providers add them in provider order, which is what numpy's reductions did with two to
seven providers; with one provider and four or more IPs, or with eight or more providers,
numpy summed pairwise, so those sums may differ in the last bits.
"""

from __future__ import annotations

from collections.abc import Callable

import numba
import numpy as np

# Rows of split_period's per-provider output, (N_SPLIT, B, P).
INBOX_DEDICATED = 0
INBOX_SHARED = 1
DELIVERED_DEDICATED = 2
DELIVERED_SHARED = 3
BOUNCED = 4
TRANSMITTED = 5
REPORTED = 6
DELIVERED = 7
DEFERRED = 8
N_SPLIT = 9


def _split_period(
    n_ips: np.ndarray,
    bounce_rate: np.ndarray,
    complaint_rate: np.ndarray,
    complaint_noise: np.ndarray,
    ip_inbox: np.ndarray,
    shared_inbox: np.ndarray,
    accepted_ip: np.ndarray,
    demand: np.ndarray,
    sent: np.ndarray,
    accepted: np.ndarray,
    rejected: np.ndarray,
    shared: np.ndarray,
    expired: np.ndarray,
    complaint_lag: np.ndarray,
    complaint_feed: np.ndarray,
    complaint_history: np.ndarray,
    day_sent: np.ndarray,
    day_shared: np.ndarray,
    out: np.ndarray,
    acc_demand: np.ndarray,
    acc_inbox: np.ndarray,
    acc_spam: np.ndarray,
    acc_bounced: np.ndarray,
    acc_rejected: np.ndarray,
    acc_expired: np.ndarray,
    acc_sent_dedicated: np.ndarray,
    acc_sent_shared: np.ndarray,
    acc_deferrals: np.ndarray,
    acc_accepted_dedicated: np.ndarray,
) -> None:
    """Split a period's traffic into outcomes, filling ``out`` and updating the rest.

    Args:
        n_ips: (B,) active IP slots per row.
        bounce_rate: (B,) share of transmitted mail that bounces.
        complaint_rate: (B,) today's complaints per inbox-placed message.
        complaint_noise: (B, P) standard normals: the reported count is the expected one
            plus its square root times this (a Poisson count's normal approximation),
            never below zero.
        ip_inbox: (B, K, P) each IP's inbox placement rate.
        shared_inbox: (B, P) the shared pool's inbox placement rate.
        accepted_ip: (B, K, P) the period's accepted mail per IP.
        demand: (B, P) the period's demand.
        sent: (B, P) the period's mail sent on dedicated IPs.
        accepted: (B, P) the period's accepted mail.
        rejected: (B, P) the period's rejected mail.
        shared: (B, P) the period's mail sent through the shared pool.
        expired: (B, P) the period's expired mail.
        complaint_lag: (P,) int, periods before complaints reach the sender.
        complaint_feed: (P,) 1 where the provider runs a feedback loop, else 0.
        complaint_history: (B, L + 1, P) complaints of the last periods, shifted by one
            period and updated.
        day_sent: (B, K, P) accepted per IP today, updated.
        day_shared: (B, P) sent through the shared pool today, updated.
        out: (N_SPLIT, B, P) written: the rows named by this module's constants.
        acc_demand: (B,) cumulative demand, updated (and so each ``acc_*`` after it:
            inbox, spam folder, bounced, rejected, expired, sent on dedicated, sent on
            shared, deferrals, accepted on dedicated).
        acc_inbox: (B,) see ``acc_demand``.
        acc_spam: (B,) see ``acc_demand``.
        acc_bounced: (B,) see ``acc_demand``.
        acc_rejected: (B,) see ``acc_demand``.
        acc_expired: (B,) see ``acc_demand``.
        acc_sent_dedicated: (B,) see ``acc_demand``.
        acc_sent_shared: (B,) see ``acc_demand``.
        acc_deferrals: (B,) see ``acc_demand``.
        acc_accepted_dedicated: (B,) see ``acc_demand``.
    """
    n_rows, n_providers = demand.shape
    lags = complaint_history.shape[1]
    totals = np.zeros(10)  # one row's sums over providers (provider 0 sets them)
    for b in range(n_rows):
        n = n_ips[b]
        bounce = bounce_rate[b]
        kept = 1.0 - bounce
        for p in range(n_providers):
            inbox_dedicated = 0.0
            delivered_dedicated = 0.0
            for k in range(n):
                delivered_ip = accepted_ip[b, k, p] * kept
                placed = delivered_ip * ip_inbox[b, k, p]
                inbox_dedicated = placed if k == 0 else inbox_dedicated + placed
                delivered_dedicated = delivered_ip if k == 0 else delivered_dedicated + delivered_ip
                day_sent[b, k, p] += accepted_ip[b, k, p]
            delivered_shared = shared[b, p] * kept
            inbox_shared = delivered_shared * shared_inbox[b, p]
            inbox = inbox_dedicated + inbox_shared
            delivered = delivered_dedicated + delivered_shared
            transmitted = accepted[b, p] + shared[b, p]
            bounced = transmitted * bounce
            expected = inbox * complaint_rate[b]
            complaints = max(expected + np.sqrt(expected) * complaint_noise[b, p], 0.0)
            day_shared[b, p] += shared[b, p]
            deferred = max(sent[b, p] - accepted[b, p] - rejected[b, p], 0.0)
            for lag in range(lags - 1, 0, -1):
                complaint_history[b, lag, p] = complaint_history[b, lag - 1, p]
            complaint_history[b, 0, p] = complaints
            out[INBOX_DEDICATED, b, p] = inbox_dedicated
            out[INBOX_SHARED, b, p] = inbox_shared
            out[DELIVERED_DEDICATED, b, p] = delivered_dedicated
            out[DELIVERED_SHARED, b, p] = delivered_shared
            out[BOUNCED, b, p] = bounced
            out[TRANSMITTED, b, p] = transmitted
            out[DELIVERED, b, p] = delivered
            out[DEFERRED, b, p] = deferred
            counts = (
                demand[b, p],
                inbox,
                delivered - inbox,
                bounced,
                rejected[b, p],
                expired[b, p],
                sent[b, p],
                shared[b, p],
                deferred,
                accepted[b, p],
            )
            for i in range(10):
                totals[i] = counts[i] if p == 0 else totals[i] + counts[i]
        for p in range(n_providers):
            lag = complaint_lag[p]
            out[REPORTED, b, p] = complaint_history[b, lag, p] * complaint_feed[p]
        acc_demand[b] += totals[0]
        acc_inbox[b] += totals[1]
        acc_spam[b] += totals[2]
        acc_bounced[b] += totals[3]
        acc_rejected[b] += totals[4]
        acc_expired[b] += totals[5]
        acc_sent_dedicated[b] += totals[6]
        acc_sent_shared[b] += totals[7]
        acc_deferrals[b] += totals[8]
        acc_accepted_dedicated[b] += totals[9]


split_period: Callable[..., None] = numba.njit(cache=True, nogil=True)(_split_period)
"""The compiled :func:`_split_period` (the plain function stays importable for tracing)."""
