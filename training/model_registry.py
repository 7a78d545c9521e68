"""The served policy as an MLflow pyfunc model: logged into its training run, registered.

With :mod:`ipwarmup.training.tracking`, the only module of ipwarmup that imports MLflow.
``mlflow models serve -m models:/ipwarmup-policy@champion`` answers telemetry with
decisions, and bad telemetry with MLflow's error (HTTP 400) naming every bad field.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd  # type: ignore[import-untyped]  # no stubs installed; mlflow loads it
from mlflow.exceptions import MlflowException

from ipwarmup.training.tracking import Tracker, quiet

with warnings.catch_warnings():
    # Importing mlflow.pyfunc warns about a type hint in MLflow's own response types.
    warnings.simplefilter("ignore", UserWarning)
    from mlflow.pyfunc.model import PythonModel

CHAMPION = "champion"
"""The registry alias production loads (``models:/<name>@champion``)."""


class BundleModel(PythonModel):
    """An exported policy bundle as an MLflow pyfunc model: telemetry in, decisions out.

    Input: a DataFrame with a ``telemetry`` column of JSON records (schema v1). Output: a
    DataFrame with a ``decision`` column of JSON decisions. A bad record raises
    ``MlflowException`` with ``INVALID_PARAMETER_VALUE`` naming the row and every bad
    field, which MLflow's scoring server answers with HTTP 400; nothing is decided for
    any row of that request.
    """

    def load_context(self, context: Any) -> None:
        """Load the bundle from the model's artifacts (checksums checked)."""
        from ipwarmup.serving import load_policy

        self.policy = load_policy(context.artifacts["bundle"])

    # A DataFrame hint tells MLflow to take the schema from the logged signature.
    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        """Decide for every telemetry record of ``model_input``.

        Raises:
            MlflowException: a record is not JSON or not valid telemetry
                (``INVALID_PARAMETER_VALUE``, HTTP 400 when served).
        """
        from ipwarmup.errors import TelemetryError

        decisions = []
        for row, text in enumerate(model_input["telemetry"]):
            try:
                record = json.loads(text) if isinstance(text, str) else text
                decisions.append(json.dumps(self.policy.decide(record)))
            except json.JSONDecodeError as error:
                raise MlflowException.invalid_parameter_value(
                    f"telemetry row {row}: expected a JSON object, got invalid JSON ({error})"
                ) from error
            except TelemetryError as error:
                problems = "; ".join(error.problems)
                raise MlflowException.invalid_parameter_value(
                    f"telemetry row {row}: invalid telemetry: {problems}"
                ) from error
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

    The run keeps its status and its recorded end time (logging a model reopens the run,
    which would otherwise stretch its duration to the export's time). ``champion`` points
    the registered model's ``champion`` alias at the new version (the one production
    should load); the first version of a model becomes champion anyway. Returns the
    registered ``name``, ``version`` and ``model_uri``.
    """
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
    info = tracker.client.get_run(run_id).info
    with quiet():
        with mlflow.start_run(run_id=run_id):
            logged = mlflow.pyfunc.log_model(
                name="policy",
                python_model=BundleModel(),
                artifacts={"bundle": str(bundle)},
                signature=signature,
                input_example=input_example,
                pip_requirements=[f"ipwarmup=={__version__}", "numpy", "pandas"],
                registered_model_name=registered_model,
            )
        tracker.client.set_terminated(run_id, info.status, end_time=info.end_time)
        version = str(logged.registered_model_version)
        existing = tracker.client.get_registered_model(registered_model).aliases
        if champion or CHAMPION not in existing:
            tracker.client.set_registered_model_alias(registered_model, CHAMPION, version)
    return {"name": registered_model, "version": version, "model_uri": logged.model_uri}
