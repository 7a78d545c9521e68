"""Demonstrations from the world and DAgger: who drives the episode and who labels it (issue 10)."""

import pickle
from pathlib import Path

import numpy as np
import pytest
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

from ipwarmup.agents.learned import VECNORMALIZE_FILE
from ipwarmup.envs import IPWarmupEnv
from ipwarmup.envs.config import EnvConfig
from ipwarmup.errors import ConfigError
from ipwarmup.training import pretrain
from ipwarmup.training.config import load_experiment
from ipwarmup.training.pretrain import (
    DAGGER_SEED_STRIDE,
    clone,
    collect_world,
    dagger,
    joined,
    pool_labels,
    refit_epochs,
    student_actor,
)
from ipwarmup.training.train import train

SMOKE = "configs/experiments/smoke.yaml"
EPISODES = 6


@pytest.fixture(scope="module")
def config() -> EnvConfig:
    return EnvConfig(horizon_days=10)


def _demos(teacher: str, config: EnvConfig, actor=None):
    return collect_world(
        teacher, "default", config, episodes=EPISODES, gamma=0.9, seed=5, actor=actor
    )


def _hold(observations: np.ndarray) -> np.ndarray:
    return np.zeros((len(observations), 6))  # hold's action: caps and pool unchanged


def test_the_actor_drives_the_episodes_and_the_teacher_labels_them(config: EnvConfig) -> None:
    held = _demos("hold", config)
    labelled = _demos("aimd", config, actor=_hold)
    driven = _demos("aimd", config)

    assert labelled.observations.shape == (EPISODES * 10, held.observations.shape[1])
    # States and returns are the actor's (hold's), bit for bit.
    assert np.array_equal(labelled.observations, held.observations)
    assert np.array_equal(labelled.returns, held.returns)
    # Labels are the teacher's: aimd's where the state is the same either way (the first
    # decision of each episode, whatever drives it; rows are grouped by MTA mode)...
    same = (labelled.observations == driven.observations).all(axis=1)
    assert EPISODES <= same.sum() < len(same)
    assert np.array_equal(labelled.actions[same], driven.actions[same])
    # ... and elsewhere on the states hold reaches, where aimd would not have been.
    assert not np.allclose(labelled.actions, 0.0)


def test_hold_driving_itself_is_the_plain_collection(config: EnvConfig) -> None:
    plain = _demos("hold", config)
    itself = _demos("hold", config, actor=_hold)
    for name in ("observations", "actions", "returns"):
        assert np.array_equal(getattr(plain, name), getattr(itself, name)), name


def test_joined_keeps_every_part_in_order(config: EnvConfig) -> None:
    first, second = _demos("hold", config), _demos("aimd", config)
    both = joined([first, second])
    assert np.array_equal(both.actions, np.concatenate([first.actions, second.actions]))
    assert np.array_equal(both.returns, np.concatenate([first.returns, second.returns]))
    assert both.observations.dtype == np.float32 and len(both.observations) == 2 * EPISODES * 10


def test_a_refit_keeps_the_normalisation_and_the_student_acts_on_raw_telemetry() -> None:
    env = VecNormalize(DummyVecEnv([lambda: IPWarmupEnv(config=EnvConfig(horizon_days=10))]))
    model = PPO("MlpPolicy", env, n_steps=10, batch_size=10, device="cpu", seed=0)
    demos = _demos("aimd", EnvConfig(horizon_days=10))
    clone(model, env, demos, epochs=1)
    mean, count = env.obs_rms.mean.copy(), env.obs_rms.count
    returns = (env.ret_rms.mean, env.ret_rms.var, env.ret_rms.count)
    assert count == pytest.approx(len(demos.observations) + 1e-4)  # SB3's epsilon start
    assert returns[2] == pytest.approx(len(demos.returns) + 1e-4)

    clone(model, env, demos, epochs=1, update_statistics=False)
    assert np.array_equal(env.obs_rms.mean, mean) and env.obs_rms.count == count
    assert (env.ret_rms.mean, env.ret_rms.var, env.ret_rms.count) == returns

    act = student_actor(model, env)
    raw = demos.observations[:4]
    expected, _ = model.predict(env.normalize_obs(raw), deterministic=True)
    assert np.array_equal(act(raw), expected)
    assert act(raw).shape == (4, 6)


def test_refits_take_as_many_gradient_steps_as_the_first_fit() -> None:
    # round r fits (r + 1) batches of senders: 30 / 2, 30 / 3, 30 / 8 = 3.75 -> 4; never 0.
    assert [refit_epochs(30, r) for r in (1, 2, 7)] == [15, 10, 4]
    assert refit_epochs(1, 5) == 1 and refit_epochs(3, 1) == 2


def _student() -> tuple[PPO, VecNormalize, pretrain.Demonstrations]:
    env = VecNormalize(DummyVecEnv([lambda: IPWarmupEnv(config=EnvConfig(horizon_days=10))]))
    model = PPO("MlpPolicy", env, n_steps=10, batch_size=10, device="cpu", seed=0)
    demos = _demos("aimd", EnvConfig(horizon_days=10))
    clone(model, env, demos, epochs=1)
    return model, env, demos


def _dagger(model, env, demos, **settings):
    base = dict(
        teacher="aimd", world="default", config=EnvConfig(horizon_days=10), rounds=2,
        episodes=3, gamma=0.9, seed=11, epochs=None, first_epochs=30, action_std=0.2,
        pool_action_std=0.04,
    )  # fmt: skip
    return dagger(model, env, demos, **{**base, **settings})


def test_a_round_labels_the_states_the_model_reaches_on_new_senders() -> None:
    model, env, demos = _student()
    # What round 1 must add: the model (as it stands) drives 3 senders of seed 11 + stride.
    expected = collect_world(
        "aimd", "default", EnvConfig(horizon_days=10), episodes=3, gamma=0.9,
        seed=11 + DAGGER_SEED_STRIDE, actor=student_actor(model, env),
    )  # fmt: skip
    grown, _ = _dagger(model, env, demos)
    first, added = len(demos.actions), len(expected.actions)
    assert len(grown.actions) == first + 2 * added == EPISODES * 10 + 2 * 30
    assert np.array_equal(grown.actions[:first], demos.actions)
    for name in ("observations", "actions", "returns"):
        part = getattr(grown, name)[first : first + added]
        assert np.array_equal(part, getattr(expected, name)), name


def test_each_refit_gets_its_passes_seed_and_spread_and_keeps_the_statistics(
    monkeypatch,
) -> None:
    model, env, demos = _student()
    fits = []

    def fake_clone(model, normalizer, demos, **settings):  # records what each refit got
        fits.append({**settings, "rows": len(demos.actions)})
        return {"bc/actor_loss": float(len(fits))}

    monkeypatch.setattr(pretrain, "clone", fake_clone)
    _, losses = _dagger(model, env, demos, rounds=3)
    assert [f["epochs"] for f in fits] == [15, 10, 8]  # 30/2, 30/3, 30/4 = 7.5 -> 8
    assert [f["seed"] for f in fits] == [12, 13, 14]
    assert [f["rows"] for f in fits] == [EPISODES * 10 + 30 * r for r in (1, 2, 3)]
    assert all(f["update_statistics"] is False for f in fits)
    assert all((f["action_std"], f["pool_action_std"]) == (0.2, 0.04) for f in fits)
    assert all(f["pool_label_scale"] == 1.0 for f in fits)
    assert losses == {"bc/actor_loss": 3.0}  # the last round's

    fits.clear()
    _dagger(model, env, demos, epochs=7, pool_label_scale=0.6)
    assert [f["epochs"] for f in fits] == [7, 7]
    assert [f["pool_label_scale"] for f in fits] == [0.6, 0.6]

    fits.clear()
    assert _dagger(model, env, demos, rounds=0) == (demos, {})
    assert fits == []


def test_pool_labels_scale_only_the_pool_column() -> None:
    actions = np.array([[0.5, -0.2, 1.0], [0.1, 0.0, -1.0], [-1.0, 1.0, 0.0]])
    labels = pool_labels(actions, 0.6)
    assert np.array_equal(labels[:, :2], actions[:, :2])
    assert labels[:, 2].tolist() == [0.6, -0.6, 0.0]
    assert actions[0, 2] == 1.0  # the demonstrations keep the teacher's own actions
    assert np.array_equal(pool_labels(actions, 1.0), actions)
    # A sure move must still cross the threshold of 1/3: 0.34 does, 1/3 itself does not.
    assert pool_labels(actions, 0.34)[0, 2] == pytest.approx(0.34)
    for scale in (1.0 / 3.0, 0.2, 1.01):
        with pytest.raises(ValueError, match=r"pool_label_scale: expected above 0\.3333"):
            pool_labels(actions, scale)


def test_clone_fits_the_scaled_pool_labels() -> None:
    # A student fitted long on one state whose label is a sure "grow" (+1) reads 0.5 there
    # at a scale of 0.5: the squared loss fits the scaled label, the caps as they are.
    env = VecNormalize(DummyVecEnv([lambda: IPWarmupEnv(config=EnvConfig(horizon_days=10))]))
    model = PPO("MlpPolicy", env, n_steps=10, batch_size=10, device="cpu", seed=0)
    base = _demos("aimd", EnvConfig(horizon_days=10))
    rows = np.repeat(base.observations[:1], 64, axis=0)
    target = np.array([[0.2, -0.1, 0.3, 0.0, -0.3, 1.0]], dtype=np.float32).repeat(64, axis=0)
    demos = pretrain.Demonstrations(rows, target, np.zeros(64))
    model.policy.optimizer.param_groups[0]["lr"] = 1e-3
    clone(model, env, demos, epochs=400, batch_size=64, pool_label_scale=0.5)
    mean = (
        model.policy.get_distribution(pretrain.torch.as_tensor(env.normalize_obs(rows[:1])))
        .distribution.mean.detach()
        .numpy()[0]
    )
    assert mean[-1] == pytest.approx(0.5, abs=0.02)
    assert mean[:-1] == pytest.approx(target[0, :-1], abs=0.02)


def test_dagger_needs_a_world(tmp_path: Path, request) -> None:
    with pytest.raises(ConfigError, match="dagger_rounds: expected 0 when training on scen"):
        load_experiment(
            request.config.rootpath / SMOKE,
            ["training.world=null", "training.scenarios=[low_volume]", "training.dagger_rounds=1"],
        )


@pytest.mark.parametrize("scale", ["0.3333", "1.2"])
def test_the_pool_label_scale_is_checked_with_the_configuration(request, scale: str) -> None:
    with pytest.raises(ConfigError, match="pool_label_scale"):
        load_experiment(request.config.rootpath / SMOKE, [f"training.pool_label_scale={scale}"])


def test_training_fits_every_round_at_the_configured_pool_label_scale(
    tmp_path: Path, request, monkeypatch
) -> None:
    scales = []
    real = pretrain.clone

    def recording(model, normalizer, demos, **settings):
        scales.append(settings["pool_label_scale"])
        return real(model, normalizer, demos, **settings)

    monkeypatch.setattr(pretrain, "clone", recording)
    config = load_experiment(
        request.config.rootpath / SMOKE,
        [
            f"tracking.tracking_uri=sqlite:///{tmp_path}/mlflow.db",
            f"training.output_dir={tmp_path}/runs",
            "training.seed=3",
            "training.total_timesteps=40",
            "training.n_envs=4",
            "training.pretrain_teacher=aimd",
            "training.pretrain_episodes=2",
            "training.pretrain_epochs=1",
            "training.dagger_rounds=2",
            "training.pool_label_scale=0.45",
            "hyperparameters.n_steps=10",
            "hyperparameters.batch_size=40",
            "env.horizon_days=5",
        ],
    )
    train(config, command="pytest pool labels", final_evaluation=False)
    assert scales == [0.45, 0.45, 0.45]  # the first cloning and both refits


def _normaliser_count(model_dir: Path) -> float:
    with (model_dir / VECNORMALIZE_FILE).open("rb") as handle:
        return float(pickle.load(handle).obs_rms.count)


@pytest.mark.slow
@pytest.mark.parametrize("frozen", [True, False])
def test_training_runs_dagger_rounds_on_the_clone(
    tmp_path: Path, request, capsys, frozen: bool
) -> None:
    config = load_experiment(
        request.config.rootpath / SMOKE,
        [
            f"tracking.tracking_uri=sqlite:///{tmp_path}/mlflow.db",
            f"training.output_dir={tmp_path}/runs",
            f"training.freeze_normalization={str(frozen).lower()}",
            "training.seed=3",
            "training.total_timesteps=200",
            "training.n_envs=4",
            "training.pretrain_teacher=aimd",
            "training.pretrain_episodes=3",
            "training.pretrain_epochs=1",
            "training.dagger_rounds=2",
            "hyperparameters.n_steps=10",
            "hyperparameters.batch_size=40",
            "env.horizon_days=10",
        ],
    )
    result = train(config, command="pytest dagger", final_evaluation=False)
    err = capsys.readouterr().err
    # The statistics count the first demonstrations only (3 senders x 10 days); unfrozen,
    # PPO adds the 4 envs' first observations and its 200 steps (5 rollouts of 4 x 10).
    count = _normaliser_count(result.model_dir)
    assert count == pytest.approx(30 + (0 if frozen else 4 + 200), abs=1e-3)
    # 3 senders x 10 days cloned, then 3 more per round.
    assert "DAgger round 1: 60 labelled steps" in err
    assert "DAgger round 2: 90 labelled steps" in err
    assert "DAgger round 3" not in err
