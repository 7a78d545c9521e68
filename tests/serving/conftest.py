"""Serving fixtures: a small bundle exported from a PPO trained for a few hundred steps."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

SCENARIO = "steady_b2c_transactional"
LAST_PERIOD = ("observation.history_periods=0", "observation.mta_inputs=false")
"""The layout of bundles before issue 10: these tests hold schema-1 records to it."""


@dataclass(frozen=True)
class TrainedBundle:
    """A tiny trained model and the bundle exported from it."""

    model_dir: Path
    """``model.zip`` and ``vecnormalize.pkl``, as training saves them."""
    bundle: Path
    """The exported bundle folder."""


def train_bundle(root: Path, overrides: tuple[str, ...]) -> TrainedBundle:
    """Train a PPO a few hundred steps in the layout ``overrides`` set; export it."""
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecNormalize

    from ipwarmup.envs import build_config, make_vec_env
    from ipwarmup.training.export import export_model

    model_dir = root / "model"
    model_dir.mkdir()
    threads = torch.get_num_threads()
    # Layers this small run fastest on one thread; on a busy two-core machine the default
    # OpenMP pool makes each 64-wide matmul take milliseconds instead of microseconds.
    torch.set_num_threads(1)
    try:
        env = VecNormalize(make_vec_env(scenario=SCENARIO, overrides=overrides, n_envs=4, seed=0))
        model = PPO("MlpPolicy", env, n_steps=45, batch_size=180, seed=0, device="cpu")
        model.learn(360)  # only so that the VecNormalize statistics are not trivial
        model.save(model_dir / "model.zip")
        env.save(str(model_dir / "vecnormalize.pkl"))
        env.close()
        bundle = export_model(
            model_dir,
            root / "bundle",
            build_config(scenario=SCENARIO, overrides=overrides),
            name="test",
        )
    finally:
        torch.set_num_threads(threads)
    return TrainedBundle(model_dir=model_dir, bundle=bundle)


@pytest.fixture(scope="session")
def trained_bundle(tmp_path_factory: pytest.TempPathFactory) -> TrainedBundle:
    """A bundle of the last period alone (schema-1 records), as every bundle before issue 10."""
    return train_bundle(tmp_path_factory.mktemp("trained"), LAST_PERIOD)


@pytest.fixture(scope="session")
def memory_bundle(tmp_path_factory: pytest.TempPathFactory) -> TrainedBundle:
    """A bundle of the default layout: the MTA's set-up and three past periods."""
    return train_bundle(tmp_path_factory.mktemp("memory"), ())


@pytest.fixture(scope="session")
def bundle_path(trained_bundle: TrainedBundle) -> Path:
    return trained_bundle.bundle
