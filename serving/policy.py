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
from ipwarmup.actions import GROW, SHRINK, ActionCodec
from ipwarmup.errors import TelemetryError
from ipwarmup.observation import read
from ipwarmup.policy import PolicyState, check_observation_shape
from ipwarmup.serving import guardrails as gr
from ipwarmup.serving.bundle import PublicKey, read_bundle
from ipwarmup.serving.fleet import Fleet, gc_paused
from ipwarmup.serving.manifest import FORMAT_VERSION, MANIFEST, WEIGHTS, Manifest
from ipwarmup.serving.record import COUNT_FIELDS
from ipwarmup.serving.single import OneRecord
from ipwarmup.serving.telemetry import encode_arrays, record_arrays, validate

__all__ = ["FORMAT_VERSION", "MANIFEST", "WEIGHTS", "ServedPolicy", "load_policy"]

DECISION_VERSION = 2
"""2: guardrails fire on their condition (not only when they cut), 0 IPs hold no cap."""
_POOL_ACTIONS = {GROW: "grow", SHRINK: "shrink", 0: "hold"}
_SOURCES = ((False, "policy"), (True, "aimd"))
"""Who proposed a decision, by whether the fallback rule decided: its reasons' prefix."""
_NO_IPS = "no dedicated IPs: nothing to cap; mail goes through the shared pool"


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
        self._model = {"name": manifest.name, "run_id": run_id if isinstance(run_id, str) else None}
        # Each provider's first reason, "policy: x1.234" (or "aimd: ..."), NUL-separated.
        self._factor_text = {
            fallback: "\0".join([f"{source}: x%.3f"] * len(self.providers))
            for fallback, source in _SOURCES
        }
        # The pool's first reason, "policy: grow (+0.38)", by the source and the proposal.
        self._pool_text = {
            fallback: {code: f"{source}: {word} (%+.2f)" for code, word in _POOL_ACTIONS.items()}
            for fallback, source in _SOURCES
        }
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
        """Apply the guardrails to a batch (vectorised), then write one decision per row."""
        g, field = self.guardrails, {name: i for i, name in enumerate(COUNT_FIELDS)}

        def col(name: str) -> np.ndarray:
            return counts[:, :, field[name]]

        ips = n_ips.astype(np.int64)
        has_ips = (ips > 0)[:, None]
        factors = self.codec.cap_factors(actions)
        c = gr.Counts(
            rejected=col("rejected"), deferred=col("deferred"),
            sent_dedicated=col("sent_dedicated"), bounced=col("bounced"),
            transmitted=col("accepted") + col("sent_shared"), complaints=col("complaints"),
        )  # fmt: skip
        growth = gr.growth_bound(g, factors, self.period_hours)
        cuts = [gr.block(g, c), gr.deferrals(g, c), gr.bounces(g, c),
                gr.complaints(g, c, self.providers)]  # fmt: skip
        allowed = factors
        for bound in (growth, *cuts):
            allowed = np.where(bound.mask & has_ips, np.minimum(allowed, bound.factor), allowed)
        per_ip_now = col("dedicated_cap_per_hour") / np.maximum(ips, 1)[:, None]
        per_ip_next, clamp = gr.cap_bounds(per_ip_now * allowed, self.codec.min_hourly_cap_messages,
                                           self.codec.max_hourly_cap_messages)  # fmt: skip
        provider_hits = [growth, *cuts, clamp]
        masks: np.ndarray = np.stack([h.mask for h in provider_hits]) & has_ips[None]  # (H, B, P)
        cut_rows: np.ndarray = np.any(masks[1:-1], axis=(0, 2))
        hit_rows = np.any(masks, axis=(0, 2))
        # Pool: the policy's change, then its bounds and guardrails, in this order.
        pool = self.codec.pool_change(actions)
        at_max = (pool == GROW) & (ips >= self.max_ips)
        pool = np.where(at_max, 0, pool)
        held = (pool == GROW) & cut_rows
        pool = np.where(held, 0, pool)
        low = gr.low_volume(g, col("demand").sum(axis=1) * (24 / self.period_hours) * 30)
        pool = np.where(low.mask, np.where(ips > 0, SHRINK, 0), pool)
        empty = (pool == SHRINK) & (ips == 0)
        pool = np.where(empty, 0, pool)
        change = np.divide(per_ip_next, per_ip_now, out=np.full_like(per_ip_now, np.nan),
                           where=per_ip_now >= 1e-6)  # fmt: skip
        # JSON has no NaN or infinity: checked here for the whole batch, not walked per
        # decision when rendered. A finite per-IP cap is within the bundle's bounds, so the
        # pool's cap (times at most max_ips) and the ratio (over at least 1e-6) are finite.
        if not np.isfinite(per_ip_next).all():
            raise ValueError("a decision holds NaN or infinity, which JSON cannot carry")
        # Lists, not arrays, from here: per-element numpy access costs ~100 ns each.
        rows = zip(
            ips.tolist(), factors.tolist(), per_ip_next.tolist(), change.tolist(),
            actions[:, -1].tolist(), self.codec.pool_change(actions).tolist(), pool.tolist(),
            bad.tolist(), strict=True,
        )  # fmt: skip
        # Rows where anything beyond the policy's own move happened: the rest skip all checks.
        special = (hit_rows | at_max | held | low.mask | empty).tolist()
        # Which guardrails fired per row and provider, one bit each (bit k: provider_hits[k]).
        bits = 1 << np.arange(len(provider_hits))
        fired = np.tensordot(bits, masks, axes=1).tolist()  # (B, P) ints
        hit_list = hit_rows.tolist()
        decisions = []
        for i, (n, factor, next_cap, ratio, pool_value, proposal, action, fallback) in enumerate(
            rows
        ):
            hits: list[list[tuple[str, str]]] | None = None
            if hit_list[i]:
                hits = [
                    [(h.name, h.reason(i, j)) for k, h in enumerate(provider_hits) if code >> k & 1]
                    for j, code in enumerate(fired[i])
                ]
            notes: list[tuple[str | None, str]] = []
            if special[i]:
                if at_max[i]:
                    notes.append(("pool_max", gr.pool_max_reason(self.max_ips)))
                if held[i]:
                    where = [p for j, p in enumerate(self.providers) if masks[1:-1, i, j].any()]
                    notes.append(("pool_hold", gr.pool_hold_reason(where)))
                if low.mask[i]:
                    notes.append(("low_volume", low.reason(i, 0)))
                if empty[i]:
                    notes.append((None, gr.EMPTY))
            decisions.append(self._decision(n, fallback, factor, next_cap, ratio, hits,
                                            pool_value, proposal, action, notes))  # fmt: skip
        return decisions

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

    def _decision(
        self, n: int, fallback: bool, factor: list[float], next_cap: list[float],
        ratio: list[float], hits: list[list[tuple[str, str]]] | None, pool_value: float,
        proposal: int, action: int, notes: list[tuple[str | None, str]],
    ) -> dict[str, Any]:  # fmt: skip
        """Write one decision from one record's numbers (lists over providers).

        ``hits[j]`` holds (guardrail, reason) for each guardrail that fired at provider
        ``j`` (None: none fired anywhere); ``notes`` the pool's (guardrail or None, reason).
        """
        fired: list[str] = []
        providers: dict[str, Any]
        if n == 0:
            providers = {name: {"dedicated_cap_per_hour": 0.0, "cap_per_ip_per_hour": 0.0,
                                "change": None, "reasons": [_NO_IPS]}
                         for name in self.providers}  # fmt: skip
        else:
            # One format call for every provider's first reason, then one dict each: this
            # is most of a decision's cost once the numbers are known.
            firsts = (self._factor_text[fallback] % tuple(factor)).split("\0")
            providers = {}
            for name, cap, change, first in zip(
                self.providers, next_cap, ratio, firsts, strict=True
            ):
                providers[name] = {
                    "dedicated_cap_per_hour": cap * n,
                    "cap_per_ip_per_hour": cap,
                    # NaN: below a millionth of a message an hour there was no cap, no ratio.
                    "change": None if change != change else change,
                    "reasons": [first],
                }
            if hits is not None:
                for name, here in zip(self.providers, hits, strict=True):
                    if here:
                        reasons = providers[name]["reasons"]
                        for hit, reason in here:
                            reasons.append(reason)
                            fired.append(f"{hit}:{name}")
        pool_reasons = [self._pool_text[fallback][proposal] % pool_value]
        for rule, reason in notes:
            pool_reasons.append(reason)
            if rule is not None:
                fired.append(rule)
        return {
            "decision_version": DECISION_VERSION,
            "model": self._model.copy(),
            "period_hours": self.period_hours,
            "providers": providers,
            "pool": {"action": _POOL_ACTIONS[action], "dedicated_ips": n + action,
                     "reasons": pool_reasons},
            "guardrails": fired,
            "fallback": "the network's output is not finite" if fallback else None,
        }  # fmt: skip


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
