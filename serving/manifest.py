"""The bundle manifest's schema: every field typed and bounded, declared once with pydantic.

A manifest that this schema accepts cannot make serving decide wrongly by its numbers
alone: caps, factors, guardrails and normalisation are finite and in range, providers are
unique, the observation layout is this code's encoder's, and the network's declared shapes
chain from the observation to one action per provider plus the pool (the weights' own
shapes are checked against these before they are read; see :mod:`ipwarmup.serving.bundle`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ipwarmup.actions import ENV_ID, ENV_VERSION, POOL_THRESHOLD
from ipwarmup.errors import BundleError
from ipwarmup.observation import MAX_HISTORY_PERIODS, Layout, feature_names
from ipwarmup.serving.guardrails import GuardrailSettings

FORMAT_VERSION = 2
"""Bundle format this code reads and writes (1: no digest over the manifest, no bounds)."""
MANIFEST = "manifest.json"
WEIGHTS = "weights.npz"
DIGEST = "bundle.sha256"
SIGNATURE = "bundle.sig"
RESERVED = frozenset({MANIFEST, DIGEST, SIGNATURE})
MAX_FILE_BYTES = 64 << 20
"""Largest file a bundle may hold (a 4096-wide layer of float64 is 128 MiB: far beyond)."""
MAX_LAYER_WIDTH = 4096
MAX_LAYERS = 16
MAX_PROVIDERS = 64

Finite = Annotated[float, Field(allow_inf_nan=False)]
Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
FileName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")]
ArrayName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
Width = Annotated[int, Field(ge=1, le=MAX_LAYER_WIDTH)]
HexKey = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class _Strict(BaseModel):
    # strict: "8" is not 8 and true is not 1; a bundle is written by code, never by hand.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class EnvSection(_Strict):
    """The simulator the policy was trained in."""

    id: Annotated[str, Field(max_length=100)]
    version: Annotated[int, Field(ge=0, le=1_000_000)]
    providers: Annotated[list[Name], Field(min_length=1, max_length=MAX_PROVIDERS)]
    horizon_days: Annotated[int, Field(ge=1, le=3650)]
    max_ips: Annotated[int, Field(ge=1, le=1024)]
    decision_interval_hours: Literal[1, 2, 3, 4, 6, 8, 12, 24]

    @model_validator(mode="after")
    def _unique(self) -> EnvSection:
        if self.id != ENV_ID or self.version != ENV_VERSION:
            raise ValueError(
                f"trained on {self.id} v{self.version}, but this code encodes {ENV_ID} "
                f"v{ENV_VERSION}; re-export the policy from a matching version"
            )
        seen: set[str] = set()
        for name in self.providers:
            if name in seen:
                raise ValueError(f"provider {name!r} is listed twice")
            seen.add(name)
        return self


class ObservationSection(_Strict):
    """The observation layout: names, units and documented ranges, one entry per feature.

    ``history_periods`` and ``mta_inputs`` declare what the policy reads beyond the last
    period (``ipwarmup.observation.Layout``); a bundle without them (every bundle before
    issue 10) reads the last period alone, from schema-1 or schema-2 telemetry.
    """

    names: list[str]
    units: list[str]
    low: list[Finite]
    high: list[Finite]
    history_periods: Annotated[int, Field(ge=0, le=MAX_HISTORY_PERIODS)] = 0
    mta_inputs: bool = False

    @property
    def layout(self) -> Layout:
        """The encoder's layout this bundle was trained on."""
        return Layout(history_periods=self.history_periods, mta_inputs=self.mta_inputs)


class ActionSection(_Strict):
    """What the network's output means (``ipwarmup.actions``) and the clip applied to it."""

    names: list[str]
    low: list[Annotated[float, Field(ge=-1.0, le=1.0, allow_inf_nan=False)]]
    high: list[Annotated[float, Field(ge=-1.0, le=1.0, allow_inf_nan=False)]]
    cap_factor: str = "max_cap_change_per_day ** (action * period_hours / 24)"
    max_cap_change_per_day: Annotated[float, Field(gt=1.0, le=100.0, allow_inf_nan=False)]
    pool_threshold: Finite
    min_hourly_cap_messages: Annotated[float, Field(gt=0.0, le=1e9, allow_inf_nan=False)]
    max_hourly_cap_messages: Annotated[float, Field(gt=0.0, le=1e9, allow_inf_nan=False)]

    @model_validator(mode="after")
    def _consistent(self) -> ActionSection:
        if self.pool_threshold != POOL_THRESHOLD:
            raise ValueError(f"pool_threshold: expected {POOL_THRESHOLD} (ipwarmup.actions), "
                             f"got {self.pool_threshold}")  # fmt: skip
        if self.min_hourly_cap_messages > self.max_hourly_cap_messages:
            raise ValueError("min_hourly_cap_messages is above max_hourly_cap_messages")
        if any(lo >= hi for lo, hi in zip(self.low, self.high, strict=False)):
            raise ValueError("every action low must be below its high")
        return self


class NormalizationSection(_Strict):
    """VecNormalize's statistics: ``clip((obs - mean) / sqrt(var + epsilon), +-clip_obs)``."""

    mean: list[Annotated[float, Field(ge=-1e6, le=1e6, allow_inf_nan=False)]]
    var: list[Annotated[float, Field(ge=0.0, le=1e12, allow_inf_nan=False)]]
    epsilon: Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
    clip_obs: Annotated[float, Field(gt=0.0, le=1e9, allow_inf_nan=False)]

    @model_validator(mode="after")
    def _positive_std(self) -> NormalizationSection:
        # A zero standard deviation divides by zero: every decision would be inf or NaN.
        for i, var in enumerate(self.var):
            if var + self.epsilon < 1e-12:
                raise ValueError(f"var[{i}] + epsilon is {var + self.epsilon}; expected > 1e-12")
        return self


class Layer(_Strict):
    """One dense layer: ``activation(x @ weight.T + bias)``, weight (outputs, inputs)."""

    weight: ArrayName
    bias: ArrayName
    activation: Literal["tanh", "relu", "identity"]
    inputs: Width
    outputs: Width


class NetworkSection(_Strict):
    """The actor network, layer by layer."""

    layers: Annotated[list[Layer], Field(min_length=1, max_length=MAX_LAYERS)]


class FileEntry(_Strict):
    """A file of the bundle: its SHA-256 and its size."""

    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    bytes: Annotated[int, Field(ge=0, le=MAX_FILE_BYTES)]


class SignatureSection(_Strict):
    """Who signed ``bundle.sha256`` (ed25519, raw public key in hex)."""

    algorithm: Literal["ed25519"]
    public_key: HexKey


class Manifest(_Strict):
    """A bundle's ``manifest.json``, format 2."""

    format_version: Literal[2]
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")]
    package_version: Annotated[str, Field(max_length=64)]
    env: EnvSection
    observation: ObservationSection
    action: ActionSection
    normalization: NormalizationSection
    network: NetworkSection
    guardrails: GuardrailSettings
    files: Annotated[dict[FileName, FileEntry], Field(min_length=1, max_length=16)]
    signature: SignatureSection | None = None
    mlflow: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> Manifest:
        providers = tuple(self.env.providers)
        obs = self.observation
        expected = feature_names(providers, obs.layout)
        n_obs, n_act = len(expected), len(providers) + 1
        problems = []
        if obs.names != expected:
            pairs = enumerate(zip(obs.names, expected, strict=False))
            wrong = next((i for i, (a, b) in pairs if a != b), min(len(obs.names), n_obs))
            problems.append(f"observation.names: not this code's encoder layout for "
                            f"{len(providers)} providers, history_periods "
                            f"{obs.history_periods} and mta_inputs "
                            f"{str(obs.mta_inputs).lower()} ({len(obs.names)} names, "
                            f"expected {n_obs}; first difference at {wrong})")  # fmt: skip
        for key in ("units", "low", "high"):
            if len(getattr(obs, key)) != n_obs:
                problems.append(f"observation.{key}: expected {n_obs} entries, "
                                f"got {len(getattr(obs, key))}")  # fmt: skip
        for key in ("names", "low", "high"):
            if len(getattr(self.action, key)) != n_act:
                problems.append(f"action.{key}: expected {n_act} entries (providers + pool), "
                                f"got {len(getattr(self.action, key))}")  # fmt: skip
        for key in ("mean", "var"):
            if len(getattr(self.normalization, key)) != n_obs:
                problems.append(f"normalization.{key}: expected {n_obs} entries, "
                                f"got {len(getattr(self.normalization, key))}")  # fmt: skip
        width = n_obs
        arrays: set[str] = set()
        for i, layer in enumerate(self.network.layers):
            if layer.inputs != width:
                problems.append(f"network.layers.{i}.inputs: expected {width}, "
                                f"got {layer.inputs}")  # fmt: skip
            for key in ("weight", "bias"):
                array = getattr(layer, key)
                if array in arrays:
                    problems.append(f"network.layers.{i}.{key}: array {array!r} used twice")
                arrays.add(array)
            width = layer.outputs
        if width != n_act:
            problems.append(f"network.layers.{len(self.network.layers) - 1}.outputs: "
                            f"expected {n_act} (providers + pool), got {width}")  # fmt: skip
        unknown = sorted(set(self.guardrails.complaint_thresholds) - set(providers))
        if unknown:
            problems.append(f"guardrails.complaint_thresholds.{unknown[0]}: not a provider")
        if self.guardrails.max_growth_per_day >= self.action.max_cap_change_per_day:
            problems.append(f"guardrails.max_growth_per_day: expected below "
                            f"action.max_cap_change_per_day "
                            f"({self.action.max_cap_change_per_day}) so it can bind, got "
                            f"{self.guardrails.max_growth_per_day}")  # fmt: skip
        if WEIGHTS not in self.files:
            problems.append(f"files.{WEIGHTS}: missing")
        reserved = sorted(RESERVED & set(self.files))
        if reserved:
            problems.append(f"files.{reserved[0]}: a reserved name")
        if problems:
            raise ValueError("; ".join(problems))
        return self


def _show(value: object) -> str:
    """A short echo of a bad value: never the repr of a huge int or a huge container."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"an integer of {value.bit_length()} bits"
    if isinstance(value, dict | list):
        return f"a {type(value).__name__} of {len(value)} entries"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def describe(error: ValidationError, where: str) -> list[str]:
    """Turn pydantic's errors into ``manifest.a.b: what (got x)`` lines, at most 20."""
    lines = []
    for item in error.errors(include_url=False)[:20]:
        path = ".".join(str(part) for part in (where, *item["loc"]))
        message = item["msg"].removeprefix("Value error, ")
        got = "" if item["type"] in ("missing", "value_error") else f" (got {_show(item['input'])})"
        lines.append(f"{path}: {message}{got}")
    return lines


def parse_manifest(data: object, where: str = "manifest") -> Manifest:
    """Validate a decoded manifest.

    Raises:
        BundleError: every problem found (up to 20), each naming its field.
    """
    if isinstance(data, dict) and data.get("format_version") not in (None, FORMAT_VERSION):
        raise BundleError(
            f"{where}.format_version: bundle format {_show(data.get('format_version'))} is not "
            f"supported (this code reads format {FORMAT_VERSION}; re-export or migrate it "
            "with ipwarmup.training.export.migrate_bundle)"
        )
    try:
        return Manifest.model_validate(data)
    except ValidationError as error:
        raise BundleError("; ".join(describe(error, where))) from error
    except (RecursionError, ValueError, TypeError) as error:  # pydantic's own limits
        raise BundleError(f"{where}: cannot be validated ({type(error).__name__})") from error
