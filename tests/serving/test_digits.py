"""Decimal digits to floats (``serving/digits.py``): where Clinger's path ends and Lemire's starts.

Each case is one Eisel-Lemire cannot settle (it refuses near ties), so the answer says
which path ran: Clinger's exact operands give the correctly rounded float, Lemire refuses.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from ipwarmup.serving import digits

ToFloat = Callable[[int, int, int], tuple[bool, float]]
FORMS: list[ToFloat] = [digits.to_float, digits._to_float]  # compiled, and the plain Python form


@pytest.mark.parametrize("to_float", FORMS)
def test_clinger_takes_the_exact_powers_up_to_1e22(to_float: ToFloat) -> None:
    assert digits.lemire(np.uint64(5), 22) == (False, 0.0)  # a near tie for Lemire
    assert to_float(5, 22, 1) == (True, 5e22)


@pytest.mark.parametrize("to_float", FORMS)
def test_clinger_takes_fifteen_digits(to_float: ToFloat) -> None:
    whole = 476837158203125  # 5**21, fifteen digits
    assert digits.lemire(np.uint64(whole), -21) == (False, 0.0)
    assert to_float(whole, -21, 15) == (True, float("476837158203125e-21"))


@pytest.mark.parametrize("to_float", FORMS)
def test_trailing_zeros_are_stripped_and_their_digits_uncounted(to_float: ToFloat) -> None:
    # 5000000000000000e7: sixteen digits, but 5e22 once the zeros go, which Clinger takes.
    assert to_float(5 * 10**15, 7, 16) == (True, 5e22)


@pytest.mark.parametrize("to_float", FORMS)
def test_past_1e22_lemire_decides_and_may_refuse(to_float: ToFloat) -> None:
    assert to_float(1, 23, 1) == (False, 0.0)  # 1e23 is no exact float
    assert to_float(3, 23, 1) == (True, 3e23)
    assert to_float(1, -23, 1) == (True, 1e-23)  # 1e-23 is no exact float either
