"""One MLflow run: params and tags at once, metrics buffered and written in batches.

Made by :meth:`ipwarmup.training.tracking.Tracker.start`; with ``tracking`` and
``model_registry``, one of the three modules that import MLflow.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunInfo, RunTag

from ipwarmup.errors import ConfigError

FLUSH_EVERY = 500
"""Buffered metrics that trigger a write to the store."""

# MLflow's own limits on one log_batch request and on a value's length
# (mlflow.utils.validation); larger requests are rejected, longer values too.
_PARAMS_PER_BATCH = 100
_METRICS_PER_BATCH = 1000
_PARAM_VALUE_CHARS = 6000
_TAG_VALUE_CHARS = 8000

_log = logging.getLogger(__name__)


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
        for chunk in chunks([Param(k, v) for k, v in new.items()], _PARAMS_PER_BATCH):
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
        set_tags(self._client, self._run_id, tags)

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
        return download(self._client, self._run_id, artifact_path, dst)


def set_tags(client: MlflowClient, run_id: str, tags: Mapping[str, object]) -> None:
    """Set tags on a run (values as text, cut to 8,000 characters), 100 per request."""
    items = [RunTag(key, str(value)[:_TAG_VALUE_CHARS]) for key, value in tags.items()]
    for chunk in chunks(items, _PARAMS_PER_BATCH):
        client.log_batch(run_id, tags=chunk)


def download(client: MlflowClient, run_id: str, artifact_path: str, dst: str | Path) -> Path:
    """Download a run's artifact file or folder into ``dst``, without progress bars."""
    Path(dst).mkdir(parents=True, exist_ok=True)
    with quiet():
        return Path(client.download_artifacts(run_id, artifact_path, str(dst)))


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence MLflow's download bars, info logs and warnings inside the block.

    Commands print their own one-line results; MLflow's progress bars and advice (a
    cloudpickle note on every pyfunc model, pip inference) would bury them.
    """
    from mlflow.utils import logging_utils

    logger = logging.getLogger("mlflow")
    level, stream = logger.level, logging_utils.MLFLOW_LOGGING_STREAM.enabled
    names = ("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT")
    saved = {name: os.environ.get(name) for name in names}
    os.environ.update({names[0]: "false", names[1]: "true"})  # no bars, no "View run" URLs
    logger.setLevel(logging.ERROR)
    logging_utils.MLFLOW_LOGGING_STREAM.enabled = False  # its prints ("Successfully registered")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)
        logging_utils.MLFLOW_LOGGING_STREAM.enabled = stream
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    """Yield consecutive slices of at most ``size`` items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
