"""A batch's rows on several threads: the compiled periods and the next day's start, by chunk.

Rows (envs) do not meet within a period, nor in a day's draws and layout: each row reads
and writes its own slices of the state, draws from its own generator, and a batch is
identical to single envs seeded alike. So a batch splits into contiguous chunks of rows,
one per thread, and each chunk runs the very same sequential kernels on its slices
(:func:`~ipwarmup.envs.period_kernel.advance_period`,
:func:`~ipwarmup.envs.draws.draw_days`, :func:`~ipwarmup.envs.days.start_day_arrays`):
each row's arithmetic is the sequential path's, operation for operation, so the results
are the same bits whatever the thread count (``tests/envs/test_threads.py``).

:func:`advance_rows` runs a call's periods and, at midnight, the next day's draws and
layout in one parallel launch (a launch costs ~20 µs with numba's workqueue). A batch
takes this path where :func:`chunks` says so: at least :data:`MIN_ROWS` rows (a single
env's step is ~40 µs), more than one numba thread, called from the main thread; and
where its rows draw from distinct bit generators (two rows drawing from one generator
would race; the one-thread path draws them in row order).
The thread count is numba's: ``NUMBA_NUM_THREADS`` (default: the machine's cores) or
:func:`numba.set_num_threads` (``1`` turns the path off).

numba's threading layer: unless ``NUMBA_THREADING_LAYER`` says otherwise, importing this
module asks for a fork-safe one (``forksafe``: TBB if installed, else numba's own
``workqueue``; GNU OpenMP, which numba would pick first, cannot run a parallel region in a
process forked after one, as ``scripts/mutation`` and ``multiprocessing`` fork). The
workqueue cannot serve two threads' launches at once, which the main-thread rule avoids.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

import numba
import numpy as np

from ipwarmup.envs.config import HOURS_PER_DAY
from ipwarmup.envs.days import start_day_arrays
from ipwarmup.envs.draws import draw_days
from ipwarmup.envs.period_kernel import HOURS_PER_STEP, advance_period

if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "forksafe"  # type: ignore[attr-defined]  # numba's

MIN_ROWS = 64
"""The fewest rows a batch needs to run on several threads (below it: one thread)."""


def chunks(n_rows: int) -> int:
    """Return how many chunks of rows a batch of ``n_rows`` rows runs on (1: one thread).

    One per numba thread, or 1 (the sequential kernels) below :data:`MIN_ROWS` rows, off
    the main thread, or with one thread. The generators' distinctness is the caller's to
    check (:attr:`RowGenerators.distinct <ipwarmup.envs.draws.RowGenerators.distinct>`).
    """
    if n_rows < MIN_ROWS or numba.config.DISABLE_JIT:  # type: ignore[attr-defined]  # numba's
        return 1
    if threading.current_thread() is not threading.main_thread():
        return 1
    return min(int(numba.get_num_threads()), n_rows)


def _advance_rows(
    n_chunks: int,
    generators: Any,
    uniforms: np.ndarray,
    normals: np.ndarray,
    layout: Any,
    settings: np.ndarray,
    hour_of_day: int,
    ring_clock: int,
    hold: bool,
    periods: int,
    actions: np.ndarray,
    hold_utilization: np.ndarray,
    complaint_lag: np.ndarray,
    complaint_feed: np.ndarray,
    hour: np.ndarray,
    n_ips: np.ndarray,
    last_pool_change_hour: np.ndarray,
    ip_age_days: np.ndarray,
    caps: np.ndarray,
    allowance: np.ndarray,
    reputation: np.ndarray,
    pressure: np.ndarray,
    blocked: np.ndarray,
    blocked_until: np.ndarray,
    throttled: np.ndarray,
    throttled_until: np.ndarray,
    recent_volume: np.ndarray,
    previous_day_sent: np.ndarray,
    peak_history: np.ndarray,
    domain_reputation: np.ndarray,
    offences: np.ndarray,
    queue_total: np.ndarray,
    queue_cohorts: np.ndarray,
    queue_scale: np.ndarray,
    complaint_history: np.ndarray,
    shared_reputation: np.ndarray,
    shared_share: np.ndarray,
    incident_until_day: np.ndarray,
    incident_severity: np.ndarray,
    demand_today: np.ndarray,
    accept_noise_today: np.ndarray,
    complaint_noise_today: np.ndarray,
    complaint_rate_today: np.ndarray,
    quality_today: np.ndarray,
    day_sent: np.ndarray,
    day_peak: np.ndarray,
    day_overshoot: np.ndarray,
    day_shared: np.ndarray,
    daily_volume: np.ndarray,
    bounce_rate: np.ndarray,
    start_weekday: np.ndarray,
    mix: np.ndarray,
    draw: np.ndarray,
    period: np.ndarray,
    accepted_ip: np.ndarray,
    events: np.ndarray,
    out: np.ndarray,
    accounting: np.ndarray,
    reward: np.ndarray,
    cap_per_hour: np.ndarray,
    telemetry_ips: np.ndarray,
    mean_ip_age_days: np.ndarray,
    telemetry_day: np.ndarray,
    weekday: np.ndarray,
    telemetry_hour: np.ndarray,
) -> int:
    """Run the periods, and the next day's start at midnight, in ``n_chunks`` row chunks.

    The chunks run on numba's threads (:func:`chunks` says how many), in one launch. Each
    runs :func:`~ipwarmup.envs.period_kernel.advance_period` on its rows' slices (the
    row axis is the first, but the second of ``draw``, ``period``, ``events``, ``out``
    and ``accounting``); when its last period ends at midnight, it draws its rows' next
    day from ``generators`` into its rows of ``uniforms`` and ``normals`` and lays it out
    (:func:`~ipwarmup.envs.draws.draw_days`, then
    :func:`~ipwarmup.envs.days.start_day_arrays` with ``layout``, what
    :func:`~ipwarmup.envs.days.start_day_arguments` returns), as the simulator does after
    the period on one thread. Every row shares the batch's clock, so every chunk stops
    after the same period: the count is the first chunk's. The rows' generators must be
    distinct objects. The other arguments are
    :func:`~ipwarmup.envs.period_kernel.advance_period`'s.
    """
    n_rows = hour.shape[0]
    hours_per_step = int(settings[HOURS_PER_STEP])
    rows = np.arange(n_rows)
    ran = np.zeros(n_chunks, dtype=np.int64)
    for chunk in numba.prange(n_chunks):
        lo, hi = chunk * n_rows // n_chunks, (chunk + 1) * n_rows // n_chunks
        ran[chunk] = advance_period(
            settings, hour_of_day, ring_clock, hold, periods, actions[lo:hi],
            hold_utilization, complaint_lag, complaint_feed, hour[lo:hi], n_ips[lo:hi],
            last_pool_change_hour[lo:hi], ip_age_days[lo:hi], caps[lo:hi], allowance[lo:hi],
            reputation[lo:hi], pressure[lo:hi], blocked[lo:hi], blocked_until[lo:hi],
            throttled[lo:hi], throttled_until[lo:hi], recent_volume[lo:hi],
            previous_day_sent[lo:hi], peak_history[lo:hi], domain_reputation[lo:hi],
            offences[lo:hi], queue_total[lo:hi], queue_cohorts[lo:hi], queue_scale[lo:hi],
            complaint_history[lo:hi], shared_reputation[lo:hi], shared_share[lo:hi],
            incident_until_day[lo:hi], incident_severity[lo:hi], demand_today[lo:hi],
            accept_noise_today[lo:hi], complaint_noise_today[lo:hi],
            complaint_rate_today[lo:hi], quality_today[lo:hi], day_sent[lo:hi],
            day_peak[lo:hi], day_overshoot[lo:hi], day_shared[lo:hi], daily_volume[lo:hi],
            bounce_rate[lo:hi], start_weekday[lo:hi], mix[lo:hi], draw[:, lo:hi],
            period[:, lo:hi], accepted_ip[lo:hi], events[:, lo:hi], out[:, lo:hi],
            accounting[:, lo:hi], reward[lo:hi], cap_per_hour[lo:hi], telemetry_ips[lo:hi],
            mean_ip_age_days[lo:hi], telemetry_day[lo:hi], weekday[lo:hi],
            telemetry_hour[lo:hi],
        )  # fmt: skip
        if (hour_of_day + ran[chunk] * hours_per_step) % HOURS_PER_DAY == 0:
            draw_days(generators, rows[lo:hi], uniforms[lo:hi], normals[lo:hi])
            start_day_arrays(rows[lo:hi], uniforms[lo:hi], normals[lo:hi], *layout)
    return int(ran[0])


advance_rows: Callable[..., int] = numba.njit(cache=True, parallel=True)(_advance_rows)
"""The compiled :func:`_advance_rows`."""
