"""Serve a policy bundle over HTTP: one decision per telemetry record.

Endpoints:

- ``POST /v1/decide``: the body is one telemetry record (``application/json``, schema in
  :func:`ipwarmup.serving.telemetry.json_schema`); the answer is
  :meth:`ServedPolicy.decide`'s decision, or an error that is never a decision:

  ====  =====================================================================================
  code  when
  ====  =====================================================================================
  200   the record is valid: the decision
  400   the body is not strict JSON (RFC 8259): a syntax error, invalid UTF-8, ``NaN`` or
        ``Infinity`` (Python's ``json`` reads them, JSON has no such numbers) or a key
        repeated in one object (parsers disagree about which value wins); ``problems``
        says where
  413   the body is over ``max_body_bytes`` (by its ``Content-Length``, or as it arrives)
  415   the ``Content-Type`` is not ``application/json``: a client that sends a form or
        plain text has a bug that guessing would hide
  422   the JSON is not a valid record (a JSON array, a negative count, ...):
        ``problems`` lists every bad field, one line each, as ``TelemetryError`` does
  500   anything unexpected; the body is generic, the traceback goes to the log
  ====  =====================================================================================

  Every error body is ``{"error": "...", "problems": [...]}`` (``problems`` when there are
  details).
- ``GET /healthz``: the loaded model's name, providers, bundle format and env.
- ``GET /openapi.json`` and ``GET /docs``: the OpenAPI document, with the telemetry schema.

This module imports FastAPI, Starlette and uvicorn, never torch, stable-baselines3 or MLflow.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
from collections.abc import Mapping
from typing import Any, NoReturn

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

import ipwarmup
from ipwarmup.errors import ConfigError, TelemetryError
from ipwarmup.serving.bundle import PublicKey
from ipwarmup.serving.policy import ServedPolicy, load_policy
from ipwarmup.serving.telemetry import json_schema

logger = logging.getLogger(__name__)

DECIDE_PATH = "/v1/decide"
MEDIA_TYPE = "application/json"
DEFAULT_MAX_BODY_BYTES = 65_536
"""A record for five providers is about 2 KB; 64 KiB leaves room for many more."""

_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string", "description": "What went wrong, in one line."},
        "problems": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Every problem found, one line each, starting with where.",
        },
    },
}


def _error_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {MEDIA_TYPE: {"schema": _ERROR_SCHEMA}}}


_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The decision: per provider the next hourly cap with its reasons, the "
        "pool action (grow, hold or shrink) with its reasons, the guardrails that fired and "
        "the fallback used, if any.",
        "content": {MEDIA_TYPE: {"schema": {"type": "object"}}},
    },
    400: _error_response(
        "The body is not strict JSON: a syntax error, invalid UTF-8, NaN or Infinity, or a "
        "key repeated in one object."
    ),
    413: _error_response("The body is over the server's size limit."),
    415: _error_response("The Content-Type is not application/json."),
    422: _error_response("The JSON is not a valid telemetry record; every problem is listed."),
    500: _error_response("An unexpected failure; the details are in the server's log."),
}


class _NotStrictJSON(ValueError):
    """The body uses something RFC 8259 does not allow: NaN, Infinity, a repeated key."""


def _reject_constant(name: str) -> NoReturn:
    raise _NotStrictJSON(name)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _NotStrictJSON("repeated key")
    return obj


class _Constant:
    """Where Python's ``json`` read ``NaN``, ``Infinity`` or ``-Infinity``."""

    def __init__(self, name: str) -> None:
        self.name = name


class _Pairs(list[tuple[str, Any]]):
    """An object's key-value pairs as written, repeats included."""


def _strict_problems(tree: object) -> list[str]:
    """Say where a leniently parsed body breaks strict JSON: NaN, Infinity, repeated keys."""
    problems: list[str] = []
    stack: list[tuple[object, str]] = [(tree, "telemetry")]
    while stack:  # a loop, not recursion: the depth is the client's choice
        node, path = stack.pop()
        if isinstance(node, _Constant):
            problems.append(f"{path}: {node.name} is not a JSON number; send a finite number")
        elif isinstance(node, _Pairs):
            seen: set[str] = set()
            children = []
            for key, value in node:
                if key in seen:
                    problems.append(f"{path}.{key}: repeated key; send each key once")
                seen.add(key)
                children.append((value, f"{path}.{key}"))
            stack.extend(reversed(children))
        elif isinstance(node, list):
            stack.extend(reversed([(value, f"{path}[{i}]") for i, value in enumerate(node)]))
    return problems


def _syntax_problem(error: ValueError | RecursionError) -> str:
    if isinstance(error, json.JSONDecodeError):
        return f"line {error.lineno} column {error.colno} (char {error.pos}): {error.msg}"
    if isinstance(error, RecursionError):
        return "the JSON is nested too deeply"
    return str(error)  # such as an integer of more than 4,300 digits


class BodyError(TelemetryError):
    """A request body is not strict JSON (RFC 8259), so no record could be read at all.

    The service answers 400 for it, and 422 for any other :class:`TelemetryError`, which is
    about a record that was read.
    """


def parse_body(body: bytes) -> object:
    """Decode a request body as strict JSON (RFC 8259).

    Python's ``json`` also reads ``NaN``, ``Infinity`` and repeated keys (the last wins);
    JSON has neither such numbers nor a rule for repeats, so both are refused here. The
    fast path only notices them; a second, lenient parse of a refused body says where.

    Args:
        body: the raw bytes.

    Returns:
        The decoded value, of any JSON type.

    Raises:
        BodyError: the body is not UTF-8 or not strict JSON.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BodyError([f"byte {error.start}: not UTF-8 ({error.reason})"]) from error
    try:
        return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_unique_keys)
    except _NotStrictJSON:
        pass  # located below
    except (ValueError, RecursionError) as error:
        raise BodyError([_syntax_problem(error)]) from error
    try:
        tree = json.loads(text, parse_constant=_Constant, object_pairs_hook=_Pairs)
    except (ValueError, RecursionError) as error:  # a syntax error after the first NaN
        raise BodyError([_syntax_problem(error)]) from error
    raise BodyError(_strict_problems(tree) or ["not strict JSON"])


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


def _inline_defs(schema: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``schema`` with each ``{"$ref": "#/$defs/X"}`` replaced by ``$defs.X``.

    Inside an OpenAPI document a viewer resolves ``#/...`` from the document's root, not from
    the schema's ``$id``; an inlined schema reads the same everywhere.
    """
    defs = schema.get("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, Mapping):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/") and len(node) == 1:
                return inline(defs[ref.removeprefix("#/$defs/")])
            return {key: inline(value) for key, value in node.items() if key != "$defs"}
        if isinstance(node, list):
            return [inline(value) for value in node]
        return node

    inlined: dict[str, Any] = inline(schema)
    return inlined


def create_app(policy: ServedPolicy, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> FastAPI:
    """Build the HTTP application around a loaded policy.

    Args:
        policy: the bundle to serve, from :func:`~ipwarmup.serving.policy.load_policy`.
        max_body_bytes: the largest request body accepted; larger ones get a 413.

    Returns:
        The FastAPI application; run it with any ASGI server (:func:`serve` uses uvicorn).

    Raises:
        ValueError: ``max_body_bytes`` is below 1.
    """
    if max_body_bytes < 1:
        raise ValueError(f"max_body_bytes: expected at least 1, got {max_body_bytes}")
    app = FastAPI(
        title="ipwarmup serving",
        version=ipwarmup.__version__,
        description=(
            f"Warmup decisions of the policy bundle `{policy.name}` "
            f"(providers: {', '.join(policy.providers)}). Post one telemetry record per "
            f"period to `{DECIDE_PATH}`."
        ),
    )
    health = {
        "status": "ok",
        "model": policy.name,
        "providers": list(policy.providers),
        "format_version": policy.manifest.format_version,
        "env": policy.manifest.env.model_dump(),
        "guardrails": policy.guardrails.model_dump(),
        "guardrail_notes": policy.guardrail_notes,
        "signed_by": policy.manifest.signature.public_key if policy.manifest.signature else None,
    }
    schema = _inline_defs(json_schema(policy.providers, policy.max_ips))

    @app.get("/healthz", summary="Say which model is loaded")
    async def healthz() -> dict[str, Any]:
        return health

    @app.post(
        DECIDE_PATH,
        summary="Decide the next period's caps and pool from one telemetry record",
        responses=_RESPONSES,
        openapi_extra={
            "requestBody": {"content": {MEDIA_TYPE: {"schema": schema}}, "required": True}
        },
    )
    async def decide(request: Request) -> Response:
        declared = request.headers.get("content-length")
        if declared is not None:
            try:
                if int(declared) > max_body_bytes:
                    return _too_large(max_body_bytes)
            except ValueError:
                return _error(400, "bad Content-Length", [f"Content-Length: {declared!r}"])
        media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        if media_type != MEDIA_TYPE:
            return _error(415, f"expected Content-Type: {MEDIA_TYPE}, got {media_type!r}")
        body = await _read_body(request, max_body_bytes)
        if body is None:
            return _too_large(max_body_bytes)
        try:
            record = parse_body(body)
        except BodyError as error:
            return _error(400, "request body is not valid JSON", error.problems)
        try:
            # Inline, not in a thread pool: a decision is a fraction of a millisecond of
            # pure Python and numpy; a worker thread would add its hand-off, and the GIL
            # still runs one decision at a time.
            decision = policy.decide(record)
            return JSONResponse(decision)  # renders now; raises on NaN or infinity
        except TelemetryError as error:
            return _error(422, "invalid telemetry", error.problems)
        except Exception:
            logger.exception("%s failed on a %d-byte body", DECIDE_PATH, len(body))
            return _error(500, "internal error; the server log has the details")

    return app


def serve(
    model_path: str,
    host: str,
    port: int,
    *,
    public_key: PublicKey | None = None,
    guardrails: str | os.PathLike[str] | None = None,
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

    Raises:
        BundleError: the bundle is missing, tampered with or incompatible.
        ConfigError: ``host:port`` cannot be listened on (in use, not an address of this
            machine, a privileged port).
    """
    policy = load_policy(model_path, public_key=public_key, guardrails=guardrails)
    for note in policy.guardrail_notes:
        print(f"guardrails: {note}", file=sys.stderr)
    app = create_app(policy)
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
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        server.run(sockets=[listener])
