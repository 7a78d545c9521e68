"""Read a request body as strict JSON (RFC 8259), locating whatever breaks it."""

from __future__ import annotations

import json
from typing import Any, NoReturn

from ipwarmup.errors import TelemetryError


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
