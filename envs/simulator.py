"""The batched dynamics core: one warmup per row, stepped on an hourly inner clock.

Both the Gymnasium env (one row) and the VecEnv (many rows) are thin adapters over
:class:`Simulator`, which runs each decision period over one explicit
:class:`~ipwarmup.envs.state.SimState` in one compiled call,
:func:`~ipwarmup.envs.period_kernel.advance_period`, composing the step functions:

* :func:`~ipwarmup.envs.pool.apply_actions`: the decision moves caps and the pool;
* :func:`~ipwarmup.envs.mta.run_hours`: the MTA sends hour by hour and providers answer
  (:mod:`~ipwarmup.envs.escalation` starts and lifts blocks);
* :func:`~ipwarmup.envs.outcomes.close_period`: placement, telemetry, accounting, and
  :func:`~ipwarmup.envs.reward.period_reward`;
* at midnight :func:`~ipwarmup.envs.days.end_day` (allowance, reputation, domain
  reputation move); then every row draws the next day from its generator, all rows in
  one compiled call (:func:`~ipwarmup.envs.draws.draw_days`, numpy's draws bit for bit),
  and :func:`~ipwarmup.envs.days.start_day` lays out its demand and incidents.

Each step function is callable from Python on a state (its tests call it so) and runs
the same compiled code the period runs.

Every env of a batch draws from its own ``numpy.random.Generator`` in the same order as a
single env would, so a batch is identical, step for step, to single envs seeded alike. No
I/O, no wall clock and no global RNG happen in a step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ipwarmup.encoding import shift_history
from ipwarmup.envs import period_kernel as pk
from ipwarmup.envs import providers as prov
from ipwarmup.envs import sender as snd
from ipwarmup.envs.config import HOURS_PER_DAY, EnvConfig
from ipwarmup.envs.days import start_day, start_day_arguments
from ipwarmup.envs.draws import RowGenerators, copy_generator, day_arrays, draw_days
from ipwarmup.envs.outcomes import PeriodBuffers, refresh_pool_telemetry
from ipwarmup.envs.period_kernel import advance_period
from ipwarmup.envs.pool import add_ip
from ipwarmup.envs.rows import RowConfigs
from ipwarmup.envs.state import (
    ACCOUNTING_KEYS,
    CONTINUATION_KEYS,
    EXTRA_ACCOUNTING_KEYS,
    OUTCOME_KEYS,
    SimState,
    accounting_block,
    allocate,
    take,
)
from ipwarmup.envs.threads import advance_rows, chunks
from ipwarmup.observation import Telemetry, encode, mta_features, obs_size

if TYPE_CHECKING:
    from ipwarmup.envs.privileged import PrivilegedView

__all__ = [
    "ACCOUNTING_KEYS",
    "CONTINUATION_KEYS",
    "EXTRA_ACCOUNTING_KEYS",
    "OUTCOME_KEYS",
    "Simulator",
    "StepResult",
]


@dataclass
class StepResult:
    """What one decision step returns for the whole batch."""

    observation: np.ndarray  # (B, obs_dim) float32
    reward: np.ndarray  # (B,) float64, the continuation's value included where truncated
    truncated: np.ndarray  # (B,) bool: the horizon is reached
    continuation_reward: np.ndarray  # (B,) the part of reward that values the continuation
    # (N, B) the counts after the step: the state's accounting block itself (its dict's
    # rows), so the next step and a reset rewrite it; copy what you keep.
    accounting: np.ndarray


# What Simulator.__init__ derives from the config alone: a copy of rows shares it.
_SHARED_SETTINGS = (
    "config", "provider_names", "n_providers", "max_ips", "hours_per_step", "codec",
    "_provider_list", "_hold", "_complaint_lag", "_complaint_feed", "_settings", "_mta",
)  # fmt: skip


class Simulator:
    """Batched warmup dynamics over ``n_envs`` independent rows.

    Args:
        config: the environment configuration shared by every row.
        n_envs: number of rows (environments) in the batch.
    """

    def __init__(self, config: EnvConfig, n_envs: int) -> None:
        if n_envs < 1:
            raise ValueError(f"n_envs: expected at least 1, got {n_envs}")
        self.config = config
        self.n_envs = n_envs
        self.provider_names = config.provider_names
        self.n_providers = p = len(self.provider_names)
        self.max_ips = config.pool.max_ips
        self.hours_per_step = config.decision_interval_hours
        self.codec = config.action_codec
        self._provider_list = list(config.providers.values())
        # What each row draws its episode from: the config's sender and providers, unless
        # reset hands the row a config of its own (a world's draw).
        self._rows = RowConfigs(config, n_envs)
        self._hold = np.array([pc.hold_utilization for pc in self._provider_list])
        lags = [
            int(np.ceil(pc.complaint_feedback_delay_hours / self.hours_per_step))
            for pc in self._provider_list
        ]
        self._complaint_lag = np.array(lags)
        self._complaint_feed = np.array([pc.complaint_feedback for pc in self._provider_list])
        self._settings = pk.config_settings(config)
        self._all_rows = np.arange(n_envs)
        layout = config.observation.layout
        mta = config.mta
        self._mta = (mta_features(queue=mta.overflow == "queue", max_age_hours=mta.max_age_hours,
                                  retry_interval_hours=mta.retry_interval_hours)
                     if layout.mta_inputs else None)  # fmt: skip
        # The ring of past periods: each row's last K observations' provider features, most
        # recent first; zeros before its warmup started.
        k = layout.history_periods
        self._history = np.zeros((n_envs, k, 9 * p), dtype=np.float32) if k else None
        self._last = np.zeros((n_envs, obs_size(p, layout)), dtype=np.float32)
        # The period's arrays, reused by every step (outcomes.PeriodBuffers); a copy of
        # rows gets its own at its first step.
        self._buffers: PeriodBuffers | None = None
        # Placeholders until reset hands every row its own generator and draws.
        self.generators = RowGenerators.repeat(np.random.default_rng(0), n_envs)
        self.state: SimState = allocate(
            n_envs=n_envs,
            max_ips=self.max_ips,
            n_providers=p,
            queue_hours=config.mta.max_age_hours,
            complaint_lag=int(self._complaint_lag.max()),
            draw=prov.draw_providers(
                self._provider_list, np.full((n_envs, prov.N_PROVIDER_UNIFORMS, p), 0.5)
            ),
            sender=snd.draw_sender(
                config.scenario,
                self.provider_names,
                np.full((n_envs, snd.N_SENDER_UNIFORMS), 0.5),
                np.ones((n_envs, p)),
                np.full((n_envs, p), 0.5),
            ),
        )

    # --------------------------------------------------------- read-only views
    @property
    def accounting(self) -> dict[str, np.ndarray]:
        """Cumulative message counts since each row's reset, each (B,)."""
        return self.state.accounting

    @property
    def telemetry(self) -> Telemetry:
        """What the ESP saw in the last period (an :class:`~ipwarmup.observation.Telemetry`).

        Its per-period arrays are the simulator's own, rewritten by the next step
        (:class:`~ipwarmup.envs.outcomes.PeriodBuffers`): copy what you keep.
        """
        return self.state.telemetry

    @property
    def outcome(self) -> dict[str, np.ndarray]:
        """The last period's hidden outcomes per provider, each (B, P), for reports.

        Rewritten by the next step, as :attr:`telemetry`: copy what you keep.
        """
        return self.state.outcome

    # ------------------------------------------------------------------ reset
    def reset(
        self,
        indices: np.ndarray,
        generators: list[np.random.Generator],
        configs: Sequence[EnvConfig] | None = None,
    ) -> np.ndarray:
        """Start a new episode in rows ``indices``, each drawing from its generator.

        Returns the observations of those rows.

        Args:
            indices: the rows to reset.
            generators: one generator per row of ``indices``.
            configs: one env config per row of ``indices`` whose sender and provider
                tolerances the row draws its episode from (and keeps until given another);
                None keeps each row's. The settings the whole batch shares (pool, MTA,
                reward, shared pool, horizon, the providers' names and fixed behaviour)
                must be the simulator's config's. A row given config ``c`` draws exactly
                what a single env of ``c`` seeded alike draws.

        Raises:
            ValueError: some rows, not all, are reset while the batch is not at midnight
                (every row of a batch shares one hour of the day); a config differs from
                the batch's in a setting the batch shares.
        """
        idx = np.asarray(indices, dtype=np.int64)
        st, cfg, p = self.state, self.config, self.n_providers
        if len(np.unique(idx)) == self.n_envs:
            st.hour_of_day = 0  # the whole batch starts afresh at midnight
        elif st.hour_of_day != 0:
            raise ValueError(
                f"indices: rows {idx.tolist()} can only be reset at midnight of the batch's "
                f"clock, which is at hour {st.hour_of_day}; every row of a batch shares one "
                "hour of the day, so reset all rows or wait for the day to end"
            )
        if configs is not None:
            self._rows.use(idx, configs)
        # Each row draws its providers' and sender's uniforms, its mix's gammas, then its
        # domain's and shared pool's uniforms, straight into its rows of three arrays: one
        # ``random(out=)`` call fills what consecutive calls drew (the same stream, in C
        # order). The gammas are one scalar call per provider: numpy draws an array of
        # shapes element by element in that order, the same numbers, but checks the array
        # in Python first (twice the time at five providers).
        n_uniforms = prov.N_PROVIDER_UNIFORMS * p
        first = np.empty((len(idx), n_uniforms + snd.N_SENDER_UNIFORMS))
        gammas = np.empty((len(idx), p))
        last = np.empty((len(idx), 2 * p))
        shapes: np.ndarray | None = None
        shape_list: list[float] = []
        for r, (i, rng) in enumerate(zip(idx.tolist(), generators, strict=True)):
            self.generators[i] = rng
            rng.random(out=first[r])
            row_shapes = self._rows.gamma_shapes(i)
            if row_shapes is not shapes:  # one scenario's shapes, listed once
                shapes, shape_list = row_shapes, row_shapes.tolist()
            gamma = rng.standard_gamma
            gammas[r] = [gamma(shape) for shape in shape_list]
            rng.random(out=last[r])
        u_prov = first[:, :n_uniforms].reshape(len(idx), prov.N_PROVIDER_UNIFORMS, p)
        self._rows.draw(st, idx, u_prov, first[:, n_uniforms:], gammas, last[:, :p])
        low, high = cfg.shared_pool.reputation
        st.shared_reputation[idx] = low + (high - low) * last[:, p:]
        st.shared_share[idx] = 0.0
        st.incident_until_day[idx] = 0.0
        st.incident_severity[idx] = 0.0
        st.domain_reputation[idx] = st.sender.domain_reputation[idx]

        st.hour[idx] = 0
        st.n_ips[idx] = 0
        # No change yet: the first decision may already size the pool (hold-shared drops
        # the initial IP before it sends a message).
        st.last_pool_change_hour[idx] = -np.inf
        st.blocked[idx] = False
        st.throttled[idx] = False
        st.throttled_until[idx] = -np.inf
        st.offences[idx] = 0.0
        st.pressure[idx] = 0.0
        st.caps[idx] = 0.0
        for _ in range(cfg.pool.initial_ips):
            add_ip(st, idx, cfg.pool)
        st.queue_total[idx] = 0.0
        st.queue_cohorts[idx] = 0.0
        st.queue_scale[idx] = 1.0
        st.complaint_history[idx] = 0.0
        # The last period's outcomes too: a new episode has had no period yet.
        for values in (*st.accounting.values(), *st.continuation.values(), *st.outcome.values()):
            values[idx] = 0.0
        self._start_day(idx)
        t = st.telemetry
        for name in vars(t):
            getattr(t, name)[idx] = 0.0
        if self._history is not None:
            self._history[idx] = 0.0
        # The customer arrives with a sending history on the shared pool: its expected
        # hourly volume is known before the first decision.
        t.demand_per_hour[idx] = st.demand_today[idx].mean(axis=1)
        refresh_pool_telemetry(st, idx)
        return self.observe()[idx]

    def _start_day(self, idx: np.ndarray) -> None:
        # Each row draws from its own generator (uniforms, then normals), straight into its
        # rows of two arrays, all rows in one compiled call.
        uniforms, normals = day_arrays(len(idx), self.n_providers)
        draw_days(self.generators.typed, idx, uniforms, normals)
        start_day(self.state, idx, uniforms, self.config, self._rows.shapes, normals)

    # ------------------------------------------------------------------ steps
    def step(self, actions: np.ndarray) -> StepResult:
        """Apply one decision per row and simulate ``decision_interval_hours`` hours.

        At the horizon the reward also counts the continuation (see :meth:`_continuation`).

        Raises:
            ValueError: an action is NaN or infinite (naming its index), or misshaped.
        """
        a = self.codec.check(actions)  # the compiled period clips to [-1, 1] (apply_actions)
        if a.shape[0] != self.n_envs:
            raise ValueError(
                f"Unexpected action shape {a.shape}: expected ({self.n_envs}, {self.codec.size})"
            )
        st, cfg = self.state, self.config
        if self._history is not None:  # the observation acted on becomes the latest past
            shift_history(self._history, self._last)
        accounting = accounting_block(st)  # read once: the period's and the env's info
        reward, _ = self._advance(a, accounting=accounting)  # pool and clock features too
        truncated = st.hour >= cfg.horizon_days * HOURS_PER_DAY
        continuation = np.zeros(self.n_envs)
        # count_nonzero: one C call where .any() goes through numpy's Python (~0.7 us more).
        if np.count_nonzero(truncated) and cfg.reward.continuation_days > 0:
            rows = np.flatnonzero(truncated)
            continuation[rows] = self._continuation(rows)
            reward = reward + continuation
        return StepResult(self.observe(), reward, truncated, continuation, accounting)

    def _advance(
        self,
        actions: np.ndarray,
        *,
        hold: bool = False,
        periods: int = 1,
        reward: np.ndarray | None = None,
        accounting: np.ndarray | None = None,
    ) -> tuple[np.ndarray, int]:
        """Simulate periods of every row under checked actions; return the reward and count.

        Runs ``periods`` periods, or fewer: it stops after a period that ends at midnight
        (and then draws the next day). ``hold``: the continuation's periods, caps held at
        what each provider accepts. Each period's reward is added to ``reward`` (zeros
        when None), which is returned with the number of periods run. ``accounting`` is
        :func:`~ipwarmup.envs.state.accounting_block` of the state when the caller has it.
        """
        st = self.state
        d, s, t = st.draw, st.sender, st.telemetry
        b, k, p = st.caps.shape
        buffers = self._buffers
        if buffers is None or not buffers.fits(st):
            buffers = self._buffers = PeriodBuffers(b, k, p)
        period, out = buffers.period, buffers.out  # the kernel zeroes the accumulators
        reward = np.zeros(b) if reward is None else reward
        accounting = accounting_block(st) if accounting is None else accounting
        # Rows on several threads, the next day's start included (envs.threads).
        n_chunks = chunks(b) if self.generators.distinct else 1
        arguments = (
            self._settings, st.hour_of_day, st.ring_clock, hold, periods, actions, self._hold,
            self._complaint_lag, self._complaint_feed, st.hour, st.n_ips,
            st.last_pool_change_hour, st.ip_age_days, st.caps, st.allowance, st.reputation,
            st.pressure, st.blocked, st.blocked_until, st.throttled, st.throttled_until,
            st.recent_volume, st.previous_day_sent, st.peak_history, st.domain_reputation,
            st.offences, st.queue_total, st.queue_cohorts, st.queue_scale,
            st.complaint_history, st.shared_reputation, st.shared_share,
            st.incident_until_day, st.incident_severity, st.demand_today,
            st.accept_noise_today, st.complaint_noise_today, st.complaint_rate_today,
            st.quality_today, st.day_sent, st.day_peak, st.day_overshoot, st.day_shared,
            s.daily_volume, s.bounce_rate, s.start_weekday, s.mix, prov.draw_block(d),
            period.per_provider,
            period.accepted_ip, period.per_row, out, accounting, reward,
            t.cap_per_hour, t.n_ips, t.mean_ip_age_days, t.day, t.weekday, t.hour,
        )  # fmt: skip
        if n_chunks > 1:
            layout = start_day_arguments(st, self.config, self._rows.shapes)
            typed = self.generators.typed
            ran = advance_rows(n_chunks, typed, *day_arrays(b, p), layout, arguments)
        else:
            ran = advance_period(*arguments)
        st.ring_clock += ran * self.hours_per_step
        st.hour_of_day = (st.hour_of_day + ran * self.hours_per_step) % HOURS_PER_DAY
        buffers.bind(st)
        if st.hour_of_day == 0 and n_chunks == 1:
            self._start_day(self._all_rows)
        return reward, ran

    def continuation_info(self, row: int, result: StepResult) -> dict[str, float]:
        """Return the continuation of an ended row for ``info``: its reward and counts."""
        return self.continuation_infos(np.array([row]), result)[0]

    def continuation_infos(self, rows: np.ndarray, result: StepResult) -> list[dict[str, float]]:
        """Return :meth:`continuation_info` of each of rows ``rows``, in order.

        Each column is read once for all rows (``tolist``: Python floats of the same values).
        """
        columns = [result.continuation_reward[rows].tolist()]
        columns += [self.state.continuation[key][rows].tolist() for key in CONTINUATION_KEYS]
        keys = ("reward", *CONTINUATION_KEYS)
        return [dict(zip(keys, values, strict=True)) for values in zip(*columns, strict=True)]

    def _continuation(self, rows: np.ndarray) -> np.ndarray:
        """Value what the warmup of rows ``rows`` leaves behind; return it per row.

        The same sender goes on for ``reward.continuation_days`` on the pool the warmup
        left, its mail counted per message as in the episode. The warmup is over, so the
        MTA's caps no longer hold it back: each day it sends what every provider accepts of
        each IP (reply-code automation converges there, DOMAIN §7 KumoMTA), pausing blocked
        IPs, and the pool size is held. What counts is what the warmup earned: a pool left
        cold keeps most mail on the shared pool, a blocked or damaged one pays after the
        horizon too, and mail still queued is delivered or expires. It runs on a copy (state
        and generators), so the episode's own draws and accounting are untouched; its counts
        go to ``state.continuation``.
        """
        clone = self._take_rows(rows, self.generators.copies(rows))
        before = {key: clone.state.accounting[key].copy() for key in CONTINUATION_KEYS}
        hold = np.zeros((len(rows), self.codec.size))
        steps = self.config.reward.continuation_days * HOURS_PER_DAY // self.hours_per_step
        value = np.zeros(len(rows))
        while steps > 0:  # a day's periods in one call
            _, ran = clone._advance(hold, hold=True, periods=steps, reward=value)
            steps -= ran
        for key in CONTINUATION_KEYS:
            self.state.continuation[key][rows] = clone.state.accounting[key] - before[key]
        return value

    # ----------------------------------------------------------- observation
    def observe(self) -> np.ndarray:
        """Return the current observation of every row, shape (B, obs_dim), float32."""
        self._last = encode(
            self.state.telemetry, horizon_days=self.config.horizon_days, max_ips=self.max_ips,
            mta=self._mta, history=self._history,
        )  # fmt: skip
        return self._last

    def replicate(self, copies: int) -> Simulator:
        """Return a new simulator whose rows are each of this one's rows ``copies`` times.

        Row ``i * copies + j`` is copy ``j`` of row ``i``, generator state included, so
        every copy meets the same future demand and incidents as the original: a planner
        with the privileged channel can try alternatives with perfect foresight.
        """
        rows = np.repeat(np.arange(self.n_envs), copies)
        generators = RowGenerators(
            [copy_generator(g) for g in self.generators for _ in range(copies)]
        )
        clone = self._take_rows(rows, generators)
        clone._last = self._last[rows]
        if self._history is not None:
            clone._history = self._history[rows]
        return clone

    def _take_rows(self, rows: np.ndarray, generators: RowGenerators) -> Simulator:
        """Return a simulator of this one's rows ``rows`` (copies) drawing from ``generators``.

        Its state and row configs are :func:`~ipwarmup.envs.state.take`'s copies; what
        ``__init__`` derives from the config alone, it shares with this one (read-only
        arrays), so nothing is drawn or allocated only to be replaced (``__init__`` at 256
        rows cost more than copying them). Its observation and history start at zeros.
        """
        clone = Simulator.__new__(Simulator)
        for name in _SHARED_SETTINGS:
            setattr(clone, name, getattr(self, name))
        clone.n_envs = n_envs = len(rows)
        clone._all_rows = np.arange(n_envs)
        clone._last = np.zeros((n_envs, self._last.shape[1]), dtype=np.float32)
        clone._history = None
        if self._history is not None:
            clone._history = np.zeros((n_envs, *self._history.shape[1:]), dtype=np.float32)
        clone.generators = generators
        clone._buffers = None
        clone.state = take(self.state, rows)
        clone._rows = self._rows.take(rows)
        return clone

    def privileged(self) -> PrivilegedView:
        """Return a read-only view of the hidden state, for the oracle and for KPIs only.

        Policies that learn or serve never see it: it is what a real ESP cannot observe.
        """
        from ipwarmup.envs.privileged import PrivilegedView

        return PrivilegedView(self)
