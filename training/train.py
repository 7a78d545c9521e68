"""Train a warmup policy with stable-baselines3 and record the run in MLflow.

One loop, top to bottom: build the batched env over the training world (a new sender per
env and episode) or the training scenarios, wrap it in
VecNormalize, build the SB3 model, learn with callbacks that checkpoint, evaluate on the
suite against the reference baseline and keep the best model (by ``inbox_share``, with
``lost_share`` no worse than the reference's), then evaluate every baseline and the final
and best models at full seeds and log it all. The run's state and its callback are
:mod:`ipwarmup.training.trainer`'s.
"""

from __future__ import annotations

import json
import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.vec_env import VecNormalize

from ipwarmup.agents.learned import VECNORMALIZE_FILE
from ipwarmup.agents.registry import BASELINES
from ipwarmup.config import flatten, to_dict
from ipwarmup.errors import ConfigError
from ipwarmup.training.config import ExperimentConfig
from ipwarmup.training.evaluate import evaluate, report, suite_inputs
from ipwarmup.training.presets import algorithm_class
from ipwarmup.training.provenance import evaluation_fingerprint, provenance
from ipwarmup.training.report import format_tables, plot_curves, plot_kpis
from ipwarmup.training.run_logging import (
    EVALUATION_TAG,
    SB3MLflowOutput,
    log_baseline_runs,
    log_evaluation,
)
from ipwarmup.training.store import redact
from ipwarmup.training.tracking import Tracker
from ipwarmup.training.trainer import LEARNED, Progress, Trainer, save_policy

BEST = "learned-best"


@dataclass
class TrainResult:
    """What a finished training run produced."""

    run_id: str
    seed: int
    model_dir: Path
    report: dict[str, Any]
    last_score: float


def _tags(config: ExperimentConfig, seed: int) -> dict[str, str]:
    return {
        **provenance(),
        "ipwarmup.algorithm": config.algorithm.name,
        "ipwarmup.seed": str(seed),
        "ipwarmup.policy_kind": "learned",
        "ipwarmup.suite": config.training.suite,
    }


def _redacted(data: dict[str, Any]) -> dict[str, Any]:
    """Return resolved config data with the tracking URI's password hidden, to be logged."""
    tracking = data.get("tracking")
    if isinstance(tracking, dict) and tracking.get("tracking_uri"):
        return {**data, "tracking": {**tracking, "tracking_uri": redact(tracking["tracking_uri"])}}
    return data


def _seed(given: int | None, tracker: Tracker, resume_run_id: str | None) -> int:
    """Return the run's seed: a resumed run keeps its own, a new one is given or drawn."""
    if resume_run_id is None:
        return given if given is not None else secrets.randbelow(2**31)
    run = tracker.get_run(resume_run_id)
    recorded = run["tags"].get("ipwarmup.seed") or run["params"].get("seed")
    if recorded is None:
        raise ConfigError(f"--resume {resume_run_id}: the run records no seed (tag ipwarmup.seed)")
    if given is not None and given != int(recorded):
        raise ConfigError(
            f"training.seed: run '{resume_run_id}' was trained with seed {recorded}, got "
            f"{given}; a resumed run keeps its seed (leave --seed out)"
        )
    return int(recorded)


def train(
    config: ExperimentConfig,
    *,
    command: str = "",
    resume_run_id: str | None = None,
    parent_run_id: str | None = None,
    on_evaluation: Callable[[int, float], bool] | None = None,
    final_evaluation: bool = True,
    baselines: bool = True,
    run_tags: dict[str, str] | None = None,
    on_run_start: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train, evaluate and log one run; return where its model is and its final report.

    Args:
        config: the experiment, its hyperparameters included.
        command: the command line, saved with the run.
        resume_run_id: continue this run from its last checkpoint.
        parent_run_id: nest the run under this one (a tuning study).
        on_evaluation: called with (timesteps, validation inbox_share) after each periodic
            evaluation; returning False stops training early (pruning).
        final_evaluation: evaluate the final and best models at full seeds at the end
            and log their ``kpi/`` metrics (not after an early stop).
        baselines: in the final evaluation, evaluate every baseline too and log (or
            reuse) their runs; if False only the reference is evaluated beside the models.
        run_tags: more tags for the run (a tuning trial's study and number).
        on_run_start: called with the run id once the run exists (before training).

    Raises:
        ConfigError: the store cannot be used, or a resumed run's seed differs from
            ``config.training.seed``.
    """
    t = config.training
    tracker = Tracker(config.tracking.tracking_uri, config.tracking.experiment)
    seed = _seed(t.seed, tracker, resume_run_id)
    print(f"seed: {seed}", file=sys.stderr)
    run_name = f"{config.name}-{config.algorithm.name.lower()}-{seed}"
    hyperparameters = config.hyperparameters
    resolved = _redacted(to_dict(config))
    tags = {**_tags(config, seed), **(run_tags or {})}
    with tracker.start(
        run_name, tags=tags, resume_run_id=resume_run_id, parent_run_id=parent_run_id
    ) as run:
        print(f"run: {run.run_id} ({tracker.where})", file=sys.stderr)
        if on_run_start is not None:
            on_run_start(run.run_id)
        trainer = Trainer(config, run, seed)
        trainer.on_evaluation = on_evaluation
        if resume_run_id is None:
            params = flatten({k: v for k, v in resolved.items() if k != "hyperparameters"})
            params.update({f"hp.{k}": v for k, v in flatten(hyperparameters).items()})
            params["seed"] = seed
            run.log_params(params)
            run.log_text(yaml.safe_dump(resolved, sort_keys=False), "config/resolved.yaml")
            run.log_text(redact(command) + "\n", "config/command.txt")
        env = trainer.make_env()
        algorithm = algorithm_class(config.algorithm.name)
        if resume_run_id is not None:
            model, env = _resume(trainer, algorithm, env)
        else:
            model = algorithm(
                config.algorithm.policy, env, seed=seed, device="cpu", verbose=0, **hyperparameters
            )
        trainer.normalizer = env
        model.set_logger(Logger(folder=None, output_formats=[SB3MLflowOutput(run)]))
        if resume_run_id is None and t.pretrain_teacher:
            _pretrain(trainer, model, env)
        elif resume_run_id is None:
            from ipwarmup.training.pretrain import set_action_spread

            set_action_spread(model, action_std=t.action_std, pool_action_std=t.pool_action_std)
        if t.pretrain_teacher and t.freeze_normalization:
            # The clone was fitted on these statistics; PPO's rollouts updating them would
            # shift every input of the cloned network under it.
            env.training = False
        remaining = t.total_timesteps - model.num_timesteps
        try:
            if remaining > 0:
                model.learn(remaining, callback=Progress(trainer), reset_num_timesteps=False)
        finally:
            trainer.checkpoint(model)  # a crash or Ctrl-C leaves the last state resumable
        final = save_policy(model, env, trainer.folder / "final")
        run.log_artifacts(str(final), "model")
        if trainer.stopped:
            run.set_tags({"ipwarmup.stopped_early": "true"})
        data: dict[str, Any] = {}
        if final_evaluation and not trainer.stopped:
            data = _final_evaluation(trainer, model, tracker, run_name, baselines=baselines)
        return TrainResult(run.run_id, seed, final, data, trainer.last_score)


def _pretrain(trainer: Trainer, model: Any, env: VecNormalize) -> None:
    """Behaviour-clone the teacher, log the losses, and evaluate the clone as a candidate."""
    from ipwarmup.envs.env import build_config
    from ipwarmup.training.pretrain import clone, collect, collect_world, dagger

    t = trainer.config.training
    assert t.pretrain_teacher is not None
    gamma = float(trainer.hyperparameters.get("gamma", 0.99))
    if t.world is not None:
        demos = collect_world(
            t.pretrain_teacher,
            t.world,
            trainer.config.env,
            episodes=t.pretrain_episodes,
            gamma=gamma,
            seed=trainer.seed,
        )
    else:
        configs = [build_config(scenario=s, config=trainer.config.env) for s in t.scenarios]
        demos = collect(
            t.pretrain_teacher,
            configs,
            episodes=t.pretrain_episodes,
            gamma=gamma,
            seed=trainer.seed,
        )
    losses = clone(
        model,
        env,
        demos,
        epochs=t.pretrain_epochs,
        seed=trainer.seed,
        action_std=t.action_std,
        pool_action_std=t.pool_action_std,
        pool_label_scale=t.pool_label_scale,
    )
    if t.dagger_rounds:
        assert t.world is not None  # checked with the configuration
        demos, losses = dagger(
            model,
            env,
            demos,
            teacher=t.pretrain_teacher,
            world=t.world,
            config=trainer.config.env,
            rounds=t.dagger_rounds,
            episodes=t.pretrain_episodes,
            gamma=gamma,
            seed=trainer.seed,
            epochs=t.dagger_epochs,
            first_epochs=t.pretrain_epochs,
            action_std=t.action_std,
            pool_action_std=t.pool_action_std,
            pool_label_scale=t.pool_label_scale,
        )
    trainer.run.log_metrics(losses, step=0)
    print(f"cloned {t.pretrain_teacher}: {losses}", file=sys.stderr)
    trainer.periodic_evaluation(model)


def _resume(trainer: Trainer, algorithm: type[Any], env: VecNormalize) -> tuple[Any, Any]:
    folder = trainer.folder / "checkpoints" / "latest"
    if not (folder / "model.zip").is_file():
        folder = trainer.run.download_artifacts("checkpoints/latest", trainer.folder / "resume")
    normalizer = VecNormalize.load(str(folder / VECNORMALIZE_FILE), env.venv)
    model = algorithm.load(folder / "model.zip", env=normalizer, device="cpu")
    print(f"resumed at {model.num_timesteps} timesteps", file=sys.stderr)
    return model, normalizer


def _final_evaluation(
    trainer: Trainer, model: Any, tracker: Tracker, run_name: str, *, baselines: bool
) -> dict[str, Any]:
    """Evaluate the final and best models (and the baselines) at full seeds; log it all."""
    t, run = trainer.config.training, trainer.run
    factories = {LEARNED: trainer.factory(model, LEARNED)}
    best = trainer.folder / "best"
    if (best / "model.zip").is_file():
        from ipwarmup.agents.learned import load_learned

        factories[BEST] = lambda config: load_learned(best, config)
    policies = [*factories, *(BASELINES if baselines else ())]
    result = evaluate(
        policies, trainer.suite, seeds=t.final_eval_seeds, seed=20_000, factories=factories
    )
    data = report(result)
    chosen = BEST if BEST in factories else LEARNED
    log_evaluation(run, data, policy=chosen, step=model.num_timesteps, prefix="kpi/")
    run.set_tags(
        {
            "ipwarmup.policy": run_name,
            "ipwarmup.selected_model": chosen,
            # What `ipwarmup compare` ranks by: runs on the same suite, seeds and first seed.
            "ipwarmup.seeds": str(data["seeds"]),
            "ipwarmup.eval_seed": str(data["seed"]),
        }
    )
    folder = trainer.folder / "evaluation"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "eval.json").write_text(json.dumps(data, indent=2))
    (folder / "eval.txt").write_text(format_tables(data) + "\n")
    plot_kpis(data, folder / "kpis.png")
    plot_curves(result, trainer.suite.entries[0].name, folder / "curves.png")
    run.log_artifacts(str(folder), "evaluation")
    if best.is_dir():
        run.log_artifacts(str(best), "best_model")
    if baselines:
        log_baseline_runs(
            tracker,
            data,
            suite=t.suite,
            tags={
                **provenance(),
                EVALUATION_TAG: evaluation_fingerprint(suite_inputs(trainer.suite)),
            },
            policies=BASELINES,
        )
    print(format_tables(data))
    return data
