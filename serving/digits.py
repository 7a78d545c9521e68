"""Decimal digits to the correctly rounded float, in numba: Clinger's fast path, Eisel-Lemire.

:func:`to_float` gives ``whole * 10**scale`` as the float Python's ``float()`` and orjson
give for the same digits (the correctly rounded one), or says it cannot: with at most
:data:`EXACT_DIGITS` digits and a decimal exponent within +-22 the digits and the power of
ten are both exact floats, so one IEEE multiplication or division rounds correctly
(Clinger's fast path); other numbers go to Eisel-Lemire (:func:`_lemire`), which refuses the
rare ones whose rounding it cannot settle, and subnormal or infinite results.
:mod:`ipwarmup.serving.jsonrows` reads a batch body's numbers with it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numba
import numpy as np

EXACT_DIGITS = 15
"""Up to 15 significant digits (below 10**15 < 2**53) a float holds the digits exactly."""
MAX_DIGITS = 18
"""Significant digits of a number read here at all: below 10**18, an int64 holds them."""
_POWERS = np.array([float(10**k) for k in range(23)])
"""10**0 to 10**22: every one exactly a float (10**23 is not)."""
_MIN_EXP10, _MAX_EXP10 = -342, 308
"""Decimal exponents Eisel-Lemire is tried on (beyond them, a digit string is 0 or inf)."""


def _power_table() -> tuple[np.ndarray, np.ndarray]:
    """10**e for e in [_MIN_EXP10, _MAX_EXP10] as 128-bit mantissas, rounded down.

    ``m = floor(10**e * 2**(127 - E))`` with ``E = (217706 * e) >> 16`` (floor(log2 10**e)),
    so ``2**127 <= m < 2**128``; returned as its high and low 64 bits. Exact integers.
    """
    high, low = [], []
    for e in range(_MIN_EXP10, _MAX_EXP10 + 1):
        shift = 127 - ((217706 * e) >> 16)
        if e >= 0:
            m = 10**e << shift if shift >= 0 else 10**e >> -shift
        else:
            m = (1 << shift) // 10**-e
        if m.bit_length() != 128:
            raise RuntimeError(f"the power table's exponent estimate fails at 1e{e}")
        high.append(m >> 64)
        low.append(m & (2**64 - 1))
    return np.array(high, dtype=np.uint64), np.array(low, dtype=np.uint64)


_POW_HIGH, _POW_LOW = _power_table()
_M64 = np.uint64(2**64 - 1)
_M32, _U32 = np.uint64(2**32 - 1), np.uint64(32)
_U0, _U1, _U9, _U63, _U52 = (np.uint64(k) for k in (0, 1, 9, 63, 52))
_LOW9, _TOP_BIT = np.uint64(0x1FF), np.uint64(1 << 63)


def _mul(a: np.uint64, b: np.uint64) -> tuple[np.uint64, np.uint64]:
    """Return the high and low 64 bits of ``a * b`` (no 128-bit integer in numba)."""
    a_lo, a_hi, b_lo, b_hi = a & _M32, a >> _U32, b & _M32, b >> _U32
    p0, p1, p2, p3 = a_lo * b_lo, a_lo * b_hi, a_hi * b_lo, a_hi * b_hi
    mid = (p0 >> _U32) + (p1 & _M32) + (p2 & _M32)
    return p3 + (p1 >> _U32) + (p2 >> _U32) + (mid >> _U32), (p0 & _M32) | ((mid & _M32) << _U32)


def _lemire(whole: np.uint64, exp10: int) -> tuple[bool, float]:
    """Return ``whole * 10**exp10`` correctly rounded, by Eisel-Lemire, or (False, 0.0).

    ``whole`` > 0. The algorithm of Go's ``strconv.eiselLemire64`` (D. Lemire, "Number
    Parsing at a Gigabyte per Second", 2021): a 128-bit product with a power of ten whose
    rounding is certain, or False where it is not (a near tie), or where the result would
    be subnormal or infinite. Written so that no uint64 operation overflows, as the plain
    Python form runs on numpy scalars.
    """
    if exp10 < _MIN_EXP10 or exp10 > _MAX_EXP10:
        return False, 0.0
    clz = 0
    while whole < _TOP_BIT:  # normalise: the top bit set
        whole = whole << _U1
        clz += 1
    exp2 = ((217706 * exp10) >> 16) + 64 + 1023 - clz
    x_hi, x_lo = mul(whole, _POW_HIGH[exp10 - _MIN_EXP10])
    if x_hi & _LOW9 == _LOW9 and x_lo > _M64 - whole:  # a carry from the lower bits may matter
        y_hi, y_lo = mul(whole, _POW_LOW[exp10 - _MIN_EXP10])
        if y_hi > _M64 - x_lo:  # x_lo + y_hi carries
            x_lo, x_hi = x_lo - (_M64 - y_hi) - _U1, x_hi + _U1
        else:
            x_lo = x_lo + y_hi
        if x_hi & _LOW9 == _LOW9 and x_lo == _M64 and y_lo > _M64 - whole:
            return False, 0.0
    top = x_hi >> _U63
    mantissa = x_hi >> (top + _U9)
    if top == _U0:
        exp2 -= 1
    if x_lo == _U0 and x_hi & _LOW9 == _U0 and mantissa & np.uint64(3) == _U1:
        return False, 0.0  # a tie, perhaps
    mantissa = (mantissa + (mantissa & _U1)) >> _U1
    if mantissa >> np.uint64(53) > _U0:
        mantissa = mantissa >> _U1
        exp2 += 1
    if exp2 <= 0 or exp2 >= 0x7FF:  # subnormal or infinite
        return False, 0.0
    return True, math.ldexp(float(mantissa), exp2 - 1075)


def _to_float(whole: int, scale: int, digits: int) -> tuple[bool, float]:
    """Return ``whole * 10**scale`` correctly rounded, or (False, 0.0) where it is not settled.

    ``whole`` > 0 with ``digits`` significant digits (at most :data:`MAX_DIGITS`).
    """
    if digits > EXACT_DIGITS or not -22 <= scale <= 22:
        while whole % 10 == 0:  # "1234567890123456.0" is 1234567890123456
            whole //= 10
            scale += 1
            digits -= 1
    if digits <= EXACT_DIGITS and -22 <= scale <= 22:  # exact operands: Clinger
        return True, whole * _POWERS[scale] if scale >= 0 else whole / _POWERS[-scale]
    return lemire(np.uint64(whole), scale)


mul: Callable[..., tuple[np.uint64, np.uint64]] = numba.njit(cache=True, nogil=True)(_mul)
lemire: Callable[..., tuple[bool, float]] = numba.njit(cache=True, nogil=True)(_lemire)
to_float: Callable[..., tuple[bool, float]] = numba.njit(cache=True, nogil=True)(_to_float)
