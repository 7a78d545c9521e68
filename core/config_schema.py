"""Declare config classes and check the values a config is built with.

A config class is a frozen dataclass deriving from :class:`Config` whose fields are declared
with :func:`setting` or :func:`setting_factory`: a default, a one-line doc and optional bounds
(``ge``, ``gt``, ``le``, ``lt``, ``choices``). Constructing a config checks every field against
its type and bounds, then the class's cross-field ``_check``, and raises every problem at once.
The wording of the problems lives here too, so that :mod:`ipwarmup.config`, which builds configs
from plain data, words its problems the same way.
"""

from __future__ import annotations

import dataclasses
import difflib
import numbers
import operator
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, NamedTuple, TypedDict, TypeVar, Unpack, get_args, get_origin

from ipwarmup.errors import ConfigError

T = TypeVar("T")

_KEY = "ipwarmup.setting"
INVALID: Any = object()  # a value that failed conversion; its problem is already recorded
MISSING: Any = object()  # a field without default
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
class _Setting:
    doc: str
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    choices: tuple[object, ...] | None = None

    def bounds(self) -> list[tuple[str, Callable[[float, float], bool], float]]:
        return [(sym, op, b) for name, sym, op in _OPS if (b := getattr(self, name)) is not None]

    def condition(self) -> str:
        return " and ".join(f"{sym} {bound}" for sym, _, bound in self.bounds())

    def admits(self, x: float) -> bool:
        return all(op(x, bound) for _, op, bound in self.bounds())


class _Bounds(TypedDict, total=False):
    ge: float | None
    gt: float | None
    le: float | None
    lt: float | None
    choices: Iterable[object] | None


class _Spec(NamedTuple):
    hint: Any
    setting: _Setting
    field: dataclasses.Field[Any]


def setting(
    default: T,
    doc: str,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    choices: Iterable[object] | None = None,
) -> T:
    """Declare a config field with an immutable default, a one-line doc and optional bounds.

    Args:
        default: the value when none is given; use :func:`setting_factory` for dicts.
        doc: one line saying what the field means, for generated docs and tables.
        ge: inclusive lower bound; for tuples and dicts it applies to every item.
        gt: exclusive lower bound.
        le: inclusive upper bound.
        lt: exclusive upper bound.
        choices: the only values a scalar field may take.

    Returns:
        A ``dataclasses.field`` carrying the doc and bounds in its metadata.
    """
    meta = _metadata(doc, ge=ge, gt=gt, le=le, lt=lt, choices=choices)
    return dataclasses.field(default=default, metadata=meta)


def setting_factory(factory: Callable[[], T], doc: str, **bounds: Unpack[_Bounds]) -> T:
    """Declare a config field whose default ``factory()`` builds, such as a dict or a config.

    Args:
        factory: called with no arguments for each new default.
        doc: one line saying what the field means.
        **bounds: ``ge``, ``gt``, ``le``, ``lt`` and ``choices``, as for :func:`setting`.

    Returns:
        A ``dataclasses.field`` with ``default_factory=factory``.
    """
    return dataclasses.field(default_factory=factory, metadata=_metadata(doc, **bounds))


def _metadata(doc: str, **bounds: Unpack[_Bounds]) -> dict[str, _Setting]:
    choices = bounds.get("choices")
    ge, gt, le, lt = bounds.get("ge"), bounds.get("gt"), bounds.get("le"), bounds.get("lt")
    return {_KEY: _Setting(doc, ge, gt, le, lt, None if choices is None else tuple(choices))}


class Config:
    """Validate a frozen config dataclass when it is constructed.

    Each field is checked against its type and bounds; when all are fine, :meth:`_check` adds
    cross-field problems. All problems are raised together as one ``ConfigError``. A subclass
    that defines ``__post_init__`` must call ``super().__post_init__()``.
    """

    def __post_init__(self) -> None:
        problems = [
            problem
            for name, spec in field_specs(type(self)).items()
            for problem in value_problems(name, spec.hint, getattr(self, name), spec.setting)
        ]
        if not problems:  # cross-field checks may rely on every field being valid
            problems = list(self._check())
        if problems:
            raise ConfigError(problems)

    def _check(self) -> list[str]:
        """Return cross-field problems, each starting with a field name; none by default."""
        return []

    @classmethod
    def docs(cls) -> dict[str, str]:
        """Return each field's one-line doc by field name, in declaration order."""
        return {name: spec.setting.doc for name, spec in field_specs(cls).items()}


def split_optional(hint: Any) -> tuple[Any, bool]:
    """Return ``(X, True)`` for ``X | None`` and ``(hint, False)`` for anything else."""
    if get_origin(hint) in (typing.Union, types.UnionType):
        args = [arg for arg in get_args(hint) if arg is not type(None)]
        if len(args) == 1:
            return args[0], True
    return hint, False


def is_config(hint: Any) -> bool:
    """Return whether ``hint`` is a config class."""
    return isinstance(hint, type) and issubclass(hint, Config)


def _is_range(hint: Any) -> bool:
    args = get_args(hint)
    return get_origin(hint) is tuple and args in ((float, float), (int, int))


def variadic(args: tuple[Any, ...]) -> bool:
    """Return whether tuple arguments ``args`` are ``(X, ...)``, a tuple of any length."""
    return len(args) == 2 and args[1] is Ellipsis


def _supported(hint: Any) -> bool:
    inner, _ = split_optional(hint)
    origin, args = get_origin(inner), get_args(inner)
    if origin is dict:
        return args[0] is str and _supported(args[1])
    if origin is tuple:
        return bool(args) and all(_supported(arg) for arg in args if arg is not Ellipsis)
    return origin is Literal or inner in _NAMES or inner is Any or is_config(inner)


def _declaration_problem(hint: Any, meta: _Setting) -> str:
    if not _supported(hint):
        return f"unsupported type {hint!r}"
    target, _ = split_optional(hint)
    if get_origin(target) is dict:
        target, nullable = split_optional(get_args(target)[1])
        if nullable and is_config(target):
            return "a dict of configs cannot hold None, as null removes an entry"
    is_tuple = get_origin(target) is tuple
    items = get_args(target) if is_tuple else (target,)
    if meta.bounds() and not all(split_optional(a)[0] in (int, float, ...) for a in items):
        return "bounds need a numeric type"
    if meta.choices is not None and (is_tuple or is_config(target)):
        return "choices need a scalar type"
    return ""


_SPECS: dict[type, dict[str, _Spec]] = {}


def field_specs(cls: type) -> dict[str, _Spec]:
    """Resolve and check each init field's type and setting, once per class."""
    if cls not in _SPECS:
        hints = typing.get_type_hints(cls)
        specs: dict[str, _Spec] = {}
        for f in (f for f in dataclasses.fields(cls) if f.init):
            meta = f.metadata.get(_KEY, _Setting(doc=""))
            problem = _declaration_problem(hints[f.name], meta)
            if problem:
                raise TypeError(f"{cls.__qualname__}.{f.name}: {problem}")
            specs[f.name] = _Spec(hints[f.name], meta, f)
        _SPECS[cls] = specs
    return _SPECS[cls]


def default_of(f: dataclasses.Field[Any]) -> Any:
    """Return the field's default, a fresh one from its factory, or ``MISSING``."""
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return MISSING


def conforms(hint: Any, value: Any) -> bool:
    """Return whether ``value`` is already of type ``hint``, strictly (no bool for int)."""
    inner, nullable = split_optional(hint)
    origin, args = get_origin(inner), get_args(inner)
    if inner is Any:
        return True
    if value is None:
        return nullable
    if is_config(inner):
        return isinstance(value, inner)
    if origin is dict:
        return isinstance(value, dict) and all(
            isinstance(k, str) and conforms(args[1], v) for k, v in value.items()
        )
    if origin is tuple:
        if not isinstance(value, tuple):
            return False
        if variadic(args):
            return all(conforms(args[0], item) for item in value)
        return len(value) == len(args) and all(map(conforms, args, value))
    if origin is Literal:
        return any(value == choice and type(value) is type(choice) for choice in args)
    if inner is bool:
        return type(value) is bool
    if inner in (int, float):
        kind = numbers.Integral if inner is int else numbers.Real
        return isinstance(value, kind) and not isinstance(value, bool)
    return isinstance(value, str)


def _describe(hint: Any) -> str:
    inner, nullable = split_optional(hint)
    origin, args = get_origin(inner), get_args(inner)
    if is_config(inner) or origin is dict:
        text = "a mapping"
    elif _is_range(inner):
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
    message = f"expected {_describe(hint)}, got {got(raw)}"
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


def value_problems(where: str, hint: Any, value: Any, meta: _Setting) -> list[str]:
    """Check a field's value against its type, then against its bounds."""
    if not conforms(hint, value):
        return [mismatch(where, hint, value)]
    inner, _ = split_optional(hint)
    if value is not None and get_origin(inner) is dict:
        items = [(f"{where}.{key}", item) for key, item in value.items()]
        return [
            p for at, item in items for p in _bound_problems(at, get_args(inner)[1], item, meta)
        ]
    return _bound_problems(where, inner, value, meta)


def _bound_problems(where: str, hint: Any, value: Any, meta: _Setting) -> list[str]:
    inner, _ = split_optional(hint)
    problems: list[str] = []
    if isinstance(value, tuple):
        if meta.bounds() and not all(item is None or meta.admits(item) for item in value):
            what = "a [low, high] range with values" if _is_range(inner) else _describe(inner)
            problems.append(f"expected {what} {meta.condition()}, got {_show(value)}")
        if _is_range(inner) and value[0] > value[1]:
            problems.append(f"expected low <= high, got {_show(value)}")
    elif value is not None:
        if meta.bounds() and not meta.admits(value):
            problems.append(f"expected {_describe(inner)} {meta.condition()}, got {_show(value)}")
        if meta.choices is not None and value not in meta.choices:
            allowed = ", ".join(repr(choice) for choice in meta.choices)
            problems.append(f"expected one of {allowed}, got {_show(value)}")
    return [at(where, problem) for problem in problems]


def join(where: str, name: str) -> str:
    """Return the dotted path of ``name`` under ``where``."""
    return f"{where}.{name}" if where else name


def at(where: str, message: str) -> str:
    """Prefix ``message`` with the path it is about, if any."""
    return f"{where}: {message}" if where else message


def _show(value: Any) -> str:
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
    return f"{_show(value)} ({type(value).__name__})"
