"""Tune hyperparameters with Optuna: TPE sampling, median pruning on validation KPIs.

Each trial is a short training run nested under the study's MLflow run; its periodic
validation ``inbox_share`` is reported to Optuna as the intermediate value, and the median
pruner stops trials that fall behind. The study lives in a database (SQLite by default;
any database URL lets trials run on many machines at once). The best parameters are
written as an experiment file that ``ipwarmup train --config`` takes.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from ipwarmup.config import to_dict
from ipwarmup.training.config import ExperimentConfig
from ipwarmup.training.tracking import Tracker
from ipwarmup.training.train import train


def suggest(trial: Any, algorithm: str) -> dict[str, Any]:
    """Return one trial's hyperparameters (SB3 names) from the search space."""
    params: dict[str, Any] = {
        "learning_rate": trial.suggest_float("learning_rate", 5.0e-5, 2.0e-3, log=True),
        "gamma": trial.suggest_categorical("gamma", [0.95, 0.98, 0.99, 0.995]),
    }
    width = trial.suggest_categorical("net_width", [32, 64, 128])
    params["policy_kwargs"] = {"net_arch": [width, width]}
    if algorithm in ("PPO", "RecurrentPPO"):
        params["n_epochs"] = trial.suggest_int("n_epochs", 3, 15)
        params["ent_coef"] = trial.suggest_float("ent_coef", 1.0e-6, 1.0e-2, log=True)
        params["clip_range"] = trial.suggest_categorical("clip_range", [0.1, 0.2, 0.3])
        params["gae_lambda"] = trial.suggest_categorical("gae_lambda", [0.9, 0.95, 0.98])
    else:
        params["tau"] = trial.suggest_categorical("tau", [0.005, 0.01, 0.02])
    return params


def tune(
    config: ExperimentConfig,
    *,
    trials: int,
    storage: str | None = None,
    out: Path | None = None,
    seed: int = 0,
) -> Path:
    """Run ``trials`` trials of the study and write the best experiment file; return its path."""
    import optuna

    storage = storage or "sqlite:///optuna.db"
    study = optuna.create_study(
        study_name=f"{config.name}-{config.algorithm.name.lower()}",
        storage=storage,
        load_if_exists=True,
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0),
    )
    tracker = Tracker(config.tracking.tracking_uri, config.tracking.experiment)
    with tracker.start(f"tune-{study.study_name}", tags={"ipwarmup.kind": "tuning"}) as parent:
        parent.log_params({"trials": trials, "storage": storage, "study": study.study_name})

        def objective(trial: Any) -> float:
            params = {**config.hyperparameters, **suggest(trial, config.algorithm.name)}
            trial_config = replace(
                config,
                hyperparameters=params,
                training=replace(config.training, seed=seed + trial.number),
            )

            def report(step: int, score: float) -> bool:
                trial.report(score, step)
                return not trial.should_prune()

            result = train(
                trial_config,
                command=f"optuna trial {trial.number}",
                parent_run_id=parent.run_id,
                on_evaluation=report,
                final_evaluation=False,
            )
            if trial.should_prune():
                raise optuna.TrialPruned()
            return result.last_score

        study.optimize(objective, n_trials=trials)
        best = {
            **config.hyperparameters,
            **suggest(optuna.trial.FixedTrial(study.best_params), config.algorithm.name),
        }
        parent.log_metrics({"best_inbox_share": study.best_value}, step=0)
        data = {**to_dict(config), "hyperparameters": best}
        data["name"] = f"{config.name}-tuned"
        path = out or Path("configs/experiments") / f"{config.name}-tuned.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".yaml.tmp")
        tmp.write_text(
            f"# Best of {len(study.trials)} Optuna trials (study {study.study_name}, "
            f"validation inbox_share {study.best_value:.4f}).\n"
            + yaml.safe_dump(data, sort_keys=False)
        )
        tmp.replace(path)
        parent.log_artifact(str(path), "best")
        print(f"best inbox_share {study.best_value:.4f}; experiment written to {path}")
        return path
