"""One training run's state and its callback: the env, checkpoints, the periodic evaluation.

:class:`Trainer` holds what :func:`ipwarmup.training.train.train` needs across the run (the
configuration, the MLflow run, the normaliser, the best score so far) and does the work the
callback asks for: :class:`Progress` checkpoints every ``training.checkpoint_freq`` steps,
evaluates on the suite every ``training.eval_freq`` steps against the reference baseline
and keeps the best model (by ``inbox_share``, with ``lost_share`` no worse than the
reference's plus ``training.lost_share_margin``), and shows a progress bar with the KPIs.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv, VecMonitor, VecNormalize

from ipwarmup.agents.learned import VECNORMALIZE_FILE, LearnedPolicy
from ipwarmup.agents.registry import REFERENCE
from ipwarmup.envs.config import EnvConfig
from ipwarmup.envs.vector import make_multi_scenario_vec_env
from ipwarmup.envs.world_vec import make_world_vec_env
from ipwarmup.training.config import ExperimentConfig
from ipwarmup.training.evaluate import evaluate, load_suite, report
from ipwarmup.training.run_logging import log_evaluation
from ipwarmup.training.tracking import Run

LEARNED = "learned"
"""The learned policy's name in evaluations and logged metrics."""


def save_policy(model: Any, normalizer: VecNormalize, folder: Path) -> Path:
    """Save the SB3 model and its VecNormalize statistics side by side."""
    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder / "model.zip")
    normalizer.save(str(folder / VECNORMALIZE_FILE))
    return folder


class Progress(BaseCallback):
    """Checkpoint, evaluate and keep the best model; show a progress bar with the KPIs."""

    def __init__(self, trainer: Trainer) -> None:
        super().__init__()
        self.trainer = trainer
        self.bar: Any = None

    def _on_training_start(self) -> None:
        from tqdm import tqdm  # type: ignore[import-untyped]  # tqdm ships no type hints

        t = self.trainer
        self.bar = tqdm(
            total=t.config.training.total_timesteps,
            initial=self.model.num_timesteps,
            unit="step",
            dynamic_ncols=True,
            file=sys.stderr,
        )
        self._next_eval = _next(self.model.num_timesteps, t.config.training.eval_freq)
        self._next_checkpoint = _next(self.model.num_timesteps, t.config.training.checkpoint_freq)

    def _on_step(self) -> bool:
        steps = self.model.num_timesteps
        self.bar.update(steps - self.bar.n)
        if steps >= self._next_checkpoint:
            self.trainer.checkpoint(self.model)
            self._next_checkpoint = _next(steps, self.trainer.config.training.checkpoint_freq)
        if steps >= self._next_eval:
            t = self.trainer
            kpis = t.periodic_evaluation(self.model)
            self.bar.set_postfix(kpis, refresh=True)
            self._next_eval = _next(steps, t.config.training.eval_freq)
            if t.on_evaluation is not None and not t.on_evaluation(steps, t.last_score):
                t.stopped = True
                return False
        return True

    def _on_training_end(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _next(now: int, every: int) -> int:
    return (now // every + 1) * every


class Trainer:
    """The state of one training run (config, env, run handle, best score)."""

    def __init__(self, config: ExperimentConfig, run: Run, seed: int) -> None:
        self.config = config
        self.hyperparameters = config.hyperparameters
        self.run = run
        self.seed = seed
        self.folder = Path(config.training.output_dir) / run.run_id
        self.suite = load_suite(config.training.suite)
        self.best_score = -np.inf
        self.last_score = float("nan")
        self.normalizer: VecNormalize | None = None
        self.on_evaluation: Callable[[int, float], bool] | None = None
        self.stopped = False

    def make_env(self) -> VecNormalize:
        """Build the training env: the world or the scenarios, monitored and normalised."""
        t = self.config.training
        env: VecEnv
        if t.world is not None:
            env = make_world_vec_env(
                world=t.world, config=self.config.env, n_envs=t.n_envs, seed=self.seed
            )
        else:
            env = make_multi_scenario_vec_env(
                scenarios=list(t.scenarios), config=self.config.env, n_envs=t.n_envs, seed=self.seed
            )
        gamma = float(self.hyperparameters.get("gamma", 0.99))
        # VecMonitor adds each finished episode's return and length to its info, which SB3
        # logs as rollout/ep_rew_mean and rollout/ep_len_mean (raw, before normalisation).
        monitored = VecMonitor(env)
        return VecNormalize(monitored, norm_obs=True, norm_reward=t.norm_reward, gamma=gamma)

    def factory(self, model: Any, name: str) -> Any:
        """Return a policy factory that runs ``model`` under the run's normaliser."""
        assert self.normalizer is not None  # set before learning starts
        normalizer = self.normalizer

        def build(config: EnvConfig) -> LearnedPolicy:
            return LearnedPolicy(config, model, normalizer, name=name)

        return build

    def checkpoint(self, model: Any) -> None:
        """Save the model as the latest checkpoint and log it to the run."""
        assert self.normalizer is not None
        folder = save_policy(model, self.normalizer, self.folder / "checkpoints" / "latest")
        (folder / "timesteps.txt").write_text(str(model.num_timesteps))
        self.run.log_artifacts(str(folder), "checkpoints/latest")

    def periodic_evaluation(self, model: Any) -> dict[str, float]:
        """Evaluate on the suite, log it, keep the model if best; return the bar's KPIs."""
        t = self.config.training
        result = evaluate(
            [LEARNED],
            self.suite,
            seeds=t.eval_seeds,
            seed=10_000,  # evaluation seeds never overlap the training seeds' draws
            factories={LEARNED: self.factory(model, LEARNED)},
        )
        data = report(result)
        log_evaluation(self.run, data, policy=LEARNED, step=model.num_timesteps, prefix="eval/")
        learned = data["overall"][LEARNED]
        reference = data["overall"][REFERENCE]
        allowed = reference["lost_share"]["mean"] + t.lost_share_margin
        score = learned["inbox_share"]["mean"]
        self.last_score = score
        if learned["lost_share"]["mean"] <= allowed and score > self.best_score:
            self.best_score = score
            assert self.normalizer is not None
            save_policy(model, self.normalizer, self.folder / "best")
            self.run.log_metrics({"eval/best_inbox_share": score}, step=model.num_timesteps)
        return {
            "inbox": round(score, 3),
            "lost": round(learned["lost_share"]["mean"], 4),
            "vs_sendgrid": round(data["versus"][LEARNED]["inbox_share"]["mean"], 3),
        }
