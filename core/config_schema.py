"""Declare config classes: frozen pydantic dataclasses with a doc and bounds per field.

A config class is decorated with :func:`configclass` and derives from :class:`Config`; its
fields are declared with :func:`setting` or :func:`setting_factory`: a default, a one-line doc
and optional bounds (``ge``, ``gt``, ``le``, ``lt``, ``choices``). The decorator turns each
type hint into a pydantic type: scalars are strict (``bool`` takes only true/false, ``int``
rejects bools and fractions, ``float`` takes ints but not bools, ``str`` only text), bounds on
tuples and dicts apply per item, ``[low, high]`` ranges check ``low <= high``. Pydantic then
validates the whole tree at once; :mod:`ipwarmup.config_errors` words what it finds.

Built directly, a config takes only values of its types (tuples, built configs); loading
(:func:`ipwarmup.config.load`, which passes ``LOADING`` as pydantic's context) also takes what
YAML gives: lists for tuples, mappings for configs, whole floats for ints.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable, Iterable
from typing import (
    Annotated,
    Any,
    Literal,
    NamedTuple,
    TypedDict,
    TypeVar,
    Unpack,
    dataclass_transform,
    get_args,
    get_origin,
)

import pydantic
from pydantic_core import PydanticCustomError

from ipwarmup.config_words import Bounds, bound_problems, is_range, split_optional, variadic
from ipwarmup.errors import ConfigError

T = TypeVar("T")
K = TypeVar("K", bound=type)

LOADING = {"ipwarmup.loading": True}  # pydantic context: the data is plain, as YAML gives it
MISSING: Any = object()  # a field without default
_KEY = "ipwarmup.setting"
_SCALARS = (bool, int, float, str)
# Strictness comes from each field's type, so configs nest and tuples read lists when loading.
_PYDANTIC = pydantic.ConfigDict(extra="forbid")


class _Bounds(TypedDict, total=False):
    ge: float | None
    gt: float | None
    le: float | None
    lt: float | None
    choices: Iterable[object] | None


class Spec(NamedTuple):
    """What a field declares: its type hint, doc and bounds, and its default."""

    hint: Any
    setting: Bounds
    default: Any
    factory: Callable[[], Any] | None


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
        A ``dataclasses.field`` carrying the doc and bounds, which :func:`configclass` reads.
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


def _metadata(doc: str, **bounds: Unpack[_Bounds]) -> dict[str, Bounds]:
    choices = bounds.get("choices")
    ge, gt, le, lt = bounds.get("ge"), bounds.get("gt"), bounds.get("le"), bounds.get("lt")
    return {_KEY: Bounds(doc, ge, gt, le, lt, None if choices is None else tuple(choices))}


class Config:
    """Base of the config classes: cross-field checks and field docs.

    Pydantic checks each field against its type and bounds; when all are fine, :meth:`_check`
    adds cross-field problems. A subclass that defines ``__post_init__`` must call
    ``super().__post_init__()``.
    """

    def __post_init__(self) -> None:
        if type(self) not in _SPECS:  # a plain @dataclass would skip every field check
            raise TypeError(f"{type(self).__qualname__}: declare config classes with @configclass")
        problems = self._check()
        if problems:  # pydantic gathers it with the rest of the tree, at this config's path
            raise PydanticCustomError("config_check", "{problems}", {"problems": problems})

    def _check(self) -> list[str]:
        """Return cross-field problems, each starting with a field name; none by default."""
        return []

    @classmethod
    def docs(cls) -> dict[str, str]:
        """Return each field's one-line doc by field name, in declaration order."""
        return {name: spec.setting.doc for name, spec in field_specs(cls).items()}


_SPECS: dict[type, dict[str, Spec]] = {}


def field_specs(cls: type) -> dict[str, Spec]:
    """Return each field's spec by name, in declaration order, for a :func:`configclass`."""
    try:
        return _SPECS[cls]
    except KeyError:
        raise TypeError(f"{cls.__qualname__} is not a @configclass") from None


def is_config(hint: Any) -> bool:
    """Return whether ``hint`` is a config class."""
    return isinstance(hint, type) and issubclass(hint, Config)


def default_of(spec: Spec) -> Any:
    """Return the field's default, a fresh one from its factory, or ``MISSING``."""
    return spec.factory() if spec.factory is not None else spec.default


@dataclass_transform(frozen_default=True)
def configclass(cls: K) -> K:
    """Make ``cls`` (a :class:`Config` subclass) a frozen pydantic dataclass.

    Raises:
        TypeError: if a field's type or bounds are not supported.
    """
    from ipwarmup.config_errors import problems_from  # it words problems using these specs

    hints = typing.get_type_hints(cls)
    specs: dict[str, Spec] = {}
    for base in reversed(cls.__mro__[1:]):
        specs.update(_SPECS.get(base, {}))
    annotations: dict[str, Any] = {}
    for name in inspect.get_annotations(cls):
        hint, attr = hints[name], cls.__dict__.get(name, MISSING)
        if get_origin(hint) is typing.ClassVar:
            continue
        if isinstance(attr, dataclasses.Field):
            meta = attr.metadata.get(_KEY, Bounds(""))
            factory = None if attr.default_factory is dataclasses.MISSING else attr.default_factory
            default = MISSING if attr.default is dataclasses.MISSING else attr.default
        else:
            meta, factory, default = Bounds(""), None, attr
        problem = _declaration_problem(hint, meta)
        if problem:
            raise TypeError(f"{cls.__qualname__}.{name}: {problem}")
        specs[name] = Spec(hint, meta, default, factory)
        annotations[name] = _field_type(hint, meta)
        if factory is not None:
            setattr(cls, name, pydantic.Field(default_factory=factory, description=meta.doc))
        elif default is not MISSING:
            setattr(cls, name, pydantic.Field(default=default, description=meta.doc))
    cls.__annotations__ = annotations
    _SPECS[cls] = specs
    built = pydantic.dataclasses.dataclass(cls, frozen=True, config=_PYDANTIC)
    init = built.__init__

    @functools.wraps(init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        try:
            init(self, *args, **kwargs)
        except pydantic.ValidationError as exc:
            raise ConfigError(problems_from(built, exc, "")) from None

    built.__init__ = __init__  # type: ignore[method-assign]
    return typing.cast(K, built)


def _field_type(hint: Any, meta: Bounds) -> Any:
    """Return the pydantic type of a field: its strict type plus our bounds check."""
    if not (meta.bounds() or meta.choices is not None or is_range(split_optional(hint)[0])):
        return _pydantic_type(hint)
    check = functools.partial(_check_bounds, hint, meta)
    return Annotated[_pydantic_type(hint), pydantic.AfterValidator(check)]


def _pydantic_type(hint: Any) -> Any:
    inner, nullable = split_optional(hint)
    origin, args = get_origin(inner), get_args(inner)
    kind: Any
    if origin is dict:
        item = _pydantic_type(args[1])
        kind = Annotated[dict[Annotated[str, pydantic.Strict()], item], _exact(dict)]  # type: ignore[valid-type]
    elif origin is tuple:
        items = (
            (_pydantic_type(args[0]), ...) if variadic(args) else tuple(map(_pydantic_type, args))
        )
        length = None if variadic(args) else len(args)
        kind = Annotated[tuple[items], _exact(tuple, length)]  # type: ignore[valid-type]
    elif inner in _SCALARS:
        before = [pydantic.BeforeValidator(_whole_float)] if inner is int else []
        kind = Annotated[inner, pydantic.Strict(), *before]
    elif is_config(inner):
        kind = Annotated[inner, _exact(inner)]
    else:  # Any and Literal need nothing more
        kind = inner
    return kind | None if nullable else kind


def _exact(kind: type, length: int | None = None) -> pydantic.BeforeValidator:
    """Take only ``kind`` when built directly; when loading, lists make tuples, dicts configs."""

    def check(value: Any, info: pydantic.ValidationInfo) -> Any:
        if info.context == LOADING and kind is tuple:
            if not isinstance(value, list | tuple) or len(value) != (length or len(value)):
                raise PydanticCustomError("config_type", "expected a list")
            return tuple(value)
        if info.context == LOADING:
            return value
        if not isinstance(value, kind):
            raise PydanticCustomError("config_type", "expected {kind}", {"kind": kind.__name__})
        return value

    return pydantic.BeforeValidator(check)


def _whole_float(value: Any, info: pydantic.ValidationInfo) -> Any:
    loading = info.context == LOADING
    return int(value) if loading and type(value) is float and value.is_integer() else value


def _check_bounds(hint: Any, meta: Bounds, value: Any) -> Any:
    inner, _ = split_optional(hint)
    if value is None:
        problems = []
    elif get_origin(inner) is dict:
        item_hint = get_args(inner)[1]
        problems = [
            (str(key), p)
            for key, item in value.items()
            for p in bound_problems(item, item_hint, meta)
        ]
    else:
        problems = [("", p) for p in bound_problems(value, inner, meta)]
    if problems:
        raise PydanticCustomError("config_bounds", "{problems}", {"problems": problems})
    return value


def _supported(hint: Any) -> bool:
    inner, _ = split_optional(hint)
    origin, args = get_origin(inner), get_args(inner)
    if origin is dict:
        return args[0] is str and _supported(args[1])
    if origin is tuple:
        return bool(args) and all(_supported(arg) for arg in args if arg is not Ellipsis)
    return origin is Literal or inner in _SCALARS or inner is Any or is_config(inner)


def _declaration_problem(hint: Any, meta: Bounds) -> str:
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
