"""The one-record kernel: the encoder, the network and the guardrails, compiled by numba.

:class:`ipwarmup.serving.single.OneRecord` lays a policy's constants out in one float64
array (``consts``, the encoder's block first) and an int64 ``layout`` of offsets and layer
shapes (:mod:`ipwarmup.serving.kernel_layout`), and calls
:func:`~ipwarmup.serving.kernel_record.prepare` (the record's numbers read, checked and
their ``log10`` inputs written), numpy's ``log10``, then :func:`decide` (which runs
:func:`encode`); a fleet's batch runs ``prepare`` per record and :func:`encode_rows`.
Each step is the batch path's operation on the same operands, in the same order, written
for one record (see :mod:`ipwarmup.serving.single` for what is exact).

The plain functions stay importable beside their compiled forms, so tests run them where
a line tracer (coverage, ``scripts/mutation``) sees them; ``NUMBA_DISABLE_JIT=1`` makes
the compiled forms plain Python too. Compiled with ``cache=True``: machine code is written
beside this file, stale when any module of the package changes (:mod:`ipwarmup.numba_cache`:
this module's compiled code builds in ``kernel_record``'s and ``kernel_layout``'s).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numba
import numpy as np

from ipwarmup.serving.kernel_layout import (
    _AGE_SCALE,
    _BLOCK,
    _BLOCK_CUT,
    _BLOCK_MIN,
    _BLOCKS,
    _BOUNCE,
    _BOUNCE_CUT,
    _BOUNCE_RATE,
    _BOUNCES,
    _CAP_BOUNDS,
    _CLIP_OBS,
    _COMPLAINT,
    _COMPLAINT_CUT,
    _COMPLAINTS,
    _COS,
    _DEFERRAL,
    _DEFERRAL_CUT,
    _DEFERRAL_RATE,
    _DEFERRALS,
    _ENCODER,
    _FACTOR,
    _FLAGS,
    _GROWTH,
    _HORIZON,
    _L_ACT_HIGH,
    _L_ACT_LOW,
    _L_INV_STD,
    _L_LAYERS,
    _L_MEAN,
    _L_SCALARS,
    _L_THRESHOLDS,
    _LAYER,
    _LIMIT,
    _LOG_SCALE,
    _LOG_STEP,
    _MAX_AGE_SCALE,
    _MAX_CAP,
    _MAX_IPS,
    _MIN_CAP,
    _MTA,
    _N_HISTORY,
    _N_PROVIDERS,
    _N_SCALARS,
    _NEXT_CAP,
    _PER_IP,
    _RATE_SCALE,
    _RATIO,
    _RETRY_SCALE,
    _SIN,
    _V1_EXTRA,
)
from ipwarmup.serving.kernel_record import counts_at


def _encode(values: np.ndarray, logs: np.ndarray, consts: np.ndarray, obs: np.ndarray) -> None:
    """Write the float32 observation of one record: ``encode``'s arithmetic, per feature.

    ``values``: as this module's header says; ``logs``: ``log10`` of :func:`_log_inputs`,
    the last period's then each past one's. The last period's features, then the MTA's
    (with the MTA inputs), then each past period's provider features.
    """
    n_providers = int(consts[_N_PROVIDERS])
    size = obs.size
    r = consts[_RATE_SCALE : _RATE_SCALE + 6]
    demand_scale, cap_scale = consts[_LOG_SCALE], consts[_LOG_SCALE + 1]
    queue_scale = consts[_LOG_SCALE + 2]
    features = np.empty(size)
    g, v = 9 * n_providers, 10 * n_providers
    mta = 3 if consts[_MTA] != 0.0 else 0
    for block in range(logs.size // (3 * n_providers)):
        start = counts_at(block, n_providers)
        at = 0 if block == 0 else g + 6 + mta + g * (block - 1)
        for j in range(n_providers):
            c = start + 10 * j
            demand, sent, accepted = values[c], values[c + 2], values[c + 3]
            transmitted = accepted + values[c + 9]
            delivered = transmitted - values[c + 6]
            per_sent = 1.0 if sent < 1.0 else sent
            f = at + 9 * j
            logs_at = 3 * (n_providers * block + j)
            features[f] = logs[logs_at] * demand_scale
            features[f + 1] = logs[logs_at + 1] * cap_scale
            features[f + 2] = sent / (1.0 if demand < 1.0 else demand) * r[0]
            features[f + 3] = accepted / per_sent * r[1]
            features[f + 4] = values[c + 4] / per_sent * r[2]
            features[f + 5] = values[c + 5] / per_sent * r[3]
            features[f + 6] = values[c + 6] / (1.0 if transmitted < 1.0 else transmitted) * r[4]
            features[f + 7] = values[c + 7] / (1.0 if delivered < 1.0 else delivered) * r[5]
            features[f + 8] = logs[logs_at + 2] * queue_scale
    weekday = int(values[v + 3])
    features[g] = values[v] / consts[_MAX_IPS]
    features[g + 1] = values[v + 1] / consts[_AGE_SCALE]
    features[g + 2] = values[v + 2] / consts[_HORIZON]
    features[g + 3] = consts[_SIN + weekday]
    features[g + 4] = consts[_COS + weekday]
    features[g + 5] = values[v + 4] / 24.0
    if mta:  # mta_features: the queue flag, then the scaled hours
        features[g + 6] = values[v + _V1_EXTRA]
        features[g + 7] = values[v + _V1_EXTRA + 1] / consts[_MAX_AGE_SCALE]
        features[g + 8] = values[v + _V1_EXTRA + 2] / consts[_RETRY_SCALE]
    for i in range(size):
        # np.minimum(np.maximum(x, low), high), then the cast to float32.
        x = features[i]
        low, high = consts[_ENCODER + i], consts[_ENCODER + size + i]
        x = low if low > x else x
        obs[i] = high if high < x else x


def _decide(
    values: np.ndarray, logs: np.ndarray, consts: np.ndarray, layout: np.ndarray, out: np.ndarray
) -> int:
    """Decide one record's caps into ``out``; return every provider's guardrail flags OR-ed.

    Returns 0 when no guardrail fired, -1 when the network's output is not finite. ``out``
    holds per provider (P values each) the policy's cap factor, the next per-IP cap,
    its ratio to the current one (NaN below 1e-6 messages an hour), the guardrail flags,
    the per-IP cap before the bounds, and the deferral, bounce and complaint rates; then
    the pool's action value and the demand summed over the providers. With no IPs only the
    factors, the pool value and the demand are written.
    """
    n_providers = int(consts[_N_PROVIDERS])
    mta = 3 if consts[_MTA] != 0.0 else 0
    size = 9 * n_providers * (1 + int(consts[_N_HISTORY])) + 6 + mta
    obs = np.empty(size, dtype=np.float32)
    encode(values, logs, consts, obs)
    mean, inv_std = consts[layout[_L_MEAN] :], consts[layout[_L_INV_STD] :]
    s = consts[layout[_L_SCALARS] : layout[_L_SCALARS] + _N_SCALARS]
    clip = s[_CLIP_OBS]
    x = np.empty(size)
    for i in range(size):
        # (obs - mean) * inv_std, then np.minimum(x, clip) and np.maximum(x, -clip).
        z = (np.float64(obs[i]) - mean[i]) * inv_std[i]
        z = clip if clip < z else z
        x[i] = -clip if -clip > z else z
    for k in range(layout[_L_LAYERS]):
        at = _L_LAYERS + 1 + _LAYER * k
        n_in, n_out, activation = layout[at], layout[at + 1], layout[at + 2]
        # A 2-D view: indexing the flat array by a computed offset kept the inner loop from
        # vectorising (numba's negative-index check), and took twice as long.
        weight = consts[layout[at + 3] : layout[at + 3] + n_in * n_out].reshape((n_in, n_out))
        bias = consts[layout[at + 4] : layout[at + 4] + n_out]
        y = np.zeros(n_out)
        # x @ weight.T, each sum in index order; four inputs a pass over y, added one by
        # one in the same order (the same result to the bit), load and store y a quarter
        # as often: ~20% off the first layer.
        n_fours = n_in - n_in % 4
        for i in range(0, n_fours, 4):
            x0, x1, x2, x3 = x[i], x[i + 1], x[i + 2], x[i + 3]
            w0, w1, w2, w3 = weight[i], weight[i + 1], weight[i + 2], weight[i + 3]
            for j in range(n_out):
                y[j] = (((y[j] + x0 * w0[j]) + x1 * w1[j]) + x2 * w2[j]) + x3 * w3[j]
        for i in range(n_fours, n_in):
            xi = x[i]
            for j in range(n_out):
                y[j] += xi * weight[i, j]
        for j in range(n_out):
            z = y[j] + bias[j]
            if activation == 1:
                z = math.tanh(z)
            elif activation == 2:
                z = 0.0 if z < 0.0 else z  # np.maximum(z, 0.0): NaN stays NaN
            y[j] = z
        x = y
    for j in range(x.size):
        if not math.isfinite(x[j]):
            return -1
    act_low, act_high = consts[layout[_L_ACT_LOW] :], consts[layout[_L_ACT_HIGH] :]
    for j in range(x.size):  # the action clip, max(min(x, high), low)
        z = act_high[j] if act_high[j] < x[j] else x[j]
        x[j] = act_low[j] if act_low[j] > z else z
    p = n_providers
    out[_BLOCKS * p] = x[p]
    demand = 0.0
    for j in range(p):  # in order from 0.0, as numpy sums fewer than 8 terms
        demand += values[10 * j]
    out[_BLOCKS * p + 1] = demand
    n = values[10 * p]
    thresholds = consts[layout[_L_THRESHOLDS] :]
    fired = 0
    for j in range(p):
        a = x[j]
        a = -1.0 if a < -1.0 else a
        a = 1.0 if a > 1.0 else a
        factor = math.exp(a * s[_LOG_STEP])
        out[_FACTOR * p + j] = factor
        if n == 0.0:
            continue
        c = 10 * j
        sent, accepted, bounced = values[c + 2], values[c + 3], values[c + 6]
        transmitted = accepted + values[c + 9]
        flags = 0
        allowed = factor
        if factor > s[_LIMIT]:
            allowed = s[_LIMIT]
            flags |= _GROWTH
        if values[c + 5] >= s[_BLOCK_MIN]:
            allowed = s[_BLOCK_CUT] if s[_BLOCK_CUT] < allowed else allowed
            flags |= _BLOCK
        rate = 0.0
        if sent > 0.0:
            rate = values[c + 4] / sent if sent >= 1e-300 else 0.0
            if rate >= s[_DEFERRAL_RATE]:
                allowed = s[_DEFERRAL_CUT] if s[_DEFERRAL_CUT] < allowed else allowed
                flags |= _DEFERRALS
        out[_DEFERRAL * p + j] = rate
        rate = 0.0
        if transmitted > 0.0:
            rate = bounced / transmitted if transmitted >= 1e-300 else 0.0
            if rate >= s[_BOUNCE_RATE]:
                allowed = s[_BOUNCE_CUT] if s[_BOUNCE_CUT] < allowed else allowed
                flags |= _BOUNCES
        out[_BOUNCE * p + j] = rate
        delivered = transmitted - bounced
        rate = 0.0
        if delivered >= 1.0:
            rate = values[c + 7] / delivered
            if rate >= thresholds[j]:
                allowed = s[_COMPLAINT_CUT] if s[_COMPLAINT_CUT] < allowed else allowed
                flags |= _COMPLAINTS
        out[_COMPLAINT * p + j] = rate
        per_ip_now = values[c + 1] / n
        per_ip = per_ip_now * allowed
        next_cap = s[_MIN_CAP] if s[_MIN_CAP] > per_ip else per_ip
        next_cap = s[_MAX_CAP] if s[_MAX_CAP] < next_cap else next_cap
        if next_cap != per_ip:
            flags |= _CAP_BOUNDS
        out[_NEXT_CAP * p + j] = next_cap
        # Below a millionth of a message an hour there was no cap: no ratio.
        out[_RATIO * p + j] = next_cap / per_ip_now if per_ip_now >= 1e-6 else math.nan
        out[_FLAGS * p + j] = flags
        out[_PER_IP * p + j] = per_ip
        fired |= flags
    return fired


def _encode_rows(
    values: np.ndarray, starts: np.ndarray, logs: np.ndarray, consts: np.ndarray,
    obs: np.ndarray,
) -> None:  # fmt: skip
    """Run :func:`_encode` on each of a fleet's records.

    ``values`` holds the records' values one after the other, record ``r`` at
    ``values[starts[r] : starts[r + 1]]``; ``logs`` (B, 3P(1 + K)) their ``log10``'s.
    """
    for r in range(obs.shape[0]):
        encode(values[starts[r] : starts[r + 1]], logs[r], consts, obs[r])


encode: Callable[..., None] = numba.njit(cache=True, nogil=True)(_encode)
"""The compiled :func:`_encode`."""
decide: Callable[..., int] = numba.njit(cache=True, nogil=True)(_decide)
"""The compiled :func:`_decide`."""
encode_rows: Callable[..., None] = numba.njit(cache=True, nogil=True)(_encode_rows)
"""The compiled :func:`_encode_rows`."""
