"""The one-record kernel: the encoder, the network and the guardrails, compiled by numba.

:class:`ipwarmup.serving.single.OneRecord` lays a policy's constants out in one float64
array (``consts``, the encoder's block first) and an int64 ``layout`` of offsets and layer
shapes, and calls :func:`prepare` (:func:`read`, the record's numbers from their pickle,
which checks their types; :func:`check`, the fast check of their bounds and consistency;
then :func:`log_inputs`), numpy's ``log10``, then :func:`decide` (which runs
:func:`encode`); a fleet's batch runs :func:`prepare` per record and :func:`encode_rows`.
Each step is the batch path's operation on the same operands, in the same order, written
for one record (see :mod:`ipwarmup.serving.single` for what is exact).

The plain functions stay importable beside their compiled forms, so tests run them where
a line tracer (coverage, ``scripts/mutation``) sees them; ``NUMBA_DISABLE_JIT=1`` makes
the compiled forms plain Python too. Compiled with ``cache=True``: machine code is written
beside this file; every kernel is in this one module, since numba's cache does not notice
a change to a function that a cached one calls from another module.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numba
import numpy as np

_ACTIVATIONS = {"identity": 0, "tanh": 1, "relu": 2}

# The constants array: the encoder's block, then the network's and guardrails' scalars.
# Encoder block (index: meaning); the weekday tables and feature bounds follow it.
_PERIOD, _MAX_IPS, _HORIZON, _AGE_SCALE = 0, 1, 2, 3
_RATE_SCALE = 4  # 6 values: the rate features' scales, as in ``encode``
_LOG_SCALE = 10  # 3 values: demand, cap, queue
_SIN, _COS = 13, 20  # 7 values each
_MAX_AGE_SCALE, _RETRY_SCALE = 27, 28  # the mta.* features' scales
# The observation's layout: providers P, past periods K, 1.0 with the MTA inputs.
_N_PROVIDERS, _N_HISTORY, _MTA = 29, 30, 31
_ENCODER = 32  # then the feature bounds: low (D), high (D)
# Scalars of the network and the guardrails, at layout[_L_SCALARS].
_CLIP_OBS, _LOG_STEP, _LIMIT, _MIN_CAP, _MAX_CAP = 0, 1, 2, 3, 4
_BLOCK_MIN, _BLOCK_CUT, _DEFERRAL_RATE, _DEFERRAL_CUT = 5, 6, 7, 8
_BOUNCE_RATE, _BOUNCE_CUT, _COMPLAINT_CUT, _TOLERANCE = 9, 10, 11, 12
_N_SCALARS = 13
# The layout array: offsets into the constants, the number of layers, then per layer
# (inputs, outputs, activation, weight offset, bias offset). The record's bounds are per
# value (its lowest, its highest, 1.0 where it must be a whole number).
_L_MEAN, _L_INV_STD, _L_SCALARS, _L_ACT_LOW, _L_ACT_HIGH, _L_THRESHOLDS = range(6)
_L_LOWEST, _L_HIGHEST, _L_WHOLE, _L_LAYERS = 6, 7, 8, 9
_LAYER = 5
# A record's values: each provider's ten counts, n_ips, mean_ip_age_days, day, weekday,
# hour, schema_version, period_hours (version 1 stops here, at 10P + 7); then version 2's
# mta (queue 0/1, max_age_hours, retry_interval_hours), the number of past periods given,
# and the past periods' counts (ten per provider each): those given, then zeros up to K.
_V1_EXTRA, _V2_EXTRA = 7, 11
# Guardrail flags per provider, in the order their reasons are listed.
_GROWTH, _BLOCK, _DEFERRALS, _BOUNCES, _COMPLAINTS, _CAP_BOUNDS = 1, 2, 4, 8, 16, 32
_CUTS = _BLOCK | _DEFERRALS | _BOUNCES | _COMPLAINTS
# The output: per provider, eight blocks of P values, then the pool's action value and the
# period's demand summed over the providers in order.
_FACTOR, _NEXT_CAP, _RATIO, _FLAGS, _PER_IP, _DEFERRAL, _BOUNCE, _COMPLAINT = range(8)
_BLOCKS = 8


def _counts_at(block: int, n_providers: int) -> int:
    """Where period ``block``'s counts start in a record's values (0: the last period)."""
    if block == 0:
        return 0
    return 10 * n_providers * block + _V2_EXTRA


def _log_inputs(values: np.ndarray, consts: np.ndarray, logs: np.ndarray) -> None:
    """Write the arguments of the encoder's ``log10``: 1 + demand/hour, 1 + cap, 1 + queue.

    For the last period and each past one (``logs`` holds 3P per period, the last first).
    """
    period = consts[_PERIOD]
    n_providers = int(consts[_N_PROVIDERS])
    for block in range(logs.size // (3 * n_providers)):
        c = counts_at(block, n_providers)
        for j in range(n_providers):
            at = 3 * (n_providers * block + j)
            logs[at] = 1.0 + values[c + 10 * j] / period
            logs[at + 1] = 1.0 + values[c + 10 * j + 1]
            logs[at + 2] = 1.0 + values[c + 10 * j + 8]


def _check(values: np.ndarray, consts: np.ndarray, layout: np.ndarray) -> bool:
    """Say whether a record's values are all in bounds and its counts consistent.

    ``values``: a record's, laid out as this module's header says. The bounds come from
    the record's pydantic types (:mod:`ipwarmup.serving.single` reads them from its JSON
    Schema); the consistency rules are ``record._consistent``'s, operation for operation,
    for the last period and every past one; a version-2 record gives at least the past
    periods ``record._history_length`` asks for. False sends the record to pydantic, which
    words the errors.
    """
    lowest, highest = consts[layout[_L_LOWEST] :], consts[layout[_L_HIGHEST] :]
    whole = consts[layout[_L_WHOLE] :]
    for i in range(values.size):
        v = values[i]
        # Finite first: a bound that JSON Schema leaves open (inf) must not let inf in.
        if not (math.isfinite(v) and lowest[i] <= v <= highest[i]):
            return False
        if whole[i] != 0.0 and v != math.floor(v):
            return False
    tolerance = consts[layout[_L_SCALARS] + _TOLERANCE]
    n_providers = int(consts[_N_PROVIDERS])
    blocks = 1
    if values.size > 10 * n_providers + _V1_EXTRA:  # version 2: its past periods too
        k = int(consts[_N_HISTORY])
        blocks += (values.size - 10 * n_providers - _V2_EXTRA) // (10 * n_providers)
        v = 10 * n_providers
        elapsed = math.floor(values[v + 2] * 24.0 / values[v + 6] + 0.5)
        if values[v + _V2_EXTRA - 1] < min(k, elapsed):  # record._history_length
            return False
    for block in range(blocks):
        start = counts_at(block, n_providers)
        for j in range(n_providers):
            c = start + 10 * j
            accepted, sent = values[c + 3], values[c + 2]
            attempts = accepted + values[c + 4] + values[c + 5]
            bounced, transmitted = values[c + 6], accepted + values[c + 9]
            if not attempts <= sent + tolerance * max(attempts, sent, 1.0):
                return False
            if not bounced <= transmitted + tolerance * max(bounced, transmitted, 1.0):
                return False
    return True


_HEADER = (0x80, 0x02, 0x5D, 0x71, 0x00)
"""``pickle.dumps(list, 2)``'s start: PROTO 2, EMPTY_LIST, BINPUT 0 (the list memoised)."""
_MARK, _APPENDS, _STOP = 0x28, 0x65, 0x2E
_BINFLOAT, _BININT1, _BININT2, _BININT, _LONG1 = 0x47, 0x4B, 0x4D, 0x4A, 0x8A


def _read(data: np.ndarray | bytes, values: np.ndarray) -> bool:
    """Read ``pickle.dumps(numbers, 2)`` of a list of exact ``int`` and ``float`` into ``values``.

    The type check and the conversion to float64 in one pass over bytes: pickle writes an
    exact float as BINFLOAT (its IEEE bits, big-endian) and an exact int as BININT1,
    BININT2, BININT or LONG1 (little-endian), but a bool, a subclass of int or float, a
    numpy scalar or anything else with other opcodes, which refuse the record. The list
    comes in batches (MARK, up to 1,000 items, APPENDS). Ints of 8 bytes or more (beyond
    2**55, far over every bound) are refused too. ``values`` must hold exactly the list's
    length. False when anything is off.
    """
    size = len(data)
    if size < len(_HEADER) + 1:
        return False
    for k in range(len(_HEADER)):
        if data[k] != _HEADER[k]:
            return False
    bits = np.empty(1, dtype=np.uint64)
    i, n = len(_HEADER), 0
    while i < size and data[i] == _MARK:
        i += 1
        while i < size and data[i] != _APPENDS:
            op = data[i]
            if n == values.size:
                return False
            if op == _BINFLOAT and i + 9 <= size:
                b = np.uint64(0)
                for k in range(1, 9):
                    b = (b << np.uint64(8)) | np.uint64(data[i + k])
                bits[0] = b
                values[n] = bits.view(np.float64)[0]
                i += 9
            elif op == _BININT1 and i + 2 <= size:
                values[n] = data[i + 1]
                i += 2
            elif op == _BININT2 and i + 3 <= size:
                values[n] = data[i + 1] | (np.int64(data[i + 2]) << 8)
                i += 3
            elif op == _BININT and i + 5 <= size:
                v = np.int64(0)
                for k in range(4):
                    v |= np.int64(data[i + 1 + k]) << (8 * k)
                values[n] = v - (np.int64(1) << 32) if v >= np.int64(1) << 31 else v
                i += 5
            elif (
                op == _LONG1
                and i + 2 <= size
                and 0 < data[i + 1] < 8
                and (i + 2 + data[i + 1] <= size)
            ):
                m = int(data[i + 1])
                v = np.int64(0)
                for k in range(m):
                    v |= np.int64(data[i + 2 + k]) << (8 * k)
                values[n] = v - (np.int64(1) << (8 * m)) if data[i + 1 + m] >= 0x80 else v
                i += 2 + m
            else:
                return False
            n += 1
        i += 1  # the APPENDS
    return i == size - 1 and data[i] == _STOP and n == values.size


def _prepare(
    data: np.ndarray | bytes, values: np.ndarray, consts: np.ndarray, layout: np.ndarray,
    logs: np.ndarray,
) -> bool:  # fmt: skip
    """Read a record's pickled values (:func:`_read`), check them (:func:`_check`).

    If they pass, write :func:`_log_inputs` and return True.
    """
    if not read(data, values) or not check(values, consts, layout):
        return False
    log_inputs(values, consts, logs)
    return True


def _prepare_rows(
    values: np.ndarray, starts: np.ndarray, consts: np.ndarray, layout: np.ndarray,
    layout_v2: np.ndarray, logs: np.ndarray,
) -> bool:  # fmt: skip
    """Check each of a fleet's records (:func:`_check`) and write its :func:`_log_inputs`.

    Record ``r`` is ``values[starts[r] : starts[r + 1]]`` (read by
    :mod:`ipwarmup.serving.jsonrows`), checked with ``layout_v2``'s bounds when it is
    longer than a version-1 record; ``logs`` is (B, 3P(1 + K)). False at the first record
    that fails.
    """
    v1 = 10 * int(consts[_N_PROVIDERS]) + _V1_EXTRA
    for r in range(starts.size - 1):
        row = values[starts[r] : starts[r + 1]]
        if not check(row, consts, layout_v2 if row.size > v1 else layout):
            return False
        log_inputs(row, consts, logs[r])
    return True


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
        for i in range(n_in):  # x @ weight.T, each sum in index order
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


counts_at: Callable[..., int] = numba.njit(cache=True, nogil=True)(_counts_at)
"""The compiled :func:`_counts_at`."""
log_inputs: Callable[..., None] = numba.njit(cache=True, nogil=True)(_log_inputs)
"""The compiled :func:`_log_inputs`."""
check: Callable[..., bool] = numba.njit(cache=True, nogil=True)(_check)
"""The compiled :func:`_check`."""
read: Callable[..., bool] = numba.njit(cache=True, nogil=True)(_read)
"""The compiled :func:`_read`."""
prepare: Callable[..., bool] = numba.njit(cache=True, nogil=True)(_prepare)
"""The compiled :func:`_prepare`."""
prepare_rows: Callable[..., bool] = numba.njit(cache=True, nogil=True)(_prepare_rows)
"""The compiled :func:`_prepare_rows`."""
encode: Callable[..., None] = numba.njit(cache=True, nogil=True)(_encode)
"""The compiled :func:`_encode`."""
decide: Callable[..., int] = numba.njit(cache=True, nogil=True)(_decide)
"""The compiled :func:`_decide`."""
encode_rows: Callable[..., None] = numba.njit(cache=True, nogil=True)(_encode_rows)
"""The compiled :func:`_encode_rows`."""
