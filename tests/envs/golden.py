"""Golden trajectories: every shipped scenario, stepped by fixed action sequences, recorded.

``tests/envs/test_golden.py`` replays them and asserts bit-for-bit equality, so a
refactoring of the simulator cannot change what it simulates. When behaviour changes on
purpose, re-record with ``python tests/envs/golden.py "<reason>"``: the reason is stored
in the file and printed by the test, so a reviewer sees why the trajectories moved.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
from gymnasium.utils import seeding

from ipwarmup.envs import build_config, scenario_names
from ipwarmup.envs.simulator import ACCOUNTING_KEYS, EXTRA_ACCOUNTING_KEYS, Simulator

GOLDEN = Path(__file__).with_name("golden.npz")
ROWS = 3
VARIANTS: dict[str, tuple[str, ...]] = {
    "daily-shared": (),
    "daily-queue": ("mta.overflow=queue",),
    "6h-queue-2ips": ("mta.overflow=queue", "decision_interval_hours=6", "pool.initial_ips=2"),
    "1h-shared": ("decision_interval_hours=1", "horizon_days=6"),
}


def _actions(rng: np.random.Generator, shape: tuple[int, int], step: int) -> np.ndarray:
    """Random caps that drift upward, and a pool action that visits grow, hold and shrink."""
    actions = rng.uniform(-0.6, 1.0, size=shape)
    actions[:, -1] = rng.choice([-1.0, 0.0, 0.0, 1.0, 1.0], size=shape[0])
    return actions


def _digest(array: np.ndarray) -> np.ndarray:
    """Return the SHA-256 of an array's dtype, shape and bytes, as a string array."""
    head = f"{array.dtype.str}{array.shape}".encode()
    return np.array(hashlib.sha256(head + np.ascontiguousarray(array).tobytes()).hexdigest())


def trajectories() -> dict[str, np.ndarray]:
    """Return every recorded array by ``scenario/variant/what``."""
    out: dict[str, np.ndarray] = {}
    for scenario in scenario_names():
        for variant, overrides in VARIANTS.items():
            config = build_config(scenario=scenario, overrides=overrides)
            sim = Simulator(config, ROWS)
            gens = [seeding.np_random(100 + i)[0] for i in range(ROWS)]
            obs = [sim.reset(np.arange(ROWS), gens)]
            rewards = []
            rng = np.random.default_rng(7)
            for step in range(config.steps_per_episode):
                result = sim.step(_actions(rng, (ROWS, len(config.providers) + 1), step))
                obs.append(result.observation)
                rewards.append(result.reward)
            key = f"{scenario}/{variant}"
            # Digests keep the file small; the accounting totals show how far a change moved.
            out[f"{key}/obs"] = _digest(np.array(obs))
            out[f"{key}/reward"] = _digest(np.array(rewards))
            for name in ACCOUNTING_KEYS + EXTRA_ACCOUNTING_KEYS:
                out[f"{key}/accounting/{name}"] = sim.accounting[name].copy()
    return out


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit('usage: python tests/envs/golden.py "<why the trajectories changed>"')
    data = trajectories()
    np.savez_compressed(GOLDEN, reason=np.array(sys.argv[1]), **data)
    print(f"wrote {len(data)} arrays to {GOLDEN}")
