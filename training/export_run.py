"""``ipwarmup export``: turn a training run (or a saved model) into a serving bundle.

From a run: the model it selected (the best by validation ``inbox_share``, else the final
one), its resolved configuration, its KPIs and its evaluation table go into the bundle and
its model card; the bundle is then logged to MLflow as a pyfunc model with a signature and
registered, and ``--champion`` points the registry's ``champion`` alias at it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml

from ipwarmup.config import load
from ipwarmup.errors import ConfigError
from ipwarmup.training.config import ExperimentConfig, load_experiment
from ipwarmup.training.export import export_model, model_card
from ipwarmup.training.kpis import kpi_names
from ipwarmup.training.tracking import Tracker, log_bundle_model


def _run_kpis(metrics: dict[str, float]) -> dict[str, dict[str, float]]:
    return {
        kpi: {
            "mean": metrics[f"kpi/{kpi}"],
            "ci_low": metrics.get(f"kpi/{kpi}/ci_low", float("nan")),
            "ci_high": metrics.get(f"kpi/{kpi}/ci_high", float("nan")),
        }
        for kpi in kpi_names()
        if f"kpi/{kpi}" in metrics
    }


def export_from_run(
    run_id: str,
    out: Path,
    *,
    experiment: str,
    tracking_uri: str | None,
    registered_model: str,
    champion: bool,
) -> Path:
    """Export the model a training run selected; log, register and maybe crown it."""
    tracker = Tracker(tracking_uri, experiment, create=False)
    run = tracker.get_run(run_id)
    if run["status"] != "FINISHED":
        raise ConfigError(f"--run {run_id}: the run is {run['status']}, not FINISHED")
    selected = run["tags"].get("ipwarmup.selected_model", "learned")
    folder = "best_model" if selected == "learned-best" else "model"
    with tempfile.TemporaryDirectory() as scratch:
        local = tracker.download_artifacts(run_id, folder, Path(scratch) / "model")
        config_file = tracker.download_artifacts(
            run_id, "config/resolved.yaml", Path(scratch) / "config"
        )
        resolved = config_file.read_text()
        data = yaml.safe_load(resolved)
        config = load(ExperimentConfig, data, path="run config")
        table_file = tracker.download_artifacts(
            run_id, "evaluation/eval.txt", Path(scratch) / "evaluation"
        )
        info: dict[str, Any] = {
            "run_id": run_id,
            "experiment": experiment,
            "selected_model": selected,
            "kpis": _run_kpis(run["metrics"]),
        }
        card = model_card(out.name, info, table_file.read_text(), resolved)
        bundle = export_model(local, out, config.env, name=out.name, run=info, card=card)
    registered = log_bundle_model(
        tracker, bundle, run_id=run_id, registered_model=registered_model, champion=champion
    )
    print(f"registered {registered_model} version {registered['version']}"
          + (" as champion" if champion else ""))  # fmt: skip
    return bundle


def export_from_model(model_dir: Path, out: Path, *, config_path: Path | None) -> Path:
    """Export a local model folder (model.zip, vecnormalize.pkl) without MLflow."""
    if not (model_dir / "model.zip").is_file():
        raise ConfigError(f"--model: no model.zip in '{model_dir}'")
    config = load_experiment(config_path)
    return export_model(model_dir, out, config.env, name=out.name)
