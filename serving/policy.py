"""Load a verified policy bundle and make production decisions from live telemetry.

Imports numpy, pydantic, PyYAML, cryptography and the standard library (plus ipwarmup's
numpy-only modules): a production control plane runs it without torch, stable-baselines3 or
MLflow. :mod:`ipwarmup.serving.bundle` verifies the bundle whole;
:mod:`ipwarmup.serving.guardrails` holds the guardrails applied after the network; the
action's meaning is ``ipwarmup.actions``' codec, shared with the simulator.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from ipwarmup import rules
from ipwarmup.actions import ActionCodec
from ipwarmup.errors import TelemetryError
from ipwarmup.observation import read
from ipwarmup.policy import PolicyState, check_observation_shape
from ipwarmup.serving import guardrails as gr
from ipwarmup.serving.batch import batch_decisions
from ipwarmup.serving.bundle import PublicKey, read_bundle
from ipwarmup.serving.decision import DecisionWriter
from ipwarmup.serving.fleet import Fleet, gc_paused
from ipwarmup.serving.manifest import FORMAT_VERSION, MANIFEST, WEIGHTS, Manifest
from ipwarmup.serving.single import OneRecord
from ipwarmup.serving.telemetry import encode_arrays, record_arrays, validate

__all__ = ["FORMAT_VERSION", "MANIFEST", "WEIGHTS", "ServedPolicy", "load_policy"]


class ServedPolicy:
    """A loaded bundle: ``predict`` on observations, ``decide`` on telemetry records.

    Args:
        manifest: the bundle's validated manifest.
        weights: the network's arrays by name (shapes checked against the manifest).
        guardrails: the guardrail settings in force (the bundle's within the operator's
            bounds); the manifest's when None.
        notes: what the operator's bounds changed, one line each.
    """

    def __init__(
        self,
        manifest: Manifest,
        weights: Mapping[str, np.ndarray],
        *,
        guardrails: gr.GuardrailSettings | None = None,
        notes: Sequence[str] = (),
    ) -> None:
        self.spec = manifest
        """The manifest as validated (typed); :attr:`manifest` is the same as plain JSON."""
        # As written: the layout fields a pre-issue-10 manifest leaves out stay out.
        self.manifest: dict[str, Any] = manifest.model_dump(mode="json", exclude_unset=True)
        env = manifest.env
        self.providers: tuple[str, ...] = tuple(env.providers)
        self.horizon_days = env.horizon_days
        self.max_ips = env.max_ips
        self.period_hours = env.decision_interval_hours
        self.layout = manifest.observation.layout
        """What the observation reads beyond the last period (the record's version follows)."""
        norm = manifest.normalization
        self._mean = np.asarray(norm.mean, dtype=np.float64)
        self._inv_std = 1.0 / np.sqrt(np.asarray(norm.var, dtype=np.float64) + norm.epsilon)
        self._clip_obs = norm.clip_obs
        # Transposed once, contiguous, so a decision is x @ W.T without a copy.
        self._layers = [
            (np.ascontiguousarray(weights[layer.weight].T), weights[layer.bias], layer.activation)
            for layer in manifest.network.layers
        ]
        action = manifest.action
        self._low = np.asarray(action.low, dtype=np.float64)
        self._high = np.asarray(action.high, dtype=np.float64)
        self.codec = ActionCodec(
            n_providers=len(self.providers),
            max_cap_change_per_day=action.max_cap_change_per_day,
            decision_interval_hours=self.period_hours,
            min_hourly_cap_messages=action.min_hourly_cap_messages,
            max_hourly_cap_messages=action.max_hourly_cap_messages,
        )
        self.guardrails = guardrails if guardrails is not None else manifest.guardrails
        self.guardrail_notes = list(notes)
        run_id = manifest.mlflow.get("run_id")
        self._decision = DecisionWriter(
            providers=self.providers, period_hours=self.period_hours, name=manifest.name,
            run_id=run_id if isinstance(run_id, str) else None,
        ).write  # fmt: skip
        """Write one decision from one record's numbers (:meth:`DecisionWriter.write`)."""
        self._single = OneRecord(
            providers=self.providers, mean=self._mean, inv_std=self._inv_std,
            clip_obs=self._clip_obs, layers=self._layers, low=self._low, high=self._high,
            codec=self.codec, guardrails=self.guardrails, horizon_days=self.horizon_days,
            max_ips=self.max_ips, layout=self.layout,
        )  # fmt: skip
        self._fleet = Fleet(self._single, obs_dim=len(self._mean))

    @property
    def name(self) -> str:
        """The bundle's name."""
        return self.spec.name

    def forward(self, observation: np.ndarray) -> np.ndarray:
        """Return actions (B, P + 1) for raw observations (B, obs_dim), or 1-D for 1-D.

        ``clip((obs - mean) / sqrt(var + eps), +-clip_obs)``, then each layer's
        ``activation(x @ W.T + b)``, then the action clip to ``[low, high]``.
        """
        x = self._network(observation)
        np.minimum(x, self._high, out=x)
        np.maximum(x, self._low, out=x)
        return x

    def _network(self, observation: np.ndarray) -> np.ndarray:
        """Return the network's output before the action clip (may hold NaN or inf)."""
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

    def _validate(self, telemetry: object) -> dict[str, Any]:
        record = validate(telemetry, self.providers, max_ips=self.max_ips, layout=self.layout)
        if record["period_hours"] != self.period_hours:
            raise TelemetryError(
                f"telemetry.period_hours: expected {self.period_hours} (this model decides "
                f"every {self.period_hours} h), got {record['period_hours']}"
            )
        return record

    def decide(self, telemetry: object) -> dict[str, Any]:
        """Validate a telemetry record and return the next period's decision.

        Raises:
            TelemetryError: the record is invalid; every bad field is named, and nothing
                is decided.
        """
        # Most records are well formed: the fast check (serving.single) accepts only what
        # pydantic accepts, and anything else (or a network overflow) goes the long way.
        parts = self._single.decide(telemetry)
        if parts is not None:
            return self._decision(*parts)
        return self._decide_one(self._validate(telemetry))

    def decide_batch(self, records: Iterable[object]) -> list[dict[str, Any]]:
        """Decide for many records at once (a fleet): one encode and one forward pass.

        Raises:
            TelemetryError: some record is invalid; its problems are prefixed with its index
                (``[3] telemetry.pool...``) and nothing is decided.
            ValueError: a cap or ratio came out NaN or infinite (JSON cannot carry it; the
                clamps and the fallback rule keep this from happening).
        """
        with gc_paused():
            # The fast check (serving.fleet) passes most records; pydantic words the
            # problems of the others, or returns them normalised for the fast path.
            rows: list[tuple[np.ndarray, np.ndarray]] = []
            problems: list[str] = []
            for i, record in enumerate(records):
                row = self._fleet.row(record)
                if row is None:
                    try:
                        row = self._fleet.row(self._validate(record))
                    except TelemetryError as error:
                        problems += [f"[{i}] {line}" for line in error.problems]
                        if len(problems) >= 50:
                            break
                        continue
                    if row is None:  # pydantic's normalised record always passes
                        raise AssertionError(f"record {i}: valid, yet refused by the fast check")
                rows.append(row)
            if problems:
                raise TelemetryError(problems[:50])
            return self._decide_observed(*self._fleet.encode(rows)) if rows else []

    def decide_batch_body(self, body: bytes, *, max_records: int) -> list[dict[str, Any]] | None:
        """Decide for a JSON array of records given as its bytes, or return None.

        :meth:`Fleet.read_body <ipwarmup.serving.fleet.Fleet.read_body>` reads the records
        without building their dicts; None when it refuses anything (another number form,
        an unknown or repeated key, a record the fast check refuses, more than
        ``max_records``): parse the body and call :meth:`decide_batch`, which decides the
        same records alike and names the problems of the others.
        """
        with gc_paused():
            encoded = self._fleet.read_body(body, max_records)
            return None if encoded is None else self._decide_observed(*encoded)

    def _decide_records(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        counts, scalars = record_arrays(records, self.providers)
        obs = encode_arrays(
            records, self.providers, counts, scalars, horizon_days=self.horizon_days,
            max_ips=self.max_ips, layout=self.layout,
        )  # fmt: skip
        return self._decide_observed(counts, scalars[:, 1], obs)

    def _decide_observed(
        self, counts: np.ndarray, ips: np.ndarray, obs: np.ndarray
    ) -> list[dict[str, Any]]:
        """Decide encoded records: the network on the batch, then the guardrails.

        ``counts`` (B, P, 10) as :func:`record_arrays` gives them, ``ips`` (B,) each
        record's dedicated IPs, ``obs`` (B, D) the observations.
        """
        with np.errstate(all="ignore"):
            actions = self._network(obs)
        # Checked before the clip, which would turn an overflow (inf) into a bold +-1.
        bad = ~np.all(np.isfinite(actions), axis=1)
        np.minimum(actions, self._high, out=actions)
        np.maximum(actions, self._low, out=actions)
        if bad.any():  # NaN or inf from the network: the rule decides those rows
            actions[bad] = self._aimd_actions(obs[bad])
        return self._decisions(counts, ips, actions, bad)

    def _aimd_actions(self, obs: np.ndarray) -> np.ndarray:
        view = read(obs, n_providers=len(self.providers), horizon_days=self.horizon_days,
                    max_ips=self.max_ips)  # fmt: skip
        g = self.guardrails
        target, grow = rules.aimd(
            view,
            increase_per_hour=g.aimd_increase_per_day * self.period_hours / 24,
            per_ip_ceiling=g.aimd_per_ip_ceiling,
        )
        caps = self.codec.cap_action(rules.per_ip(view.cap_per_hour, view.n_ips), target)
        return np.concatenate([caps, np.where(grow, 1.0, 0.0)[:, None]], axis=1)

    def _decisions(
        self, counts: np.ndarray, n_ips: np.ndarray, actions: np.ndarray, bad: np.ndarray
    ) -> list[dict[str, Any]]:
        """Apply the guardrails to a batch, then write one decision per row (serving.batch)."""
        return batch_decisions(
            counts, n_ips, actions, bad, guardrails=self.guardrails, codec=self.codec,
            providers=self.providers, period_hours=self.period_hours, max_ips=self.max_ips,
            write=self._decision,
        )  # fmt: skip

    def _decide_one(self, record: dict[str, Any]) -> dict[str, Any]:
        """Decide for one validated record: :meth:`_decide_records`' decision, compiled.

        :class:`ipwarmup.serving.single.OneRecord` runs the encoder, the network and the
        guardrails in one kernel (equal to the batch path's within a few units in the last
        place); a network output that is not finite goes to :meth:`_decide_records`, whose
        fallback decides it.
        """
        parts = self._single.decide(record)
        if parts is None:
            return self._decide_records([record])[0]
        return self._decision(*parts)


def load_policy(
    path: str | os.PathLike[str],
    *,
    public_key: PublicKey | None = None,
    guardrails: str | os.PathLike[str] | gr.OperatorGuardrails | None = None,
) -> ServedPolicy:
    """Load a bundle folder, refusing a tampered, truncated, unsigned or incompatible one.

    Args:
        path: the bundle folder.
        public_key: the ed25519 key the operator trusts (a key object, 64 hex digits, or
            PEM/raw bytes or a file); the bundle must then be signed by it.
        guardrails: the operator's guardrails file (YAML) or its parsed form; the bundle's
            guardrail values apply only within its bounds.

    Raises:
        BundleError: says which file or field is wrong, and why.
        ConfigError: the guardrails file is unreadable or invalid.
    """
    manifest, weights = read_bundle(path, public_key=public_key)
    operator = (
        gr.load_operator_file(guardrails) if isinstance(guardrails, str | os.PathLike)
        else guardrails
    )  # fmt: skip
    settings, notes = gr.resolve(manifest.guardrails, operator, tuple(manifest.env.providers))
    return ServedPolicy(manifest, weights, guardrails=settings, notes=notes)
