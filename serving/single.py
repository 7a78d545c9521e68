"""One record's decision: its numbers through the compiled kernel, its reasons in Python.

:meth:`ServedPolicy.decide <ipwarmup.serving.policy.ServedPolicy.decide>` runs here. At
one record, numpy's fixed cost per call (~0.5 µs, some 40 calls for the encoder, the
network and the guardrails) was most of a decision; :mod:`ipwarmup.serving.kernel` does
the same arithmetic in one compiled call, and Python only gathers the record's numbers,
words the guardrails that fired and moves the pool; ``ServedPolicy._decision`` (shared
with the batch path) writes the decision.

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

:meth:`OneRecord.decide` takes the raw record: most records are well formed, and pydantic's
validation cost as much as the rest of a decision. It checks the record's shape while
gathering its numbers (:meth:`OneRecord._gather`); the kernel reads their pickle, which
says each number's exact type (``kernel_record.read``), and checks them against bounds read from
the record's JSON Schema (:mod:`ipwarmup.serving.schema_bounds`) and the counts'
consistency. Anything off returns None, and :meth:`ServedPolicy.decide` validates with
pydantic, which names every problem (``tests/serving/test_fast_check.py`` holds the two to
each other). :class:`OneRecord` runs the kernel once when built, so a server compiles it
(or loads it from numba's cache) at start, not on its first request.

Why two compiled calls and not one: ``log10`` between them is numpy's, for the bit-exact
observation above. libm's ``log10`` inside the kernel would save one dispatch (~0.5 µs)
but costs ~0.4 µs itself on the 60 inputs of the default layout (numpy's runs them
vectorised), so the exactness would buy almost nothing.
"""

from __future__ import annotations

import math
import operator
import pickle
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ipwarmup.actions import GROW, HOLD, POOL_THRESHOLD, SHRINK, ActionCodec
from ipwarmup.encoding import (  # the encoder's own constants, so both read the same
    AGE_SCALE_DAYS,
    LOG_SCALES,
    RATE_SCALES,
    WEEKDAY_COS,
    WEEKDAY_SIN,
)
from ipwarmup.observation import (
    LAST_PERIOD,
    MAX_AGE_SCALE_HOURS,
    MAX_HISTORY_PERIODS,
    RETRY_SCALE_HOURS,
    Layout,
    feature_bounds,
)
from ipwarmup.serving import guardrails as gr
from ipwarmup.serving import kernel, kernel_record
from ipwarmup.serving import kernel_layout as at  # where the kernel's inputs and outputs are
from ipwarmup.serving.record import (
    COUNT_FIELDS,
    MTA_KEYS,
    POOL_KEYS,
    RELATIVE_TOLERANCE,
    TIME_KEYS,
    TOP_KEYS,
    TOP_KEYS_V2,
)
from ipwarmup.serving.schema_bounds import record_bounds

_COUNTS_OF = operator.itemgetter(*COUNT_FIELDS)
"""A provider entry's counts in ``COUNT_FIELDS`` order, in one C call."""
_N_COUNTS = len(COUNT_FIELDS)
_QUEUE = {"shared": 0.0, "queue": 1.0}
"""``mta.overflow`` as the kernel reads it (``mta.queue``)."""


def _sum(terms: list[float]) -> float:
    """Sum as numpy's ``sum`` over a row does, to the last bit.

    Below 8 terms numpy adds in order from 0.0, as ``sum`` does; from 8 on it sums
    pairwise, so longer rows go to numpy.
    """
    if len(terms) < 8:
        return sum(terms, 0.0)
    return float(np.add.reduce(np.array(terms)))


class _Spare(threading.local):
    """Each thread's arrays for :meth:`OneRecord.decide`, by the record's number of values."""

    def __init__(self) -> None:
        self.arrays: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}


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
        layout: what the observation reads beyond the last period; a layout with history
            or MTA inputs takes version-2 records only, one without takes both versions.
    """

    def __init__(
        self, *, providers: Sequence[str], mean: np.ndarray, inv_std: np.ndarray,
        clip_obs: float, layers: Sequence[tuple[np.ndarray, np.ndarray, str]],
        low: np.ndarray, high: np.ndarray, codec: ActionCodec,
        guardrails: gr.GuardrailSettings, horizon_days: int, max_ips: int,
        layout: Layout = LAST_PERIOD,
    ) -> None:  # fmt: skip
        self.providers = tuple(providers)
        self.guardrails = g = guardrails
        self.period_hours = period = codec.decision_interval_hours
        self.max_ips = max_ips
        self._max_cap = codec.max_hourly_cap_messages
        p = len(self.providers)
        self.layout = layout
        k = self._history = layout.history_periods
        feature_low, feature_high = feature_bounds(p, layout)
        encoder = [float(period), float(max_ips), float(horizon_days), AGE_SCALE_DAYS,
                   *RATE_SCALES, *LOG_SCALES, *WEEKDAY_SIN, *WEEKDAY_COS,
                   MAX_AGE_SCALE_HOURS, RETRY_SCALE_HOURS, float(p), float(k),
                   float(layout.mta_inputs)]  # fmt: skip
        self.thresholds = [g.complaint_thresholds.get(name, math.inf) for name in self.providers]
        scalars = [clip_obs, codec.log_step, gr.growth_limit(g, period),
                   codec.min_hourly_cap_messages, codec.max_hourly_cap_messages,
                   g.block_min_rejected, g.block_cut, g.deferral_rate, g.deferral_cut,
                   g.bounce_rate, g.bounce_cut, g.complaint_cut, RELATIVE_TOLERANCE]  # fmt: skip
        parts: list[np.ndarray] = []
        offsets: list[int] = []
        used = 0
        v1 = record_bounds(self.providers, max_ips, period, layout, 1)
        v2 = record_bounds(self.providers, max_ips, period, layout, 2)
        for part in (encoder, feature_low, feature_high, mean, inv_std, scalars, low, high,
                     self.thresholds, *v1, *v2):  # fmt: skip
            offsets.append(used)
            parts.append(np.asarray(part, dtype=np.float64).ravel())
            used += parts[-1].size
        offsets = offsets[3:]  # the feature bounds follow the encoder's block (_ENCODER)
        bounds_v2 = offsets[-3:]  # version 2's bounds; the layout names version 1's
        offsets = offsets[:-3]
        offsets.append(len(layers))
        for weight_t, bias, activation in layers:
            offsets += [weight_t.shape[0], weight_t.shape[1], at._ACTIVATIONS[activation],
                        used, used + weight_t.size]  # fmt: skip
            parts += [np.asarray(weight_t, dtype=np.float64).ravel(),
                      np.asarray(bias, dtype=np.float64).ravel()]  # fmt: skip
            used += weight_t.size + bias.size
        self._consts = np.concatenate(parts)
        self._layout = np.array(offsets, dtype=np.int64)
        self._layout_v2 = self._layout.copy()
        self._layout_v2[at._L_LOWEST : at._L_WHOLE + 1] = bounds_v2
        self._accepts_v1 = not layout.needs_v2
        self._size = at._BLOCKS * p + 2
        # The output's blocks that every decision reads, as slices of its list.
        self._factors_at, self._caps_at, self._ratios_at, self._flags_at = (
            slice(block * p, block * p + p)
            for block in (at._FACTOR, at._NEXT_CAP, at._RATIO, at._FLAGS)
        )
        self._kernels = (kernel_record.prepare, kernel.decide)
        self._n_logs = 3 * p * (1 + k)
        self._padding = [0.0] * (10 * p)  # a past period before the warmup started
        self._v1_size = 10 * p + 7  # a version-1 record's values; version 2's are more
        self._spare = _Spare()
        # A record's parts in one C call each (itemgetter of one key returns no tuple).
        self._top = operator.itemgetter(*TOP_KEYS)
        self._top_v2 = operator.itemgetter(*TOP_KEYS_V2)
        self._mta = operator.itemgetter(*MTA_KEYS)
        self._pool = operator.itemgetter(*POOL_KEYS)
        self._time = operator.itemgetter(*TIME_KEYS)
        self._entries = (operator.itemgetter(*self.providers) if p > 1
                         else lambda entries: (entries[self.providers[0]],))  # fmt: skip
        self._warm_up()

    def zeros_record(self, version: int) -> dict[str, Any]:
        """Return a valid record of zeros (no IPs, day 0, no history) of this version."""
        zeros = dict.fromkeys(COUNT_FIELDS, 0.0)
        record = {"schema_version": 1, "period_hours": self.period_hours,
                  "time": {"day": 0.0, "weekday": 0, "hour": 0},
                  "pool": {"dedicated_ips": 0, "mean_ip_age_days": 0.0},
                  "providers": dict.fromkeys(self.providers, zeros)}  # fmt: skip
        if version == 1:
            return record
        mta = {"overflow": "shared", "max_age_hours": 72, "retry_interval_hours": 1.0}
        return {**record, "schema_version": 2, "mta": mta, "history": []}

    def _warm_up(self) -> None:
        """Compile (or load) the kernels now, on records of zeros (of each version taken)."""
        if self._accepts_v1:
            self.decide(self.zeros_record(1))
        self.decide(self.zeros_record(2))

    def _gather(self, record: object) -> list[Any] | None:
        """Return a record's numbers in the kernel's order, or None if its shape is off.

        The shape is the record's pydantic types' (``record.record_adapter``): plain dicts
        holding exactly the expected keys (a version-1 record only where the policy takes
        one, the version as its keys say), ``mta.overflow`` a ``str``, ``history`` a list
        of at most ``MAX_HISTORY_PERIODS`` periods. Anything else is left to pydantic. The
        numbers' types (an ``int`` or a ``float``: not a bool, a subclass or a string) are
        checked by :func:`kernel_record.read <ipwarmup.serving.kernel_record.read>` on their pickle.
        """
        if type(record) is not dict:
            return None
        v2 = len(record) == len(TOP_KEYS_V2)
        if v2:
            version, period, when, pool, entries, mta, history = self._top_v2(record)
        elif len(record) == len(TOP_KEYS) and self._accepts_v1:
            version, period, when, pool, entries = self._top(record)
        else:
            return None
        if (type(when) is not dict or len(when) != len(TIME_KEYS) or type(pool) is not dict
                or len(pool) != len(POOL_KEYS)):  # fmt: skip
            return None
        # Inline loops, not a helper per period: a decision gathers 20 entries or more,
        # and each Python call or bound name costs more than the check it wraps.
        n, entries_of, counts_of = len(self.providers), self._entries, _COUNTS_OF
        if type(entries) is not dict or len(entries) != n:
            return None
        flat: list[Any] = []
        for entry in entries_of(entries):
            if type(entry) is not dict or len(entry) != _N_COUNTS:
                return None
            flat += counts_of(entry)
        flat += self._pool(pool)
        flat += self._time(when)
        # The version the keys say: the other one is pydantic's to word.
        flat += (version if version == (2 if v2 else 1) else math.nan, period)
        if not v2:
            return flat
        if (type(mta) is not dict or len(mta) != len(MTA_KEYS) or type(history) is not list
                or len(history) > MAX_HISTORY_PERIODS):  # fmt: skip
            return None
        overflow, max_age, retry = self._mta(mta)
        if type(overflow) is not str or overflow not in _QUEUE:
            return None
        flat += (_QUEUE[overflow], max_age, retry, len(history))
        for past in history:
            if type(past) is not dict or len(past) != n:
                return None
            for entry in entries_of(past):
                if type(entry) is not dict or len(entry) != _N_COUNTS:
                    return None
                flat += counts_of(entry)
        if len(history) < self._history:
            flat += self._padding * (self._history - len(history))
        return flat

    @staticmethod
    def _pickled(flat: list[Any]) -> bytes | None:
        """Return ``pickle.dumps(flat, 2)`` as bytes for :func:`kernel_record.read`, or None.

        pickle writes each number with an opcode of its exact type in one C pass, which the
        kernel reads as the type check and the conversion (half the time of a ``type()``
        per number, then ``struct``). The kernel takes the bytes as they are (numba reads a
        ``bytes`` object without a numpy view, ~0.5 µs less). None when pickle cannot write
        something: whatever its reason, pydantic words the problem.
        """
        try:
            return pickle.dumps(flat, 2)
        except Exception:  # an object's own __reduce__ may raise anything
            return None

    def decide(
        self, record: object, kernels: tuple[Callable[..., Any], ...] | None = None
    ) -> Decision | None:
        """Decide one record: ``ServedPolicy._decision``'s arguments, or None.

        The record may be unvalidated: the fast check (:meth:`_gather`, then the kernel's
        bounds and consistency) accepts only what pydantic accepts. None when that check
        finds anything off (the caller then validates with pydantic, which names the
        problems) or when the network's output is not finite (the caller's fallback
        decides). ``kernels`` replaces the compiled ``(prepare, decide)`` (the tests pass
        the plain functions).
        """
        try:
            flat = self._gather(record)
        except KeyError:  # a key missing
            return None
        if flat is None:
            return None
        try:
            data = pickle.dumps(flat, 2)  # _pickled's, inline: a call costs ~0.1 µs
        except Exception:  # an object's own __reduce__ may raise anything
            return None
        prepare, decide = kernels or self._kernels
        size = len(flat)
        layout = self._layout_v2 if size > self._v1_size else self._layout
        # This thread's arrays for a record of this size (three np.empty cost ~0.5 µs): per
        # thread, as the HTTP service decides in a thread pool and the kernels release the
        # GIL; taken out while in use, so a call that re-enters decide here gets fresh ones.
        spare = self._spare.arrays
        buffers = spare.pop(size, None)
        if buffers is None:
            buffers = (np.empty(size), np.empty(self._n_logs), np.empty(self._size))
        values, logs, out = buffers
        if not prepare(data, values, self._consts, layout, logs):
            spare[size] = buffers
            return None
        # numpy's log10, as encode's: libm's may differ in the last bit (module docstring).
        np.log10(logs, out=logs)
        fired: int = decide(values, logs, self._consts, layout, out)
        o: list[float] = out.tolist()
        spare[size] = buffers  # given back: nothing reads them from here on
        if fired < 0:
            return None
        p = len(self.providers)
        n = int(flat[10 * p])
        pool_value = o[-2]
        proposal = (GROW if pool_value > POOL_THRESHOLD
                    else SHRINK if pool_value < -POOL_THRESHOLD else HOLD)  # fmt: skip
        hits: list[list[tuple[str, str]]] | None = None
        cut_at: list[str] = []
        if n > 0:
            next_caps = o[self._caps_at]
            ratios = o[self._ratios_at]
            if fired:  # one pass over the providers' flags: most are 0
                hits = []
                for j, flag in enumerate(o[self._flags_at]):
                    if not flag:
                        hits.append([])
                        continue
                    hits.append(self._reasons(o, j, int(flag), flat))
                    if int(flag) & at._CUTS:
                        cut_at.append(self.providers[j])
        else:
            next_caps, ratios = [0.0] * p, [math.nan] * p
        # The pool: the policy's change, then its bounds and guardrails, in this order.
        notes: list[tuple[str | None, str]] = []
        action = proposal
        if action == GROW and n >= self.max_ips:
            action = HOLD
            notes.append(("pool_max", gr.pool_max_reason(self.max_ips)))
        if action == GROW and cut_at:
            action = HOLD
            notes.append(("pool_hold", gr.pool_hold_reason(cut_at)))
        # The kernel sums in order, as numpy does below 8 terms; from 8 on numpy sums pairwise.
        demand = o[-1] if p < 8 else _sum([float(d) for d in flat[0 : 10 * p : 10]])
        monthly = demand * (24 / self.period_hours) * 30
        if monthly < self.guardrails.min_monthly_messages:
            action = SHRINK if n > 0 else HOLD
            notes.append(("low_volume", gr.low_volume_reason(self.guardrails, monthly)))
        if action == SHRINK and n == 0:
            action = HOLD
            notes.append((None, gr.EMPTY))
        return (n, False, o[self._factors_at], next_caps, ratios, hits,
                pool_value, proposal, action, notes)  # fmt: skip

    def _reasons(
        self, o: list[float], j: int, flags: int, flat: list[float]
    ) -> list[tuple[str, str]]:
        """The (guardrail, reason) pairs of provider ``j``'s flags, in the batch path's order."""
        p, g = len(self.providers), self.guardrails
        fired: list[tuple[str, str]] = []
        if flags & at._GROWTH:
            limit = gr.growth_limit(g, self.period_hours)
            fired.append(("growth_bound", gr.growth_reason(o[j], limit, self.period_hours)))
        if flags & at._BLOCK:
            fired.append(("block", gr.block_reason(g, float(flat[10 * j + 5]))))
        if flags & at._DEFERRALS:
            fired.append(("deferrals", gr.deferrals_reason(g, o[at._DEFERRAL * p + j])))
        if flags & at._BOUNCES:
            fired.append(("bounces", gr.bounces_reason(g, o[at._BOUNCE * p + j])))
        if flags & at._COMPLAINTS:
            reason = gr.complaints_reason(g, o[at._COMPLAINT * p + j], self.thresholds[j])
            fired.append(("complaints", reason))
        if flags & at._CAP_BOUNDS:
            reason = gr.cap_bounds_reason(o[at._PER_IP * p + j], o[at._NEXT_CAP * p + j],
                                          self._max_cap)  # fmt: skip
            fired.append(("cap_bounds", reason))
        return fired
