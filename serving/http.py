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

Each endpoint is a :class:`~ipwarmup.serving.endpoint.Endpoint` (limits, reading, fairness).

This module imports FastAPI, Starlette and uvicorn, never torch, stable-baselines3 or MLflow.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import anyio
from fastapi import FastAPI

import ipwarmup
from ipwarmup.errors import TelemetryError
from ipwarmup.serving.endpoint import MEDIA_TYPE, Endpoint
from ipwarmup.serving.policy import ServedPolicy
from ipwarmup.serving.telemetry import json_schema

DECIDE_PATH = "/v1/decide"
BATCH_PATH = "/v1/decide/batch"
DEFAULT_MAX_BODY_BYTES = 65_536
"""A record for five providers is about 2 KB; 64 KiB leaves room for many more."""
DEFAULT_MAX_BATCH_BYTES = 16 << 20
DEFAULT_MAX_BATCH_RECORDS = 10_000
DEFAULT_BODY_TIMEOUT = 10.0
"""Seconds a client may take to send its body once its headers arrived."""

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


def create_app(
    policy: ServedPolicy,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES,
    max_batch_records: int = DEFAULT_MAX_BATCH_RECORDS,
    body_timeout: float = DEFAULT_BODY_TIMEOUT,
    workers: int = 2,
) -> FastAPI:
    """Build the HTTP application around a loaded policy.

    Args:
        policy: the bundle to serve, from :func:`~ipwarmup.serving.policy.load_policy`.
        max_body_bytes: the largest request body accepted; larger ones get a 413.
        max_batch_bytes: the same for ``/v1/decide/batch``.
        max_batch_records: the most records in one batch; more get a 422.
        body_timeout: seconds a client may take to send its body; slower ones get a 408.
        workers: threads deciding at once (the CPU work of a request runs in one).

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
        "format_version": policy.spec.format_version,
        "env": policy.manifest["env"],
        "guardrails": policy.guardrails.model_dump(),
        "guardrail_notes": policy.guardrail_notes,
        "signed_by": policy.spec.signature.public_key if policy.spec.signature else None,
    }
    schema = _inline_defs(json_schema(policy.providers, policy.max_ips, layout=policy.layout))

    @app.get("/healthz", summary="Say which model is loaded")
    async def healthz() -> dict[str, Any]:
        return health

    limiter = anyio.CapacityLimiter(workers)

    def decide_batch(payload: object) -> dict[str, Any]:
        if not isinstance(payload, list):
            raise TelemetryError(f"records: expected a JSON array of records, got "
                                 f"{type(payload).__name__}")  # fmt: skip
        if len(payload) > max_batch_records:
            raise TelemetryError(f"records: at most {max_batch_records} records, got "
                                 f"{len(payload)}")  # fmt: skip
        return {"decisions": policy.decide_batch(payload)}

    def decide_body(body: bytes) -> dict[str, Any] | None:
        decisions = policy.decide_batch_body(body, max_records=max_batch_records)
        return None if decisions is None else {"decisions": decisions}

    app.add_api_route(
        DECIDE_PATH,
        Endpoint(DECIDE_PATH, lambda record: policy.decide(record),
                  max_body_bytes=max_body_bytes, body_timeout=body_timeout, limiter=limiter,
                  providers=policy.providers, batch=False),
        methods=["POST"],
        summary="Decide the next period's caps and pool from one telemetry record",
        responses=_RESPONSES,
        openapi_extra={
            "requestBody": {"content": {MEDIA_TYPE: {"schema": schema}}, "required": True}
        },
    )  # fmt: skip
    app.add_api_route(
        BATCH_PATH,
        Endpoint(BATCH_PATH, decide_batch, max_body_bytes=max_batch_bytes,
                  body_timeout=body_timeout, limiter=limiter, providers=policy.providers,
                  batch=True, from_bytes=decide_body),
        methods=["POST"],
        summary="Decide for a fleet: a JSON array of records in, {decisions: [...]} out",
        description="Problems of record i are prefixed with [i]; one bad record decides none.",
        responses=_RESPONSES,
        openapi_extra={"requestBody": {"required": True, "content": {MEDIA_TYPE: {"schema": {
            "type": "array", "items": schema, "maxItems": max_batch_records}}}}},
    )  # fmt: skip
    return app


def __getattr__(name: str) -> Any:
    # ``serve`` lives in ipwarmup.serving.server (uvicorn and sockets); kept importable here.
    if name == "serve":
        from ipwarmup.serving.server import serve

        return serve
    raise AttributeError(name)
