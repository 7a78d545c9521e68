"""How the simulator's formulas are compiled: numba ufuncs of one element, cached on disk.

A formula written once for one element serves numpy arrays from Python (the ufunc
broadcasts, as the numpy expression did) and the compiled period, which calls it on
scalars. ``cache=True`` writes the machine code beside the module (``__pycache__``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba


def ufunc(n_args: int, formula: Callable[..., float]) -> Callable[..., Any]:
    """Compile ``formula`` of ``n_args`` float64 arguments into a cached numba ufunc."""
    signature = f"float64({', '.join(['float64'] * n_args)})"
    vectorize: Callable[..., Callable[..., Any]] = numba.vectorize
    compiled: Callable[..., Any] = vectorize([signature], cache=True)(formula)
    return compiled
