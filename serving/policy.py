"""Load an exported policy bundle and make production decisions from live telemetry.

Imports only numpy and the standard library (plus ipwarmup's own numpy-only modules): a
production control plane runs it without torch, stable-baselines3 or MLflow.

A bundle is a folder with ``manifest.json`` and ``weights.npz`` (plain arrays, loaded with
``allow_pickle=False``). :func:`load_policy` refuses a bundle whose files are missing,
truncated or tampered with (SHA-256 in the manifest), whose format or env version this code
does not know, or whose layout does not add up, with a :class:`BundleError` that says which.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ipwarmup import rules
from ipwarmup.actions import ENV_ID, ENV_VERSION
from ipwarmup.errors import BundleError, TelemetryError
from ipwarmup.observation import encode, feature_names, read
from ipwarmup.policy import PolicyState, check_observation_shape
from ipwarmup.serving.telemetry import to_telemetry, validate

FORMAT_VERSION = 1
"""Bundle format this code reads."""
MANIFEST = "manifest.json"
WEIGHTS = "weights.npz"
ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0.0),
    "identity": lambda x: x,
}
DECISION_VERSION = 1


def sha256(path: Path) -> str:
    """Return the hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Guardrails:
    """Limits applied after the network, from the manifest's ``guardrails``."""

    max_growth_per_day: float
    block_cut: float
    complaint_thresholds: dict[str, float]
    complaint_cut: float
    min_monthly_messages: float
    aimd_increase_per_day: float
    aimd_per_ip_ceiling: float


class ServedPolicy:
    """A loaded bundle: ``predict`` on observations, ``decide`` on telemetry records.

    Args:
        manifest: the bundle's validated manifest.
        weights: the network's arrays by name.
    """

    def __init__(self, manifest: dict[str, Any], weights: dict[str, np.ndarray]) -> None:
        self.manifest = manifest
        env = manifest["env"]
        self.providers: tuple[str, ...] = tuple(env["providers"])
        self.horizon_days = int(env["horizon_days"])
        self.max_ips = int(env["max_ips"])
        self.period_hours = int(env["decision_interval_hours"])
        norm = manifest["normalization"]
        self._mean = np.asarray(norm["mean"], dtype=np.float64)
        self._std = np.sqrt(np.asarray(norm["var"], dtype=np.float64) + float(norm["epsilon"]))
        self._clip_obs = float(norm["clip_obs"])
        # Transposed once, contiguous, so a decision is x @ W.T without a copy.
        self._layers = [
            (
                np.ascontiguousarray(weights[layer["weight"]].T),
                weights[layer["bias"]],
                layer["activation"],
            )
            for layer in manifest["network"]["layers"]
        ]
        self._inv_std = 1.0 / self._std
        post = manifest["action"]
        self._low = np.asarray(post["low"], dtype=np.float64)
        self._high = np.asarray(post["high"], dtype=np.float64)
        self._max_change = float(post["max_cap_change_per_day"])
        self._pool_threshold = float(post["pool_threshold"])
        self._min_cap = float(post["min_hourly_cap_messages"])
        self._max_cap = float(post["max_hourly_cap_messages"])
        g = manifest["guardrails"]
        self.guardrails = Guardrails(
            max_growth_per_day=float(g["max_growth_per_day"]),
            block_cut=float(g["block_cut"]),
            complaint_thresholds={k: float(v) for k, v in g["complaint_thresholds"].items()},
            complaint_cut=float(g["complaint_cut"]),
            min_monthly_messages=float(g["min_monthly_messages"]),
            aimd_increase_per_day=float(g["aimd_increase_per_day"]),
            aimd_per_ip_ceiling=float(g["aimd_per_ip_ceiling"]),
        )

    @property
    def name(self) -> str:
        """The bundle's name."""
        return str(self.manifest["name"])

    def forward(self, observation: np.ndarray) -> np.ndarray:
        """Return actions (B, P + 1) for raw observations (B, obs_dim), or 1-D for 1-D."""
        # In-place ufuncs: at one observation a call's fixed cost is the whole cost.
        x: np.ndarray = np.subtract(observation, self._mean)
        x *= self._inv_std
        np.minimum(x, self._clip_obs, out=x)
        np.maximum(x, -self._clip_obs, out=x)
        for weight_t, bias, activation in self._layers:
            x = x @ weight_t
            x += bias
            if activation == "tanh":
                np.tanh(x, out=x)
            elif activation == "relu":
                np.maximum(x, 0.0, out=x)
        np.minimum(x, self._high, out=x)
        np.maximum(x, self._low, out=x)
        return x

    def predict(
        self,
        observation: np.ndarray,
        state: PolicyState | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, PolicyState | None]:
        """SB3-style ``predict``, so the evaluation harness scores a bundle like any policy."""
        batch = check_observation_shape(observation, len(self._mean))
        actions = self.forward(batch).astype(np.float32)
        return (actions[0] if np.ndim(observation) == 1 else actions), state

    def decide(self, telemetry: object) -> dict[str, Any]:
        """Validate a telemetry record and return the next period's decision.

        Raises:
            TelemetryError: the record is invalid; every bad field is named, and nothing
                is decided.
        """
        record = validate(telemetry, self.providers, max_ips=self.max_ips)
        if int(record["period_hours"]) != self.period_hours:
            raise TelemetryError(
                f"telemetry.period_hours: expected {self.period_hours} (this model decides "
                f"every {self.period_hours} h), got {record['period_hours']}"
            )
        # The record is valid now: encode it without validating it a second time.
        obs = encode(
            to_telemetry(record, self.providers),
            horizon_days=self.horizon_days,
            max_ips=self.max_ips,
        )
        fallback = None
        try:
            with np.errstate(all="raise"):
                action = self.forward(obs)[0]
            if not np.all(np.isfinite(action)):
                fallback = "the network's output is not finite"
        except (FloatingPointError, ValueError) as error:
            fallback = f"the network failed: {error}"
        if fallback is not None:
            action = self._aimd_action(obs)
        return self._decision(record, action, fallback)

    def _aimd_action(self, obs: np.ndarray) -> np.ndarray:
        view = read(obs, n_providers=len(self.providers), horizon_days=self.horizon_days,
                    max_ips=self.max_ips)  # fmt: skip
        g = self.guardrails
        step = self.period_hours / 24
        target, grow = rules.aimd(
            view,
            increase_per_hour=g.aimd_increase_per_day * step,
            per_ip_ceiling=g.aimd_per_ip_ceiling,
        )
        current = np.maximum(rules.per_ip(view.cap_per_hour, view.n_ips), 1e-9)
        log_step = math.log(self._max_change) * step
        caps = np.clip(np.log(np.maximum(target, 1e-9) / current) / log_step, -1.0, 1.0)
        return np.concatenate([caps[0], [1.0 if grow[0] else 0.0]])

    def _decision(
        self, record: dict[str, Any], action: np.ndarray, fallback: str | None
    ) -> dict[str, Any]:
        g = self.guardrails
        step = self.period_hours / 24
        fired: list[str] = []
        providers: dict[str, Any] = {}
        demand = sum(float(v["demand"]) for v in record["providers"].values())
        monthly = demand * (24 / self.period_hours) * 30
        ips = int(record["pool"]["dedicated_ips"])
        for p, name in enumerate(self.providers):
            entry = record["providers"][name]
            current = float(entry["dedicated_cap_per_hour"])
            factor = self._max_change ** (float(action[p]) * step)
            reasons = [f"policy: x{factor:.3f}" if fallback is None else f"aimd: x{factor:.3f}"]
            limit = g.max_growth_per_day**step
            if factor > limit:
                factor = limit
                reasons.append(f"guardrail growth_bound: at most x{limit:.3f} per period")
                fired.append(f"growth_bound:{name}")
            if float(entry["rejected"]) > 0 and factor > g.block_cut:
                factor = g.block_cut
                reasons.append(
                    f"guardrail block: {entry['rejected']:.0f} rejected (5xx); cut to "
                    f"x{g.block_cut:.2f}"
                )
                fired.append(f"block:{name}")
            delivered = max(float(entry["accepted"]) + float(entry["sent_shared"])
                            - float(entry["bounced"]), 1.0)  # fmt: skip
            rate = float(entry["complaints"]) / delivered
            threshold = g.complaint_thresholds.get(name)
            if threshold is not None and rate > threshold and factor > g.complaint_cut:
                factor = g.complaint_cut
                reasons.append(
                    f"guardrail complaints: rate {rate:.4%} over {threshold:.2%}; cut to "
                    f"x{g.complaint_cut:.2f}"
                )
                fired.append(f"complaints:{name}")
            per_ip_now = current / max(ips, 1)
            per_ip_next = min(max(per_ip_now * factor, self._min_cap), self._max_cap)
            providers[name] = {
                "dedicated_cap_per_hour": per_ip_next * max(ips, 1) if ips else 0.0,
                "cap_per_ip_per_hour": per_ip_next,
                # A cap below a millionth of a message an hour is no cap: no finite ratio.
                "change": per_ip_next / per_ip_now if per_ip_now >= 1e-6 else None,
                "reasons": reasons,
            }
        pool_value = float(action[-1])
        pool = "grow" if pool_value > self._pool_threshold else "hold"
        pool = "shrink" if pool_value < -self._pool_threshold else pool
        pool_reasons = [f"policy: {pool} ({pool_value:+.2f})"]
        if pool == "grow" and ips >= self.max_ips:
            pool = "hold"
            pool_reasons.append(f"pool already at max_ips ({self.max_ips})")
        if monthly < g.min_monthly_messages:
            pool = "shrink" if ips > 0 else "hold"
            pool_reasons.append(
                f"guardrail low_volume: {monthly:,.0f} a month is below the "
                f"{g.min_monthly_messages:,.0f} a dedicated IP needs; stay on the shared pool"
            )
            fired.append("low_volume")
        if pool == "shrink" and ips == 0:
            pool = "hold"
        next_ips = ips + (pool == "grow") - (pool == "shrink")
        return {
            "decision_version": DECISION_VERSION,
            "model": {"name": self.name, "run_id": self.manifest.get("mlflow", {}).get("run_id")},
            "period_hours": self.period_hours,
            "providers": providers,
            "pool": {"action": pool, "dedicated_ips": next_ips, "reasons": pool_reasons},
            "guardrails": fired,
            "fallback": fallback,
        }


def _require(manifest: Mapping[str, Any], keys: tuple[str, ...], where: str) -> list[str]:
    return [f"{where}.{key}: missing" for key in keys if key not in manifest]


def check_manifest(manifest: object, folder: Path) -> dict[str, Any]:
    """Check a manifest's versions, checksums and layout; return it or raise BundleError."""
    if not isinstance(manifest, dict):
        raise BundleError(f"{folder / MANIFEST}: expected a JSON object")
    problems = _require(
        manifest,
        ("format_version", "env", "observation", "action", "normalization", "network",
         "guardrails", "files"),
        "manifest",
    )  # fmt: skip
    if problems:
        raise BundleError(f"{folder}: incomplete manifest: {'; '.join(problems)}")
    if manifest["format_version"] != FORMAT_VERSION:
        raise BundleError(
            f"{folder}: bundle format {manifest['format_version']} is not supported "
            f"(this code reads format {FORMAT_VERSION})"
        )
    env = manifest["env"]
    if env.get("id") != ENV_ID or env.get("version") != ENV_VERSION:
        raise BundleError(
            f"{folder}: trained on {env.get('id')} v{env.get('version')}, but this code "
            f"encodes {ENV_ID} v{ENV_VERSION}; re-export the policy from a matching version"
        )
    files = manifest["files"]
    if not isinstance(files, dict) or WEIGHTS not in files:
        raise BundleError(f"{folder}: manifest.files must list {WEIGHTS} with its SHA-256")
    for name, expected in files.items():
        path = folder / name
        if not path.is_file():
            raise BundleError(f"{path}: missing (listed in the manifest)")
        actual = sha256(path)
        if actual != expected:
            raise BundleError(
                f"{path}: SHA-256 {actual[:16]}... does not match the manifest's "
                f"{str(expected)[:16]}...; the file was changed or truncated"
            )
    names = feature_names(tuple(env.get("providers", ())))
    if manifest["observation"].get("names") != names:
        raise BundleError(
            f"{folder}: the observation layout differs from this code's encoder "
            f"({len(manifest['observation'].get('names', []))} features, expected {len(names)})"
        )
    return manifest


def load_policy(path: str | Path) -> ServedPolicy:
    """Load a bundle folder, refusing a tampered, truncated or incompatible one.

    Raises:
        BundleError: says which file or field is wrong, and why.
    """
    folder = Path(path)
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise BundleError(f"{manifest_path}: missing; is '{folder}' an exported bundle?")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise BundleError(f"{manifest_path}: not valid JSON ({error})") from error
    check_manifest(manifest, folder)
    try:
        with np.load(folder / WEIGHTS, allow_pickle=False) as archive:
            weights = {name: archive[name].astype(np.float64) for name in archive.files}
    except (OSError, ValueError) as error:
        raise BundleError(f"{folder / WEIGHTS}: unreadable ({error})") from error
    n_obs = len(manifest["observation"]["names"])
    width = n_obs
    for i, layer in enumerate(manifest["network"]["layers"]):
        for key in ("weight", "bias"):
            if layer.get(key) not in weights:
                raise BundleError(f"{folder}: network.layers[{i}].{key} names no array")
        weight, bias = weights[layer["weight"]], weights[layer["bias"]]
        if weight.ndim != 2 or weight.shape[1] != width or bias.shape != (weight.shape[0],):
            raise BundleError(
                f"{folder}: network.layers[{i}] has shape {weight.shape}, expected (*, {width})"
            )
        if layer.get("activation") not in ACTIVATIONS:
            raise BundleError(
                f"{folder}: network.layers[{i}].activation: expected one of "
                f"{sorted(ACTIVATIONS)}, got {layer.get('activation')!r}"
            )
        width = weight.shape[0]
    if width != len(manifest["env"]["providers"]) + 1:
        raise BundleError(f"{folder}: the network outputs {width} actions, expected P + 1")
    return ServedPolicy(manifest, weights)
