"""MLflow tracking: one experiment of one checked store, its runs found and started.

With :mod:`~ipwarmup.training.tracked_run` (one run) and
:mod:`~ipwarmup.training.model_registry` (the pyfunc), the only modules that import MLflow. The
store is resolved and checked by :mod:`~ipwarmup.training.store` before MLflow touches it;
what SB3 output and evaluation reports become in a run is
:mod:`~ipwarmup.training.run_logging`. ``MlflowClient`` with explicit run ids (no fluent
"active run"), metrics written in batches. Metric keys are prefixed ``rollout/``,
``train/``, ``time/`` (SB3), ``eval/`` (during training) and ``kpi/`` (final evaluations,
read by ``ipwarmup compare``).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Run as MlflowRun
from mlflow.exceptions import MlflowException

from ipwarmup.errors import ConfigError
from ipwarmup.training.store import (
    StoreError,
    artifact_root,
    check_tracking_store,
    is_server,
    redact,
    sqlite_path,
    tracking_uri,
)
from ipwarmup.training.tracked_run import FLUSH_EVERY, Run, download, quiet, set_tags

__all__ = [
    "DEFAULT_EXPERIMENT",
    "FLUSH_EVERY",
    "Run",
    "Tracker",
    "artifact_root",
    "quiet",
    "tracking_uri",
]

DEFAULT_EXPERIMENT = "ipwarmup"
_PARENT_TAG = "mlflow.parentRunId"


class Tracker:
    """One experiment in one tracking store.

    Checks the store first (:func:`~ipwarmup.training.store.check_tracking_store`: an
    unreachable server, an empty or damaged SQLite file fail within seconds, naming it),
    sets the process's tracking URI (``mlflow.set_tracking_uri``, which also exports
    ``MLFLOW_TRACKING_URI`` to subprocesses) and gets or creates the experiment, on a
    database store with its artifacts at :func:`artifact_root`.

    Args:
        uri: tracking URI, resolved by :func:`tracking_uri`.
        experiment: experiment name.
        create: create the experiment (and the store) if missing; if False, nothing is
            created or changed, and a missing experiment or store raises ``ConfigError``.

    Raises:
        ConfigError: the store is unreachable, damaged or missing, MLflow cannot use the
            URI, or the experiment is deleted or missing.
    """

    def __init__(
        self, uri: str | None = None, experiment: str = DEFAULT_EXPERIMENT, *, create: bool = True
    ) -> None:
        self.uri, self.experiment = tracking_uri(uri), experiment
        check_tracking_store(self.uri, create=create, missing=self.where)
        database = sqlite_path(self.uri)
        if database is not None:
            database.parent.mkdir(parents=True, exist_ok=True)
        try:
            with warnings.catch_warnings():
                # MLflow's SQL store uses a loader strategy SQLAlchemy 2.1 deprecates; the
                # warning fires once, on import, and is MLflow's to fix.
                warnings.filterwarnings("ignore", message=".*noload.*", category=DeprecationWarning)
                self.client = MlflowClient(tracking_uri=self.uri)
            mlflow.set_tracking_uri(self.uri)
            self.experiment_id = self._experiment_id(
                create, None if is_server(self.uri) else artifact_root(self.uri)
            )
        except MlflowException as error:
            raise StoreError(f"tracking URI {redact(self.uri)}: {_first_line(error)}") from error

    def _experiment_id(self, create: bool, artifact_location: str | None) -> str:
        found = self.client.get_experiment_by_name(self.experiment)
        if found is None and create:
            try:
                return self.client.create_experiment(self.experiment, artifact_location)
            except MlflowException as error:  # or did another process create it just now?
                found = self.client.get_experiment_by_name(self.experiment)
                if found is None:
                    raise ConfigError(f"{self.where}: {error.message}") from error
        if found is None:
            raise ConfigError(f"{self.where}: not found")
        if found.lifecycle_stage != "active":
            raise ConfigError(
                f"{self.where}: the experiment is deleted; restore it (mlflow experiments "
                f"restore --experiment-id {found.experiment_id}) or choose another name"
            )
        return str(found.experiment_id)

    @property
    def where(self) -> str:
        """Name the experiment and store for messages (a password in the URI is hidden)."""
        return f"experiment '{self.experiment}' at tracking URI {redact(self.uri)}"

    @property
    def artifact_location(self) -> str:
        """The experiment's artifact location."""
        return self.client.get_experiment(self.experiment_id).artifact_location

    def start(
        self,
        run_name: str,
        *,
        tags: dict[str, str] | None = None,
        resume_run_id: str | None = None,
        parent_run_id: str | None = None,
        flush_every: int = FLUSH_EVERY,
    ) -> Run:
        """Start a run (or reopen one); use it as ``with tracker.start(name) as run:``.

        Args:
            run_name: the run's name (a resumed run keeps its own).
            tags: tags to set on the run.
            resume_run_id: reopen this run of the experiment; its status goes back to
                RUNNING and its params may be logged again with the same values.
            parent_run_id: nest the run under this one (tag ``mlflow.parentRunId``).
            flush_every: buffered metrics above which they are written out.

        Raises:
            ConfigError: ``resume_run_id`` or ``parent_run_id`` names no active run (of
                this experiment, for a resume).
        """
        all_tags = dict(tags or {})
        if parent_run_id is not None:
            self._existing(parent_run_id, "parent_run_id")
            all_tags[_PARENT_TAG] = parent_run_id
        if resume_run_id is None:
            created = self.client.create_run(self.experiment_id, tags=all_tags, run_name=run_name)
            return Run(self.client, created.info, params={}, flush_every=flush_every)
        found = self._existing(resume_run_id, "resume_run_id")
        if found.info.experiment_id != self.experiment_id:
            raise ConfigError(
                f"resume_run_id: run '{resume_run_id}' belongs to experiment id "
                f"{found.info.experiment_id}, not to '{self.experiment}' ({self.experiment_id})"
            )
        self.client.update_run(resume_run_id, status="RUNNING")
        set_tags(self.client, resume_run_id, all_tags)
        return Run(self.client, found.info, params=found.data.params, flush_every=flush_every)

    def _existing(self, run_id: str, what: str) -> MlflowRun:
        try:
            found = self.client.get_run(run_id)
        except MlflowException as error:
            raise ConfigError(
                f"{what}: no run '{run_id}' at tracking URI {redact(self.uri)} ({error.message})"
            ) from error
        if found.info.lifecycle_stage != "active":
            raise ConfigError(f"{what}: run '{run_id}' is deleted")
        return found

    def get_run(self, run_id: str) -> dict[str, Any]:
        """Return a run as plain data, or raise ``ConfigError`` if there is no such run.

        Keys: ``run_id``, ``run_name``, ``status``, ``start_time`` and ``end_time`` (ms
        since the epoch), ``artifact_uri``, ``params``, ``metrics`` (latest values), ``tags``.
        """
        return _as_dict(self._existing(run_id, "run_id"))

    def list_artifacts(self, run_id: str, path: str = "") -> list[str]:
        """Return the run's artifact files under ``path``, recursively, as sorted paths."""
        files: list[str] = []
        pending = [path or None]
        while pending:
            for info in self.client.list_artifacts(run_id, pending.pop()):
                (pending if info.is_dir else files).append(info.path)
        return sorted(files)

    def download_artifacts(self, run_id: str, artifact_path: str, dst: str | Path) -> Path:
        """Download a run's artifact file or folder into the local folder ``dst``."""
        return download(self.client, run_id, artifact_path, dst)

    def metric_history(self, run_id: str, key: str) -> list[tuple[int, float]]:
        """Return every logged value of one metric as ``(step, value)``, by step then time."""
        history = self.client.get_metric_history(run_id, key)
        ordered = sorted(history, key=lambda m: (m.step, m.timestamp))
        return [(m.step, m.value) for m in ordered]

    def search(
        self, filter_string: str = "", order_by: list[str] | None = None
    ) -> list[dict[str, Any]]:
        """Return the experiment's active runs that match, every page, as :meth:`get_run` does.

        Args:
            filter_string: MLflow's syntax, e.g. ``"tags.`ipwarmup.suite` = 'validation'"``.
            order_by: e.g. ``["attributes.start_time DESC"]`` (MLflow's default order).
        """
        runs: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page = self.client.search_runs(
                [self.experiment_id], filter_string, order_by=order_by, page_token=token
            )
            runs.extend(_as_dict(run) for run in page)
            token = page.token
            if not token:
                return runs


def _as_dict(run: MlflowRun) -> dict[str, Any]:
    info, data = run.info, run.data
    return {
        "run_id": info.run_id,
        "run_name": info.run_name,
        "status": info.status,
        "start_time": info.start_time,
        "end_time": info.end_time,
        "artifact_uri": info.artifact_uri,
        "params": dict(data.params),
        "metrics": dict(data.metrics),
        "tags": dict(data.tags),
    }


def _first_line(error: MlflowException) -> str:
    text = str(error.message).strip()
    return text.splitlines()[0] if text else type(error).__name__
