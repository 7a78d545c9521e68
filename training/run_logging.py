"""What training writes into a run: SB3's logger output, evaluation KPIs, baseline runs.

It talks to MLflow only through :mod:`ipwarmup.training.tracking`'s ``Run`` and
``Tracker``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from stable_baselines3.common.logger import KVWriter, filter_excluded_keys

from ipwarmup.errors import ConfigError
from ipwarmup.training.tracking import Run, Tracker


class SB3MLflowOutput(KVWriter):
    """An SB3 logger output that logs numeric scalars into a :class:`Run`.

    Use ``model.set_logger(Logger(None, [SB3MLflowOutput(run)]))``. Keys keep SB3's
    prefixes (``rollout/``, ``train/``, ``time/``) and the step SB3 dumps at. Strings,
    arrays, tensors and media are skipped, and so are keys recorded with ``exclude``
    naming ``"mlflow"`` (checked as SB3's CSV output checks ``"csv"``).

    Args:
        run: the run to log into.
    """

    def __init__(self, run: Run) -> None:
        self.run = run

    def write(
        self,
        key_values: dict[str, Any],
        key_excluded: dict[str, tuple[str, ...]],
        step: int = 0,
    ) -> None:
        """Forward the numeric scalars among ``key_values`` to the run at ``step``."""
        kept = filter_excluded_keys(key_values, key_excluded, "mlflow")
        metrics = {key: float(value) for key, value in kept.items() if _is_number(value)}
        if metrics:
            self.run.log_metrics(metrics, step)

    def close(self) -> None:
        """Flush the run's buffered metrics (the run itself stays open)."""
        self.run.flush()


def log_evaluation(
    run: Run, report: Mapping[str, Any], *, policy: str, step: int, prefix: str = "eval/"
) -> None:
    """Log one policy's KPIs from an evaluation report, in one batch.

    From ``report["overall"][policy]``: ``{prefix}{kpi}`` (the mean) and its ``/ci_low``,
    ``/ci_high``, ``/iqm``; from ``report["versus"][policy]`` (paired difference against
    the reference): ``{prefix}versus/{kpi}`` and its ``/ci_low``, ``/ci_high``,
    ``/prob_improvement``; from ``report["gap_closed"][policy]`` (the share of the
    reference-to-ceiling gap closed, over the suite): ``{prefix}gap_closed/{kpi}`` and its
    ``/ci_low``, ``/ci_high``, where the ceiling opens a gap.

    Args:
        run: the run to log into.
        report: a dict as ``ipwarmup.training.evaluate.report`` returns.
        policy: the policy's key in the report; a missing one raises ``ConfigError``.
        step: the step to log at (timesteps during training).
        prefix: ``eval/`` during training, ``kpi/`` for the final evaluation.
    """
    overall = report.get("overall", {})
    if policy not in overall:
        raise ConfigError(f"report.overall: no policy '{policy}'; it has {sorted(overall)}")
    versus = report.get("versus", {}).get(policy, {})
    metrics: dict[str, float] = {}
    for section, entries, extra in (
        ("", overall[policy], "iqm"),
        ("versus/", versus, "prob_improvement"),
    ):
        for kpi, entry in entries.items():
            name = f"{prefix}{section}{kpi}"
            metrics[name] = entry["mean"]
            stats = [stat for stat in ("ci_low", "ci_high", extra) if stat in entry]
            metrics.update({f"{name}/{stat}": entry[stat] for stat in stats})
    for kpi, entry in report.get("gap_closed", {}).get(policy, {}).items():
        overall = entry["overall"]
        name = f"{prefix}gap_closed/{kpi}"
        for stat in ("mean", "ci_low", "ci_high"):
            if overall[stat] is not None:  # none of a gap the ceiling hardly opens
                metrics[name if stat == "mean" else f"{name}/{stat}"] = overall[stat]
    run.log_metrics(metrics, step)
    run.flush()


def log_baseline_runs(
    tracker: Tracker,
    report: Mapping[str, Any],
    *,
    suite: str,
    tags: dict[str, str] | None = None,
    policies: Iterable[str] | None = None,
    parent_run_id: str | None = None,
) -> list[str]:
    """Log one FINISHED run per policy of an evaluation report, or reuse one; return their ids.

    Runs are named ``{policy}@{suite}``, tagged ``ipwarmup.policy``,
    ``ipwarmup.policy_kind=baseline``, ``ipwarmup.suite``, ``ipwarmup.seeds`` and
    ``ipwarmup.eval_seed`` (from the report), with KPIs at step 0 under ``kpi/`` as a
    learned run's final evaluation. When ``tags`` pin what decides the numbers, a FINISHED
    run of the same policy with the same tags is the same evaluation: it is reused rather
    than logged again. They pin it with ``ipwarmup.eval_code`` (the digest of the
    evaluation's code, configs and suite; then the commit may differ) or with a clean
    commit (``ipwarmup.git_commit`` known, ``ipwarmup.git_dirty=false``). Otherwise older
    runs stay and comparisons take the newest per policy.

    Args:
        tracker: the experiment to log into.
        report: a dict as ``ipwarmup.training.evaluate.report`` returns.
        suite: the suite tag, e.g. ``validation``.
        tags: more tags for every run (the ``ipwarmup.*`` tags above win).
        policies: the policies to log; all of ``report["overall"]`` by default.
        parent_run_id: nest the runs under this run.
    """
    facts = {k: report[k] for k in ("suite", "seeds", "seed", "reference") if k in report}
    from_report = {
        f"ipwarmup.{name}": str(report[key])
        for name, key in (("seeds", "seeds"), ("eval_seed", "seed"))
        if key in report
    }
    ids = []
    for policy in list(policies if policies is not None else report["overall"]):
        run_tags = {
            **(tags or {}),
            **from_report,
            "ipwarmup.policy": policy,
            "ipwarmup.policy_kind": "baseline",
            "ipwarmup.suite": suite,
        }
        found = _same_run(tracker, run_tags) if parent_run_id is None else None
        if found is not None:
            ids.append(found)
            continue
        with tracker.start(f"{policy}@{suite}", tags=run_tags, parent_run_id=parent_run_id) as run:
            run.log_params({f"evaluation.{k}": v for k, v in facts.items()})
            log_evaluation(run, report, policy=policy, step=0, prefix="kpi/")
        ids.append(run.run_id)
    return ids


CODE_TAGS = ("ipwarmup.git_commit", "ipwarmup.git_dirty", "ipwarmup.version")
"""Tags that say which code ran, left out of the match when ``EVALUATION_TAG`` pins it."""
EVALUATION_TAG = "ipwarmup.eval_code"
"""The tag holding :func:`~ipwarmup.training.provenance.evaluation_fingerprint`."""


def _same_run(tracker: Tracker, tags: Mapping[str, str]) -> str | None:
    """Return the newest FINISHED run with these tags, if they pin what decides its numbers.

    With ``EVALUATION_TAG`` (the digest of the evaluation's code, configs and suite) every
    other tag must match but the commit, its dirtiness and the package version: a commit
    that changed only the serving code or a README reuses the run. Without it, the tags
    must pin a clean commit and match exactly.
    """
    if tags.get(EVALUATION_TAG):
        tags = {key: value for key, value in tags.items() if key not in CODE_TAGS}
    else:
        commit = tags.get("ipwarmup.git_commit", "unknown")
        if commit == "unknown" or tags.get("ipwarmup.git_dirty") != "false":
            return None
    if any("'" in value or "`" in key for key, value in tags.items()):
        return None  # not expressible in MLflow's filter syntax; log a new run instead
    clauses = [f"tags.`{key}` = '{value}'" for key, value in tags.items()]
    clauses.append("attributes.status = 'FINISHED'")
    runs = tracker.search(" and ".join(clauses), order_by=["attributes.start_time DESC"])
    return str(runs[0]["run_id"]) if runs else None


def _is_number(value: object) -> bool:
    """Return whether ``value`` is a real scalar (not a bool, string, array or tensor)."""
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
