"""How the simulator's formulas are compiled: numba ufuncs and kernels, cached on disk.

A formula written once for one element serves numpy arrays from Python (the ufunc
broadcasts, as the numpy expression did) and the compiled period, which calls it on
scalars. ``cache=True`` writes the machine code beside the module (``__pycache__``).

numba checks a cached function against its own source file only, but the compiled period
(:mod:`~ipwarmup.envs.period_kernel`) builds in the code of every kernel and formula it
calls, from other modules of this package: after a change to ``providers.py`` its cache
would still hold the old formula. :mod:`ipwarmup.numba_cache` closes that gap: every
function of this package is cached against the contents of all the package's modules, so
a change to any of them recompiles them all (20-30 s on this machine, once). Importing this
module registers it; ``ipwarmup/envs/__init__.py`` imports it first, before any kernel is
built. :func:`cache_counts` says how a process got its compiled functions.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
from numba.core.registry import CPUDispatcher

import ipwarmup.numba_cache  # noqa: F401  # the package-wide cache stamps, before any kernel


@dataclass(frozen=True)
class CacheCounts:
    """How this process got the package's compiled functions so far.

    Attributes:
        loaded: signatures read from numba's on-disk cache.
        compiled: signatures compiled because the cache had none (or a stale one).
    """

    loaded: int
    compiled: int


def cache_counts() -> CacheCounts:
    """Count the cached dispatchers' signatures loaded from disk and compiled, in this process.

    Covers every ``numba.njit(cache=True)`` function reachable from a loaded module of this
    package (numba's dispatcher statistics). A function called only from inside another
    compiled one is not counted when the caller is loaded: its code is part of the caller's.
    The ufuncs of :func:`ufunc` are built at import and keep no such statistics.
    """
    seen: dict[int, Any] = {}
    for name, module in list(sys.modules.items()):
        if module is None or not name.startswith(f"{__package__}."):
            continue
        for value in vars(module).values():
            if isinstance(value, CPUDispatcher) and value.stats.cache_path is not None:
                seen[id(value)] = value
    loaded = compiled = 0
    for dispatcher in seen.values():
        loaded += sum(dispatcher.stats.cache_hits.values())
        compiled += sum(dispatcher.stats.cache_misses.values())
    return CacheCounts(loaded=loaded, compiled=compiled)


def ufunc(n_args: int, formula: Callable[..., float]) -> Callable[..., Any]:
    """Compile ``formula`` of ``n_args`` float64 arguments into a cached numba ufunc.

    With ``NUMBA_DISABLE_JIT=1`` it is ``np.vectorize`` of the plain formula instead.
    """
    if numba.config.DISABLE_JIT:  # type: ignore[attr-defined]  # plain Python (mutation runs)
        return np.vectorize(formula, otypes=[np.float64])
    signature = f"float64({', '.join(['float64'] * n_args)})"
    vectorize: Callable[..., Callable[..., Any]] = numba.vectorize
    compiled: Callable[..., Any] = vectorize([signature], cache=True)(formula)
    return compiled
