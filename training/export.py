"""Export a trained SB3 policy as a serving bundle: plain arrays and a JSON manifest.

The bundle (``models/<name>/``) holds ``weights.npz`` (the actor network, no pickle) and
``manifest.json`` (format version, env id and version, observation and action layout with
names and units, VecNormalize statistics, action post-processing, guardrails, provider
list, the MLflow run and its KPIs, package version, SHA-256 and size of every file),
``bundle.sha256`` (one digest over the manifest and every file) and, when a signing key is
given, ``bundle.sig`` (ed25519). A model card (``README.md``) says how it was trained and how
it compares with the baselines. :func:`migrate_bundle` turns a format-1 bundle into the
current format without the model it came from: same arrays, re-digested (and re-signed).
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import ipwarmup
from ipwarmup.actions import ENV_ID, ENV_VERSION, POOL_THRESHOLD
from ipwarmup.envs.config import EnvConfig
from ipwarmup.errors import BundleError
from ipwarmup.observation import (
    GLOBAL_FEATURES,
    MTA_FEATURES,
    PROVIDER_FEATURES,
    feature_bounds,
    feature_names,
)
from ipwarmup.serving.bundle import (
    bundle_digest,
    file_sha256,
    manifest_json,
    raw_public_key,
    read_bundle,
    sign,
)
from ipwarmup.serving.guardrails import DEFAULTS
from ipwarmup.serving.manifest import DIGEST, FORMAT_VERSION, MANIFEST, WEIGHTS, parse_manifest

_ACTIVATIONS = {"Tanh": "tanh", "ReLU": "relu"}


def network_layers(model: Any) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
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
    layers: list[dict[str, Any]] = []
    arrays = {}
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
                "inputs": int(module.weight.shape[1]),
                "outputs": int(module.weight.shape[0]),
            }
        )
    return layers, arrays


def build_manifest(
    name: str,
    config: EnvConfig,
    normalizer: Any,
    layers: list[dict[str, Any]],
    *,
    run: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Return the manifest (without ``files``) for a model trained on ``config``."""
    providers = config.provider_names
    layout = config.observation.layout
    low, high = feature_bounds(len(providers), layout)
    per = [row[3] for row in PROVIDER_FEATURES] * len(providers)
    units = per + [row[3] for row in GLOBAL_FEATURES]
    units += [row[3] for row in MTA_FEATURES] if layout.mta_inputs else []
    units += per * layout.history_periods
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
            "names": feature_names(providers, layout),
            "units": units,
            "low": low.tolist(),
            "high": high.tolist(),
            "history_periods": layout.history_periods,
            "mta_inputs": layout.mta_inputs,
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
        "guardrails": guardrail_defaults(config),
        "mlflow": _finite(run or {}),
    }


def guardrail_defaults(config: EnvConfig) -> dict[str, Any]:
    """Return the guardrails a new bundle carries: the defaults plus what ``config`` knows.

    The defaults live in ``ipwarmup.serving.guardrails.DEFAULTS``; the environment adds each
    provider's own complaint line (DOMAIN §3; Apple runs no feedback loop).
    """
    return {
        **DEFAULTS.model_dump(),
        "complaint_thresholds": {
            p: c.complaint_threshold[0] for p, c in config.providers.items() if c.complaint_feedback
        },
    }


def _finite(value: Any) -> Any:
    """Replace NaN and infinities (a KPI without an interval) by None: JSON has neither."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


def write_bundle(
    out: Path,
    manifest: dict[str, Any],
    arrays: dict[str, np.ndarray],
    *,
    card: str | None = None,
    extra_files: dict[str, Path] | None = None,
    private_key: Ed25519PrivateKey | None = None,
) -> Path:
    """Write a bundle atomically: a temporary folder renamed into place when complete.

    The manifest gets ``files`` (SHA-256 and size of each file) and, with ``private_key``,
    ``signature``; it is validated against the schema serving reads before anything is
    renamed into place, so export never writes a bundle that serving refuses.
    """
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
        entries = {
            name: {"sha256": file_sha256(staging / name), "bytes": (staging / name).stat().st_size}
            for name in files
        }
        manifest = {**manifest, "format_version": FORMAT_VERSION, "files": entries}
        manifest.pop("signature", None)
        if private_key is not None:
            manifest["signature"] = {
                "algorithm": "ed25519",
                "public_key": raw_public_key(private_key.public_key()),
            }
        parse_manifest(json.loads(manifest_json(manifest)), "export: manifest")
        (staging / MANIFEST).write_text(manifest_json(manifest))
        (staging / DIGEST).write_text(bundle_digest(staging, files) + "\n")
        if private_key is not None:
            sign(staging, private_key)
        read_bundle(staging)  # the whole check serving runs, before it replaces anything
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def migrate_bundle(
    source: Path, out: Path, *, private_key: Ed25519PrivateKey | None = None
) -> Path:
    """Rewrite a format-1 bundle in the current format, from its own files alone.

    The format-1 checksums are checked first (a changed file is not migrated); the arrays,
    model card, env, observation, action, normalisation and MLflow sections are kept; the
    layers gain their shapes; the guardrails become the current defaults, keeping the old
    complaint thresholds, low-volume floor and AIMD settings; then the bundle is
    re-digested (and signed with ``private_key``).

    Raises:
        BundleError: the source is not an intact format-1 bundle.
    """
    source = Path(source)
    try:
        old = json.loads((source / MANIFEST).read_text())
    except (OSError, ValueError) as error:
        raise BundleError(f"{source / MANIFEST}: unreadable ({error})") from error
    if not isinstance(old, dict) or old.get("format_version") != 1:
        raise BundleError(f"{source}: not a format-1 bundle")
    for name, expected in old.get("files", {}).items():
        data = (source / name).read_bytes()
        if hashlib.sha256(data).hexdigest() != expected:
            raise BundleError(f"{source / name}: SHA-256 differs from the manifest; not migrated")
    with np.load(source / WEIGHTS, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    layers = [
        {**layer, "inputs": int(arrays[layer["weight"]].shape[1]),
         "outputs": int(arrays[layer["weight"]].shape[0])}
        for layer in old["network"]["layers"]
    ]  # fmt: skip
    kept = ("complaint_thresholds", "complaint_cut", "block_cut", "min_monthly_messages",
            "aimd_increase_per_day", "aimd_per_ip_ceiling")  # fmt: skip
    guardrails = {**DEFAULTS.model_dump(), **{k: old["guardrails"][k] for k in kept}}
    manifest = {key: value for key, value in old.items() if key not in ("files", "format_version")}
    manifest.update(network={"layers": layers}, guardrails=guardrails,
                    mlflow=_finite(old.get("mlflow", {})))  # fmt: skip
    card = source / "README.md"
    extra = {name: source / name for name in old["files"] if name not in (WEIGHTS, "README.md")}
    return write_bundle(
        out, manifest, arrays, card=card.read_text() if card.is_file() else None,
        extra_files=extra, private_key=private_key,
    )  # fmt: skip


def redeclare_env(
    source: Path, out: Path, *, note: str, private_key: Ed25519PrivateKey | None = None
) -> Path:
    """Declare an intact bundle for this code's env version, its weights untouched.

    For a change of dynamics that keeps the observation and action layout (the encoder and
    codec check that on load): the policy still runs, but it was trained on another
    version, so the model card gets ``note`` and the old version at its top and its KPI
    table stays as it was measured. Retraining is the real fix; this keeps a shipped
    policy loadable until then.

    Raises:
        BundleError: a listed file does not match its SHA-256 (nothing is rewritten).
    """
    source = Path(source)
    try:
        old = json.loads((source / MANIFEST).read_text())
        listed = old["files"]
        trained_on = int(old["env"]["version"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise BundleError(f"{source / MANIFEST}: not a bundle to redeclare ({error})") from error
    for name, entry in listed.items():
        if file_sha256(source / name) != entry["sha256"]:
            raise BundleError(f"{source / name}: SHA-256 differs from the manifest; not redeclared")
    with np.load(source / WEIGHTS, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    manifest = {k: v for k, v in old.items() if k not in ("files", "format_version", "signature")}
    manifest["env"] = {**old["env"], "version": ENV_VERSION}
    card_path = source / "README.md"
    card = card_path.read_text() if card_path.is_file() else f"# {old.get('name', source.name)}\n"
    title, _, rest = card.partition("\n")
    banner = (
        f"\n> **Trained on {ENV_ID} v{trained_on}, declared for v{ENV_VERSION} without "
        f"retraining.** {note} The KPIs below were measured on v{trained_on}.\n"
    )
    extra = {name: source / name for name in listed if name not in (WEIGHTS, "README.md")}
    return write_bundle(
        out, manifest, arrays, card=title + "\n" + banner + rest, extra_files=extra,
        private_key=private_key,
    )  # fmt: skip


def export_model(
    model_dir: Path,
    out: Path,
    config: EnvConfig,
    *,
    name: str | None = None,
    run: dict[str, Any] | None = None,
    card: str | None = None,
    private_key: Ed25519PrivateKey | None = None,
) -> Path:
    """Export ``model_dir`` (model.zip and vecnormalize.pkl, as training saves) as a bundle."""
    from ipwarmup.agents.learned import load_learned

    learned = load_learned(model_dir, config)
    layers, arrays = network_layers(learned.model)
    manifest = build_manifest(name or out.name, config, learned.normalizer, layers, run=run)
    return write_bundle(out, manifest, arrays, card=card, private_key=private_key)


def model_card(name: str, run: dict[str, Any], table: str, resolved_config: str) -> str:
    """Return the bundle's README: what it is, how it was trained, how it compares."""
    kpis = run.get("kpis", {})
    lines = [
        f"# {name}",
        "",
        "A warmup policy exported by `ipwarmup export`: per provider it moves the dedicated",
        "pool's hourly caps and grows, holds or shrinks the pool, from the telemetry its",
        "manifest's `observation` block names (the last period; with memory, the periods",
        "before it and the MTA's own set-up: telemetry schema 2).",
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
