"""MLflow tracking: the store, runs with buffered metrics, and served-policy models.

The only module of ipwarmup that imports MLflow (what SB3 output and evaluation reports
become in a run is :mod:`ipwarmup.training.run_logging`). It uses ``MlflowClient`` with explicit
run ids (no fluent "active run") and writes metrics in batches. The store is an embedded
SQLite file in the working directory unless a URI says otherwise (:func:`tracking_uri`).
Metric keys are prefixed ``rollout/``, ``train/``, ``time/`` (SB3), ``eval/`` (during
training) and ``kpi/`` (final evaluations, read by ``ipwarmup compare``); runs are tagged
``ipwarmup.policy``, ``ipwarmup.policy_kind`` (learned or baseline) and ``ipwarmup.suite``.
"""

from __future__ import annotations

import logging
import math
import os
import re
import time
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd  # type: ignore[import-untyped]  # no stubs installed; mlflow loads it
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunInfo, RunTag
from mlflow.entities import Run as MlflowRun
from mlflow.exceptions import MlflowException

from ipwarmup.errors import ConfigError

with warnings.catch_warnings():
    # Importing mlflow.pyfunc warns about a type hint in MLflow's own response types.
    warnings.simplefilter("ignore", UserWarning)
    from mlflow.pyfunc.model import PythonModel

DEFAULT_EXPERIMENT = "ipwarmup"
FLUSH_EVERY = 500
"""Buffered metrics that trigger a write to the store."""

# MLflow's own limits on one log_batch request and on a value's length
# (mlflow.utils.validation); larger requests are rejected, longer values too.
_PARAMS_PER_BATCH = 100
_METRICS_PER_BATCH = 1000
_PARAM_VALUE_CHARS = 6000
_TAG_VALUE_CHARS = 8000
_PARENT_TAG = "mlflow.parentRunId"
_log = logging.getLogger(__name__)


def tracking_uri(uri: str | None = None) -> str:
    """Resolve the tracking URI: ``uri``, else ``MLFLOW_TRACKING_URI``, else embedded SQLite.

    The embedded default is ``sqlite:///<cwd>/mlflow.db`` with an absolute path, so the
    store stays put if the process changes directory. An empty ``uri`` counts as none.
    """
    if uri:
        return uri
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def artifact_root(uri: str | None = None) -> str:
    """Return the artifact location, a file URI, of new experiments on a local SQLite store.

    That is ``mlartifacts`` beside the database (of ``uri``, by default the embedded
    store: ``<cwd>/mlartifacts``), rather than ``./mlruns`` of wherever a run started.
    """
    database = _sqlite_path(uri) if uri else None
    folder = database.parent if database else Path.cwd()
    return (folder.absolute() / "mlartifacts").as_uri()


class Run:
    """A handle on one MLflow run (made by :meth:`Tracker.start`) and the context that ends it.

    Params and tags are written at once; metrics are buffered and written in batches once
    more than ``flush_every`` wait, on :meth:`flush` and at the end. Leaving the ``with``
    block normally ends the run FINISHED; any exception, ``KeyboardInterrupt`` included,
    ends it FAILED after flushing what was buffered, and propagates.
    """

    def __init__(
        self, client: MlflowClient, info: RunInfo, *, params: Mapping[str, str], flush_every: int
    ) -> None:
        if flush_every < 1:
            raise ValueError(f"flush_every: expected a count >= 1, got {flush_every}")
        self.flush_every = flush_every
        """Buffered metrics above which :meth:`log_metrics` writes them out."""
        self._client = client
        self._run_id: str = info.run_id
        self._artifact_uri: str = info.artifact_uri
        self._params = dict(params)
        self._buffer: list[Metric] = []
        self._ended = False

    @property
    def run_id(self) -> str:
        """The MLflow run id."""
        return self._run_id

    @property
    def artifact_uri(self) -> str:
        """Where this run's artifacts are stored."""
        return self._artifact_uri

    def __enter__(self) -> Run:
        return self

    def __exit__(self, kind: object, exc: BaseException | None, traceback: object) -> None:
        if exc is None:
            self.end("FINISHED")
            return
        try:
            self.end("FAILED")
        except Exception:  # the body's exception is the one to raise; log the store's
            _log.exception("could not mark MLflow run %s FAILED", self._run_id)

    def end(self, status: str = "FINISHED") -> None:
        """Flush buffered metrics and end the run with ``status`` (FINISHED, FAILED, KILLED).

        If the flush fails the run ends FAILED and the error propagates; a second call
        does nothing.
        """
        if self._ended:
            return
        self._ended = True
        try:
            self.flush()
        except BaseException:
            self._client.set_terminated(self._run_id, "FAILED")
            raise
        self._client.set_terminated(self._run_id, status)

    def log_params(self, params: Mapping[str, object]) -> None:
        """Log params as text (cut to MLflow's 6,000 characters), 100 per request.

        A param already logged with the same value is skipped (a resumed run may log its
        config again); one with a different value raises ``ConfigError`` naming them all.
        """
        texts = {key: str(value)[:_PARAM_VALUE_CHARS] for key, value in params.items()}
        new = {key: text for key, text in texts.items() if key not in self._params}
        changed = [
            f"param {key}: run {self._run_id} has {self._params[key]!r}, got {text!r}"
            for key, text in texts.items()
            if key in self._params and self._params[key] != text
        ]
        if changed:
            raise ConfigError(changed)
        for chunk in _chunks([Param(k, v) for k, v in new.items()], _PARAMS_PER_BATCH):
            self._client.log_batch(self._run_id, params=chunk)
        self._params.update(new)

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        """Buffer metrics at ``step``; write them out once more than ``flush_every`` wait.

        NaN and infinite values are skipped: MLflow rejects or mangles them on some stores.
        """
        if self._ended:
            raise RuntimeError(f"run {self._run_id} has ended; metrics can no longer be logged")
        timestamp = int(time.time() * 1000)
        for key, value in metrics.items():
            number = float(value)
            if math.isfinite(number):
                self._buffer.append(Metric(key, number, timestamp, int(step)))
        if len(self._buffer) > self.flush_every:
            self.flush()

    def flush(self) -> None:
        """Write buffered metrics, at most 1,000 per request (MLflow's limit)."""
        while self._buffer:
            chunk = self._buffer[:_METRICS_PER_BATCH]
            self._client.log_batch(self._run_id, metrics=chunk)
            del self._buffer[: len(chunk)]

    def set_tags(self, tags: Mapping[str, object]) -> None:
        """Set tags (values as text, cut to MLflow's 8,000 characters)."""
        _set_tags(self._client, self._run_id, tags)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        """Copy one local file into the run's artifacts, under ``artifact_path`` if given."""
        self._client.log_artifact(self._run_id, str(path), artifact_path)

    def log_artifacts(self, directory: str | Path, artifact_path: str | None = None) -> None:
        """Copy a local directory's contents into the run's artifacts."""
        self._client.log_artifacts(self._run_id, str(directory), artifact_path)

    def log_dict(self, data: dict[str, Any], artifact_file: str) -> None:
        """Store ``data`` as JSON or YAML, as ``artifact_file``'s extension says."""
        self._client.log_dict(self._run_id, data, artifact_file)

    def log_text(self, text: str, artifact_file: str) -> None:
        """Store ``text`` as the artifact ``artifact_file``."""
        self._client.log_text(self._run_id, text, artifact_file)

    def download_artifacts(self, artifact_path: str, dst: str | Path) -> Path:
        """Download an artifact file or folder into the local folder ``dst``; return its path."""
        return _download(self._client, self._run_id, artifact_path, dst)


class Tracker:
    """One experiment in one tracking store.

    Sets the process's tracking URI (``mlflow.set_tracking_uri``, which also exports
    ``MLFLOW_TRACKING_URI`` to subprocesses) and gets or creates the experiment, on a
    local SQLite store with its artifacts at :func:`artifact_root`.

    Args:
        uri: tracking URI, resolved by :func:`tracking_uri`.
        experiment: experiment name.
        create: create the experiment if missing; if False, a missing experiment or
            SQLite file raises ``ConfigError`` and nothing is created.

    Raises:
        ConfigError: MLflow cannot use the URI, or the experiment is deleted or missing.
    """

    def __init__(
        self, uri: str | None = None, experiment: str = DEFAULT_EXPERIMENT, *, create: bool = True
    ) -> None:
        self.uri, self.experiment = tracking_uri(uri), experiment
        database = _sqlite_path(self.uri)
        if database is not None:
            if not create and not database.is_file():
                raise ConfigError(f"{self.where}: not found (no database file {database})")
            database.parent.mkdir(parents=True, exist_ok=True)
        try:
            with warnings.catch_warnings():
                # MLflow's SQL store uses a loader strategy SQLAlchemy 2.1 deprecates; the
                # warning fires once, on import, and is MLflow's to fix.
                warnings.filterwarnings("ignore", message=".*noload.*", category=DeprecationWarning)
                self.client = MlflowClient(tracking_uri=self.uri)
        except MlflowException as error:
            raise ConfigError(f"tracking URI {_redact(self.uri)}: {error.message}") from error
        mlflow.set_tracking_uri(self.uri)
        self.experiment_id = self._experiment_id(
            create, artifact_root(self.uri) if database else None
        )

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
        return f"experiment '{self.experiment}' at tracking URI {_redact(self.uri)}"

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
        _set_tags(self.client, resume_run_id, all_tags)
        return Run(self.client, found.info, params=found.data.params, flush_every=flush_every)

    def _existing(self, run_id: str, what: str) -> MlflowRun:
        try:
            found = self.client.get_run(run_id)
        except MlflowException as error:
            raise ConfigError(
                f"{what}: no run '{run_id}' at tracking URI {_redact(self.uri)} ({error.message})"
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
        return _download(self.client, run_id, artifact_path, dst)

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


class BundleModel(PythonModel):
    """An exported policy bundle as an MLflow pyfunc model: telemetry in, decisions out.

    Input: a DataFrame with a ``telemetry`` column of JSON records (schema v1). Output: a
    DataFrame with a ``decision`` column of JSON decisions; a bad record yields
    ``{"error": "invalid telemetry", "problems": [...]}`` for its row, never a decision.
    """

    def load_context(self, context: Any) -> None:
        """Load the bundle from the model's artifacts (checksums checked)."""
        from ipwarmup.serving import load_policy

        self.policy = load_policy(context.artifacts["bundle"])

    # A DataFrame hint tells MLflow to take the schema from the logged signature.
    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        """Decide for every telemetry record of ``model_input``."""
        import json

        from ipwarmup.errors import TelemetryError

        decisions = []
        for text in model_input["telemetry"]:
            try:
                record = json.loads(text) if isinstance(text, str) else text
                decisions.append(json.dumps(self.policy.decide(record)))
            except (TelemetryError, json.JSONDecodeError) as error:
                problems = getattr(error, "problems", [str(error)])
                decisions.append(json.dumps({"error": "invalid telemetry", "problems": problems}))
        return pd.DataFrame({"decision": decisions})


def log_bundle_model(
    tracker: Tracker,
    bundle: Path,
    *,
    run_id: str,
    registered_model: str,
    champion: bool,
) -> dict[str, str]:
    """Log a bundle into a run as a pyfunc model with a signature, and register it.

    ``champion`` points the registered model's ``champion`` alias at the new version (the
    one production should load); the first version of a model becomes champion anyway.
    Returns the registered ``name``, ``version`` and ``model_uri``.
    """
    import json

    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    from ipwarmup import __version__

    signature = ModelSignature(
        inputs=Schema([ColSpec("string", "telemetry")]),
        outputs=Schema([ColSpec("string", "decision")]),
    )
    example = Path(bundle).parents[1] / "examples" / "telemetry.json"
    input_example = None
    if example.is_file():
        input_example = pd.DataFrame({"telemetry": [json.dumps(json.loads(example.read_text()))]})
    status = tracker.client.get_run(run_id).info.status
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MLflow warns about pip inference and pandas here
        with mlflow.start_run(run_id=run_id):
            info = mlflow.pyfunc.log_model(
                name="policy",
                python_model=BundleModel(),
                artifacts={"bundle": str(bundle)},
                signature=signature,
                input_example=input_example,
                pip_requirements=[f"ipwarmup=={__version__}", "numpy", "pandas"],
                registered_model_name=registered_model,
            )
    tracker.client.set_terminated(run_id, status)
    version = str(info.registered_model_version)
    existing = tracker.client.get_registered_model(registered_model).aliases
    if champion or "champion" not in existing:
        tracker.client.set_registered_model_alias(registered_model, "champion", version)
    return {"name": registered_model, "version": version, "model_uri": info.model_uri}


def _set_tags(client: MlflowClient, run_id: str, tags: Mapping[str, object]) -> None:
    items = [RunTag(key, str(value)[:_TAG_VALUE_CHARS]) for key, value in tags.items()]
    for chunk in _chunks(items, _PARAMS_PER_BATCH):
        client.log_batch(run_id, tags=chunk)


def _download(client: MlflowClient, run_id: str, artifact_path: str, dst: str | Path) -> Path:
    Path(dst).mkdir(parents=True, exist_ok=True)
    return Path(client.download_artifacts(run_id, artifact_path, str(dst)))


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


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


def _sqlite_path(uri: str) -> Path | None:
    """Return the database file of a ``sqlite:///`` URI (None for anything else)."""
    prefix = "sqlite:///"
    if not uri.startswith(prefix):
        return None
    path = uri[len(prefix) :].split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def _redact(uri: str) -> str:
    """Hide the password of ``scheme://user:password@host/...`` before a URI is shown."""
    return re.sub(r"^([a-z][a-z0-9+.-]*://[^/:@]*):[^/@]*@", r"\1:***@", uri, flags=re.I)
