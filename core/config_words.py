"""Word config problems: what a field expects, what came, and how to fix common slips.

Every problem reads ``path: expected <what>, got <value>``, so the wording is in one place for
pydantic's findings (:mod:`ipwarmup.config_errors`), our bounds and the file readers.
"""

from __future__ import annotations

import dataclasses
import difflib
import operator
import re
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Literal, get_args, get_origin

_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
_PLURALS = {bool: "true/false values", int: "integers", float: "numbers", str: "strings"}
_OPS: tuple[tuple[str, str, Callable[[float, float], bool]], ...] = (
    ("ge", ">=", operator.ge),
    ("gt", ">", operator.gt),
    ("le", "<=", operator.le),
    ("lt", "<", operator.lt),
)
# PyYAML (YAML 1.1) reads a float only with a dot and a signed exponent: 3e-4 stays text.
_SCIENTIFIC = re.compile(r"([-+]?)([0-9]*)(?:\.([0-9]*))?([eE])([-+]?)([0-9]+)")


@dataclasses.dataclass(frozen=True)
class Bounds:
    """A field's one-line doc and the bounds its values must meet."""

    doc: str
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    choices: tuple[object, ...] | None = None

    def bounds(self) -> list[tuple[str, Callable[[float, float], bool], float]]:
        """Return ``(symbol, operator, bound)`` for each bound set."""
        return [(sym, op, b) for name, sym, op in _OPS if (b := getattr(self, name)) is not None]

    def condition(self) -> str:
        """Return the bounds as text, such as ``>= 0 and <= 23``."""
        return " and ".join(f"{sym} {bound}" for sym, _, bound in self.bounds())

    def admits(self, x: float) -> bool:
        """Return whether ``x`` meets every bound."""
        return all(op(x, bound) for _, op, bound in self.bounds())


def split_optional(hint: Any) -> tuple[Any, bool]:
    """Return ``(X, True)`` for ``X | None`` and ``(hint, False)`` for anything else."""
    if get_origin(hint) in (typing.Union, types.UnionType):
        args = [arg for arg in get_args(hint) if arg is not type(None)]
        if len(args) == 1:
            return args[0], True
    return hint, False


def is_range(hint: Any) -> bool:
    """Return whether ``hint`` is a ``[low, high]`` range."""
    args = get_args(hint)
    return get_origin(hint) is tuple and args in ((float, float), (int, int))


def variadic(args: tuple[Any, ...]) -> bool:
    """Return whether tuple arguments ``args`` are ``(X, ...)``, a tuple of any length."""
    return len(args) == 2 and args[1] is Ellipsis


def describe(hint: Any) -> str:
    """Say what a value of type ``hint`` looks like in YAML."""
    inner, nullable = split_optional(hint)
    origin, args = get_origin(inner), get_args(inner)
    if origin is dict or (isinstance(inner, type) and inner not in _NAMES):
        text = "a mapping"  # a config class or a dict
    elif is_range(inner):
        text = "a [low, high] range"
    elif origin is tuple:
        items = _PLURALS.get(args[0], "values") if variadic(args) else f"{len(args)} values"
        text = f"a list of {items}"
    elif origin is Literal:
        text = "one of " + ", ".join(repr(choice) for choice in args)
    elif inner is Any:
        text = "any value"
    else:
        text = _NAMES[inner]
    return f"{text} or null" if nullable else text


def mismatch(where: str, hint: Any, raw: Any) -> str:
    """Word a type problem, with the YAML float hint or the closest literal choice."""
    inner, _ = split_optional(hint)
    message = f"expected {describe(hint)}, got {got(raw)}"
    match = _SCIENTIFIC.fullmatch(raw) if isinstance(raw, str) else None
    if inner in (int, float) and match is not None and (match[2] or match[3]):
        sign, whole, fraction, e, exp_sign, exponent = match.groups()
        fixed = f"{sign}{whole or '0'}.{fraction or '0'}{e}{exp_sign or '+'}{exponent}"
        message += f"; YAML reads {raw} as text, write {fixed}"
    elif get_origin(inner) is Literal and isinstance(raw, str):
        words = [choice for choice in get_args(inner) if isinstance(choice, str)]
        close = difflib.get_close_matches(raw, words, n=1)
        message += f"; did you mean {close[0]!r}?" if close else ""
    return at(where, message)


def unknown_key(where: str, key: object, valid: list[str]) -> str:
    """Word an unknown key, naming the closest valid one or else all of them."""
    close = difflib.get_close_matches(str(key), valid, n=1)
    advice = f"did you mean {close[0]!r}?" if close else "valid keys: " + ", ".join(valid)
    return f"{join(where, str(key))}: unknown key; {advice}"


def bound_problems(value: Any, hint: Any, meta: Bounds) -> list[str]:
    """Return what is wrong with a value of type ``hint`` against its bounds, unprefixed."""
    inner, _ = split_optional(hint)
    problems: list[str] = []
    if isinstance(value, tuple):
        if meta.bounds() and not all(item is None or meta.admits(item) for item in value):
            what = "a [low, high] range with values" if is_range(inner) else describe(inner)
            problems.append(f"expected {what} {meta.condition()}, got {show(value)}")
        if is_range(inner) and value[0] > value[1]:
            problems.append(f"expected low <= high, got {show(value)}")
    else:
        if meta.bounds() and not meta.admits(value):
            problems.append(f"expected {describe(inner)} {meta.condition()}, got {show(value)}")
        if meta.choices is not None and value not in meta.choices:
            allowed = ", ".join(repr(choice) for choice in meta.choices)
            problems.append(f"expected one of {allowed}, got {show(value)}")
    return problems


def join(where: str, name: str) -> str:
    """Return the dotted path of ``name`` under ``where``."""
    return f"{where}.{name}" if where else name


def at(where: str, message: str) -> str:
    """Prefix ``message`` with the path it is about, if any."""
    return f"{where}: {message}" if where else message


def show(value: Any) -> str:
    """Show a value as YAML-ish text, shortened to 80 characters."""
    text = _render(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _render(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "[" + ", ".join(map(_render, value)) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k!r}: {_render(v)}" for k, v in value.items()) + "}"
    return repr(value)


def got(value: Any) -> str:
    """Show a value that came in, with its type name."""
    return f"{show(value)} ({type(value).__name__})"
