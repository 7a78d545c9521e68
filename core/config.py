"""Build typed, validated configs from YAML files and ``--set`` overrides.

A config class is a frozen dataclass deriving from :class:`Config` whose fields are declared
with :func:`setting` or :func:`setting_factory`: a default, a one-line doc and optional bounds
(``ge``, ``gt``, ``le``, ``lt``, ``choices``). Constructing a config validates it.

:func:`load` builds a config from plain data (what ``yaml.safe_load`` returns):

* A mapping for a nested config is laid over the field's default; missing keys keep it.
* A mapping for ``dict[str, SomeConfig]`` is laid over the default dict: a named default entry
  is merged field by field, a new entry starts from the class defaults, ``null`` removes an
  entry and unnamed default entries stay. A dict of plain values is replaced whole.
* ``tuple[float, float]`` is a ``[low, high]`` range (bounds apply to both, ``low <= high`` is
  checked); ``tuple[float, ...]`` has any length. Bounds on tuples and dicts apply per item.
* Scalars are strict: ``bool`` takes only true/false, ``int`` rejects bools and fractions,
  ``float`` takes ints but not bools, ``str`` takes only text.
* ``dict[str, Any]`` holds plain data as written (a mapping of keyword arguments for a
  library, say), replaced whole; the owning config's ``_check`` validates it.

All problems in the tree are raised as one :class:`~ipwarmup.errors.ConfigError`, each with its
dotted path: ``env.mta.max_age_hours: expected a number > 0, got -1.0``.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import numbers
import operator
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple, TypedDict, TypeVar, Unpack, cast, get_args, get_origin

import yaml

from ipwarmup.errors import ConfigError

T = TypeVar("T")
C = TypeVar("C", bound="Config")

_KEY = "ipwarmup.setting"
_INVALID: Any = object()  # a value that failed conversion; its problem is already recorded
_MISSING: Any = object()  # a field without default
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
            for name, spec in _specs(type(self)).items()
            for problem in _value_problems(name, spec.hint, getattr(self, name), spec.setting)
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
        return {name: spec.setting.doc for name, spec in _specs(cls).items()}


def load(cls: type[C], data: Mapping[str, Any] | None, *, path: str = "") -> C:
    """Build a config from plain data, as ``yaml.safe_load`` returns it.

    Args:
        cls: the config class.
        data: field names to plain values; ``None`` means all defaults.
        path: dotted path of ``data`` in a larger document, put before every problem.

    Returns:
        The validated config.

    Raises:
        ConfigError: listing every unknown key, wrong type and bad value in the tree.
    """
    problems: list[str] = []
    result = _convert(cls, {} if data is None else data, path, problems, None)
    if problems:
        raise ConfigError(problems)
    return cast(C, result)


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Return a copy of ``data`` with each ``dotted.key=value`` override set, in order.

    Values are read with ``yaml.safe_load``, so ``[1, 2]``, ``true`` and ``3.0e-4`` work. Keys
    are checked later by :func:`load`, which names the closest valid one.

    Args:
        data: nested plain data; it is left unchanged.
        overrides: strings such as ``mta.max_age_hours=48``.

    Returns:
        A new nested dict.

    Raises:
        ConfigError: listing every malformed override and every key set inside a non-mapping.
    """
    result: dict[str, Any] = _copy_tree(data)
    problems: list[str] = []
    for override in overrides:
        key, sep, text = override.partition("=")
        parts = [part.strip() for part in key.split(".")]
        if not sep or "" in parts:
            problems.append(f"--set {override}: expected dotted.key=value")
            continue
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            problems.append(f"--set {override}: cannot read the value: {_yaml_reason(exc)}")
            continue
        node = result
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                where = ".".join(parts[: depth + 1])
                problems.append(f"--set {override}: {where} is {_got(child)}, not a mapping")
                break
            node = child
        else:
            node[parts[-1]] = value
    if problems:
        raise ConfigError(problems)
    return result


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML file whose top level is a mapping; an empty file gives ``{}``.

    Args:
        path: the file.

    Returns:
        The parsed mapping.

    Raises:
        ConfigError: naming the file if it is missing, unreadable, not YAML or not a mapping.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the file: {exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {_yaml_reason(exc)}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {_got(data)}")
    return data


def load_config(cls: type[C], path: str | Path | None, overrides: Sequence[str] = ()) -> C:
    """Load a config from an optional YAML file with ``dotted.key=value`` overrides on top.

    Args:
        cls: the config class.
        path: the YAML file, or ``None`` to start from the defaults.
        overrides: applied in order over the file's data.

    Returns:
        The validated config.

    Raises:
        ConfigError: for a bad file, a malformed override or an invalid config.
    """
    data = load_yaml(path) if path is not None else {}
    return load(cls, apply_overrides(data, overrides))


def to_dict(cfg: Config) -> dict[str, Any]:
    """Convert a config to plain data that :func:`load` turns back into an equal config.

    Tuples become lists; a default entry removed from a dict of configs comes out as ``None``.

    Args:
        cfg: the config.

    Returns:
        Nested dicts, lists and scalars, fit for ``yaml.safe_dump``.
    """
    return cast(dict[str, Any], _plain(cfg, None))


def flatten(
    cfg: Config | Mapping[str, Any], prefix: str = ""
) -> dict[str, str | float | int | bool]:
    """Flatten a config or nested mapping to dotted keys, for example for MLflow params.

    Args:
        cfg: a config, or plain data as :func:`to_dict` returns.
        prefix: dotted path put before every key.

    Returns:
        Scalars as they are; lists, ``None`` and empty mappings as JSON text, which reads back
        as an override value.
    """
    data = to_dict(cfg) if isinstance(cfg, Config) else cfg
    flat: dict[str, str | float | int | bool] = {}
    for key, value in data.items():
        name = _join(prefix, str(key))
        if isinstance(value, Config):
            value = to_dict(value)
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, name))
        elif isinstance(value, bool | int | float | str):
            flat[name] = value
        else:
            flat[name] = json.dumps(_plain(value, None), default=str)
    return flat


def _split_optional(hint: Any) -> tuple[Any, bool]:
    """Return ``(X, True)`` for ``X | None`` and ``(hint, False)`` for anything else."""
    if get_origin(hint) in (typing.Union, types.UnionType):
        args = [arg for arg in get_args(hint) if arg is not type(None)]
        if len(args) == 1:
            return args[0], True
    return hint, False


def _is_config(hint: Any) -> bool:
    return isinstance(hint, type) and issubclass(hint, Config)


def _is_range(hint: Any) -> bool:
    args = get_args(hint)
    return get_origin(hint) is tuple and args in ((float, float), (int, int))


def _variadic(args: tuple[Any, ...]) -> bool:
    return len(args) == 2 and args[1] is Ellipsis


def _supported(hint: Any) -> bool:
    inner, _ = _split_optional(hint)
    origin, args = get_origin(inner), get_args(inner)
    if origin is dict:
        return args[0] is str and _supported(args[1])
    if origin is tuple:
        return bool(args) and all(_supported(arg) for arg in args if arg is not Ellipsis)
    return origin is Literal or inner in _NAMES or inner is Any or _is_config(inner)


def _declaration_problem(hint: Any, meta: _Setting) -> str:
    if not _supported(hint):
        return f"unsupported type {hint!r}"
    target, _ = _split_optional(hint)
    if get_origin(target) is dict:
        target, nullable = _split_optional(get_args(target)[1])
        if nullable and _is_config(target):
            return "a dict of configs cannot hold None, as null removes an entry"
    is_tuple = get_origin(target) is tuple
    items = get_args(target) if is_tuple else (target,)
    if meta.bounds() and not all(_split_optional(a)[0] in (int, float, ...) for a in items):
        return "bounds need a numeric type"
    if meta.choices is not None and (is_tuple or _is_config(target)):
        return "choices need a scalar type"
    return ""


_SPECS: dict[type, dict[str, _Spec]] = {}


def _specs(cls: type) -> dict[str, _Spec]:
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


def _default_of(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return _MISSING


def _conforms(hint: Any, value: Any) -> bool:
    inner, nullable = _split_optional(hint)
    origin, args = get_origin(inner), get_args(inner)
    if inner is Any:
        return True
    if value is None:
        return nullable
    if _is_config(inner):
        return isinstance(value, inner)
    if origin is dict:
        return isinstance(value, dict) and all(
            isinstance(k, str) and _conforms(args[1], v) for k, v in value.items()
        )
    if origin is tuple:
        if not isinstance(value, tuple):
            return False
        if _variadic(args):
            return all(_conforms(args[0], item) for item in value)
        return len(value) == len(args) and all(map(_conforms, args, value))
    if origin is Literal:
        return any(value == choice and type(value) is type(choice) for choice in args)
    if inner is bool:
        return type(value) is bool
    if inner in (int, float):
        kind = numbers.Integral if inner is int else numbers.Real
        return isinstance(value, kind) and not isinstance(value, bool)
    return isinstance(value, str)


def _describe(hint: Any) -> str:
    inner, nullable = _split_optional(hint)
    origin, args = get_origin(inner), get_args(inner)
    if _is_config(inner) or origin is dict:
        text = "a mapping"
    elif _is_range(inner):
        text = "a [low, high] range"
    elif origin is tuple:
        items = _PLURALS.get(args[0], "values") if _variadic(args) else f"{len(args)} values"
        text = f"a list of {items}"
    elif origin is Literal:
        text = "one of " + ", ".join(repr(choice) for choice in args)
    elif inner is Any:
        text = "any value"
    else:
        text = _NAMES[inner]
    return f"{text} or null" if nullable else text


def _mismatch(where: str, hint: Any, raw: Any) -> str:
    inner, _ = _split_optional(hint)
    message = f"expected {_describe(hint)}, got {_got(raw)}"
    match = _SCIENTIFIC.fullmatch(raw) if isinstance(raw, str) else None
    if inner in (int, float) and match is not None and (match[2] or match[3]):
        sign, whole, fraction, e, exp_sign, exponent = match.groups()
        fixed = f"{sign}{whole or '0'}.{fraction or '0'}{e}{exp_sign or '+'}{exponent}"
        message += f"; YAML reads {raw} as text, write {fixed}"
    elif get_origin(inner) is Literal and isinstance(raw, str):
        words = [choice for choice in get_args(inner) if isinstance(choice, str)]
        close = difflib.get_close_matches(raw, words, n=1)
        message += f"; did you mean {close[0]!r}?" if close else ""
    return _at(where, message)


def _value_problems(where: str, hint: Any, value: Any, meta: _Setting) -> list[str]:
    """Check a field's value against its type, then against its bounds."""
    if not _conforms(hint, value):
        return [_mismatch(where, hint, value)]
    inner, _ = _split_optional(hint)
    if value is not None and get_origin(inner) is dict:
        items = [(f"{where}.{key}", item) for key, item in value.items()]
        return [
            p for at, item in items for p in _bound_problems(at, get_args(inner)[1], item, meta)
        ]
    return _bound_problems(where, inner, value, meta)


def _bound_problems(where: str, hint: Any, value: Any, meta: _Setting) -> list[str]:
    inner, _ = _split_optional(hint)
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
    return [_at(where, problem) for problem in problems]


def _convert(hint: Any, raw: Any, where: str, problems: list[str], base: Any) -> Any:
    """Convert plain ``raw`` to ``hint``, laid over ``base`` where that means something."""
    inner, nullable = _split_optional(hint)
    origin, args = get_origin(inner), get_args(inner)
    if inner is Any:
        return _copy_tree(raw)
    if raw is None and nullable:
        return None
    if _is_config(inner):
        if isinstance(raw, inner):
            return raw
        if isinstance(raw, Mapping):
            return _build(inner, raw, where, problems, base if isinstance(base, inner) else None)
    elif origin is dict:
        if isinstance(raw, Mapping):
            return _convert_dict(args[1], raw, where, problems, base)
    elif origin is tuple:
        if isinstance(raw, list | tuple) and (_variadic(args) or len(raw) == len(args)):
            items = [
                _convert(args[0 if _variadic(args) else i], item, f"{where}[{i}]", problems, None)
                for i, item in enumerate(raw)
            ]
            return _INVALID if any(item is _INVALID for item in items) else tuple(items)
    elif _conforms(inner, raw):
        return int(raw) if inner is int else float(raw) if inner is float else raw
    elif inner is int and isinstance(raw, float) and raw.is_integer():
        return int(raw)
    problems.append(_mismatch(where, hint, raw))
    return _INVALID


def _convert_dict(
    hint: Any, raw: Mapping[Any, Any], where: str, problems: list[str], base: Any
) -> Any:
    merge = _is_config(hint)  # a dict of configs is laid over its default; others are replaced
    result: dict[str, Any] = dict(base) if merge and isinstance(base, dict) else {}
    ok = True
    for key, item in raw.items():
        if not isinstance(key, str):
            problems.append(_at(where, f"expected string keys, got {_got(key)}"))
            ok = False
        elif merge and item is None:
            result.pop(key, None)
        else:
            result[key] = _convert(hint, item, f"{where}.{key}", problems, result.get(key))
            ok = ok and result[key] is not _INVALID
    return result if ok else _INVALID


def _build(
    cls: type[Config], raw: Mapping[Any, Any], where: str, problems: list[str], base: Any
) -> Any:
    """Build ``cls`` from ``raw`` laid over ``base`` (an instance) or else the class defaults."""
    start = len(problems)
    specs = _specs(cls)
    for key in raw:
        if key not in specs:
            close = difflib.get_close_matches(str(key), list(specs), n=1)
            advice = f"did you mean {close[0]!r}?" if close else "valid keys: " + ", ".join(specs)
            problems.append(f"{_join(where, str(key))}: unknown key; {advice}")
    kwargs: dict[str, Any] = {}
    for name, spec in specs.items():
        default = getattr(base, name) if base is not None else _default_of(spec.field)
        if name in raw:
            value = _convert(spec.hint, raw[name], _join(where, name), problems, default)
            if value is not _INVALID:
                kwargs[name] = value
        elif base is not None:
            kwargs[name] = default
        elif default is _MISSING:
            problems.append(f"{_join(where, name)}: missing required key")
    if len(problems) > start:
        # Constructing is skipped, so check here the bounds of the fields that did convert.
        for name, value in kwargs.items():
            spec = specs[name]
            problems.extend(_value_problems(_join(where, name), spec.hint, value, spec.setting))
        return _INVALID
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        problems.extend(_join(where, problem) for problem in exc.problems)
        return _INVALID


def _plain(value: Any, base: Any) -> Any:
    """Convert to plain data; ``base`` is what :func:`_build` would lay ``value`` over."""
    if isinstance(value, Config):
        specs = _specs(type(value)).items()
        bases = {
            n: getattr(base, n) if type(base) is type(value) else _default_of(s.field)
            for n, s in specs
        }
        return {name: _plain(getattr(value, name), bases[name]) for name, _ in specs}
    if isinstance(value, Mapping):
        old = base if isinstance(base, Mapping) else {}
        out = {key: _plain(item, old.get(key)) for key, item in value.items()}
        # Loading keeps unnamed default entries of a dict of configs, so say which were removed.
        out.update({k: None for k, v in old.items() if k not in value and isinstance(v, Config)})
        return out
    if isinstance(value, list | tuple):
        return [_plain(item, None) for item in value]
    return value


def _copy_tree(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _copy_tree(item) for key, item in value.items()}
    return [_copy_tree(item) for item in value] if isinstance(value, list) else value


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _at(where: str, message: str) -> str:
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


def _got(value: Any) -> str:
    return f"{_show(value)} ({type(value).__name__})"


def _yaml_reason(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        problem = exc.problem or exc.context or "syntax error"
        return f"{problem} at line {mark.line + 1}, column {mark.column + 1}"
    return " ".join(str(exc).split())
