"""The package-wide cache stamps (``core/numba_cache.py``): which functions, which files."""

from __future__ import annotations

import os
from pathlib import Path

from numba.core import caching

from ipwarmup import numba_cache


def test_package_locators_come_first_in_numbas_order() -> None:
    # NUMBA_CACHE_DIR, then __pycache__, then the user's folder; numba's own locators,
    # which check a function's own file only, come after all three.
    order = caching.CacheImpl._locator_classes
    assert order[:3] == [
        numba_cache.PackageUserCacheLocator,
        numba_cache.PackageCacheLocator,
        numba_cache.PackageUserWideCacheLocator,
    ]
    assert caching.UserWideCacheLocator in order[3:]


def test_the_compiled_packages_folders_are_found_without_importing_them() -> None:
    import ipwarmup.envs
    import ipwarmup.serving

    expected = {Path(ipwarmup.envs.__file__).parent, Path(ipwarmup.serving.__file__).parent}
    assert {path.resolve() for path in expected} == numba_cache.FOLDERS


def _locator(py_file: Path) -> numba_cache.PackageCacheLocator:
    locator = object.__new__(numba_cache.PackageCacheLocator)
    locator._py_file = str(py_file)
    return locator


def test_stamp_changes_with_any_module_of_the_functions_package(tmp_path: Path) -> None:
    # A compiled function builds in code from other modules of its package: a change to
    # any of them must make it stale, not only a change to its own file.
    for name in ("kernel.py", "formula.py"):
        (tmp_path / name).write_text(f"# {name}\n")
    (tmp_path / "notes.txt").write_text("not a module\n")
    locator = _locator(tmp_path / "kernel.py")
    before = locator.get_source_stamp()
    assert len(before) == 2
    (tmp_path / "formula.py").write_text("# changed\n")
    os.utime(tmp_path / "formula.py", ns=(1, 1))  # numba memoises hashes on mtime and size
    after = locator.get_source_stamp()
    assert after[0] != before[0]  # formula.py, first in sorted order
    assert after[1] == before[1]  # kernel.py, unchanged


def test_only_the_compiled_packages_functions_get_these_locators(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.py"
    outside.write_text("def f(x):\n    return x\n")
    inside = sorted(numba_cache.FOLDERS)[0] / "__init__.py"

    def f(x: float) -> float:
        return x

    assert numba_cache.PackageCacheLocator.from_function(f, str(outside)) is None
    located = numba_cache.PackageCacheLocator.from_function(f, str(inside))
    assert isinstance(located, numba_cache.PackageCacheLocator)
