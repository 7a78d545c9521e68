"""Where RL starts: the Gaussian policy's spread, after cloning or from scratch (issue 8)."""

from pathlib import Path

import numpy as np
import pytest
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

from ipwarmup.envs import IPWarmupEnv, build_config
from ipwarmup.training.config import load_experiment
from ipwarmup.training.pretrain import clone, collect, set_action_spread
from ipwarmup.training.train import train

SMOKE = "configs/experiments/smoke.yaml"


def _spread(model: PPO) -> np.ndarray:
    return np.exp(model.policy.log_std.detach().numpy())


def test_the_caps_and_the_pool_get_their_own_spread() -> None:
    env = IPWarmupEnv(scenario="low_volume")
    model = PPO("MlpPolicy", env, n_steps=45, batch_size=45, device="cpu", seed=0)
    providers = env.action_space.shape[0] - 1
    assert np.allclose(_spread(model), 1.0)  # SB3's start: what the setting replaces

    set_action_spread(model, action_std=0.3, pool_action_std=0.05)

    assert np.allclose(_spread(model), [0.3] * providers + [0.05], rtol=1e-6)


def test_policies_without_a_state_independent_spread_are_left_alone() -> None:
    env = IPWarmupEnv(scenario="low_volume")
    sde = PPO("MlpPolicy", env, n_steps=45, batch_size=45, use_sde=True, device="cpu", seed=0)
    before = sde.policy.log_std.detach().clone()  # gSDE: a (features, actions) matrix
    set_action_spread(sde, action_std=0.3, pool_action_std=0.05)
    assert np.array_equal(sde.policy.log_std.detach().numpy(), before.numpy())

    sac = SAC("MlpPolicy", env, buffer_size=100, device="cpu", seed=0)
    set_action_spread(sac, action_std=0.3, pool_action_std=0.05)  # no log_std: nothing to set


def test_cloning_ends_at_the_given_spread() -> None:
    env = VecNormalize(DummyVecEnv([lambda: IPWarmupEnv(scenario="low_volume")]))
    model = PPO("MlpPolicy", env, n_steps=45, batch_size=45, device="cpu", seed=0)
    demos = collect("aimd", [build_config(scenario="low_volume")], episodes=2, gamma=0.99, seed=0)
    clone(model, env, demos, epochs=1, action_std=0.4, pool_action_std=0.07)
    providers = env.action_space.shape[0] - 1
    assert np.allclose(_spread(model), [0.4] * providers + [0.07], rtol=1e-6)


@pytest.mark.slow
def test_training_from_scratch_starts_at_the_configured_spread(tmp_path: Path, tiny, request):
    config = load_experiment(
        request.config.rootpath / SMOKE,
        [
            *tiny,
            f"tracking.tracking_uri=sqlite:///{tmp_path}/mlflow.db",
            f"training.output_dir={tmp_path}/runs",
            "training.seed=3",
            "training.action_std=0.5",
            "training.pool_action_std=0.1",
        ],
    )
    result = train(config, command="pytest spread", final_evaluation=False)
    model = PPO.load(result.model_dir / "model.zip", device="cpu")
    spread = _spread(model)
    # One rollout of 4 x 20 steps and 4 epochs of Adam at 3e-4 move log_std by at most
    # ~0.001 a step: within 2% of where it started, and far from SB3's 1.0.
    assert np.allclose(spread[:-1], 0.5, rtol=0.02), spread
    assert np.isclose(spread[-1], 0.1, rtol=0.02), spread
