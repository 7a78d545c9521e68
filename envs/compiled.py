"""How the simulator's formulas are compiled: numba ufuncs and kernels, cached on disk.

A formula written once for one element serves numpy arrays from Python (the ufunc
broadcasts, as the numpy expression did) and the compiled period, which calls it on
scalars. ``cache=True`` writes the machine code beside the module (``__pycache__``).

numba checks a cached function against its own source file only, but the compiled period
(:mod:`~ipwarmup.envs.period_kernel`) builds in the code of every kernel and formula it
calls, from other modules of this package: after a change to ``providers.py`` its cache
would still hold the old formula. :class:`PackageCacheLocator` (and, under
``NUMBA_CACHE_DIR``, :class:`PackageUserCacheLocator`) closes that gap: every function of
this package is cached against the contents of all the package's modules, so a change to
any of them recompiles them all (20-30 s on this machine, once). Importing this module
registers it; ``ipwarmup/envs/__init__.py`` imports it first, before any kernel is built.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numba
import numpy as np
from numba.core import caching
from numba.core.registry import CPUDispatcher

_PACKAGE = Path(__file__).resolve().parent


class _PackageStamp:
    """Mixin: cache only this package's functions, stale when any of its modules changes."""

    @classmethod
    def from_function(cls, py_func: Any, py_file: str) -> Any:
        """Return a locator for functions defined in this package's modules, else None."""
        if Path(py_file).resolve().parent != _PACKAGE:
            return None
        locator = super().from_function(py_func, py_file)  # type: ignore[misc]  # numba's
        return locator

    def get_source_stamp(self) -> Any:
        """Return the hashes of every module of the package (each file hashed once)."""
        stamps = []
        for path in sorted(_PACKAGE.glob("*.py")):
            stat = os.stat(path)
            stamps.append(caching._hash_source_file(str(path), stat.st_mtime, stat.st_size))
        return tuple(stamps)


class PackageCacheLocator(_PackageStamp, caching.InTreeCacheLocator):
    """Cache a function of this package in its ``__pycache__`` (numba's default place)."""


class PackageUserCacheLocator(_PackageStamp, caching.UserProvidedCacheLocator):
    """Cache a function of this package under ``NUMBA_CACHE_DIR`` when that is set."""


class PackageUserWideCacheLocator(_PackageStamp, caching.UserWideCacheLocator):
    """Cache a function of this package in the user's cache folder (read-only installs).

    Without it, an install whose ``__pycache__`` cannot be written would fall through to
    numba's own user-wide locator, which checks each function's own file only.
    """


# numba tries locators in order; ours go first, in numba's own order: NUMBA_CACHE_DIR,
# then the package's __pycache__, then the user's cache folder.
_LOCATORS = (PackageUserCacheLocator, PackageCacheLocator, PackageUserWideCacheLocator)
for _position, _locator in enumerate(_LOCATORS):
    if _locator not in caching.CacheImpl._locator_classes:
        caching.CacheImpl._locator_classes.insert(_position, _locator)


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
