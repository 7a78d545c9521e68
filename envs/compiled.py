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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numba
import numpy as np
from numba.core import caching

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


# numba tries locators in order: NUMBA_CACHE_DIR first, as its own list does.
for _locator in (PackageCacheLocator, PackageUserCacheLocator):
    if _locator not in caching.CacheImpl._locator_classes:
        caching.CacheImpl._locator_classes.insert(0, _locator)


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
