"""Guardrails after the network: their settings, the operator's bounds, one function each.

A guardrail never makes a decision bolder than the policy's: it cuts a cap, holds or
shrinks the pool, and always says so in the decision's reasons. Its settings come from
three places, in this order of authority:

1. the operator's guardrails file (YAML, given to ``load_policy`` and ``ipwarmup serve``):
   per setting a fixed ``value``, or ``min``/``max`` bounds;
2. the bundle's ``guardrails`` section (what the model was exported with): used only
   within the operator's bounds, clamped into them otherwise (with a note);
3. :data:`DEFAULTS` here, the one place the defaults live (the bundle's values usually come
   from them; the thresholds shared with the AIMD baseline come from ``ipwarmup.rules``).

Example file::

    max_growth_per_day: {max: 1.4}    # the bundle's 1.6 becomes 1.4
    block_cut: 0.25                   # a bare number fixes the value
    deferral_rate: {min: 0.02, max: 0.1}
    complaint_thresholds:
      gmail: {max: 0.0008}

Threshold semantics: a rate guardrail fires when the rate is at or above its threshold;
the low-volume guardrail fires when the monthly volume is below its floor.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ipwarmup import rules
from ipwarmup.errors import ConfigError

Rate = Annotated[float, Field(gt=0.0, le=1.0, allow_inf_nan=False)]
Cut = Annotated[float, Field(gt=0.0, le=1.0, allow_inf_nan=False)]
Positive = Annotated[float, Field(gt=0.0, le=1e12, allow_inf_nan=False)]
MAX_PROVIDERS = 64


class GuardrailSettings(BaseModel):
    """Every guardrail's settings; the defaults are the project's one set of defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_growth_per_day: Annotated[float, Field(gt=1.0, le=100.0, allow_inf_nan=False)] = 1.6
    """Largest factor a cap may grow by in a day; below the action's range so it can bind
    (the shipped example grows at most x1.52)."""
    block_min_rejected: Annotated[float, Field(ge=1.0, le=1e12, allow_inf_nan=False)] = 1.0
    """5xx rejections at a provider in one period that mean a block (DOMAIN §2: any)."""
    block_cut: Cut = 0.5
    """Largest cap factor after a block."""
    deferral_rate: Rate = rules.DEFERRAL_LIMIT
    """Deferred (4xx) share of dedicated attempts at which caps are cut."""
    deferral_cut: Cut = 1.0 / rules.DECREASE
    """Largest cap factor at or over the deferral rate."""
    bounce_rate: Rate = rules.BOUNCE_LIMIT
    """Hard-bounce share of transmitted mail at which caps are cut."""
    bounce_cut: Cut = 1.0 / rules.DECREASE
    """Largest cap factor at or over the bounce rate."""
    complaint_thresholds: dict[str, Rate] = Field(default_factory=dict, max_length=MAX_PROVIDERS)
    """Complaint share of delivered mail per provider with a feedback loop (DOMAIN §3)."""
    complaint_cut: Cut = 0.5
    """Largest cap factor at or over a complaint threshold."""
    min_monthly_messages: Positive = 100_000.0
    """Monthly volume below which the sender stays on the shared pool."""
    aimd_increase_per_day: Positive = 500.0
    """The fallback rule's additive increase per day (messages per hour)."""
    aimd_per_ip_ceiling: Positive = 500_000.0 / 24
    """The fallback rule's per-IP hourly cap at which it grows the pool."""


DEFAULTS = GuardrailSettings()
"""The guardrail defaults, declared once (export writes them into new bundles)."""

_NAMES = tuple(GuardrailSettings.model_fields)


class Bound(BaseModel):
    """The operator's rule for one setting: a fixed value, or bounds for the bundle's."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: float | None = Field(default=None, allow_inf_nan=False)
    min: float | None = Field(default=None, allow_inf_nan=False)
    max: float | None = Field(default=None, allow_inf_nan=False)

    @model_validator(mode="after")
    def _consistent(self) -> Bound:
        if self.value is not None and (self.min is not None or self.max is not None):
            raise ValueError("give either value or min/max, not both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        return self


class OperatorGuardrails(BaseModel):
    """The operator's guardrails file: a :class:`Bound` (or bare number) per setting."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_growth_per_day: Bound | None = None
    block_min_rejected: Bound | None = None
    block_cut: Bound | None = None
    deferral_rate: Bound | None = None
    deferral_cut: Bound | None = None
    bounce_rate: Bound | None = None
    bounce_cut: Bound | None = None
    complaint_thresholds: dict[str, Bound] = Field(default_factory=dict)
    complaint_cut: Bound | None = None
    min_monthly_messages: Bound | None = None
    aimd_increase_per_day: Bound | None = None
    aimd_per_ip_ceiling: Bound | None = None

    @model_validator(mode="before")
    @classmethod
    def _bare_numbers(cls, data: Any) -> Any:
        def wrap(value: Any) -> Any:
            is_number = isinstance(value, int | float) and not isinstance(value, bool)
            return {"value": value} if is_number else value

        if not isinstance(data, dict):
            return data
        out = {key: wrap(value) for key, value in data.items()}
        thresholds = out.get("complaint_thresholds")
        if isinstance(thresholds, dict):
            out["complaint_thresholds"] = {k: wrap(v) for k, v in thresholds.items()}
        return out


def _dotted(error: Any, root: str) -> str:
    where = ".".join(str(part) for part in (root, *error["loc"]))
    return f"{where}: {error['msg']}"


def load_operator_file(path: str | os.PathLike[str]) -> OperatorGuardrails:
    """Read an operator's guardrails YAML file.

    Raises:
        ConfigError: the file is unreadable or a setting is unknown or malformed; names it.
    """
    file = Path(path)
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise ConfigError(f"{file}: cannot read the guardrails file ({error})") from error
    try:
        return OperatorGuardrails.model_validate(data if data is not None else {})
    except ValidationError as error:
        raise ConfigError([_dotted(e, str(file)) for e in error.errors()[:50]]) from error


def _apply(name: str, current: float, rule: Bound | None, notes: list[str]) -> float:
    if rule is None:
        return current
    if rule.value is not None:
        return rule.value
    low = -math.inf if rule.min is None else rule.min
    high = math.inf if rule.max is None else rule.max
    clamped = min(max(current, low), high)
    if clamped != current:
        notes.append(f"{name}: the bundle's {current:g} is outside the operator's bounds "
                     f"[{low:g}, {high:g}]; using {clamped:g}")  # fmt: skip
    return clamped


def resolve(
    bundle: GuardrailSettings, operator: OperatorGuardrails | None, providers: tuple[str, ...]
) -> tuple[GuardrailSettings, list[str]]:
    """Return the settings in force and a note per bundle value the operator overrode.

    Raises:
        ConfigError: the operator's file names an unknown provider, or its values are out
            of a setting's own range.
    """
    if operator is None:
        return bundle, []
    notes: list[str] = []
    values: dict[str, Any] = {}
    for name in _NAMES:
        if name == "complaint_thresholds":
            continue
        values[name] = _apply(name, getattr(bundle, name), getattr(operator, name), notes)
    unknown = sorted(set(operator.complaint_thresholds) - set(providers))
    if unknown:
        raise ConfigError(
            f"complaint_thresholds.{unknown[0]}: unknown provider; expected one of "
            f"{list(providers)}"
        )
    thresholds = dict(bundle.complaint_thresholds)
    for provider, rule in operator.complaint_thresholds.items():
        current = thresholds.get(provider)
        if current is None:
            if rule.value is None:
                continue  # bounds on a provider the bundle does not watch: nothing to bound
            thresholds[provider] = rule.value
        else:
            thresholds[provider] = _apply(f"complaint_thresholds.{provider}", current, rule, notes)
    values["complaint_thresholds"] = thresholds
    try:
        return GuardrailSettings.model_validate(values), notes
    except ValidationError as error:
        raise ConfigError([_dotted(e, "guardrails") for e in error.errors()[:50]]) from error


# ----------------------------------------------------------------- one function each
# Each guardrail is one function over a batch of records: arrays (B, P) per provider (or
# (B,) for the pool) in, the rows and providers where it fires out, with the largest cap
# factor it allows and the reason it gives there. Vectorised, so a fleet of records costs
# a few numpy calls per guardrail; the reason strings are only built where one fires.


@dataclass(frozen=True)
class Counts:
    """The period's counts per record and provider, (B, P) each, as a guardrail reads them."""

    rejected: np.ndarray
    deferred: np.ndarray
    sent_dedicated: np.ndarray
    bounced: np.ndarray
    transmitted: np.ndarray
    complaints: np.ndarray


@dataclass(frozen=True)
class Hits:
    """Where one guardrail fires, the largest factor it allows, and its reason at (row, p)."""

    name: str
    mask: np.ndarray
    factor: float | np.ndarray
    reason: Callable[[int, int], str]


def _rate(numerator: np.ndarray, denominator: np.ndarray, floor: float) -> np.ndarray:
    """Numerator / denominator where the denominator reaches ``floor``, else 0 (no rate)."""
    rate: np.ndarray = np.divide(
        numerator, denominator, out=np.zeros_like(numerator), where=denominator >= floor
    )
    return rate


def growth_limit(g: GuardrailSettings, period_hours: int) -> float:
    """Return the largest cap factor in one period: ``max_growth_per_day``, prorated."""
    limit: float = g.max_growth_per_day ** (period_hours / 24)
    return limit


def growth_bound(g: GuardrailSettings, factors: np.ndarray, period_hours: int) -> Hits:
    """Bound a cap's growth to ``max_growth_per_day``, prorated to the period."""
    limit = growth_limit(g, period_hours)
    return Hits("growth_bound", factors > limit, limit,
                lambda i, j: growth_reason(float(factors[i, j]), limit, period_hours))  # fmt: skip


def block(g: GuardrailSettings, c: Counts) -> Hits:
    """Cut after a block: ``block_min_rejected`` or more 5xx rejections in the period."""
    return Hits("block", c.rejected >= g.block_min_rejected, g.block_cut,
                lambda i, j: block_reason(g, float(c.rejected[i, j])))  # fmt: skip


def deferrals(g: GuardrailSettings, c: Counts) -> Hits:
    """Cut when the deferred (4xx) share of dedicated attempts reaches ``deferral_rate``."""
    rate = _rate(c.deferred, c.sent_dedicated, 1e-300)  # no attempts: no rate
    mask = (c.sent_dedicated > 0) & (rate >= g.deferral_rate)
    return Hits("deferrals", mask, g.deferral_cut,
                lambda i, j: deferrals_reason(g, float(rate[i, j])))  # fmt: skip


def bounces(g: GuardrailSettings, c: Counts) -> Hits:
    """Cut when hard bounces reach ``bounce_rate`` of transmitted mail."""
    rate = _rate(c.bounced, c.transmitted, 1e-300)
    mask = (c.transmitted > 0) & (rate >= g.bounce_rate)
    return Hits("bounces", mask, g.bounce_cut,
                lambda i, j: bounces_reason(g, float(rate[i, j])))  # fmt: skip


def complaints(g: GuardrailSettings, c: Counts, providers: tuple[str, ...]) -> Hits:
    """Cut when complaints reach the provider's threshold of delivered mail.

    Mail that bounced was not delivered and cannot be complained about: with less than
    one message delivered there is no complaint rate (the bounce guardrail speaks then).
    Providers without a threshold (no feedback loop) never fire.
    """
    threshold = np.array([g.complaint_thresholds.get(p, np.inf) for p in providers])
    delivered = c.transmitted - c.bounced
    rate = _rate(c.complaints, delivered, 1.0)
    mask = (delivered >= 1.0) & (rate >= threshold)
    return Hits(
        "complaints", mask, g.complaint_cut,
        lambda i, j: complaints_reason(g, float(rate[i, j]), float(threshold[j])),
    )  # fmt: skip


def cap_bounds(per_ip: np.ndarray, minimum: float, maximum: float) -> tuple[np.ndarray, Hits]:
    """Clamp per-IP caps into the bundle's ``[min, max]`` hourly caps, saying so."""
    clamped = np.clip(per_ip, minimum, maximum)
    return clamped, Hits(
        "cap_bounds", clamped != per_ip, clamped,
        lambda i, j: cap_bounds_reason(float(per_ip[i, j]), float(clamped[i, j]), maximum),
    )  # fmt: skip


def low_volume(g: GuardrailSettings, monthly_messages: np.ndarray) -> Hits:
    """Keep a sender below ``min_monthly_messages`` a month (B,) on the shared pool."""
    return Hits("low_volume", monthly_messages < g.min_monthly_messages, 0.0,
                lambda i, _: low_volume_reason(g, float(monthly_messages[i])))  # fmt: skip


# ----------------------------------------------------------------- the reasons
# Shared by the vectorised guardrails above and by the one-record path
# (:mod:`ipwarmup.serving.kernel` decides there with these conditions written for scalars;
# the tests check that both decide alike on many records).


def growth_reason(factor: float, limit: float, period_hours: int) -> str:
    """Say that a cap factor was bounded by :func:`growth_bound`."""
    return f"guardrail growth_bound: x{factor:.3f} capped at x{limit:.3f} per {period_hours} h"


def block_reason(g: GuardrailSettings, rejected: float) -> str:
    """Say that :func:`block` cut a cap."""
    return f"guardrail block: {rejected:.0f} rejected (5xx); cap at most x{g.block_cut:.2f}"


def deferrals_reason(g: GuardrailSettings, rate: float) -> str:
    """Say that :func:`deferrals` cut a cap."""
    return (f"guardrail deferrals: rate {rate:.2%} at or over {g.deferral_rate:.2%}; cap at "
            f"most x{g.deferral_cut:.2f}")  # fmt: skip


def bounces_reason(g: GuardrailSettings, rate: float) -> str:
    """Say that :func:`bounces` cut a cap."""
    return (f"guardrail bounces: rate {rate:.2%} at or over {g.bounce_rate:.2%}; cap at most "
            f"x{g.bounce_cut:.2f}")  # fmt: skip


def complaints_reason(g: GuardrailSettings, rate: float, threshold: float) -> str:
    """Say that :func:`complaints` cut a cap."""
    return (f"guardrail complaints: rate {rate:.4%} at or over {threshold:.2%}; cap at most "
            f"x{g.complaint_cut:.2f}")  # fmt: skip


def cap_bounds_reason(per_ip: float, clamped: float, maximum: float) -> str:
    """Say that :func:`cap_bounds` moved a per-IP cap into the bounds."""
    word = "clamped to the maximum" if per_ip > maximum else "raised to the minimum"
    return f"guardrail cap_bounds: {per_ip:.6g}/h per IP {word} {clamped:.6g}/h"


def low_volume_reason(g: GuardrailSettings, monthly_messages: float) -> str:
    """Say that :func:`low_volume` keeps the sender on the shared pool."""
    return (f"guardrail low_volume: {monthly_messages:,.0f} a month is below the "
            f"{g.min_monthly_messages:,.0f} a dedicated IP needs; stay on the shared "
            "pool")  # fmt: skip


EMPTY = "the pool is already empty"
"""Why a shrink of an empty pool holds instead."""


def pool_max_reason(max_ips: int) -> str:
    """Say that the pool may not grow past ``max_ips``."""
    return f"guardrail pool_max: already at max_ips ({max_ips})"


def pool_hold_reason(where: list[str]) -> str:
    """Say that the pool holds while caps are cut at these providers."""
    return f"guardrail pool_hold: no new IP while caps are cut at {', '.join(where)}"
