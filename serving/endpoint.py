"""One POST endpoint of the HTTP service: limits, the body's reading, the answer, fairness.

:class:`Endpoint` checks the declared size and the media type on the event loop, reads the
body within a time limit, and decides it there when it is small or in a worker thread
(``anyio``'s, at most ``workers`` at once) when it is large. An error answer waits in
proportion to the work it cost, so a client that sends bad records at full speed gets a
small share of the CPU (issue 11's fairness). :func:`render` writes an answer as JSON and
refuses NaN and infinity, which JSON cannot carry. :mod:`ipwarmup.serving.http` builds the
application from these.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import anyio
import anyio.to_thread
import orjson
from fastapi import Request
from fastapi.responses import JSONResponse, Response
from starlette.requests import ClientDisconnect

from ipwarmup.errors import TelemetryError
from ipwarmup.serving.body import BodyError, parse_body
from ipwarmup.serving.fleet import gc_paused
from ipwarmup.serving.telemetry import (
    COUNT_FIELDS,
    MTA_KEYS,
    POOL_KEYS,
    TIME_KEYS,
    TOP_KEYS,
    TOP_KEYS_V2,
)

logger = logging.getLogger("ipwarmup.serving.http")  # the service's log, as before the split

MEDIA_TYPE = "application/json"


def _error(status: int, message: str, problems: list[str] | None = None) -> JSONResponse:
    content: dict[str, Any] = {"error": message}
    if problems is not None:
        content["problems"] = problems
    return JSONResponse(content, status_code=status)


def _too_large(limit: int) -> JSONResponse:
    return _error(413, f"request body over {limit} bytes")


async def _read_body(request: Request, limit: int) -> bytes | None:
    """Return the body, or None as soon as it grows past ``limit`` (chunked uploads too)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _finite(content: object) -> bool:
    """Say whether every float in ``content`` is finite (JSON has no NaN or infinity)."""
    stack = [content]
    pop, extend = stack.pop, stack.extend
    while stack:  # a loop, not recursion: an echoed value may be deep
        node = pop()
        kind = type(node)
        # By frequency in a decision; exact types first, as isinstance costs more.
        if kind is str or node is None or kind is int or kind is bool:
            continue
        if kind is float:
            # NaN for NaN and for either infinity; mypy does not narrow on type(node).
            if node - node != 0.0:  # type: ignore[operator]
                return False
        elif kind is dict or isinstance(node, dict):
            extend(node.values())  # type: ignore[attr-defined]
        elif kind is list or isinstance(node, list | tuple):
            extend(node)  # type: ignore[arg-type]
        elif isinstance(node, float) and node - node != 0.0:
            return False
    return True


def render(status: int, content: object, *, checked: bool = False) -> tuple[int, bytes]:
    """Write an answer as JSON; raise ValueError on NaN or infinity (orjson writes null).

    ``checked``: the content's numbers were checked where they were made (a batch's
    decisions, by ``ServedPolicy._decisions``, at once), so they are not walked here.
    """
    if not checked and not _finite(content):
        raise ValueError("the answer holds NaN or infinity, which JSON cannot carry")
    try:
        data = orjson.dumps(content)
    except TypeError:  # what orjson does not write (a lone surrogate echoed from a key...)
        data = json.dumps(content, allow_nan=False, separators=(",", ":")).encode()
    return status, data


def record_keys(providers: tuple[str, ...], history: int | None = None) -> int:
    """Return how many keys a valid record for these providers holds, nested ones included.

    Version 1 when ``history`` is None; version 2 with ``history`` past periods.
    """
    period = len(providers) * (1 + len(COUNT_FIELDS))
    if history is None:
        return len(TOP_KEYS) + len(TIME_KEYS) + len(POOL_KEYS) + period
    return (
        len(TOP_KEYS_V2) + len(TIME_KEYS) + len(POOL_KEYS) + len(MTA_KEYS) + period * (1 + history)
    )


def _keys_if_valid(record: object, providers: tuple[str, ...]) -> int:
    """Return the keys ``record`` holds if it is valid (its version and history as parsed).

    -1 for what no valid record looks like (not an object, ``mta`` without ``history``, a
    ``history`` that is not an array): the strict path answers those.
    """
    if type(record) is not dict:
        return -1
    history = record.get("history")
    if history is None:
        return -1 if "mta" in record else record_keys(providers)
    return record_keys(providers, len(history)) if type(history) is list else -1


INLINE_BODY_BYTES = 8_192
"""Bodies up to this size are decided on the event loop (a thread hand-off would cost more
than the work); larger ones in a worker thread."""
ERROR_PENALTY = 20.0
"""An answer that is an error waits this many times the time its work took, without
holding the CPU: a client sending bad records at full speed gets a small share of it."""
LARGE_ERROR_PENALTY_S = 1.0
"""And a large body (over ``INLINE_BODY_BYTES``) that is an error waits this much more: its
reading and parsing cost the server more than the work measured; a working client never
sends one."""
MAX_PENALTY_S = 2.0


class Endpoint:
    """One POST endpoint: limits checked on the event loop, large bodies worked off it.

    Parsing, validating, deciding and rendering run in a worker thread (at most
    ``workers`` at once) when the body is large, so the event loop keeps accepting, reading
    and answering other clients; an error answer is delayed in proportion to what it
    cost, so hostile clients cannot crowd out normal ones.
    """

    def __init__(
        self, path: str, work: Any, *, max_body_bytes: int, body_timeout: float,
        limiter: anyio.CapacityLimiter, providers: tuple[str, ...], batch: bool,
        from_bytes: Any = None,
    ) -> None:  # fmt: skip
        self.path, self.work = path, work
        self.max_body_bytes, self.body_timeout, self.limiter = max_body_bytes, body_timeout, limiter
        self.providers, self.batch = providers, batch
        self.from_bytes = from_bytes
        """The batch's answer straight from the body's bytes, or None to parse it."""

    def _compute(self, body: bytes) -> tuple[int, bytes, float]:
        started = time.perf_counter()
        if self.batch:  # the parsed fleet too is thousands of acyclic containers
            with gc_paused():
                status, content = self._answer(body)
        else:
            status, content = self._answer(body)
        return status, content, time.perf_counter() - started

    def _fast_payload(self, body: bytes) -> object | None:
        """Read a body with orjson when it may hold only valid records; None otherwise.

        orjson reads strict JSON (it refuses NaN and Infinity) several times faster than
        ``json`` with the hook that finds repeated keys, but it keeps the last of repeated
        keys silently. A valid record holds exactly :func:`record_keys` keys (for its
        version and the number of past periods it carries) and no string with a colon, so
        when the body's colons number exactly the keys of its records, were they valid,
        and the records then validate, no key was dropped: that body is answered from this
        read. Any other body takes :func:`parse_body`, and its answer is the strict path's.
        """
        try:
            payload: object = orjson.loads(body)
        except (ValueError, RecursionError):  # orjson.JSONDecodeError is a ValueError
            return None
        if self.batch:
            records = payload if isinstance(payload, list) else None
        else:
            records = [payload] if isinstance(payload, dict) else None
        if records is None:
            return None
        expected = 0
        for record in records:
            keys = _keys_if_valid(record, self.providers)
            if keys < 0:
                return None
            expected += keys
        return payload if body.count(b":") == expected else None

    def _answer(self, body: bytes) -> tuple[int, bytes]:
        # A batch's numbers are checked by ServedPolicy._decisions, not walked in render.
        checked = self.batch
        if self.from_bytes is not None:
            try:
                content = self.from_bytes(body)
            except Exception:
                return self._failure(body)
            if content is not None:
                return render(200, content, checked=checked)
        payload = self._fast_payload(body)
        if payload is not None:
            try:
                return render(200, self.work(payload), checked=checked)
            except TelemetryError:
                pass  # answered below from the strict parse, with its messages
            except Exception:
                return self._failure(body)
        try:
            payload = parse_body(body)
        except BodyError as error:
            return render(400, {"error": "request body is not valid JSON",
                                 "problems": error.problems})  # fmt: skip
        try:  # refuses NaN and infinity: a 500
            return render(200, self.work(payload), checked=checked)
        except TelemetryError as error:
            return render(422, {"error": "invalid telemetry", "problems": error.problems})
        except Exception:
            return self._failure(body)

    def _failure(self, body: bytes) -> tuple[int, bytes]:
        logger.exception("%s failed on a %d-byte body", self.path, len(body))
        return render(500, {"error": "internal error; the server log has the details"})

    async def __call__(self, request: Request) -> Response:
        """Answer one request: its limits, its body, then its decision or error."""
        declared = request.headers.get("content-length")
        if declared is not None:
            try:
                if int(declared) > self.max_body_bytes:
                    return _too_large(self.max_body_bytes)
            except ValueError:
                return _error(400, "bad Content-Length", [f"Content-Length: {declared[:40]!r}"])
        media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        if media_type != MEDIA_TYPE:
            return _error(415, f"expected Content-Type: {MEDIA_TYPE}, got {media_type[:40]!r}")
        try:
            with anyio.fail_after(self.body_timeout):
                body = await _read_body(request, self.max_body_bytes)
        except TimeoutError:
            return JSONResponse(
                {"error": f"request body not received within {self.body_timeout:g} s"},
                status_code=408, headers={"Connection": "close"},
            )  # fmt: skip
        except ClientDisconnect:
            client = request.client
            logger.warning("%s: client %s hung up before its body arrived", self.path,
                           f"{client.host}:{client.port}" if client else "?")  # fmt: skip
            return Response(status_code=400)  # nobody reads it
        if body is None:
            return _too_large(self.max_body_bytes)
        if len(body) <= INLINE_BODY_BYTES:
            status, content, seconds = self._compute(body)
        else:
            status, content, seconds = await anyio.to_thread.run_sync(
                self._compute, body, limiter=self.limiter
            )
        if status >= 400:
            large = LARGE_ERROR_PENALTY_S if len(body) > INLINE_BODY_BYTES else 0.0
            await anyio.sleep(min(ERROR_PENALTY * seconds + large, MAX_PENALTY_S))
        return Response(content, status_code=status, media_type=MEDIA_TYPE)
