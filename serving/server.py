"""Run the HTTP application under uvicorn with limits a public control plane needs.

uvicorn bounds idle keep-alive connections, not a client that dribbles its request headers
a byte at a time (each byte cancels its keep-alive timer): :class:`_GuardedH11` closes a
connection whose headers are not complete ``header_timeout`` seconds after it opened or
after its previous answer. uvicorn's ``limit_concurrency`` answers 503 beyond
``max_connections``; the application itself times out slow bodies (408) and runs the CPU
work of a request off the event loop (:mod:`ipwarmup.serving.http`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from ipwarmup.errors import ConfigError
from ipwarmup.serving.bundle import PublicKey
from ipwarmup.serving.http import DECIDE_PATH, create_app
from ipwarmup.serving.policy import load_policy

logger = logging.getLogger("ipwarmup.serving.http")

DEFAULT_HEADER_TIMEOUT = 10.0
"""Seconds a connection may take to send a request's headers."""
DEFAULT_MAX_CONNECTIONS = 256
"""Open connections (and requests in progress) beyond which uvicorn answers 503."""


class _GuardedH11(H11Protocol):
    """uvicorn's h11 protocol plus a deadline for each request's headers."""

    header_timeout = DEFAULT_HEADER_TIMEOUT

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_timer: asyncio.TimerHandle | None = None
        self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(self.header_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            client = f"{self.client[0]}:{self.client[1]}" if self.client else "?"
            logger.warning("closed %s: no complete request headers within %g s", client,
                           self.header_timeout)  # fmt: skip
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.cycle is not None and not self.cycle.response_complete:
            self._disarm()  # the headers are in; the body has the app's own timeout

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()  # the next request's headers get the same deadline

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def protocol(header_timeout: float) -> type[asyncio.Protocol]:
    """Return the h11 protocol class with this header deadline."""
    guarded: type[asyncio.Protocol] = type(
        "GuardedH11", (_GuardedH11,), {"header_timeout": header_timeout}
    )
    return guarded


def serve(
    model_path: str,
    host: str,
    port: int,
    *,
    public_key: PublicKey | None = None,
    guardrails: str | os.PathLike[str] | None = None,
    header_timeout: float = DEFAULT_HEADER_TIMEOUT,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    **app_options: Any,
) -> None:
    """Load a bundle and serve it with uvicorn until interrupted (SIGINT or SIGTERM).

    The socket is bound before uvicorn starts, so an address that cannot be used is an
    error that says so, and the line announcing the service is printed only once it listens.

    Args:
        model_path: the bundle folder (``models/NAME``).
        host: the address to listen on; ``127.0.0.1`` keeps it on this machine.
        port: the TCP port.
        public_key: the ed25519 key the bundle must be signed by (see ``load_policy``).
        guardrails: the operator's guardrails file (YAML).
        header_timeout: seconds a connection may take to send a request's headers.
        max_connections: connections and requests in progress beyond which the answer is 503.
        app_options: passed to :func:`~ipwarmup.serving.http.create_app` (body limits and
            timeout, worker threads).

    Raises:
        BundleError: the bundle is missing, tampered with or incompatible.
        ConfigError: ``host:port`` cannot be listened on (in use, not an address of this
            machine, a privileged port), or the guardrails file is invalid.
    """
    policy = load_policy(model_path, public_key=public_key, guardrails=guardrails)
    for note in policy.guardrail_notes:
        print(f"guardrails: {note}", file=sys.stderr)
    app = create_app(policy, **app_options)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not the default 0: asyncio sets TCP_NODELAY only on sockets that say
    # they are TCP, and without it a keep-alive client waits ~40 ms per answer (Nagle's
    # algorithm holding the body back behind uvicorn's separate write of the headers).
    listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    with listener:
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((host, port))
        except OSError as error:
            reason = error.strerror or str(error)
            raise ConfigError(f"cannot listen on {host}:{port}: {reason}") from error
        where = f"[{host}]" if family == socket.AF_INET6 else host
        print(
            f"serving model {policy.name!r} on http://{where}:{port}{DECIDE_PATH} "
            f"(docs: http://{where}:{port}/docs)",
            file=sys.stderr,
            flush=True,
        )
        config = uvicorn.Config(
            app,
            log_level="warning",
            http=protocol(header_timeout),
            limit_concurrency=max_connections,
            timeout_keep_alive=5,
        )
        uvicorn.Server(config).run(sockets=[listener])
