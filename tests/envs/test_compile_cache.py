"""numba's on-disk cache: a second fresh process loads the kernels instead of compiling them.

Each process is a fresh interpreter with ``NUMBA_CACHE_DIR`` at a temporary folder, so the
test neither reads nor writes the checkout's ``envs/__pycache__``. Counts come from numba's
dispatcher statistics (:func:`ipwarmup.envs.compiled.cache_counts`), never from time.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest

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


_FAKE = """
import numba


@numba.njit(cache=True)
def double(x):
    return 2.0 * x


@numba.njit
def plain(x):
    return x + 1.0
"""


def _load(name: str, source: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cache_counts_count_the_packages_cached_dispatchers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A module of the package's name, from a file of its own (cached beside it), as the
    # only loaded module: numba's statistics of its dispatchers, in process, without
    # compiling the package's kernels.
    source = tmp_path / "fake_kernels.py"
    source.write_text(_FAKE)
    name = f"{compiled.__package__}._fake_kernels"
    first = _load(name, source)
    modules: dict[str, ModuleType | None] = {name: first, "gone": None}
    monkeypatch.setattr(compiled, "sys", SimpleNamespace(modules=modules))
    assert compiled.cache_counts() == compiled.CacheCounts(loaded=0, compiled=0)
    assert first.double(2.0) == 4.0
    assert first.plain(1.0) == 2.0  # not cached: not counted
    assert compiled.cache_counts() == compiled.CacheCounts(loaded=0, compiled=1)
    modules[name] = again = _load(name, source)  # a fresh dispatcher of the same file
    assert again.double(3.0) == 6.0  # loaded from the cache the first one wrote
    assert compiled.cache_counts() == compiled.CacheCounts(loaded=1, compiled=0)
    # The same functions in a module outside the package are not counted.
    modules["fake_kernels_outside"] = outside = _load("fake_kernels_outside", source)
    assert outside.double(1.0) == 2.0
    assert compiled.cache_counts() == compiled.CacheCounts(loaded=1, compiled=0)
