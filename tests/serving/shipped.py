"""The shipped ``models/last-period`` bundle as the serving tests use it.

The serving tests need a realistic trained network, not a fresh one. When the simulator's
version moves past the one ``models/last-period`` was trained on (a behaviour change on
main), serving rightly refuses the shipped bundle until it is re-exported; the tests then
use its same weights and manifest re-exported under the current version (a temporary
copy), so they keep testing serving rather than the model's freshness.
``test_the_shipped_bundle_loads_or_names_its_version`` covers the shipped folder itself.
"""

from __future__ import annotations

import atexit
import functools
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ipwarmup.actions import ENV_VERSION

SHIPPED = Path(__file__).resolve().parents[2] / "models" / "last-period"


@functools.cache
def default_bundle() -> Path:
    """Return models/last-period, or its re-export under the current env version."""
    manifest = json.loads((SHIPPED / "manifest.json").read_text())
    if manifest["env"]["version"] == ENV_VERSION:
        return SHIPPED
    from ipwarmup.training.export import write_bundle

    manifest["env"]["version"] = ENV_VERSION
    with np.load(SHIPPED / "weights.npz") as archive:
        arrays = {name: archive[name] for name in archive.files}
    scratch = Path(tempfile.mkdtemp(prefix="ipwarmup-default-"))
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    card = (SHIPPED / "README.md").read_text()
    return write_bundle(scratch / "default", manifest, arrays, card=card)
