"""numba's on-disk cache: a second fresh process loads the kernels instead of compiling them.

Each process is a fresh interpreter with ``NUMBA_CACHE_DIR`` at a temporary folder, so the
test neither reads nor writes the checkout's ``envs/__pycache__``. Counts come from numba's
dispatcher statistics (:func:`ipwarmup.envs.compiled.cache_counts`), never from time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from numba.core import caching

from ipwarmup.envs import compiled

_STEP = """
import json
import numpy as np
import ipwarmup.envs
from ipwarmup.envs.compiled import cache_counts
env = ipwarmup.envs.IPWarmupEnv(scenario="steady_b2c_transactional")
env.reset(seed=0)
env.step(np.zeros(env.action_space.shape, dtype=np.float32))
counts = cache_counts()
print(json.dumps({"loaded": counts.loaded, "compiled": counts.compiled}))
"""


def _fresh_process(cache_dir: Path) -> dict[str, int]:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache_dir)}
    env.pop("NUMBA_DISABLE_JIT", None)  # the cache is what is tested
    out = subprocess.run(
        [sys.executable, "-c", _STEP], env=env, capture_output=True, text=True, check=True
    )
    counts: dict[str, int] = json.loads(out.stdout.strip().splitlines()[-1])
    return counts


def test_second_fresh_process_loads_every_kernel_from_the_cache(tmp_path: Path) -> None:
    first = _fresh_process(tmp_path)
    assert first["compiled"] >= 1, first  # an empty cache: the period kernel compiles
    assert first["loaded"] == 0, first
    assert any(tmp_path.rglob("*.nbi")), "nothing was written to NUMBA_CACHE_DIR"
    second = _fresh_process(tmp_path)
    assert second["compiled"] == 0, second
    assert second["loaded"] >= 1, second


def test_package_locators_come_first_in_numbas_order() -> None:
    # NUMBA_CACHE_DIR, then __pycache__, then the user's folder; numba's own locators,
    # which check a function's own file only, come after all three.
    order = caching.CacheImpl._locator_classes
    assert order[:3] == [
        compiled.PackageUserCacheLocator,
        compiled.PackageCacheLocator,
        compiled.PackageUserWideCacheLocator,
    ]
    assert caching.UserWideCacheLocator in order[3:]


def test_stamp_changes_with_any_module_of_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The period kernel builds in code from other modules: a change to any of them must
    # make every cached function of the package stale, not only the changed file's.
    for name in ("kernel.py", "formula.py"):
        (tmp_path / name).write_text(f"# {name}\n")
    monkeypatch.setattr(compiled, "_PACKAGE", tmp_path)
    locator = object.__new__(compiled.PackageCacheLocator)
    before = locator.get_source_stamp()
    assert len(before) == 2
    (tmp_path / "formula.py").write_text("# changed\n")
    os.utime(tmp_path / "formula.py", ns=(1, 1))  # numba memoises hashes on mtime and size
    after = locator.get_source_stamp()
    assert after[0] != before[0]  # formula.py, first in sorted order
    assert after[1] == before[1]  # kernel.py, unchanged
