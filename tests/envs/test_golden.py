"""The simulator reproduces its recorded trajectories bit for bit (see ``golden.py``)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.envs.golden import GOLDEN, trajectories


@pytest.fixture(scope="module")
def recorded() -> dict[str, np.ndarray]:
    with np.load(GOLDEN, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def test_golden_trajectories_unchanged(recorded: dict[str, np.ndarray]) -> None:
    reason = str(recorded.pop("reason"))
    now = trajectories()
    assert sorted(now) == sorted(recorded), f"recorded for: {reason}"
    changed = [key for key in now if not np.array_equal(now[key], recorded[key])]
    assert changed == [], (
        f"{len(changed)} arrays differ from the recording ({reason!r}), first {changed[:5]}; "
        'if the change is on purpose: python tests/envs/golden.py "<reason>"'
    )
