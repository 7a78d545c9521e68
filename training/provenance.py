"""What code made a run: the tags every run carries, learned or baseline.

The commit is read with git in the package's own folder, not the working directory, so a
run started from anywhere is tagged with the checkout it ran (``unknown`` for an install
outside a checkout); ``ipwarmup.git_dirty`` says whether tracked files had changes.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterable
from pathlib import Path

import ipwarmup
from ipwarmup.actions import ENV_ID, ENV_VERSION


def _git(*args: str) -> str | None:
    """Run git in the package's own folder (not the cwd, which may be anywhere)."""
    folder = Path(ipwarmup.__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(folder), *args], capture_output=True, text=True, check=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def code_version() -> dict[str, str]:
    """Return the tags that pin the code: git commit (``unknown`` outside a checkout), dirty."""
    commit = _git("rev-parse", "HEAD") or "unknown"
    dirty = commit != "unknown" and bool(_git("status", "--porcelain", "--untracked-files=no"))
    return {"ipwarmup.git_commit": commit, "ipwarmup.git_dirty": str(dirty).lower()}


def provenance() -> dict[str, str]:
    """Return the tags every run carries, learned or baseline: code and env versions."""
    return {
        **code_version(),
        "ipwarmup.version": ipwarmup.__version__,
        "ipwarmup.env_id": ENV_ID,
        "ipwarmup.env_version": str(ENV_VERSION),
    }


EVALUATION_CODE = ("ipwarmup", "ipwarmup.envs", "ipwarmup.agents")
"""Packages whose sources decide a baseline's KPIs: the simulator, the baselines and the
root (actions, observation, config); with ``EVALUATION_MODULES`` and ``EVALUATION_CONFIGS``."""
EVALUATION_CONFIGS = ("scenarios", "suites")
"""Folders of ``ipwarmup.configs`` an evaluation reads (not the training experiments)."""
EVALUATION_MODULES = ("evaluate.py", "kpis.py", "stats.py")
"""Files of ``ipwarmup.training`` that run the episodes and compute the KPIs and intervals."""


def evaluation_files() -> list[Path]:
    """Return the files :func:`evaluation_fingerprint` reads, sorted."""
    import importlib

    def folder(package: str) -> Path:
        return Path(importlib.import_module(package).__file__ or "").parent

    files = [path for name in EVALUATION_CODE for path in folder(name).glob("*.py")]
    for name in EVALUATION_CONFIGS:
        files += (folder("ipwarmup.configs") / name).rglob("*.yaml")
    training = Path(__file__).parent
    files += [training / module for module in EVALUATION_MODULES]
    return sorted(set(files))


def evaluation_fingerprint(inputs: Iterable[Path | str]) -> str:
    """Return a digest of what decides an evaluation's numbers besides its seeds.

    The files of :func:`evaluation_files` (not the serving, MTA, training or tracking code,
    the experiments' configs, nor a README), numpy's and numba's versions, and
    ``inputs``: the suite's own files and any text that changes its scenarios (overrides).
    Two evaluations with the same digest, suite, seeds and first seed give the same KPIs,
    whatever commit they ran at, so a baseline's tracked run can stand for both.
    """
    import numba
    import numpy as np

    digest = hashlib.sha256(f"numpy {np.__version__} numba {numba.__version__}\n".encode())
    for path in evaluation_files():
        digest.update(f"{path.parent.name}/{path.name}\n".encode())
        digest.update(path.read_bytes())
    for item in inputs:
        digest.update(b"\n--\n")
        digest.update(item.read_bytes() if isinstance(item, Path) else item.encode())
    return digest.hexdigest()[:16]
