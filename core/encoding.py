"""The observation encoder's compiled loops and the constants they share with serving.

:func:`~ipwarmup.observation.encode` runs once per simulated period and once per served
decision, where numpy's fixed cost per call outweighed the arithmetic: it calls
:data:`log_inputs`, numpy's ``log10``, then :data:`features`, which writes every column of
the observation (the last period's features, the MTA's, the past periods'). The simulator
moves its past periods on with :data:`shift_history`. The serving kernel reads the same
scales and weekday tables (``serving/single.py``), so both encode alike. numpy and numba
only, like :mod:`~ipwarmup.observation`.
"""

from __future__ import annotations

from collections.abc import Callable

import numba
import numpy as np

AGE_SCALE_DAYS = 60.0
"""Days of mean IP age that ``pool.mean_ip_age`` reads as 1."""

RATE_SCALE = np.array([1.0, 1.0, 1.0, 1.0, 10.0, 100.0])
LOG_SCALE = np.array([1 / 7, 1 / 8, 1 / 7])

# cos and sin of each weekday's angle, by the very numpy expression ``encode`` evaluates
# (tuples for the serving kernel's constants, arrays for :data:`features`).
_WEEKDAY_ANGLE = (2.0 * np.pi / 7.0) * np.arange(7.0)
WEEKDAY_SIN: tuple[float, ...] = tuple(np.sin(_WEEKDAY_ANGLE).tolist())
WEEKDAY_COS: tuple[float, ...] = tuple(np.cos(_WEEKDAY_ANGLE).tolist())
RATE_SCALES: tuple[float, ...] = tuple(RATE_SCALE.tolist())
WEEKDAY_SIN_TABLE = np.sin(_WEEKDAY_ANGLE)
WEEKDAY_COS_TABLE = np.cos(_WEEKDAY_ANGLE)
LOG_SCALES: tuple[float, ...] = tuple(LOG_SCALE.tolist())


def _log_inputs(
    demand_per_hour: np.ndarray, cap_per_hour: np.ndarray, queued: np.ndarray, logs: np.ndarray
) -> None:
    """Write ``1 +`` each logged quantity into ``logs`` (B, P, 3): demand/hour, cap, queue."""
    n_rows, n_providers = demand_per_hour.shape
    for b in range(n_rows):
        for p in range(n_providers):
            logs[b, p, 0] = 1.0 + demand_per_hour[b, p]
            logs[b, p, 1] = 1.0 + cap_per_hour[b, p]
            logs[b, p, 2] = 1.0 + queued[b, p]


def _features(
    logs: np.ndarray,
    demand: np.ndarray,
    sent_dedicated: np.ndarray,
    accepted: np.ndarray,
    deferred: np.ndarray,
    rejected: np.ndarray,
    bounced: np.ndarray,
    transmitted: np.ndarray,
    complaints: np.ndarray,
    delivered: np.ndarray,
    n_ips: np.ndarray,
    mean_ip_age_days: np.ndarray,
    day: np.ndarray,
    weekday: np.ndarray,
    hour: np.ndarray,
    horizon_days: float,
    max_ips: float,
    weekday_sin: np.ndarray,
    weekday_cos: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    mta: np.ndarray | None,
    history: np.ndarray | None,
    obs: np.ndarray,
) -> bool:
    """Write every observation (B, width) into ``obs``; ``logs`` holds numpy's ``log10``.

    The last period's ``9P + 6`` features, then ``mta`` (one row for every row, or one per
    row; None: the layout has none) and ``history`` (B, K, 9P; None: none), copied as they
    are. The weekday's sine and cosine come from the tables numpy computed for weekdays
    0-6; returns False, leaving them unwritten, when some weekday is not one of those.
    """
    n_rows, n_providers = demand.shape
    scale = RATE_SCALE
    g = 9 * n_providers
    whole = True
    for b in range(n_rows):
        for p in range(n_providers):
            f = 9 * p
            sent = max(sent_dedicated[b, p], 1.0)
            features = (
                logs[b, p, 0] * LOG_SCALE[0],
                logs[b, p, 1] * LOG_SCALE[1],
                sent_dedicated[b, p] / max(demand[b, p], 1.0) * scale[0],
                accepted[b, p] / sent * scale[1],
                deferred[b, p] / sent * scale[2],
                rejected[b, p] / sent * scale[3],
                bounced[b, p] / max(transmitted[b, p], 1.0) * scale[4],
                complaints[b, p] / max(delivered[b, p], 1.0) * scale[5],
                logs[b, p, 2] * LOG_SCALE[2],
            )
            for i in range(9):
                # np.minimum(np.maximum(x, low), high), then the cast to float32.
                obs[b, f + i] = min(max(features[i], low[f + i]), high[f + i])
        w = weekday[b]
        if w == int(w) and 0 <= w < 7:
            sin, cos = weekday_sin[int(w)], weekday_cos[int(w)]
        else:
            whole = False
            sin, cos = 0.0, 0.0
        rest = (
            n_ips[b] / max_ips,
            mean_ip_age_days[b] / AGE_SCALE_DAYS,
            day[b] / horizon_days,
            sin,
            cos,
            hour[b] / 24.0,
        )
        for i in range(6):
            obs[b, g + i] = min(max(rest[i], low[g + i]), high[g + i])
        at = g + 6
        if mta is not None:
            row = 0 if mta.shape[0] == 1 else b
            for i in range(mta.shape[1]):
                obs[b, at + i] = mta[row, i]
            at += mta.shape[1]
        if history is not None:
            for k in range(history.shape[1]):
                for i in range(history.shape[2]):
                    obs[b, at + i] = history[b, k, i]
                at += history.shape[2]
    return whole


def _shift_history(history: np.ndarray, last: np.ndarray) -> None:
    """Make room for a new period in ``history`` (B, K, 9P): each past period moves one older.

    The oldest drops off, and the newest becomes the first ``9P`` values of ``last`` (B, W),
    the observation acted on: what ``history[:, 1:] = history[:, :-1]`` then
    ``history[:, 0] = last[:, :9P]`` do in numpy, in one compiled call.
    """
    n_rows, k, width = history.shape
    for b in range(n_rows):
        for j in range(k - 1, 0, -1):
            for i in range(width):
                history[b, j, i] = history[b, j - 1, i]
        for i in range(width):
            history[b, 0, i] = last[b, i]


log_inputs: Callable[..., None] = numba.njit(cache=True)(_log_inputs)
"""The compiled :func:`_log_inputs`."""
features: Callable[..., bool] = numba.njit(cache=True)(_features)
"""The compiled :func:`_features`."""
shift_history: Callable[[np.ndarray, np.ndarray], None] = numba.njit(cache=True)(_shift_history)
"""The compiled :func:`_shift_history`."""
