"""What code made a run: the tags every run carries, learned or baseline.

The commit is read with git in the package's own folder, not the working directory, so a
run started from anywhere is tagged with the checkout it ran (``unknown`` for an install
outside a checkout); ``ipwarmup.git_dirty`` says whether tracked files had changes.
"""

from __future__ import annotations

import subprocess
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
