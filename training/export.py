"""Export a trained SB3 policy as a serving bundle: plain arrays and a JSON manifest.

The bundle (``models/<name>/``) holds ``weights.npz`` (the actor network, no pickle) and
``manifest.json`` (format version, env id and version, observation and action layout with
names and units, VecNormalize statistics, action post-processing, guardrails, provider
list, the MLflow run and its KPIs, package version, SHA-256 of every file). A model card
(``README.md``) says how it was trained and how it compares with the baselines.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

import ipwarmup
from ipwarmup.actions import ENV_ID, ENV_VERSION, POOL_THRESHOLD
from ipwarmup.agents.baselines import MESSAGES_PER_IP_PER_DAY, SHARED_BELOW_MONTHLY
from ipwarmup.envs.config import EnvConfig
from ipwarmup.errors import BundleError
from ipwarmup.observation import GLOBAL_FEATURES, PROVIDER_FEATURES, feature_bounds, feature_names
from ipwarmup.serving.policy import FORMAT_VERSION, MANIFEST, WEIGHTS, sha256

_ACTIVATIONS = {"Tanh": "tanh", "ReLU": "relu"}


def network_layers(model: Any) -> tuple[list[dict[str, str]], dict[str, np.ndarray]]:
    """Return the deterministic actor of an SB3 PPO/A2C MlpPolicy as plain layers."""
    policy = model.policy
    if not hasattr(policy, "mlp_extractor") or not hasattr(policy, "action_net"):
        raise BundleError(
            f"export: {type(model).__name__} with {type(policy).__name__} is not supported; "
            "export takes a PPO or A2C MlpPolicy"
        )
    activation = _ACTIVATIONS.get(policy.activation_fn.__name__)
    if activation is None:
        raise BundleError(f"export: activation {policy.activation_fn.__name__} is not supported")
    layers, arrays = [], {}
    linear = [m for m in policy.mlp_extractor.policy_net if hasattr(m, "weight")]
    for i, module in enumerate([*linear, policy.action_net]):
        arrays[f"layer{i}.weight"] = module.weight.detach().cpu().numpy().astype(np.float64)
        arrays[f"layer{i}.bias"] = module.bias.detach().cpu().numpy().astype(np.float64)
        last = i == len(linear)
        layers.append(
            {
                "weight": f"layer{i}.weight",
                "bias": f"layer{i}.bias",
                "activation": "identity" if last else activation,
            }
        )
    return layers, arrays


def build_manifest(
    name: str,
    config: EnvConfig,
    normalizer: Any,
    layers: list[dict[str, str]],
    *,
    run: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Return the manifest (without ``files``) for a model trained on ``config``."""
    providers = config.provider_names
    low, high = feature_bounds(len(providers))
    units = [row[3] for row in PROVIDER_FEATURES] * len(providers)
    units += [row[3] for row in GLOBAL_FEATURES]
    pool = config.pool
    return {
        "format_version": FORMAT_VERSION,
        "name": name,
        "package_version": ipwarmup.__version__,
        "env": {
            "id": ENV_ID,
            "version": ENV_VERSION,
            "providers": list(providers),
            "horizon_days": config.horizon_days,
            "max_ips": pool.max_ips,
            "decision_interval_hours": config.decision_interval_hours,
        },
        "observation": {
            "names": feature_names(providers),
            "units": units,
            "low": low.tolist(),
            "high": high.tolist(),
        },
        "action": {
            "names": [f"{p}.cap_change" for p in providers] + ["pool.change"],
            "low": [-1.0] * (len(providers) + 1),
            "high": [1.0] * (len(providers) + 1),
            "cap_factor": "max_cap_change_per_day ** (action * period_hours / 24)",
            "max_cap_change_per_day": pool.max_cap_change_per_day,
            "pool_threshold": POOL_THRESHOLD,
            "min_hourly_cap_messages": pool.min_hourly_cap_messages,
            "max_hourly_cap_messages": pool.max_hourly_cap_messages,
        },
        "normalization": {
            "mean": normalizer.obs_rms.mean.tolist() if normalizer else [0.0] * len(low),
            "var": normalizer.obs_rms.var.tolist() if normalizer else [1.0] * len(low),
            "epsilon": float(normalizer.epsilon) if normalizer else 0.0,
            "clip_obs": float(normalizer.clip_obs) if normalizer else 1e9,
        },
        "network": {"layers": layers},
        "guardrails": {
            # Never faster than the simulator allowed the policy to move.
            "max_growth_per_day": pool.max_cap_change_per_day,
            "block_cut": 0.5,
            # DOMAIN §3: the provider's own complaint line (Apple runs no feedback loop).
            "complaint_thresholds": {
                p: c.complaint_threshold[0]
                for p, c in config.providers.items()
                if c.complaint_feedback
            },
            "complaint_cut": 0.5,
            "min_monthly_messages": SHARED_BELOW_MONTHLY,
            "aimd_increase_per_day": 500.0,
            "aimd_per_ip_ceiling": MESSAGES_PER_IP_PER_DAY / 24,
        },
        "mlflow": run or {},
    }


def write_bundle(
    out: Path,
    manifest: dict[str, Any],
    arrays: dict[str, np.ndarray],
    *,
    card: str | None = None,
    extra_files: dict[str, Path] | None = None,
) -> Path:
    """Write a bundle atomically: a temporary folder renamed into place when complete."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        np.savez(staging / WEIGHTS, **arrays)  # type: ignore[arg-type]  # numpy stub quirk
        files = [WEIGHTS]
        if card is not None:
            (staging / "README.md").write_text(card)
            files.append("README.md")
        for name, source in (extra_files or {}).items():
            shutil.copyfile(source, staging / name)
            files.append(name)
        manifest = {**manifest, "files": {name: sha256(staging / name) for name in files}}
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def export_model(
    model_dir: Path,
    out: Path,
    config: EnvConfig,
    *,
    name: str | None = None,
    run: dict[str, Any] | None = None,
    card: str | None = None,
) -> Path:
    """Export ``model_dir`` (model.zip and vecnormalize.pkl, as training saves) as a bundle."""
    from ipwarmup.agents.learned import load_learned

    learned = load_learned(model_dir, config)
    layers, arrays = network_layers(learned.model)
    manifest = build_manifest(name or out.name, config, learned.normalizer, layers, run=run)
    return write_bundle(out, manifest, arrays, card=card)


def model_card(name: str, run: dict[str, Any], table: str, resolved_config: str) -> str:
    """Return the bundle's README: what it is, how it was trained, how it compares."""
    kpis = run.get("kpis", {})
    lines = [
        f"# {name}",
        "",
        "A warmup policy exported by `ipwarmup export`: per provider it moves the dedicated",
        "pool's hourly caps and grows, holds or shrinks the pool, from one period's telemetry.",
        "",
        f"- MLflow run: `{run.get('run_id')}` (experiment `{run.get('experiment')}`)",
        f"- model selected: `{run.get('selected_model')}`",
        f"- package version: {ipwarmup.__version__}",
        "",
        "## Validation KPIs (mean [95% interval])",
        "",
    ]
    for kpi, entry in kpis.items():
        low, high = entry["ci_low"], entry["ci_high"]
        lines.append(f"- `{kpi}`: {entry['mean']:.4f} [{low:.4f}, {high:.4f}]")
    lines += [
        "",
        "## Against every baseline (final evaluation of the training run)",
        "",
        "```",
        table.rstrip(),
        "```",
        "",
        "## Training configuration",
        "",
        "```yaml",
        resolved_config.rstrip(),
        "```",
        "",
        "## Use",
        "",
        "```python",
        "import json",
        "from ipwarmup.serving import load_policy",
        "",
        f'policy = load_policy("models/{name}")',
        'decision = policy.decide(json.load(open("examples/telemetry.json")))',
        "```",
        "",
    ]
    return "\n".join(lines)
