"""A record's numbers for the one-record kernel: read from their pickle, checked, prepared.

:func:`prepare` runs :func:`read` (the record's numbers from ``pickle.dumps(numbers, 2)``,
which checks their exact types), :func:`check` (the fast check of their bounds and
consistency) and :func:`log_inputs` (the arguments of the encoder's ``log10``, which numpy
then runs); a fleet's batch runs :func:`prepare_rows` on the numbers
:mod:`ipwarmup.serving.jsonrows` read. The indices are :mod:`ipwarmup.serving.kernel_layout`'s.

The plain functions stay importable beside their compiled forms, so tests run them where
a line tracer (coverage, ``scripts/mutation``) sees them; ``NUMBA_DISABLE_JIT=1`` makes the
compiled forms plain Python too. Compiled with ``cache=True``, stale when any module of the
package changes (:mod:`ipwarmup.numba_cache`): it reads ``kernel_layout``'s constants.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numba
import numpy as np

from ipwarmup.serving.kernel_layout import (
    _L_HIGHEST,
    _L_LOWEST,
    _L_SCALARS,
    _L_WHOLE,
    _N_HISTORY,
    _N_PROVIDERS,
    _PERIOD,
    _TOLERANCE,
    _V1_EXTRA,
    _V2_EXTRA,
)


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
    n = values.size
    lowest = consts[layout[_L_LOWEST] : layout[_L_LOWEST] + n]
    highest = consts[layout[_L_HIGHEST] : layout[_L_HIGHEST] + n]
    whole = consts[layout[_L_WHOLE] : layout[_L_WHOLE] + n]
    # Every value judged, without a branch (LLVM vectorises it: ~0.3 µs less on 211
    # values, and most records pass). Finite too: a bound that JSON Schema leaves open
    # (inf) must not let inf in; np.floor, as math.floor raises on inf in plain Python.
    ok = True
    for i in range(n):
        v = values[i]
        ok &= math.isfinite(v) & (lowest[i] <= v) & (v <= highest[i])
        ok &= (whole[i] == 0.0) | (v == np.floor(v))
    if not ok:
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
