"""A batch's rows on several threads: the compiled periods and the next day's start, by chunk.

Rows (envs) do not meet within a period, nor in a day's draws and layout: each row reads
and writes its own slices of the state, draws from its own generator, and a batch is
identical to single envs seeded alike. So a batch splits into contiguous chunks of rows,
and each chunk runs the very same sequential kernels on its slices
(:func:`~ipwarmup.envs.period_kernel.advance_period`,
:func:`~ipwarmup.envs.draws.draw_days`, :func:`~ipwarmup.envs.days.start_day_arrays`):
each row's arithmetic is the one-thread path's, operation for operation, so the results
are the same bits whatever the thread count (``tests/envs/test_threads.py``).

:func:`advance_rows` runs a call's periods and, at midnight, the next day's draws and
layout: the calling thread runs the first chunk, helper threads the others, each in one
compiled call that releases the GIL (:func:`advance_chunk`, ``nogil=True``). numba's own
``parallel=True`` was slower here: compiled so, the period's code ran ~10% slower even
on one thread, and a launch of its portable ``workqueue`` layer costs ~20 µs a chunk (the
calling thread waits while workers run); GNU OpenMP, the other layer installed, cannot
run in a process forked after it ran, and ``scripts/mutation`` forks.

A batch takes this path where :func:`chunks` says so: at least :data:`MIN_ROWS` rows (a
hand-over to a helper costs ~20-30 µs; a single env's step is ~40 µs), more than one
thread (:func:`set_threads`; by default ``NUMBA_NUM_THREADS``, else the machine's cores),
called from the main thread (helpers are not shared by concurrent callers); and where its
rows draw from distinct bit generators (two rows drawing from one generator would race;
the one-thread path draws them in row order). A forked child starts its own helpers.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numba
import numpy as np

from ipwarmup.envs.config import HOURS_PER_DAY
from ipwarmup.envs.days import start_day_arrays
from ipwarmup.envs.draws import draw_days
from ipwarmup.envs.period_kernel import HOURS_PER_STEP, advance_period

MIN_ROWS = 64
"""The fewest rows a batch needs to run on several threads (below it: one thread)."""

_threads = max(1, int(numba.config.NUMBA_NUM_THREADS))  # type: ignore[attr-defined]  # numba's
_helpers: tuple[ThreadPoolExecutor, int] | None = None  # the pool and its size


def set_threads(count: int) -> None:
    """Run batches on ``count`` threads from now on (``1``: the one-thread path only).

    Raises:
        ValueError: ``count`` is below 1.
    """
    global _threads
    if count < 1:
        raise ValueError(f"count: expected at least 1 thread, got {count}")
    _threads = count


def thread_count() -> int:
    """Return how many threads a batch of at least :data:`MIN_ROWS` rows runs on."""
    return _threads


def chunks(n_rows: int) -> int:
    """Return how many chunks of rows a batch of ``n_rows`` rows runs in (1: one thread).

    One per thread, or 1 (the one-thread kernels) below :data:`MIN_ROWS` rows, off the
    main thread, or with one thread. The generators' distinctness is the caller's to check
    (:attr:`RowGenerators.distinct <ipwarmup.envs.draws.RowGenerators.distinct>`).
    """
    if n_rows < MIN_ROWS or _threads == 1:
        return 1
    if threading.current_thread() is not threading.main_thread():
        return 1
    return min(_threads, n_rows)


def _forget_helpers() -> None:
    """Drop the helpers in a forked child: their threads stayed in the parent."""
    global _helpers
    _helpers = None


os.register_at_fork(after_in_child=_forget_helpers)


def _helper_pool(count: int) -> ThreadPoolExecutor:
    """Return a pool of at least ``count`` helper threads (started on first use)."""
    global _helpers
    if _helpers is None or _helpers[1] < count:
        if _helpers is not None:
            _helpers[0].shutdown(wait=True)
        _helpers = (ThreadPoolExecutor(count, thread_name_prefix="ipwarmup-rows"), count)
    return _helpers[0]


def advance_rows(
    n_chunks: int,
    generators: Any,
    uniforms: np.ndarray,
    normals: np.ndarray,
    layout: tuple[np.ndarray, ...],
    arguments: tuple[Any, ...],
) -> int:
    """Run :func:`advance_chunk` on ``n_chunks`` chunks of rows, on as many threads.

    ``arguments`` are :func:`~ipwarmup.envs.period_kernel.advance_period`'s; the rest is
    :func:`advance_chunk`'s. The calling thread runs the first chunk; it returns when every
    chunk has (an error in any is raised after all have ended). Returns the periods run.
    """
    n_rows = uniforms.shape[0]  # a row of draws per row of the batch
    bounds = [(c * n_rows // n_chunks, (c + 1) * n_rows // n_chunks) for c in range(n_chunks)]
    helpers = _helper_pool(n_chunks - 1)
    futures: list[Future[int]] = [
        helpers.submit(advance_chunk, lo, hi, generators, uniforms, normals, layout, *arguments)
        for lo, hi in bounds[1:]
    ]
    try:
        lo, hi = bounds[0]
        ran = advance_chunk(lo, hi, generators, uniforms, normals, layout, *arguments)
    finally:
        results = [future.exception() for future in futures]  # waits for every chunk
    for error in results:
        if error is not None:
            raise error
    return int(ran)


def _advance_chunk(
    lo: int,
    hi: int,
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
    """Run rows ``lo`` to ``hi`` (excluded) through the periods, and the next day's start.

    Runs :func:`~ipwarmup.envs.period_kernel.advance_period` on those rows' slices (the
    row axis is the first, but the second of ``draw``, ``period``, ``events``, ``out``
    and ``accounting``); when the last period ends at midnight, draws the rows' next day
    from ``generators`` into their rows of ``uniforms`` and ``normals`` and lays it out
    (:func:`~ipwarmup.envs.draws.draw_days`, then
    :func:`~ipwarmup.envs.days.start_day_arrays` with ``layout``, what
    :func:`~ipwarmup.envs.days.start_day_arguments` returns), as the simulator does after
    the period on one thread. Returns the periods run: every row shares the batch's
    clock, so every chunk runs as many. The other arguments are
    :func:`~ipwarmup.envs.period_kernel.advance_period`'s.
    """
    hours_per_step = int(settings[HOURS_PER_STEP])
    rows = np.arange(lo, hi)
    ran = advance_period(
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
    if (hour_of_day + ran * hours_per_step) % HOURS_PER_DAY == 0:
        draw_days(generators, rows, uniforms[lo:hi], normals[lo:hi])
        start_day_arrays(rows, uniforms[lo:hi], normals[lo:hi], *layout)
    return ran


advance_chunk: Callable[..., int] = numba.njit(cache=True, nogil=True)(_advance_chunk)
"""The compiled :func:`_advance_chunk`, which runs without the GIL."""
