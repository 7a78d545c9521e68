"""The observation encoder: what an ESP sees in one period, turned into the policy's input.

It exists once. The simulator encodes its period telemetry with it and the serving module
encodes live telemetry with it, so training and production can never disagree about what a
feature means. It imports numpy and numba only: serving must not pull in gymnasium or torch.

Layout (``P`` providers in configured order, then pool and time features):

=====  ======================  ===========  =====================================================
index  name                    bounds       meaning
=====  ======================  ===========  =====================================================
9p+0   ``<p>.demand``          [0, 2]       log10(1 + demand per hour) / 7
9p+1   ``<p>.cap``             [0, 2]       log10(1 + dedicated pool cap per hour) / 8
9p+2   ``<p>.dedicated_share`` [0, 2]       sent on dedicated / demand (retries can exceed 1)
9p+3   ``<p>.accept_rate``     [0, 1]       accepted / sent on dedicated
9p+4   ``<p>.deferral_rate``   [0, 1]       deferred (4xx) / sent on dedicated
9p+5   ``<p>.reject_rate``     [0, 1]       rejected (5xx block) / sent on dedicated
9p+6   ``<p>.bounce_rate``     [0, 1]       10 x bounced / transmitted (10% bounces reads 1)
9p+7   ``<p>.complaint_rate``  [0, 1]       100 x complaints reported / delivered
9p+8   ``<p>.queue``           [0, 2]       log10(1 + queued messages) / 7
9P+0   ``pool.ips``            [0, 1]       dedicated IPs / max_ips
9P+1   ``pool.mean_ip_age``    [0, 1]       mean age of the dedicated IPs in days / 60
9P+2   ``time.progress``       [0, 1]       days since the warmup started / horizon_days
9P+3   ``time.weekday_sin``    [-1, 1]      sin(2 pi weekday / 7), Monday = 0
9P+4   ``time.weekday_cos``    [-1, 1]      cos(2 pi weekday / 7)
9P+5   ``time.hour``           [0, 1]       hour of day of the next decision / 24
=====  ======================  ===========  =====================================================

Then, where the layout has them (:class:`Layout`; the env's ``observation`` settings, a
bundle's ``observation.layout``), what the ESP knows of its own MTA, at ``M = 9P + 6``:

=====  ======================  ===========  =====================================================
M+0    ``mta.queue``           [0, 1]       1 when the MTA retries overflow on the dedicated IPs
                                            (``overflow: queue``), 0 when it sends it shared
M+1    ``mta.max_age``         [0, 1]       queued message lifetime in hours / 168
M+2    ``mta.retry_interval``  [0, 1]       hours between two attempts / 24
=====  ======================  ===========  =====================================================

and the ``K`` past periods, most recent first (``H = M + 3`` with the MTA inputs, else
``M``): ``history.k.<p>.<feature>`` at ``H + 9P(k-1) + 9p + i`` is provider feature ``i``
(the table above, same bounds) of the observation ``k`` decisions ago; zeros where that
decision came before the warmup started (an all-zero period encodes to zeros). Each
layout is a prefix of the full one, so a policy trained on fewer inputs reads its columns
from a fuller observation by name.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ipwarmup.encoding import (
    WEEKDAY_COS_TABLE,
    WEEKDAY_SIN_TABLE,
    features,
    log_inputs,
)

PROVIDER_FEATURES: tuple[tuple[str, float, float, str], ...] = (
    ("demand", 0.0, 2.0, "log10(1 + demand per hour) / 7"),
    ("cap", 0.0, 2.0, "log10(1 + dedicated pool cap per hour) / 8"),
    ("dedicated_share", 0.0, 2.0, "sent on dedicated / demand (retries can exceed 1)"),
    ("accept_rate", 0.0, 1.0, "accepted / sent on dedicated"),
    ("deferral_rate", 0.0, 1.0, "deferred (4xx) / sent on dedicated"),
    ("reject_rate", 0.0, 1.0, "rejected (5xx block) / sent on dedicated"),
    ("bounce_rate", 0.0, 1.0, "10 x bounced / transmitted (10% bounces reads 1)"),
    ("complaint_rate", 0.0, 1.0, "100 x complaints reported / delivered"),
    ("queue", 0.0, 2.0, "log10(1 + queued messages) / 7"),
)
GLOBAL_FEATURES: tuple[tuple[str, float, float, str], ...] = (
    ("pool.ips", 0.0, 1.0, "dedicated IPs / max_ips"),
    ("pool.mean_ip_age", 0.0, 1.0, "mean age of the dedicated IPs in days / 60"),
    ("time.progress", 0.0, 1.0, "days since the warmup started / horizon_days"),
    ("time.weekday_sin", -1.0, 1.0, "sin(2 pi weekday / 7), Monday = 0"),
    ("time.weekday_cos", -1.0, 1.0, "cos(2 pi weekday / 7)"),
    ("time.hour", 0.0, 1.0, "hour of day of the next decision / 24"),
)
MTA_FEATURES: tuple[tuple[str, float, float, str], ...] = (
    ("mta.queue", 0.0, 1.0, "1 when the MTA retries overflow on the dedicated IPs (queue)"),
    ("mta.max_age", 0.0, 1.0, "queued message lifetime in hours / 168"),
    ("mta.retry_interval", 0.0, 1.0, "hours between two attempts / 24"),
)
MAX_AGE_SCALE_HOURS = 168.0
"""The largest queue lifetime an MTA may have (a week), which ``mta.max_age`` reads as 1."""
RETRY_SCALE_HOURS = 24.0
"""The largest retry interval (a day), which ``mta.retry_interval`` reads as 1."""
MIN_RETRY_HOURS = 0.25
"""The shortest retry interval (RFC 5321 allows less; the simulator steps hours)."""
MAX_HISTORY_PERIODS = 14
"""Most past periods an observation may carry (two weeks of daily decisions)."""


@dataclass(frozen=True)
class Layout:
    """Which inputs beyond the last period an observation carries.

    Attributes:
        history_periods: ``K``, the past periods whose provider features follow.
        mta_inputs: whether the MTA's set-up (``mta.*``) is an input.
    """

    history_periods: int = 0
    mta_inputs: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.history_periods <= MAX_HISTORY_PERIODS:
            raise ValueError(
                f"history_periods: expected 0 to {MAX_HISTORY_PERIODS}, got {self.history_periods}"
            )

    @property
    def needs_v2(self) -> bool:
        """Whether a telemetry record must carry history or the MTA (schema version 2)."""
        return self.history_periods > 0 or self.mta_inputs


LAST_PERIOD = Layout()
"""The layout of one period's telemetry alone (every bundle before issue 10)."""


@dataclass
class Telemetry:
    """One period of what an ESP sees, batched: per-provider arrays are (B, P), others (B,).

    Counts are messages in the period; ``cap_per_hour`` is the dedicated pool's hourly cap
    per provider (the sum over IPs) and ``demand_per_hour`` the period's mean hourly demand.
    """

    demand_per_hour: np.ndarray
    cap_per_hour: np.ndarray
    demand: np.ndarray
    sent_dedicated: np.ndarray
    accepted: np.ndarray
    deferred: np.ndarray
    rejected: np.ndarray
    bounced: np.ndarray
    transmitted: np.ndarray
    complaints: np.ndarray
    delivered: np.ndarray
    queued: np.ndarray
    n_ips: np.ndarray
    mean_ip_age_days: np.ndarray
    day: np.ndarray
    weekday: np.ndarray
    hour: np.ndarray


def feature_names(provider_names: tuple[str, ...], layout: Layout = LAST_PERIOD) -> list[str]:
    """Return the name of every observation feature of ``layout``, in order."""
    per = [f"{p}.{name}" for p in provider_names for name, *_ in PROVIDER_FEATURES]
    names = per + [name for name, *_ in GLOBAL_FEATURES]
    if layout.mta_inputs:
        names += [name for name, *_ in MTA_FEATURES]
    for k in range(1, layout.history_periods + 1):
        names += [f"history.{k}.{name}" for name in per]
    return names


def obs_size(n_providers: int, layout: Layout = LAST_PERIOD) -> int:
    """Return the observation's length for ``n_providers`` in ``layout``."""
    mta = len(MTA_FEATURES) if layout.mta_inputs else 0
    return (9 + 9 * layout.history_periods) * n_providers + len(GLOBAL_FEATURES) + mta


@functools.cache
def _bounds(n_providers: int, layout: Layout = LAST_PERIOD) -> tuple[np.ndarray, np.ndarray]:
    rows = list(PROVIDER_FEATURES) * n_providers + list(GLOBAL_FEATURES)
    rows += list(MTA_FEATURES) if layout.mta_inputs else []
    rows += list(PROVIDER_FEATURES) * n_providers * layout.history_periods
    low = np.array([row[1] for row in rows], dtype=np.float32)
    high = np.array([row[2] for row in rows], dtype=np.float32)
    low.flags.writeable = high.flags.writeable = False  # shared by every call
    return low, high


@functools.cache
def _bounds64(n_providers: int) -> tuple[np.ndarray, np.ndarray]:
    low, high = (bound.astype(np.float64) for bound in _bounds(n_providers))
    low.flags.writeable = high.flags.writeable = False  # shared by every call
    return low, high


def feature_bounds(n_providers: int, layout: Layout = LAST_PERIOD) -> tuple[np.ndarray, np.ndarray]:
    """Return the (low, high) float32 bounds of the observation for ``n_providers``."""
    low, high = _bounds(n_providers, layout)
    return low.copy(), high.copy()


def mta_features(
    *, queue: np.ndarray | bool, max_age_hours: np.ndarray | float,
    retry_interval_hours: np.ndarray | float,
) -> np.ndarray:  # fmt: skip
    """Return the ``mta.*`` features (B, 3) float32 of MTA set-ups (scalars: one row).

    Clipped to [0, 1] like every feature: the simulator's and the record's bounds keep
    them inside (168 h and 24 h are both the largest allowed).
    """
    columns = np.broadcast_arrays(
        np.asarray(queue, dtype=np.float64),
        np.asarray(max_age_hours, dtype=np.float64) / MAX_AGE_SCALE_HOURS,
        np.asarray(retry_interval_hours, dtype=np.float64) / RETRY_SCALE_HOURS,
    )
    rows = np.stack([np.atleast_1d(c) for c in columns], axis=1)
    features: np.ndarray = np.clip(rows, 0.0, 1.0).astype(np.float32)
    return features


def encode(
    telemetry: Telemetry, *, horizon_days: int, max_ips: int,
    mta: np.ndarray | None = None, history: np.ndarray | None = None,
) -> np.ndarray:  # fmt: skip
    """Encode a batch of telemetry into float32 observations of shape (B, obs_dim).

    Two compiled loops around numpy's ``log10`` (:mod:`~ipwarmup.encoding`; ``log10``
    stays numpy's, whose SIMD version may differ from libm's in the last bit), the second
    writing every column, the MTA's and the past periods' included.

    Args:
        telemetry: the last period's telemetry.
        horizon_days: the episode's horizon (``time.progress``).
        max_ips: the largest pool (``pool.ips``).
        mta: :func:`mta_features` of each row (B, 3) or one row for all (1, 3) or (3,),
            for a layout with MTA inputs; None for one without.
        history: the past periods' provider features (B, K, 9P), most recent first (each
            the first ``9P`` values of that period's observation), for a layout with
            history; None for one without.

    Raises:
        ValueError: ``mta`` or ``history`` does not have those shapes.
    """
    t = telemetry
    n_rows, n_providers = t.demand.shape
    width = 9 * n_providers + len(GLOBAL_FEATURES)
    if mta is not None:
        mta = np.asarray(mta)
        if mta.shape == (len(MTA_FEATURES),):  # one row for every row, as numpy broadcast it
            mta = mta[None, :]
        if mta.ndim != 2 or mta.shape[0] not in (1, n_rows) or mta.shape[1] != len(MTA_FEATURES):
            raise ValueError(f"mta: expected shape (3,), (1, 3) or ({n_rows}, 3), got {mta.shape}")
        width += len(MTA_FEATURES)
    if history is not None:
        if history.ndim != 3 or history.shape[0] != n_rows or history.shape[2] != 9 * n_providers:
            raise ValueError(
                f"history: expected shape ({n_rows}, K, {9 * n_providers}), got {history.shape}"
            )
        width += history.shape[1] * 9 * n_providers
    obs = np.empty((n_rows, width), dtype=np.float32)
    logs = np.empty((n_rows, n_providers, 3))
    log_inputs(t.demand_per_hour, t.cap_per_hour, t.queued, logs)
    np.log10(logs, out=logs)
    low64, high64 = _bounds64(n_providers)
    whole = features(
        logs, t.demand, t.sent_dedicated, t.accepted, t.deferred, t.rejected, t.bounced,
        t.transmitted, t.complaints, t.delivered, t.n_ips, t.mean_ip_age_days, t.day,
        t.weekday, t.hour, float(horizon_days), float(max_ips), WEEKDAY_SIN_TABLE,
        WEEKDAY_COS_TABLE, low64, high64, mta, history, obs,
    )  # fmt: skip
    if not whole:  # a weekday between whole days: numpy's sine and cosine, as before
        low, high = _bounds(n_providers)
        angle = (2.0 * np.pi / 7.0) * t.weekday
        g = 9 * n_providers
        obs[:, g + 3] = np.minimum(np.maximum(np.sin(angle), low[g + 3]), high[g + 3])
        obs[:, g + 4] = np.minimum(np.maximum(np.cos(angle), low[g + 4]), high[g + 4])
    return obs


@dataclass
class ObservationView:
    """The plain quantities a rule-based policy reads back from a batch of observations."""

    demand_per_hour: np.ndarray  # (B, P)
    cap_per_hour: np.ndarray  # (B, P) dedicated pool cap
    deferral_rate: np.ndarray  # (B, P)
    reject_rate: np.ndarray  # (B, P)
    complaint_rate: np.ndarray  # (B, P) complaints / delivered
    bounce_rate: np.ndarray  # (B, P) bounced / transmitted
    sent_share: np.ndarray  # (B, P) sent on dedicated / demand
    n_ips: np.ndarray  # (B,)
    day: np.ndarray  # (B,) days since the warmup started


def read(
    observation: np.ndarray, *, n_providers: int, horizon_days: int, max_ips: int
) -> ObservationView:
    """Invert :func:`encode` where it can be inverted (up to float32 rounding and clipping).

    Reads the last period's features, the first ``9P + 6`` of any layout.
    """
    width = 9 * n_providers + 6
    obs = np.asarray(observation, dtype=np.float64)
    obs = obs.reshape(1, -1)[:, :width] if obs.ndim == 1 else obs[:, :width]
    per = obs[:, : 9 * n_providers].reshape(-1, n_providers, 9)
    rest = obs[:, 9 * n_providers :]
    return ObservationView(
        demand_per_hour=10.0 ** (7.0 * per[:, :, 0]) - 1.0,
        cap_per_hour=10.0 ** (8.0 * per[:, :, 1]) - 1.0,
        sent_share=per[:, :, 2],
        deferral_rate=per[:, :, 4],
        reject_rate=per[:, :, 5],
        bounce_rate=per[:, :, 6] / 10.0,
        complaint_rate=per[:, :, 7] / 100.0,
        n_ips=np.rint(rest[:, 0] * max_ips),
        day=rest[:, 2] * horizon_days,
    )
