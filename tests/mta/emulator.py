"""SMTP servers on loopback that play the inbox providers, driven by the simulator's model.

This is the ONE module of the MTA tests that uses the simulator's internals; it calls only
``ipwarmup.envs.config.default_providers`` (each provider's ``ProviderConfig``: its ranges,
``hold_utilization`` and ``pressure_decay_per_hour``), ``ipwarmup.envs.providers.
draw_providers`` and ``N_PROVIDER_UNIFORMS`` (the hidden tolerances from uniforms),
``update_allowance`` (the daily allowance update) and ``MAX_OVERSHOOT_PER_HOUR``.

The clock is compressed: a period of ``period_hours`` (24) lasts ``period_seconds`` real
seconds, and one real message stands for ``volume_scale`` messages. Per provider (one
dedicated IP), as the simulator does: accept up to the hidden allowance of the period
(``allowance per hour x 24 / volume_scale`` real messages), answer 4xx above it; every
virtual hour the attempts over the hourly allowance add to an ignored-deferral pressure that
decays by ``pressure_decay_per_hour``; past the provider's escalation threshold the IP is
blocked (5xx) for the drawn block duration, and its allowance halves. At each period end the
allowance moves with ``update_allowance`` (reputation held at the cold reputation: the
emulator does not model reputation). Replies are the providers' real texts (DOMAIN.md §2,
§8B), multi-line where the provider sends them so.
"""

from __future__ import annotations

import math
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from ipwarmup.envs.config import default_providers
from ipwarmup.envs.providers import (
    MAX_OVERSHOOT_PER_HOUR,
    N_PROVIDER_UNIFORMS,
    draw_providers,
    update_allowance,
)

DEFERRAL = {
    "gmail": "421-4.7.28 Gmail has detected an unusual rate of unsolicited mail originating "
    "from your IP address. To protect our users from spam, mail sent from your IP address has "
    "been temporarily rate limited.\r\n421 4.7.28 For more information, go to "
    "https://support.google.com/mail/?p=UnsolicitedRateLimitError - gsmtp",
    "microsoft": "451 4.7.650 The mail server [127.0.0.1] has been temporarily rate limited "
    "due to IP reputation. For e-mail delivery information, see https://postmaster.live.com "
    "(S775) [Name=Protocol Filter Agent][AGT=PFA]",
    "yahoo": "421 4.7.0 [TSS04] Messages from 127.0.0.1 temporarily deferred due to unexpected "
    "volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes",
    "apple": "421 4.7.1 Messages to 127.0.0.1 deferred due to excessive volume. Try again later",
    "other": "451 4.7.1 Too many messages from 127.0.0.1, try again later",
}
BLOCK = {
    "gmail": "550-5.7.28 Our system has detected an unusual rate of unsolicited mail "
    "originating from your IP address.\r\n550 5.7.28 To protect our users from spam, mail "
    "sent from your IP address has been blocked. - gsmtp",
    "microsoft": "550 5.7.1 Unfortunately, messages from [127.0.0.1] weren't sent. Please "
    "contact your Internet service provider since part of their network is on our block list "
    "(S3150).",
    "yahoo": "553 5.7.2 [TSS09] All messages from 127.0.0.1 will be permanently deferred; "
    "Retrying will NOT succeed. See https://postmaster.yahooinc.com/error-codes",
    "apple": "550 5.7.1 [CS01] Message rejected due to local policy",
    "other": "554 5.7.1 Service unavailable; client host [127.0.0.1] blocked",
}


@dataclass
class _Provider:
    index: int
    allowance_per_hour: float  # virtual messages
    pressure: float = 0.0
    blocked_until: float = 0.0
    hour: int = 0  # virtual hours since start that were processed
    period: int = 0
    hour_attempts: int = 0
    period_accepted: int = 0
    peak_hour_accepted: int = 0
    hour_accepted: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    blocks: int = 0


class ProviderModel:
    """The hidden state of every provider at one dedicated IP, on a compressed clock.

    Args:
        period_seconds: real seconds per period of ``period_hours``.
        volume_scale: messages each real message stands for.
        uniforms: (N_PROVIDER_UNIFORMS, P) draws in [0, 1] of the hidden tolerances.
        period_hours: the simulated length of a period.
    """

    def __init__(
        self,
        *,
        period_seconds: float,
        volume_scale: float,
        uniforms: np.ndarray,
        period_hours: int = 24,
    ) -> None:
        configs = default_providers()
        self.names = list(configs)
        self.configs = [configs[n] for n in self.names]
        self.draw = draw_providers(self.configs, uniforms[None])
        self.hour_seconds = period_seconds / period_hours
        self.period_hours = period_hours
        self.volume_scale = volume_scale
        self.lock = threading.Lock()
        self.start = time.monotonic()
        self.providers = {
            name: _Provider(j, float(self.draw.cold_allowance[0, j]))
            for j, name in enumerate(self.names)
        }

    @staticmethod
    def uniforms(value: float = 0.5, **overrides: dict[int, float]) -> np.ndarray:
        """Return uniforms all ``value``, with ``{provider: {row: u}}`` overrides."""
        u = np.full((N_PROVIDER_UNIFORMS, len(default_providers())), value)
        names = list(default_providers())
        for name, rows in overrides.items():
            for row, x in rows.items():
                u[row, names.index(name)] = x
        return u

    def _allowance_per_period(self, p: _Provider) -> float:
        return p.allowance_per_hour * self.period_hours / self.volume_scale

    def _advance(self, p: _Provider, now: float) -> None:
        """Process the virtual hours (and periods) that ended before ``now``."""
        j = p.index
        decay = float(self.configs[j].pressure_decay_per_hour)
        threshold = float(self.draw.escalation_threshold[0, j])
        current = int((now - self.start) // self.hour_seconds)
        while p.hour < current:
            hourly = p.allowance_per_hour / self.volume_scale
            over = min(max(p.hour_attempts / hourly - 1.0, 0.0), MAX_OVERSHOOT_PER_HOUR)
            p.pressure = p.pressure * decay + over
            p.peak_hour_accepted = max(p.peak_hour_accepted, p.hour_accepted)
            p.hour_attempts = p.hour_accepted = 0
            p.hour += 1
            hour_end = self.start + p.hour * self.hour_seconds
            if p.pressure > threshold and hour_end >= p.blocked_until:
                p.pressure = 0.0
                block_seconds = float(self.draw.block_hours[0, j]) * self.hour_seconds
                p.blocked_until = hour_end + block_seconds
                cold = float(self.draw.cold_allowance[0, j])
                p.allowance_per_hour = max(p.allowance_per_hour * 0.5, cold)
                p.blocks += 1
            if p.hour % self.period_hours == 0:
                peak = np.array([[p.peak_hour_accepted * self.volume_scale]])
                allowance = np.array([[p.allowance_per_hour]])
                reputation = np.full((1, 1), float(self.draw.cold_reputation[0, j]))
                draw = _column(self.draw, j)
                p.allowance_per_hour = float(
                    update_allowance(
                        allowance, peak, self.configs[j].hold_utilization, draw, reputation
                    )[0, 0]
                )
                p.period_accepted = p.peak_hour_accepted = 0
                p.period += 1

    def answer(self, name: str) -> str | None:
        """Return the reply to one RCPT TO (None: accept), counting it."""
        with self.lock:
            p = self.providers[name]
            now = time.monotonic()
            self._advance(p, now)
            p.hour_attempts += 1
            if now < p.blocked_until:
                p.counts["rejected"] += 1
                return BLOCK[name]
            if p.period_accepted + 1 > math.floor(self._allowance_per_period(p)):
                p.counts["deferred"] += 1
                return DEFERRAL[name]
            p.period_accepted += 1
            p.hour_accepted += 1
            p.counts["rcpt_accepted"] += 1
            return None

    def delivered(self, name: str) -> None:
        """Count a message whose DATA was accepted."""
        with self.lock:
            self.providers[name].counts["accepted"] += 1

    def counts(self) -> dict[str, dict[str, int]]:
        """Return every provider's answers so far."""
        with self.lock:
            return {n: dict(p.counts) | {"blocks": p.blocks} for n, p in self.providers.items()}


def _column(draw: Any, j: int) -> Any:
    """Return the draw restricted to provider ``j`` (every field of shape (1, 1))."""
    rows = {name: value[:, j : j + 1] for name, value in vars(draw).items()}
    return type(draw)(**rows)


class _Handler:
    def __init__(self, model: ProviderModel, name: str) -> None:
        self.model, self.name = model, name

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        reply = self.model.answer(self.name)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.model.delivered(self.name)
        return "250 2.0.0 OK accepted"


class Emulators:
    """One aiosmtpd server per provider on 127.0.0.1, sharing one :class:`ProviderModel`."""

    def __init__(self, model: ProviderModel) -> None:
        self.model = model
        self.controllers = {
            name: Controller(_Handler(model, name), hostname="127.0.0.1", port=free_port())
            for name in model.names
        }

    def __enter__(self) -> Emulators:
        for controller in self.controllers.values():
            controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for controller in self.controllers.values():
            controller.stop()

    def ports(self) -> dict[str, int]:
        """Return the port each provider listens on."""
        return {name: int(c.port) for name, c in self.controllers.items()}


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
