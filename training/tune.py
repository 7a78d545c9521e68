"""Tune hyperparameters with Optuna: TPE sampling, median pruning on validation KPIs.

Each trial is a short training run nested under its worker's MLflow run; its periodic
validation ``inbox_share`` is reported to Optuna as the intermediate value, and the median
pruner stops trials that fall behind. A trial that finishes is evaluated at full seeds and
logs ``kpi/`` metrics like any training run. The study lives in a database: SQLite by
default, or a shared PostgreSQL (``postgresql+psycopg://``, the ``ipwarmup[postgres]``
extra) so that workers on many machines run one study. Each worker's sampler has its own
seed (given, or drawn and logged), so workers do not propose the same parameters. Every
trial is linked to its MLflow run both ways: the run is tagged ``optuna.study`` and
``optuna.trial_number``, the trial has the user attribute ``mlflow_run_id``. The best
parameters are written as an experiment file that ``ipwarmup train --config`` takes.
"""

from __future__ import annotations

import secrets
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from ipwarmup.config import to_dict
from ipwarmup.errors import ConfigError
from ipwarmup.training.config import ExperimentConfig
from ipwarmup.training.store import CONNECT_TIMEOUT_S, database_tables, redact
from ipwarmup.training.tracking import Tracker
from ipwarmup.training.train import train

DEFAULT_STORAGE = "sqlite:///optuna.db"
RUN_ID_ATTR = "mlflow_run_id"
"""The Optuna trial user attribute that holds the trial's MLflow run id."""


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


def open_storage(url: str) -> Any:
    """Open an Optuna RDB storage, failing within seconds with one line if it cannot be used.

    The database is probed first (a missing driver or an unreachable server is a
    ``ConfigError`` naming the redacted URL). Workers starting at once on an empty
    database race to create Optuna's tables; the loser's error is retried.

    Raises:
        ConfigError: the driver is missing, or the database refuses or does not answer.
    """
    import optuna
    import sqlalchemy

    where = f"--storage {redact(url)}"
    database_tables(url, what=where)
    engine_kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if url.lower().startswith("postgresql"):
        engine_kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S}
    for attempt in range(3):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)
        except sqlalchemy.exc.IntegrityError:  # CREATE TABLE raced with another worker
            if attempt == 2:
                raise
            time.sleep(0.5 * (attempt + 1))
        except sqlalchemy.exc.SQLAlchemyError as error:
            raise ConfigError(f"{where}: {str(error).splitlines()[0]}") from error
    raise AssertionError("unreachable")  # pragma: no cover


def tune(
    config: ExperimentConfig,
    *,
    trials: int,
    storage: str | None = None,
    out: Path | None = None,
    seed: int | None = None,
) -> Path:
    """Run ``trials`` trials of the study on this worker; write the best experiment file.

    Args:
        config: the experiment; trial ``n`` trains with seed ``training.seed + n`` (0 + n
            when no seed is set), so every trial of the study has its own seed.
        trials: trials this worker runs (the study may hold more, from other workers).
        storage: the study's database URL (default ``sqlite:///optuna.db``).
        out: where to write the best experiment file.
        seed: this worker's sampler seed; drawn, printed and logged when None.

    Returns:
        The path of the best experiment file.

    Raises:
        ConfigError: the storage or tracking store cannot be used.
    """
    import optuna

    storage = storage or DEFAULT_STORAGE
    sampler_seed = seed if seed is not None else secrets.randbelow(2**31)
    print(f"sampler seed: {sampler_seed}", file=sys.stderr)
    tracker = Tracker(config.tracking.tracking_uri, config.tracking.experiment)
    study = optuna.create_study(
        study_name=f"{config.name}-{config.algorithm.name.lower()}",
        storage=open_storage(storage),
        load_if_exists=True,
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=sampler_seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0),
    )
    base_seed = config.training.seed or 0
    worker_tags = {"ipwarmup.kind": "tuning", "optuna.study": study.study_name}
    with tracker.start(f"tune-{study.study_name}", tags=worker_tags) as parent:
        parent.log_params(
            {
                "trials": trials,
                "storage": redact(storage),
                "study": study.study_name,
                "sampler_seed": sampler_seed,
            }
        )

        def objective(trial: Any) -> float:
            params = {**config.hyperparameters, **suggest(trial, config.algorithm.name)}
            trial_config = replace(
                config,
                hyperparameters=params,
                training=replace(config.training, seed=base_seed + trial.number),
            )
            trial.set_user_attr("sampler_seed", sampler_seed)

            def report(step: int, score: float) -> bool:
                trial.report(score, step)
                return not trial.should_prune()

            result = train(
                trial_config,
                command=f"optuna study {study.study_name} trial {trial.number}",
                parent_run_id=parent.run_id,
                on_evaluation=report,
                baselines=False,
                run_tags={
                    "optuna.study": study.study_name,
                    "optuna.trial_number": str(trial.number),
                },
                on_run_start=lambda run_id: trial.set_user_attr(RUN_ID_ATTR, run_id),
            )
            if trial.should_prune():
                raise optuna.TrialPruned()
            return result.last_score

        study.optimize(objective, n_trials=trials)
        try:
            best_trial = study.best_trial
        except ValueError as error:  # every trial of the study was pruned or failed
            raise ConfigError(f"study {study.study_name}: no trial finished") from error
        best = {
            **config.hyperparameters,
            **suggest(optuna.trial.FixedTrial(best_trial.params), config.algorithm.name),
        }
        parent.log_metrics({"best_inbox_share": best_trial.value or 0.0}, step=0)
        path = _write_best(config, best, out, study, best_trial)
        parent.log_artifact(str(path), "best")
        print(f"best inbox_share {best_trial.value:.4f}; experiment written to {path}")
        return path


def _write_best(
    config: ExperimentConfig, best: dict[str, Any], out: Path | None, study: Any, trial: Any
) -> Path:
    data = {**to_dict(config), "hyperparameters": best}
    data["name"] = f"{config.name}-tuned"
    uri = (data.get("tracking") or {}).get("tracking_uri")
    if uri and redact(uri) != uri:  # never write a password into a file meant to be shared
        data["tracking"] = {**data["tracking"], "tracking_uri": None}
    path = out or Path("configs/experiments") / f"{config.name}-tuned.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".yaml.tmp")
    run_id = trial.user_attrs.get(RUN_ID_ATTR, "unknown")
    tmp.write_text(
        f"# Best of {len(study.trials)} Optuna trials (study {study.study_name}, trial "
        f"{trial.number}, MLflow run {run_id}, validation inbox_share {trial.value:.4f}).\n"
        + yaml.safe_dump(data, sort_keys=False)
    )
    tmp.replace(path)
    return path
