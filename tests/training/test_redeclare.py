"""A shipped bundle declared for a new env version keeps its weights and says so."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ipwarmup.actions import ENV_VERSION
from ipwarmup.errors import BundleError
from ipwarmup.serving import load_policy
from ipwarmup.training.export import redeclare_env

SHIPPED = Path(__file__).resolve().parents[2] / "models" / "last-period"


def _as_older(tmp_path: Path) -> Path:
    """The shipped bundle, rewritten as if exported for the previous env version."""
    older = tmp_path / "older"
    shutil.copytree(SHIPPED, older)
    manifest = json.loads((older / "manifest.json").read_text())
    manifest["env"]["version"] = ENV_VERSION - 1
    (older / "manifest.json").write_text(json.dumps(manifest))
    return older


def test_redeclared_bundle_loads_with_the_same_weights_and_a_banner(tmp_path: Path) -> None:
    older = _as_older(tmp_path)
    with pytest.raises(BundleError, match=f"v{ENV_VERSION - 1}"):
        load_policy(older)
    out = redeclare_env(older, tmp_path / "new", note="Why it was not retrained.")
    assert (out / "weights.npz").read_bytes() == (SHIPPED / "weights.npz").read_bytes()
    assert json.loads((out / "manifest.json").read_text())["env"]["version"] == ENV_VERSION
    card = (out / "README.md").read_text()
    assert f"v{ENV_VERSION - 1}, declared for v{ENV_VERSION} without retraining" in card
    assert "Why it was not retrained." in card
    load_policy(out)  # loads under the current code


def test_a_changed_file_is_not_redeclared(tmp_path: Path) -> None:
    older = _as_older(tmp_path)
    weights = older / "weights.npz"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"weights\.npz: SHA-256 differs"):
        redeclare_env(older, tmp_path / "new", note="")
    assert not (tmp_path / "new").exists()


def test_the_shipped_bundle_loads() -> None:
    assert load_policy(SHIPPED).manifest["env"]["version"] == ENV_VERSION
