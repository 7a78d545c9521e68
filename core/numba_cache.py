"""numba's on-disk cache, made stale by a change to any module of the package that compiled.

numba checks a cached function against its own source file only (numba issue #1833), but
a compiled function builds in the code of the compiled functions it calls and the
constants it reads, from other modules: the compiled period (:mod:`ipwarmup.envs`) calls
every provider formula, the one-record serving kernel reads its layout from
``serving/kernel_layout.py``, the batch reader calls ``serving/digits.py``. After a change
to one of those, numba would still load the old machine code. The locators here close
that gap for the project's compiled packages (:data:`COMPILED_PACKAGES`): a function
defined in one of them is cached against the contents of every module of its package, so
a change to any of them recompiles that package's functions (once; every later process
loads the new code).

Importing this module registers the locators ahead of numba's own, in numba's order:
``NUMBA_CACHE_DIR``, then the package's ``__pycache__``, then the user's cache folder
(for an install whose ``__pycache__`` cannot be written). Each compiled package imports
it first, before any of its functions is decorated.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

from numba.core import caching

COMPILED_PACKAGES = ("ipwarmup.envs", "ipwarmup.serving")
"""The packages whose numba functions are cached against all of their modules."""


def _folders() -> frozenset[Path]:
    """Return the compiled packages' folders, found without importing the packages."""
    folders = set()
    for name in COMPILED_PACKAGES:
        spec = importlib.util.find_spec(name)
        for location in (spec.submodule_search_locations or []) if spec else []:
            folders.add(Path(location).resolve())
    return frozenset(folders)


FOLDERS = _folders()
"""Where :data:`COMPILED_PACKAGES` live (the editable install's folders, or site-packages)."""


class _PackageStamp:
    """Mixin: cache only the compiled packages' functions, stale when any module changes."""

    _py_file: str  # set by numba's locator from the function's file

    @classmethod
    def from_function(cls, py_func: Any, py_file: str) -> Any:
        """Return a locator for a function of a compiled package's module, else None."""
        if Path(py_file).resolve().parent not in FOLDERS:
            return None
        locator = super().from_function(py_func, py_file)  # type: ignore[misc]  # numba's
        return locator

    def get_source_stamp(self) -> Any:
        """Return the hashes of every module of the function's package (each hashed once)."""
        stamps = []
        for path in sorted(Path(self._py_file).resolve().parent.glob("*.py")):
            stat = os.stat(path)
            stamps.append(caching._hash_source_file(str(path), stat.st_mtime, stat.st_size))
        return tuple(stamps)


class PackageCacheLocator(_PackageStamp, caching.InTreeCacheLocator):
    """Cache a function of a compiled package in its ``__pycache__`` (numba's default place)."""


class PackageUserCacheLocator(_PackageStamp, caching.UserProvidedCacheLocator):
    """Cache a function of a compiled package under ``NUMBA_CACHE_DIR`` when that is set."""


class PackageUserWideCacheLocator(_PackageStamp, caching.UserWideCacheLocator):
    """Cache a function of a compiled package in the user's cache folder (read-only installs).

    Without it, an install whose ``__pycache__`` cannot be written would fall through to
    numba's own user-wide locator, which checks each function's own file only.
    """


# numba tries locators in order; ours go first, in numba's own order: NUMBA_CACHE_DIR,
# then the package's __pycache__, then the user's cache folder.
LOCATORS = (PackageUserCacheLocator, PackageCacheLocator, PackageUserWideCacheLocator)
for _position, _locator in enumerate(LOCATORS):
    if _locator not in caching.CacheImpl._locator_classes:
        caching.CacheImpl._locator_classes.insert(_position, _locator)
