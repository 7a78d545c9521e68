r"""A batch body's records read from its JSON bytes straight into the kernel's values.

``POST /v1/decide/batch`` spent most of its time on what a valid fleet does not need:
orjson building some 30 dicts per record (~16 µs for a 4 KB version-2 record), then
:meth:`OneRecord._gather <ipwarmup.serving.single.OneRecord._gather>` reading them back
and pickling 211 numbers for ``kernel_record.read`` (~15 µs). :func:`read_batch`, compiled by
numba, reads the body's bytes once and writes each record's numbers in the kernel's order
(``ipwarmup.serving.kernel``'s header: the fast check's values), so a batch goes from its
bytes to ``kernel_record.check`` without a Python object per number.

It accepts a subset of what the orjson path accepts, and reads it to the same values:

- strict JSON (RFC 8259) of the schema's shape only: an array of 1 to ``max_records``
  objects, each with exactly a version-1 (where the policy takes one) or version-2
  record's keys in any order, each key once, no escape in any string, JSON whitespace;
- numbers as JSON writes them (``-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?``) with at
  most 18 significant digits, read to the float Python's ``float()`` and orjson give (the
  correctly rounded one): with at most 15 digits and a decimal exponent (once the digits
  are read as a whole number) within +-22, the digits and the power of ten are both exact
  floats, so one IEEE multiplication or division rounds correctly (Clinger's fast path);
  other numbers by Eisel-Lemire (:mod:`ipwarmup.serving.digits`), which refuses the rare ones whose
  rounding it cannot settle, and subnormal or infinite results; an integer literal ``-0``
  reads as 0.0 (Python's int 0), ``-0.0`` as -0.0; an integer literal of more than 15
  digits is refused (the orjson path reads a Python int, which ``kernel_record.read`` takes only
  below 2**55, and every bound is far below 10**15);
- ``schema_version`` equal to the version the keys say, ``mta.overflow`` a mode the fast check
  knows (``single._QUEUE``), at most ``MAX_HISTORY_PERIODS`` past periods.

Anything else (another number form, ``true`` where a count goes, an unknown, missing or
repeated key, an escape, a byte that is not JSON's) returns -1, and the body takes the
orjson path, which answers it as before: its decisions, or the strict parser's and
pydantic's words for its problems. ``tests/serving/test_jsonrows.py`` holds the values to
that path's on the same bodies.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numba
import numpy as np

from ipwarmup.observation import MAX_HISTORY_PERIODS
from ipwarmup.serving.digits import EXACT_DIGITS, MAX_DIGITS, to_float
from ipwarmup.serving.record import (
    COUNT_FIELDS,
    MTA_KEYS,
    POOL_KEYS,
    TIME_KEYS,
    TOP_KEYS,
    TOP_KEYS_V2,
)
from ipwarmup.serving.single import _QUEUE

# The key groups, in ``names``/``groups`` order (see :func:`key_table`).
_TOP, _TIME, _POOL, _MTA, _MODES, _PROVIDERS, _COUNTS = range(7)
_RECORDS, _HISTORY = 7, 8  # the two lists: the batch's records, a record's past periods
# What the reader expects next.
_ELEMENT, _KEY, _MODE, _NUMBER, _OBJECT, _LIST, _AFTER = range(7)
# A version-2 record's top keys, as indices into TOP_KEYS_V2 (the first five are version 1's).
_VERSION, _PERIOD, _WHEN, _POOL_KEY, _ENTRIES, _MTA_KEY, _PAST = range(7)
_V1_KEYS, _V2_KEYS = (1 << 5) - 1, (1 << 7) - 1
# Bytes: JSON's whitespace, then its punctuation.
_SPACE, _TAB, _LF, _CR = 32, 9, 10, 13
_QUOTE, _BACKSLASH, _COLON, _COMMA = 34, 92, 58, 44
_OPEN, _CLOSE, _OPEN_LIST, _CLOSE_LIST = 123, 125, 91, 93
_MINUS, _PLUS, _DOT, _ZERO, _NINE, _E, _E_UPPER = 45, 43, 46, 48, 57, 101, 69


def key_table(providers: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (names, bounds, groups): every key and string value the reader matches.

    ``names`` holds their UTF-8 bytes one after the other, name ``k`` at
    ``names[bounds[k] : bounds[k + 1]]``; group ``g`` (the module's ``_TOP`` ...
    ``_COUNTS``) is names ``groups[g]`` to ``groups[g + 1]``, each in the order the kernel
    reads its values (the record's constants in ``ipwarmup.serving.record``, so the fast
    check and this reader share one source).
    """
    # The overflow modes in the order of the kernel's queue flag, so a mode's index is its flag.
    modes = tuple(sorted(_QUEUE, key=_QUEUE.__getitem__))
    table = [TOP_KEYS_V2, TIME_KEYS, POOL_KEYS, MTA_KEYS, modes, tuple(providers), COUNT_FIELDS]
    encoded = [name.encode() for group in table for name in group]
    bounds = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(name) for name in encoded], out=bounds[1:])
    groups = np.zeros(len(table) + 1, dtype=np.int64)
    np.cumsum([len(group) for group in table], out=groups[1:])
    names = np.frombuffer(b"".join(encoded), dtype=np.uint8).copy()
    return names, bounds, groups


def _read_batch(
    body: np.ndarray, names: np.ndarray, bounds: np.ndarray, groups: np.ndarray, history: int,
    takes_v1: bool, max_records: int,
) -> tuple[int, np.ndarray, np.ndarray]:  # fmt: skip
    """Read a JSON array of records: (their count, their values, where each starts).

    Record ``r``'s values are ``values[starts[r] : starts[r + 1]]``, laid out as
    ``ipwarmup.serving.kernel``'s header says. The count is -1 when anything is off (the
    module docstring says what is read), or the array is empty or holds more than
    ``max_records``. One loop over the bytes, a token at a time, with a stack of the
    objects it is in: helper functions taking the body cost more in reference counting
    per call than the reading itself.
    """
    size = body.size
    p = groups[_PROVIDERS + 1] - groups[_PROVIDERS]
    head = 10 * p  # a record's counts; then pool (2), time (3), version, period, version 2's
    # mta (3) and past periods' count at head + 10, then the past periods' counts
    widest = head * (1 + max(history, MAX_HISTORY_PERIODS)) + 11
    # Zeros: the past periods a record does not give (up to K) are read as zeros, and are
    # never written.
    values = np.zeros(size // 8 + widest)
    starts = np.zeros(size // 64 + 2, dtype=np.int64)
    kind = np.zeros(8, dtype=np.int64)  # the stack: what each level is (a group, or a list)
    seen = np.zeros(8, dtype=np.int64)  # an object's keys read, one bit each
    base = np.zeros(8, dtype=np.int64)  # where an object's values go
    hint = np.zeros(8, dtype=np.int64)  # the key expected next, in the schema's order
    depth, n, given, target, version, phase = 0, 0, 0, 0, np.nan, _ELEMENT
    kind[0] = _RECORDS
    i = 0
    while i < size and (body[i] == _SPACE or body[i] == _LF or body[i] == _CR or body[i] == _TAB):
        i += 1
    if i >= size or body[i] != _OPEN_LIST:
        return -1, values, starts
    i += 1
    while True:
        while i < size and (
            body[i] == _SPACE or body[i] == _LF or body[i] == _CR or body[i] == _TAB
        ):
            i += 1
        if i >= size:
            return -1, values, starts
        c = body[i]
        level = kind[depth]
        if phase == _ELEMENT:  # in a list: a record, or a past period
            if c == _CLOSE_LIST and level == _HISTORY and given == 0:
                depth -= 1
                phase = _AFTER
            elif c != _OPEN:
                return -1, values, starts
            elif level == _RECORDS:
                if n == max_records:
                    return -1, values, starts
                if starts[n] + widest > values.size:  # grow: a body of short numbers
                    grown = np.zeros(2 * values.size + widest)
                    grown[: starts[n]] = values[: starts[n]]
                    values = grown
                if n + 2 > starts.size:  # never: a record's keys alone take 64 bytes
                    return -1, values, starts
                given, version = 0, np.nan
                depth += 1
                kind[depth], base[depth] = _TOP, starts[n]
                phase = _KEY
            else:
                if given == MAX_HISTORY_PERIODS:
                    return -1, values, starts
                depth += 1
                kind[depth], base[depth] = _PROVIDERS, starts[n] + head + 11 + head * given
                given += 1
                phase = _KEY
            if phase == _KEY:
                seen[depth], hint[depth] = 0, 0
            i += 1
        elif phase in (_KEY, _MODE):  # a string: a key of this object, or a mode
            group = _MODES if phase == _MODE else level
            if c != _QUOTE:
                return -1, values, starts
            start = i + 1
            end = start
            while end < size and body[end] != _QUOTE:
                if body[end] == _BACKSLASH or body[end] < _SPACE:
                    return -1, values, starts
                end += 1
            if end >= size:
                return -1, values, starts
            first = groups[group]
            count = groups[group + 1] - first
            k = -1
            candidate = first + hint[depth] - 1
            for _ in range(count):  # the expected name first: most records keep the order
                candidate = candidate + 1 if candidate + 1 < first + count else first
                at = bounds[candidate]
                if bounds[candidate + 1] - at == end - start:
                    m = 0
                    while m < end - start and names[at + m] == body[start + m]:
                        m += 1
                    if m == end - start:
                        k = candidate - first
                        break
            i = end + 1
            if k < 0:
                return -1, values, starts
            if phase == _MODE:  # mta.overflow: a mode's index is its queue flag
                values[target] = k
                phase = _AFTER
                continue
            if seen[depth] & (1 << k):
                return -1, values, starts
            seen[depth] |= 1 << k
            hint[depth] = k + 1
            while i < size and (
                body[i] == _SPACE or body[i] == _LF or body[i] == _CR or body[i] == _TAB
            ):
                i += 1
            if i >= size or body[i] != _COLON:
                return -1, values, starts
            i += 1
            at = base[depth]
            phase = _NUMBER
            if level == _TOP:
                if k == _VERSION:
                    target = -1
                elif k == _PERIOD:
                    target = at + head + 6
                elif k == _PAST:
                    phase = _LIST
                else:
                    phase = _OBJECT
                    if k == _WHEN:
                        target = at + head + 2
                    elif k == _POOL_KEY:
                        target = at + head
                    elif k == _ENTRIES:
                        target = at
                    else:
                        target = at + head + 7
            elif level == _PROVIDERS:
                phase, target = _OBJECT, at + 10 * k
            elif level == _MTA and k == 0:
                phase, target = _MODE, at
            else:
                target = at + k
        elif phase == _NUMBER:  # see the module docstring
            negative = c == _MINUS
            if negative:
                i += 1
            if i >= size or not _ZERO <= body[i] <= _NINE:
                return -1, values, starts
            whole, digits, scale, is_float = 0, 0, 0, False
            if body[i] == _ZERO:
                i += 1
            else:
                while i < size and _ZERO <= body[i] <= _NINE:
                    whole = whole * 10 + (int(body[i]) - _ZERO)
                    digits += 1
                    i += 1
                    if digits > MAX_DIGITS:
                        return -1, values, starts
            if i < size and body[i] == _DOT:
                is_float = True
                i += 1
                if i >= size or not _ZERO <= body[i] <= _NINE:
                    return -1, values, starts
                while i < size and _ZERO <= body[i] <= _NINE:
                    if whole > 0 or body[i] != _ZERO:  # leading zeros are not significant
                        whole = whole * 10 + (int(body[i]) - _ZERO)
                        digits += 1
                    scale -= 1
                    i += 1
                    if digits > MAX_DIGITS:
                        return -1, values, starts
            if i < size and (body[i] == _E or body[i] == _E_UPPER):
                is_float = True
                i += 1
                sign = 1
                if i < size and (body[i] == _PLUS or body[i] == _MINUS):
                    sign = -1 if body[i] == _MINUS else 1
                    i += 1
                if i >= size or not _ZERO <= body[i] <= _NINE:
                    return -1, values, starts
                exponent = 0
                while i < size and _ZERO <= body[i] <= _NINE:
                    exponent = exponent * 10 + (int(body[i]) - _ZERO)
                    if exponent > 1000:
                        return -1, values, starts
                    i += 1
                scale += sign * exponent
            if not is_float and digits > EXACT_DIGITS:
                # An int beyond 10**15: the orjson path reads a Python int, which kernel_record.read
                # takes below 2**55 only; none is in bounds, so leave them all to that path.
                return -1, values, starts
            if whole == 0:  # Python: int("-0") is 0; float("-0.0"), float("-0e5") are -0.0
                value = 0.0
                negative = negative and is_float
            else:
                ok, value = to_float(whole, scale, digits)
                if not ok:
                    return -1, values, starts
            if negative:
                value = -value
            if target < 0:
                version = value
            else:
                values[target] = value
            phase = _AFTER
        elif phase in (_OBJECT, _LIST):  # a value that is an object or a list
            if c != (_OPEN if phase == _OBJECT else _OPEN_LIST):
                return -1, values, starts
            i += 1
            depth += 1
            if phase == _LIST:
                kind[depth], phase = _HISTORY, _ELEMENT
            else:
                k = hint[depth - 1] - 1  # the key just read
                inner = _COUNTS  # a provider's entry, in a period's object
                if level == _TOP:
                    inner = (_TIME if k == _WHEN else _POOL if k == _POOL_KEY
                             else _PROVIDERS if k == _ENTRIES else _MTA)  # fmt: skip
                kind[depth], base[depth], seen[depth], hint[depth] = inner, target, 0, 0
                phase = _KEY
        else:  # _AFTER a value: a comma, or the end of this object or list
            i += 1
            if c == _COMMA:
                phase = _ELEMENT if level in (_RECORDS, _HISTORY) else _KEY
                continue
            if level in (_RECORDS, _HISTORY):
                if c != _CLOSE_LIST:
                    return -1, values, starts
                if level == _RECORDS:
                    while i < size and (
                        body[i] == _SPACE or body[i] == _LF or body[i] == _CR or body[i] == _TAB
                    ):
                        i += 1
                    if i != size:
                        return -1, values, starts
                    return n, values[: starts[n]], starts[: n + 1]
                depth -= 1
                continue
            if c != _CLOSE:
                return -1, values, starts
            if level == _TOP:
                at = starts[n]
                if seen[depth] == _V2_KEYS and version == 2.0:
                    periods = max(given, history)
                    values[at + head + 5] = version
                    values[at + head + 10] = given
                    starts[n + 1] = at + head + 11 + head * periods
                elif seen[depth] == _V1_KEYS and version == 1.0 and takes_v1:
                    values[at + head + 5] = version
                    starts[n + 1] = at + head + 7
                else:
                    return -1, values, starts
                n += 1
            elif seen[depth] != (1 << (groups[level + 1] - groups[level])) - 1:
                return -1, values, starts
            depth -= 1


if (TOP_KEYS_V2[:5] != TOP_KEYS or len(TOP_KEYS_V2) != 7 or MTA_KEYS[0] != "overflow"
        or sorted(_QUEUE.values()) != list(range(len(_QUEUE)))):  # fmt: skip
    raise RuntimeError("jsonrows reads the record's keys in record.py's order: teach it the change")

read_batch: Callable[..., tuple[int, np.ndarray, np.ndarray]] = numba.njit(cache=True, nogil=True)(
    _read_batch
)
"""The compiled :func:`_read_batch`."""
