"""One record's decision, compiled: encoder, network and guardrails in one numba kernel.

:meth:`ServedPolicy.decide <ipwarmup.serving.policy.ServedPolicy.decide>` runs here. At
one record, numpy's fixed cost per call (~0.5 µs, some 40 calls for the encoder, the
network and the guardrails) was most of a decision; the kernel does the same arithmetic in
one compiled call, and Python only gathers the record's numbers and writes the decision
(:meth:`ServedPolicy._decision`, shared with the batch path).

What is exact and what is not, against the batch path (:meth:`ServedPolicy._decide_records`):

- the observation is bit for bit :func:`ipwarmup.observation.encode`'s: the same IEEE
  operations in the same order, ``log10`` run by numpy (its vectorised ``log10`` may differ
  from libm's in the last bit, and the float32 cast could turn that into ~1e-7), the clip
  and the float32 cast as ``encode`` does them;
- the network's sums run in index order and ``tanh`` and the cap factor's ``exp`` are
  libm's, where the batch path uses BLAS (whose summation order is its own) and numpy's
  ``tanh`` and ``exp``: actions, caps and ratios agree to a few units in the last place
  (the tests hold them within 1e-12, relative);
- the guardrails' conditions and the caps' arithmetic are :mod:`ipwarmup.serving.guardrails`'
  vectorised ones written for scalars; the reasons come from the same functions there.

A network output that is not finite (overflow) is reported, and the caller decides that
record through the batch path, whose fallback rule handles it.

Compiled with ``cache=True`` (machine code beside this file); :class:`OneRecord` runs the
kernel once when built, so a server compiles or loads it at start, not on its first request.
"""

from __future__ import annotations

import math
import operator
import struct
from collections.abc import Callable, Sequence
from typing import Any

import numba
import numpy as np

from ipwarmup.actions import GROW, HOLD, POOL_THRESHOLD, SHRINK, ActionCodec
from ipwarmup.observation import (  # the encoder's own constants, so both read the same
    _LOG_SCALES,
    _RATE_SCALES,
    _WEEKDAY_COS,
    _WEEKDAY_SIN,
    AGE_SCALE_DAYS,
    feature_bounds,
)
from ipwarmup.serving import guardrails as gr
from ipwarmup.serving.record import COUNT_FIELDS

_COUNTS_OF = operator.itemgetter(*COUNT_FIELDS)
"""A provider entry's counts in ``COUNT_FIELDS`` order, in one C call."""
EMPTY = "the pool is already empty"
_ACTIVATIONS = {"identity": 0, "tanh": 1, "relu": 2}

# The constants array: the encoder's block, then the network's and guardrails' scalars.
# Encoder block (index: meaning); the weekday tables and feature bounds follow it.
_PERIOD, _MAX_IPS, _HORIZON, _AGE_SCALE = 0, 1, 2, 3
_RATE_SCALE = 4  # 6 values: the rate features' scales, as in ``encode``
_LOG_SCALE = 10  # 3 values: demand, cap, queue
_SIN, _COS = 13, 20  # 7 values each
_ENCODER = 27  # then the feature bounds: low (D), high (D)
# Scalars of the network and the guardrails, at layout[_L_SCALARS].
_CLIP_OBS, _LOG_STEP, _LIMIT, _MIN_CAP, _MAX_CAP = 0, 1, 2, 3, 4
_BLOCK_MIN, _BLOCK_CUT, _DEFERRAL_RATE, _DEFERRAL_CUT = 5, 6, 7, 8
_BOUNCE_RATE, _BOUNCE_CUT, _COMPLAINT_CUT = 9, 10, 11
_N_SCALARS = 12
# The layout array: offsets into the constants, the number of layers, then per layer
# (inputs, outputs, activation, weight offset, bias offset).
_L_MEAN, _L_INV_STD, _L_SCALARS, _L_ACT_LOW, _L_ACT_HIGH, _L_THRESHOLDS, _L_LAYERS = range(7)
_LAYER = 5
# Guardrail flags per provider, in the order their reasons are listed.
_GROWTH, _BLOCK, _DEFERRALS, _BOUNCES, _COMPLAINTS, _CAP_BOUNDS = 1, 2, 4, 8, 16, 32
_CUTS = _BLOCK | _DEFERRALS | _BOUNCES | _COMPLAINTS
# The output: per provider, eight blocks of P values, then the pool's action value.
_FACTOR, _NEXT_CAP, _RATIO, _FLAGS, _PER_IP, _DEFERRAL, _BOUNCE, _COMPLAINT = range(8)
_BLOCKS = 8


def _log_inputs(values: np.ndarray, consts: np.ndarray, logs: np.ndarray) -> None:
    """Write the arguments of the encoder's ``log10``: 1 + demand/hour, 1 + cap, 1 + queue."""
    period = consts[_PERIOD]
    for j in range(logs.size // 3):
        logs[3 * j] = 1.0 + values[10 * j] / period
        logs[3 * j + 1] = 1.0 + values[10 * j + 1]
        logs[3 * j + 2] = 1.0 + values[10 * j + 8]


def _encode(values: np.ndarray, logs: np.ndarray, consts: np.ndarray, obs: np.ndarray) -> None:
    """Write the float32 observation of one record: ``encode``'s arithmetic, per feature.

    ``values``: each provider's ten counts (``COUNT_FIELDS`` order), then ``n_ips,
    mean_ip_age_days, day, weekday, hour``; ``logs``: ``log10`` of :func:`_log_inputs`.
    """
    n_providers = logs.size // 3
    size = obs.size
    r = consts[_RATE_SCALE : _RATE_SCALE + 6]
    demand_scale, cap_scale = consts[_LOG_SCALE], consts[_LOG_SCALE + 1]
    queue_scale = consts[_LOG_SCALE + 2]
    features = np.empty(size)
    for j in range(n_providers):
        c = 10 * j
        demand, sent, accepted = values[c], values[c + 2], values[c + 3]
        transmitted = accepted + values[c + 9]
        delivered = transmitted - values[c + 6]
        per_sent = 1.0 if sent < 1.0 else sent
        f = 9 * j
        features[f] = logs[3 * j] * demand_scale
        features[f + 1] = logs[3 * j + 1] * cap_scale
        features[f + 2] = sent / (1.0 if demand < 1.0 else demand) * r[0]
        features[f + 3] = accepted / per_sent * r[1]
        features[f + 4] = values[c + 4] / per_sent * r[2]
        features[f + 5] = values[c + 5] / per_sent * r[3]
        features[f + 6] = values[c + 6] / (1.0 if transmitted < 1.0 else transmitted) * r[4]
        features[f + 7] = values[c + 7] / (1.0 if delivered < 1.0 else delivered) * r[5]
        features[f + 8] = logs[3 * j + 2] * queue_scale
    g, v = 9 * n_providers, 10 * n_providers
    weekday = int(values[v + 3])
    features[g] = values[v] / consts[_MAX_IPS]
    features[g + 1] = values[v + 1] / consts[_AGE_SCALE]
    features[g + 2] = values[v + 2] / consts[_HORIZON]
    features[g + 3] = consts[_SIN + weekday]
    features[g + 4] = consts[_COS + weekday]
    features[g + 5] = values[v + 4] / 24.0
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
    the pool's action value. With no IPs only the factors and the pool value are written.
    """
    n_providers = logs.size // 3
    size = 9 * n_providers + 6
    obs = np.empty(size, dtype=np.float32)
    _encode_compiled(values, logs, consts, obs)
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


# The plain functions stay importable, so tests can run them where a tracer sees them.
_log_inputs_compiled: Callable[..., None] = numba.njit(cache=True, nogil=True)(_log_inputs)
_encode_compiled: Callable[..., None] = numba.njit(cache=True, nogil=True)(_encode)
_decide_compiled: Callable[..., int] = numba.njit(cache=True, nogil=True)(_decide)


def pool_max_reason(max_ips: int) -> str:
    """Say that the pool may not grow past ``max_ips``."""
    return f"guardrail pool_max: already at max_ips ({max_ips})"


def pool_hold_reason(where: list[str]) -> str:
    """Say that the pool holds while caps are cut at these providers."""
    return f"guardrail pool_hold: no new IP while caps are cut at {', '.join(where)}"


def _sum(terms: list[float]) -> float:
    """Sum as numpy's ``sum`` over a row does, to the last bit.

    Below 8 terms numpy adds in order from 0.0, as ``sum`` does; from 8 on it sums
    pairwise, so longer rows go to numpy.
    """
    if len(terms) < 8:
        return sum(terms, 0.0)
    return float(np.add.reduce(np.array(terms)))


Decision = tuple[
    int, bool, list[float], list[float], list[float], list[list[tuple[str, str]]] | None,
    float, int, int, list[tuple[str | None, str]],
]  # fmt: skip
"""The arguments of ``ServedPolicy._decision`` for one record."""


class OneRecord:
    """A policy's constants laid out for the kernel, and the one-record decision around it.

    Args:
        providers: the provider names, in the policy's order.
        mean: the normalisation's mean, (D,).
        inv_std: ``1 / sqrt(var + eps)``, (D,).
        clip_obs: the normalised observation's bound.
        layers: per layer the transposed weight (inputs, outputs), the bias and the
            activation's name.
        low: the action's lower bounds, (P + 1,).
        high: the action's upper bounds, (P + 1,).
        codec: the action codec (cap bounds and the log step).
        guardrails: the guardrail settings in force.
        horizon_days: the encoder's horizon.
        max_ips: the largest pool.
    """

    def __init__(
        self, *, providers: Sequence[str], mean: np.ndarray, inv_std: np.ndarray,
        clip_obs: float, layers: Sequence[tuple[np.ndarray, np.ndarray, str]],
        low: np.ndarray, high: np.ndarray, codec: ActionCodec,
        guardrails: gr.GuardrailSettings, horizon_days: int, max_ips: int,
    ) -> None:  # fmt: skip
        self.providers = tuple(providers)
        self.guardrails = g = guardrails
        self.period_hours = period = codec.decision_interval_hours
        self.max_ips = max_ips
        self._max_cap = codec.max_hourly_cap_messages
        p = len(self.providers)
        feature_low, feature_high = feature_bounds(p)
        encoder = [float(period), float(max_ips), float(horizon_days), AGE_SCALE_DAYS,
                   *_RATE_SCALES, *_LOG_SCALES, *_WEEKDAY_SIN, *_WEEKDAY_COS]  # fmt: skip
        self.thresholds = [g.complaint_thresholds.get(name, math.inf) for name in self.providers]
        scalars = [clip_obs, codec.log_step, gr.growth_limit(g, period),
                   codec.min_hourly_cap_messages, codec.max_hourly_cap_messages,
                   g.block_min_rejected, g.block_cut, g.deferral_rate, g.deferral_cut,
                   g.bounce_rate, g.bounce_cut, g.complaint_cut]  # fmt: skip
        parts: list[np.ndarray] = []
        offsets: list[int] = []
        used = 0
        for part in (encoder, feature_low, feature_high, mean, inv_std, scalars, low, high,
                     self.thresholds):  # fmt: skip
            offsets.append(used)
            parts.append(np.asarray(part, dtype=np.float64).ravel())
            used += parts[-1].size
        offsets = offsets[3:]  # the feature bounds follow the encoder's block (_ENCODER)
        offsets.append(len(layers))
        for weight_t, bias, activation in layers:
            offsets += [weight_t.shape[0], weight_t.shape[1], _ACTIVATIONS[activation],
                        used, used + weight_t.size]  # fmt: skip
            parts += [np.asarray(weight_t, dtype=np.float64).ravel(),
                      np.asarray(bias, dtype=np.float64).ravel()]  # fmt: skip
            used += weight_t.size + bias.size
        self._consts = np.concatenate(parts)
        self._layout = np.array(offsets, dtype=np.int64)
        self._size = _BLOCKS * p + 1
        self._n_logs = 3 * p
        # One record's values as float64 bytes: packing and viewing them as an array takes
        # half as long as np.array on the list.
        self._pack = struct.Struct(f"{10 * p + 5}d").pack
        self._warm_up()

    def _warm_up(self) -> None:
        """Compile (or load) the kernels now, on a record of zeros."""
        zeros = dict.fromkeys(COUNT_FIELDS, 0.0)
        self.decide({"providers": dict.fromkeys(self.providers, zeros),
                     "pool": {"dedicated_ips": 0, "mean_ip_age_days": 0.0},
                     "time": {"day": 0.0, "weekday": 0, "hour": 0}})  # fmt: skip

    def decide(
        self, record: dict[str, Any], kernels: tuple[Callable[..., Any], ...] | None = None
    ) -> Decision | None:
        """Decide one validated record: ``ServedPolicy._decision``'s arguments, or None.

        None when the network's output is not finite: the caller's fallback decides then.
        ``kernels`` replaces the compiled ``(_log_inputs, _decide)`` (the tests pass the
        plain functions).
        """
        entries, pool_in, when = record["providers"], record["pool"], record["time"]
        flat: list[float] = []
        for name in self.providers:
            flat += _COUNTS_OF(entries[name])
        n: int = pool_in["dedicated_ips"]
        flat += (n, pool_in["mean_ip_age_days"], when["day"], when["weekday"], when["hour"])
        values = np.frombuffer(self._pack(*flat))
        log_inputs, kernel = kernels or (_log_inputs_compiled, _decide_compiled)
        logs = np.empty(self._n_logs)
        log_inputs(values, self._consts, logs)
        # numpy's log10, as encode's: libm's may differ in the last bit (module docstring).
        np.log10(logs, out=logs)
        out = np.empty(self._size)
        fired: int = kernel(values, logs, self._consts, self._layout, out)
        if fired < 0:
            return None
        o: list[float] = out.tolist()
        p = len(self.providers)
        factors = o[_FACTOR * p : _FACTOR * p + p]
        pool_value = o[-1]
        proposal = (GROW if pool_value > POOL_THRESHOLD
                    else SHRINK if pool_value < -POOL_THRESHOLD else HOLD)  # fmt: skip
        hits: list[list[tuple[str, str]]] | None = None
        cut_at: list[str] = []
        if n > 0:
            next_caps = o[_NEXT_CAP * p : _NEXT_CAP * p + p]
            ratios = o[_RATIO * p : _RATIO * p + p]
            if fired:
                flags = [int(f) for f in o[_FLAGS * p : _FLAGS * p + p]]
                hits = [self._reasons(o, j, f, flat) if f else [] for j, f in enumerate(flags)]
                cut_at = [name for name, f in zip(self.providers, flags, strict=True) if f & _CUTS]
        else:
            next_caps, ratios = [0.0] * p, [math.nan] * p
        # The pool: the policy's change, then its bounds and guardrails, in this order.
        g = self.guardrails
        notes: list[tuple[str | None, str]] = []
        action = proposal
        if action == GROW and n >= self.max_ips:
            action = HOLD
            notes.append(("pool_max", pool_max_reason(self.max_ips)))
        if action == GROW and cut_at:
            action = HOLD
            notes.append(("pool_hold", pool_hold_reason(cut_at)))
        monthly = _sum(flat[0 : 10 * p : 10]) * (24 / self.period_hours) * 30
        if monthly < g.min_monthly_messages:
            action = SHRINK if n > 0 else HOLD
            notes.append(("low_volume", gr.low_volume_reason(g, monthly)))
        if action == SHRINK and n == 0:
            action = HOLD
            notes.append((None, EMPTY))
        return (n, False, factors, next_caps, ratios, hits, pool_value, proposal, action,
                notes)  # fmt: skip

    def _reasons(
        self, o: list[float], j: int, flags: int, flat: list[float]
    ) -> list[tuple[str, str]]:
        """The (guardrail, reason) pairs of provider ``j``'s flags, in the batch path's order."""
        p, g = len(self.providers), self.guardrails
        fired: list[tuple[str, str]] = []
        if flags & _GROWTH:
            limit = gr.growth_limit(g, self.period_hours)
            fired.append(("growth_bound", gr.growth_reason(o[j], limit, self.period_hours)))
        if flags & _BLOCK:
            fired.append(("block", gr.block_reason(g, flat[10 * j + 5])))
        if flags & _DEFERRALS:
            fired.append(("deferrals", gr.deferrals_reason(g, o[_DEFERRAL * p + j])))
        if flags & _BOUNCES:
            fired.append(("bounces", gr.bounces_reason(g, o[_BOUNCE * p + j])))
        if flags & _COMPLAINTS:
            reason = gr.complaints_reason(g, o[_COMPLAINT * p + j], self.thresholds[j])
            fired.append(("complaints", reason))
        if flags & _CAP_BOUNDS:
            reason = gr.cap_bounds_reason(o[_PER_IP * p + j], o[_NEXT_CAP * p + j],
                                          self._max_cap)  # fmt: skip
            fired.append(("cap_bounds", reason))
        return fired
