"""The batched dynamics core: one warmup per row, stepped on an hourly inner clock.

Both the Gymnasium env (one row) and the VecEnv (many rows) are thin adapters over
:class:`Simulator`. Every env of a batch draws from its own ``numpy.random.Generator`` in
the same order as a single env would, so a batch is identical, step for step, to single
envs seeded alike. No I/O, no wall clock and no global RNG happen in a step.

Message flow in one hour, per provider (all quantities are fluid message counts):

* demand arrives; in ``queue`` mode the due part of the retry queue joins it;
* the MTA sends up to the dedicated pool's hourly cap, spread over the IPs by their caps;
* each IP's provider accepts up to its hidden allowance and defers the rest (4xx); a
  blocked IP's mail is rejected (5xx) and lost;
* what the caps held back and what was deferred goes to the shared pool (``shared`` mode,
  or when the pool is empty) or back to the retry queue, whose messages expire after
  ``max_age_hours``;
* sending far above the allowance builds "ignored-deferral pressure"; past the provider's
  escalation threshold the IP is blocked for days and loses reputation.

Once a day each IP's allowance and reputation move, the domain's reputation moves, the
shared pool may suffer a noisy-neighbour incident, and the next day's demand is drawn.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ipwarmup.actions import GROW, SHRINK
from ipwarmup.envs import providers as prov
from ipwarmup.envs import sender as snd
from ipwarmup.envs.config import HOURS_PER_DAY, EnvConfig
from ipwarmup.observation import Telemetry, encode

if TYPE_CHECKING:
    from ipwarmup.envs.privileged import PrivilegedView

ACCOUNTING_KEYS = (
    "demand",
    "delivered_inbox",
    "delivered_spam",
    "bounced",
    "rejected",
    "expired",
    "queued",
    "sent_dedicated",
    "sent_shared",
    "deferrals",
)
"""Cumulative counts reported in ``info["accounting"]``; see the env docstring."""

EXTRA_ACCOUNTING_KEYS = ("block_events", "ip_days", "accepted_dedicated")
OUTCOME_KEYS = ("inbox_dedicated", "inbox_shared", "delivered_dedicated", "delivered_shared")
"""Per-provider outcomes of the last period that the ESP cannot see (for reports)."""


@dataclass
class StepResult:
    """What one decision step returns for the whole batch."""

    observation: np.ndarray  # (B, obs_dim) float32
    reward: np.ndarray  # (B,) float64
    truncated: np.ndarray  # (B,) bool: the horizon is reached


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
        self.n_envs = b = n_envs
        self.provider_names = config.provider_names
        self.n_providers = p = len(self.provider_names)
        self.max_ips = k = config.pool.max_ips
        self.hours_per_step = config.decision_interval_hours
        self._queue_mode = config.mta.overflow == "queue"
        self._provider_list = list(config.providers.values())
        self._gamma_shapes = snd.gamma_shapes(config.scenario, self.provider_names)
        self._day_shapes = snd.day_shapes(config.scenario)
        self.codec = config.action_codec
        lags = []
        for pc in self._provider_list:
            lags.append(int(np.ceil(pc.complaint_feedback_delay_hours / self.hours_per_step)))
        self._complaint_lag = np.array(lags)
        self._complaint_feed = np.array([pc.complaint_feedback for pc in self._provider_list])
        # Placeholders until reset hands every row its own generator.
        self.generators: list[np.random.Generator] = [np.random.default_rng(0)] * b
        self._clock = 0  # global hour counter: ring-buffer slot of the retry queue

        z_bp = np.zeros((b, p))
        z_bkp = np.zeros((b, k, p))
        # Hidden draws (filled by reset).
        self.draw = prov.draw_providers(
            self._provider_list, np.full((b, prov.N_PROVIDER_UNIFORMS, p), 0.5)
        )
        self.sender = snd.draw_sender(
            config.scenario,
            self.provider_names,
            np.full((b, snd.N_SENDER_UNIFORMS), 0.5),
            np.ones((b, p)),
            np.full((b, p), 0.5),
        )
        self.shared_reputation = z_bp.copy()
        self.incident_until_day = np.zeros(b)
        self.incident_severity = np.zeros(b)
        # Clock and pool.
        self.hour = np.zeros(b, dtype=np.int64)  # hours since reset
        self.n_ips = np.zeros(b, dtype=np.int64)
        self.last_pool_change_hour = np.zeros(b)
        self.ip_age_days = np.zeros((b, k))
        # Per IP and provider.
        self.caps = z_bkp.copy()
        self.allowance = np.ones((b, k, p))  # positive even in empty slots: it divides
        self.reputation = z_bkp.copy()
        self.pressure = z_bkp.copy()
        self.blocked = np.zeros((b, k, p), dtype=bool)
        self.blocked_until = z_bkp.copy()
        self.recent_volume = z_bkp.copy()
        # Per provider.
        self.domain_reputation = z_bp.copy()
        self.queue_total = z_bp.copy()
        self._queue_cohorts = np.zeros((b, p, config.mta.max_age_hours))
        self._queue_scale = np.ones((b, p))
        self._complaint_history = np.zeros((b, int(self._complaint_lag.max()) + 1, p))
        # Today.
        self.demand_today = np.zeros((b, HOURS_PER_DAY, p))
        self.complaint_rate_today = np.zeros(b)
        self._day_sent = z_bkp.copy()
        self._day_peak = z_bkp.copy()
        self._day_overshoot = z_bkp.copy()
        self._day_shared = z_bp.copy()
        # Cumulative accounting.
        self.accounting = {key: np.zeros(b) for key in ACCOUNTING_KEYS + EXTRA_ACCOUNTING_KEYS}
        self.telemetry = self._empty_telemetry()
        self.outcome = {name: np.zeros((b, p)) for name in OUTCOME_KEYS}

    # ------------------------------------------------------------------ reset
    def reset(self, indices: np.ndarray, generators: list[np.random.Generator]) -> np.ndarray:
        """Start a new episode in rows ``indices``, each drawing from its generator.

        Returns the observations of those rows.
        """
        idx = np.asarray(indices, dtype=np.int64)
        cfg = self.config
        p = self.n_providers
        u_prov, u_send, gammas, u_dom, u_shared = [], [], [], [], []
        for i, rng in zip(idx, generators, strict=True):
            self.generators[i] = rng
            u_prov.append(rng.random((prov.N_PROVIDER_UNIFORMS, p)))
            u_send.append(rng.random(snd.N_SENDER_UNIFORMS))
            gammas.append(rng.standard_gamma(self._gamma_shapes))
            u_dom.append(rng.random(p))
            u_shared.append(rng.random(p))
        draw = prov.draw_providers(self._provider_list, np.array(u_prov))
        for name, rows in draw.rows(np.arange(len(idx))).items():
            getattr(self.draw, name)[idx] = rows
        sender = snd.draw_sender(
            cfg.scenario, self.provider_names, np.array(u_send), np.array(gammas), np.array(u_dom)
        )
        for name in vars(sender):
            getattr(self.sender, name)[idx] = getattr(sender, name)
        low, high = cfg.shared_pool.reputation
        self.shared_reputation[idx] = low + (high - low) * np.array(u_shared)
        self.incident_until_day[idx] = 0.0
        self.incident_severity[idx] = 0.0
        self.domain_reputation[idx] = sender.domain_reputation

        self.hour[idx] = 0
        self.n_ips[idx] = 0
        self.last_pool_change_hour[idx] = 0.0
        self.blocked[idx] = False
        self.pressure[idx] = 0.0
        self.caps[idx] = 0.0
        for _ in range(cfg.pool.initial_ips):
            self._add_ip(idx)
        self.queue_total[idx] = 0.0
        self._queue_cohorts[idx] = 0.0
        self._queue_scale[idx] = 1.0
        self._complaint_history[idx] = 0.0
        for values in self.accounting.values():
            values[idx] = 0.0
        self._start_day(idx)
        t = self.telemetry
        for name in vars(t):
            getattr(t, name)[idx] = 0.0
        # The customer arrives with a sending history on the shared pool: its expected
        # hourly volume is known before the first decision.
        t.demand_per_hour[idx] = self.demand_today[idx].mean(axis=1)
        self._refresh_pool_telemetry(idx)
        return self.observe()[idx]

    def _add_ip(self, rows: np.ndarray) -> None:
        """Append one cold IP to the pool of each env in ``rows`` (row indices)."""
        slot = self.n_ips[rows]
        # A new IP's cap covers all its traffic (SendGrid day 0: 20 per hour); it splits
        # across providers the way the sender's mail does.
        caps = self.config.pool.initial_hourly_cap_messages * self.sender.mix[rows]
        self.caps[rows, slot] = np.maximum(caps, self.config.pool.min_hourly_cap_messages)
        self.allowance[rows, slot] = self.draw.cold_allowance[rows]
        self.reputation[rows, slot] = self.draw.cold_reputation[rows]
        self.pressure[rows, slot] = 0.0
        self.blocked[rows, slot] = False
        self.blocked_until[rows, slot] = 0.0
        self.recent_volume[rows, slot] = 0.0
        self.ip_age_days[rows, slot] = 0.0
        self.n_ips[rows] += 1

    def _remove_ip(self, rows: np.ndarray) -> None:
        """Drop the newest IP of each env in ``rows`` (row indices); its history is lost."""
        slot = self.n_ips[rows] - 1
        self.caps[rows, slot] = 0.0
        self.blocked[rows, slot] = False
        self.n_ips[rows] -= 1

    # ------------------------------------------------------------------- days
    def _start_day(self, idx: np.ndarray) -> None:
        """Draw the day's randomness for rows ``idx`` and lay out their hourly demand."""
        cfg = self.config
        u = np.array([self.generators[i].random(snd.N_DAILY_UNIFORMS) for i in idx])
        day = self.hour[idx] // HOURS_PER_DAY
        sub = snd.SenderDraw(
            **{name: getattr(self.sender, name)[idx] for name in vars(self.sender)}
        )
        self.demand_today[idx] = snd.daily_demand(cfg.scenario, self._day_shapes, sub, day, u)
        noise = np.exp(0.3 * snd.normals(u[:, 4], u[:, 5]))
        self.complaint_rate_today[idx] = np.minimum(sub.complaint_rate * noise, 1.0)
        # Noisy neighbours (DESIGN: incidents lower the shared pool's placement for days).
        shared = cfg.shared_pool
        idle = self.incident_until_day[idx] <= day
        start = idle & (u[:, 6] < shared.incident_probability_per_day)
        lo, hi = shared.incident_duration_days
        until = day + lo + (hi - lo) * u[:, 7]
        lo, hi = shared.incident_severity
        severity = lo + (hi - lo) * u[:, 8]
        self.incident_until_day[idx] = np.where(start, until, self.incident_until_day[idx])
        self.incident_severity[idx] = np.where(
            start, severity, np.where(idle, 0.0, self.incident_severity[idx])
        )
        self._day_sent[idx] = 0.0
        self._day_peak[idx] = 0.0
        self._day_overshoot[idx] = 0.0
        self._day_shared[idx] = 0.0

    def _end_day(self) -> None:
        """Move allowance, reputation and domain reputation after a full day (all rows)."""
        d = self.draw
        sent = self._day_sent  # transmitted per IP and provider today
        active = (np.arange(self.max_ips)[None, :] < self.n_ips[:, None])[:, :, None]
        s = self.sender
        complaint = self.complaint_rate_today[:, None]
        bounce = s.bounce_rate[:, None]
        trap = s.trap_rate[:, None]
        quality = prov.daily_quality(complaint, bounce, trap, d)  # (B, P)
        floor = (d.cold_allowance * HOURS_PER_DAY)[:, None, :]
        recent = np.maximum(self.recent_volume, floor)
        ip_quality = (
            quality[:, None, :]
            - 0.3 * np.clip(self._day_overshoot / HOURS_PER_DAY, 0.0, 1.0)
            - prov.spike_penalty(sent, recent, d.spike_tolerance[:, None, :])
        )
        ip_quality = np.clip(ip_quality, 0.0, 1.0)
        expand = {
            name: getattr(d, name)[:, None, :]
            for name in ("cold_reputation", "reputation_volume", "memory_days")
        }
        reputation = prov.update_reputation(
            self.reputation,
            ip_quality,
            sent,
            expand["cold_reputation"],
            expand["reputation_volume"],
            expand["memory_days"],
        )
        draw_k = prov.ProviderDraw(**{name: v[:, None, :] for name, v in vars(d).items()})
        hold = np.array([pc.hold_utilization for pc in self._provider_list])
        allowance = prov.update_allowance(self.allowance, self._day_peak, hold, draw_k, reputation)
        self.reputation = np.where(active, np.clip(reputation, 0.0, 1.0), self.reputation)
        self.allowance = np.where(active, allowance, self.allowance)
        self.recent_volume = np.where(
            active, self.recent_volume + (sent - self.recent_volume) / 7.0, self.recent_volume
        )
        self.ip_age_days += active[:, :, 0]
        total = sent.sum(axis=1) + self._day_shared
        self.domain_reputation = prov.update_reputation(
            self.domain_reputation,
            quality,
            total,
            self.domain_reputation,
            d.reputation_volume,
            d.memory_days,
        )

    # ------------------------------------------------------------------ steps
    def step(self, actions: np.ndarray) -> StepResult:
        """Apply one decision per row and simulate ``decision_interval_hours`` hours."""
        a = np.clip(self.codec.check(actions), -1.0, 1.0)
        if a.shape[0] != self.n_envs:
            raise ValueError(
                f"Unexpected action shape {a.shape}: expected ({self.n_envs}, {self.codec.size})"
            )
        self._apply_actions(a)
        b, p = self.n_envs, self.n_providers
        queue_start = self.queue_total.sum(axis=1)
        period = _Period(b, self.max_ips, p)
        self._run_hours(period)
        reward = self._close_period(period, queue_start)
        if self.hour[0] % HOURS_PER_DAY == 0:
            self._end_day()
            self._start_day(np.arange(b))
        truncated = self.hour >= self.config.horizon_days * HOURS_PER_DAY
        self._refresh_pool_telemetry(np.arange(b))
        return StepResult(self.observe(), reward, truncated)

    def _apply_actions(self, a: np.ndarray) -> None:
        pool = self.config.pool
        factor = self.codec.cap_factors(a)
        active = np.arange(self.max_ips)[None, :] < self.n_ips[:, None]
        caps = self.codec.clip_caps(self.caps * factor[:, None, :])
        self.caps = np.where(active[:, :, None], caps, 0.0)
        may_change = (
            self.hour - self.last_pool_change_hour >= pool.pool_change_min_days * HOURS_PER_DAY
        )
        change = self.codec.pool_change(a)
        grow = may_change & (change == GROW) & (self.n_ips < self.max_ips)
        shrink = may_change & (change == SHRINK) & (self.n_ips > 0)
        if grow.any():
            self._add_ip(np.flatnonzero(grow))
        if shrink.any():
            self._remove_ip(np.flatnonzero(shrink))
        changed = grow | shrink
        self.last_pool_change_hour = np.where(changed, self.hour, self.last_pool_change_hour)

    def _period_routing(self) -> dict[str, np.ndarray]:
        """Precompute what stays fixed within a period unless a block starts or ends."""
        caps = self.caps
        total = caps.sum(axis=1)  # (B, P)
        weight = caps / np.maximum(total, 1e-300)[:, None, :]
        open_ = ~self.blocked
        accept = np.where(open_, self.allowance, 0.0)
        return {
            "total_cap": total,
            "weight": weight,
            "accept": accept,
            # Overshoot per message sent: ratio to the allowance (zero for blocked IPs,
            # whose mail is rejected, not deferred).
            "per_allowance": np.where(open_, weight / self.allowance, 0.0),
            "reject_share": (weight * self.blocked).sum(axis=1),
        }

    def _run_hours(self, period: _Period) -> None:
        # The hot loop: plain ufuncs with ``out=`` (np.clip and ndarray.sum cost a Python
        # wrapper each, which dominates at small batches).
        add, mul, minimum, maximum = np.add, np.multiply, np.minimum, np.maximum
        any_of = np.logical_or.reduce
        d = self.draw
        decay = d.pressure_decay[:, None, :]
        threshold = d.escalation_threshold[:, None, :]
        route = self._period_routing()
        to_shared = np.where(self.n_ips == 0, 1.0, 0.0 if self._queue_mode else 1.0)[:, None]
        retry = 1.0 / self.config.mta.retry_interval_hours
        any_blocked = bool(self.blocked.any())
        day_peak, day_overshoot, pressure = self._day_peak, self._day_overshoot, self.pressure
        first_hour = int(self.hour[0] % HOURS_PER_DAY)
        hours = slice(first_hour, first_hour + self.hours_per_step)
        period.demand = self.demand_today[:, hours, :].sum(axis=1)
        for h in range(self.hours_per_step):
            demand = self.demand_today[:, first_hour + h, :]
            if self._queue_mode:
                due = self.queue_total * retry
                wanted = demand + due
            else:
                wanted = demand
            sent = minimum(wanted, route["total_cap"])
            sent_ip = sent[:, None, :]
            accepted_ip = minimum(mul(sent_ip, route["weight"]), route["accept"])
            accepted = add.reduce(accepted_ip, axis=1)
            # IP weights sum to 1 only up to rounding: keep every outflow within `sent`.
            minimum(accepted, sent, out=accepted)
            add(period.accepted_ip, accepted_ip, out=period.accepted_ip)
            maximum(day_peak, accepted_ip, out=day_peak)
            over = mul(sent_ip, route["per_allowance"])
            over -= 1.0
            maximum(over, 0.0, out=over)
            minimum(over, prov.MAX_OVERSHOOT_PER_HOUR, out=over)
            add(day_overshoot, over, out=day_overshoot)
            mul(pressure, decay, out=pressure)
            add(pressure, over, out=pressure)
            add(period.sent, sent, out=period.sent)
            add(period.accepted, accepted, out=period.accepted)
            if any_blocked:  # mail sent to a blocked IP is rejected (5xx) and lost
                rejected = minimum(mul(sent, route["reject_share"]), sent - accepted)
                add(period.rejected, rejected, out=period.rejected)
            if self._queue_mode:
                leftover = wanted - accepted
                if any_blocked:
                    leftover -= rejected
                maximum(leftover, 0.0, out=leftover)
                add(period.shared, leftover * to_shared, out=period.shared)
                self._queue_hour(demand, due, wanted, leftover, to_shared, retry, period)
            # In shared mode the shared pool takes what dedicated did not: summed below.
            self._clock += 1
            if any_blocked:
                now = self.hour + (h + 1)
                ended = self.blocked & (self.blocked_until <= now[:, None, None])
                if ended.any():
                    self.blocked &= ~ended
                    route = self._period_routing()
                    any_blocked = bool(self.blocked.any())
            escalated = pressure > threshold
            if any_of(escalated, axis=None):
                self.hour += h + 1  # blocks are timed from the hour they start
                self._start_blocks(escalated, period)
                self.hour -= h + 1
                pressure = self.pressure
                route = self._period_routing()
                any_blocked = True
        self.hour += self.hours_per_step
        if not self._queue_mode:
            shared = period.demand - period.accepted - period.rejected
            period.shared = np.maximum(shared, 0.0)

    def _queue_hour(
        self,
        demand: np.ndarray,
        due: np.ndarray,
        wanted: np.ndarray,
        leftover: np.ndarray,
        to_shared: np.ndarray,
        retry: float,
        period: _Period,
    ) -> None:
        """Move one hour of the retry queue: retries leave, new deferrals join, old expire.

        The queue is a ring of hourly cohorts with a lazy common scale per provider: a
        retry takes the same share of every cohort (each queued message is equally likely
        to be due), which is one multiplication of the scale, not of the ring.
        """
        frac_left = np.divide(leftover, wanted, out=np.zeros_like(wanted), where=wanted > 0)
        stay = frac_left * (1.0 - to_shared)
        keep = 1.0 - min(retry, 1.0) * (1.0 - stay)
        joined = demand * stay
        scale = self._queue_scale * keep
        tiny = scale < 1e-200
        if tiny.any():  # fold the scale into the cohorts before it underflows
            rows, cols = np.nonzero(tiny)
            self._queue_cohorts[rows, cols] *= scale[rows, cols][:, None]
            scale[tiny] = 1.0
        self._queue_scale = scale
        slot = self._clock % self._queue_cohorts.shape[2]
        expired = self._queue_cohorts[:, :, slot] * scale
        self._queue_cohorts[:, :, slot] = joined / scale
        self.queue_total = np.maximum(self.queue_total * keep - expired + joined, 0.0)
        period.expired += expired

    def _start_blocks(self, escalated: np.ndarray, period: _Period) -> None:
        """Block the IPs whose ignored-deferral pressure crossed the provider's threshold.

        DOMAIN §2: "S3150 is what you get when you don't slow down after seeing 4xx"; Yahoo
        escalates TSS04 deferrals to TSS09 "permanently deferred". A block lasts days and
        costs reputation that the ~30-day memory takes weeks to restore.
        """
        d = self.draw
        new = escalated & ~self.blocked
        self.pressure[escalated] = 0.0
        if not new.any():
            return
        self.blocked |= new
        until = self.hour[:, None, None] + np.broadcast_to(d.block_hours[:, None, :], new.shape)
        self.blocked_until = np.where(new, until, self.blocked_until)
        penalty = d.block_penalty[:, None, :]
        self.reputation = np.where(new, np.maximum(self.reputation - penalty, 0.0), self.reputation)
        cold = d.cold_allowance[:, None, :]
        self.allowance = np.where(new, np.maximum(self.allowance * 0.5, cold), self.allowance)
        period.blocks += new.sum(axis=(1, 2))

    def _close_period(self, period: _Period, queue_start: np.ndarray) -> np.ndarray:
        """Split the period's traffic into outcomes, update accounting, return the reward."""
        s, d = self.sender, self.draw
        bounce = s.bounce_rate[:, None]
        period_day = (self.hour - 1) // HOURS_PER_DAY
        incident = np.where(self.incident_until_day > period_day, self.incident_severity, 0.0)
        shared_rep = self.shared_reputation - incident[:, None]
        base, sens = d.base_inbox_rate, d.placement_sensitivity
        ip_inbox = prov.inbox_rate(
            self.reputation, self.domain_reputation[:, None, :], base[:, None, :], sens[:, None, :]
        )
        shared_inbox = prov.inbox_rate(shared_rep, self.domain_reputation, base, sens)
        delivered_ip = period.accepted_ip * (1.0 - bounce[:, :, None])
        inbox_dedicated = (delivered_ip * ip_inbox).sum(axis=1)
        delivered_dedicated = delivered_ip.sum(axis=1)
        delivered_shared = period.shared * (1.0 - bounce)
        inbox_shared = delivered_shared * shared_inbox
        inbox = inbox_dedicated + inbox_shared
        delivered = delivered_dedicated + delivered_shared
        transmitted = period.accepted + period.shared
        bounced = transmitted * bounce
        complaints = inbox * self.complaint_rate_today[:, None]
        self._day_sent += period.accepted_ip
        self._day_shared += period.shared

        history = self._complaint_history
        history[:, 1:] = history[:, :-1]
        history[:, 0] = complaints
        reported = (
            history[:, self._complaint_lag, np.arange(self.n_providers)] * self._complaint_feed
        )

        acc = self.accounting
        acc["demand"] += period.demand.sum(axis=1)
        acc["delivered_inbox"] += inbox.sum(axis=1)
        acc["delivered_spam"] += (delivered - inbox).sum(axis=1)
        acc["bounced"] += bounced.sum(axis=1)
        acc["rejected"] += period.rejected.sum(axis=1)
        acc["expired"] += period.expired.sum(axis=1)
        acc["queued"] = self.queue_total.sum(axis=1)
        acc["sent_dedicated"] += period.sent.sum(axis=1)
        acc["accepted_dedicated"] += period.accepted.sum(axis=1)
        acc["sent_shared"] += period.shared.sum(axis=1)
        deferred = np.maximum(period.sent - period.accepted - period.rejected, 0.0)
        acc["deferrals"] += deferred.sum(axis=1)
        acc["block_events"] += period.blocks
        ip_days = self.n_ips * self.hours_per_step / HOURS_PER_DAY
        acc["ip_days"] += ip_days

        self.outcome = {
            "inbox_dedicated": inbox_dedicated,
            "inbox_shared": inbox_shared,
            "delivered_dedicated": delivered_dedicated,
            "delivered_shared": delivered_shared,
        }
        t = self.telemetry
        t.demand_per_hour = period.demand / self.hours_per_step
        t.demand = period.demand
        t.sent_dedicated = period.sent
        t.accepted = period.accepted
        t.deferred = deferred
        t.rejected = period.rejected
        t.bounced = bounced
        t.transmitted = transmitted
        t.complaints = reported
        t.delivered = delivered
        t.queued = self.queue_total.copy()

        w = self.config.reward
        handled = np.maximum(period.demand.sum(axis=1) + queue_start, 1.0)
        lost = (period.rejected + period.expired).sum(axis=1)
        reward: np.ndarray = (
            w.dedicated_inbox_weight * inbox_dedicated.sum(axis=1) / handled
            + w.shared_inbox_weight * inbox_shared.sum(axis=1) / handled
            - w.lost_penalty * lost / handled
            - w.block_penalty * period.blocks
            - w.ip_day_penalty * ip_days
        )
        return reward

    # ----------------------------------------------------------- observation
    def _empty_telemetry(self) -> Telemetry:
        b, p = self.n_envs, self.n_providers
        names = Telemetry.__dataclass_fields__
        per_env = {"n_ips", "mean_ip_age_days", "day", "weekday", "hour"}
        return Telemetry(**{n: np.zeros(b) if n in per_env else np.zeros((b, p)) for n in names})

    def _refresh_pool_telemetry(self, idx: np.ndarray) -> None:
        t = self.telemetry
        t.cap_per_hour[idx] = self.caps[idx].sum(axis=1)
        n = self.n_ips[idx]
        active = np.arange(self.max_ips)[None, :] < n[:, None]
        ages = (self.ip_age_days[idx] * active).sum(axis=1)
        t.n_ips[idx] = n
        t.mean_ip_age_days[idx] = np.divide(ages, n, out=np.zeros(len(idx)), where=n > 0)
        t.day[idx] = self.hour[idx] / HOURS_PER_DAY
        t.weekday[idx] = (self.sender.start_weekday[idx] + self.hour[idx] // HOURS_PER_DAY) % 7
        t.hour[idx] = self.hour[idx] % HOURS_PER_DAY

    def replicate(self, copies: int) -> Simulator:
        """Return a new simulator whose rows are each of this one's rows ``copies`` times.

        Row ``i * copies + j`` is copy ``j`` of row ``i``, generator state included, so
        every copy meets the same future demand and incidents as the original: a planner
        with the privileged channel can try alternatives with perfect foresight.
        """
        clone = Simulator(self.config, self.n_envs * copies)

        def repeat(value: object) -> object:
            if isinstance(value, np.ndarray) and value.ndim and value.shape[0] == self.n_envs:
                return np.repeat(value, copies, axis=0)
            return copy.deepcopy(value)

        for name, value in vars(self).items():
            if name in ("n_envs", "config"):
                continue
            if name == "generators":
                clone.generators = [copy.deepcopy(g) for g in value for _ in range(copies)]
            elif isinstance(value, dict):
                setattr(clone, name, {k: repeat(v) for k, v in value.items()})
            elif hasattr(value, "__dataclass_fields__"):
                fields_ = {k: repeat(v) for k, v in vars(value).items()}
                setattr(clone, name, type(value)(**fields_))
            else:
                setattr(clone, name, repeat(value))
        return clone

    def privileged(self) -> PrivilegedView:
        """Return a read-only view of the hidden state, for the oracle and for KPIs only.

        Policies that learn or serve never see it: it is what a real ESP cannot observe.
        """
        from ipwarmup.envs.privileged import PrivilegedView

        return PrivilegedView(self)

    def observe(self) -> np.ndarray:
        """Return the current observation of every row, shape (B, obs_dim), float32."""
        return encode(self.telemetry, horizon_days=self.config.horizon_days, max_ips=self.max_ips)


class _Period:
    """Accumulators of one decision period."""

    def __init__(self, b: int, k: int, p: int) -> None:
        self.demand = np.zeros((b, p))
        self.sent = np.zeros((b, p))
        self.accepted = np.zeros((b, p))
        self.rejected = np.zeros((b, p))
        self.shared = np.zeros((b, p))
        self.expired = np.zeros((b, p))
        self.accepted_ip = np.zeros((b, k, p))
        self.blocks = np.zeros(b)
