"""Turn pydantic's validation errors on a config tree into our one-line problems.

Each pydantic error has a ``loc`` (field names, dict keys, tuple indexes), a ``type`` and the
``input`` it rejected. Following ``loc`` through the config classes gives the dotted path and
the declared type of the field, from which :mod:`ipwarmup.config_words` words the problem:
``env.mta.max_age_hours: expected a number > 0, got -1.0``. Problems come in the order the old
hand-written loader gave: per config, unknown keys first, then type problems by field, then
bound problems by field.
"""

from __future__ import annotations

from typing import Any, NamedTuple, get_args, get_origin

import pydantic

from ipwarmup.config_schema import field_specs, is_config
from ipwarmup.config_words import at, got, join, mismatch, split_optional, unknown_key, variadic

_UNKNOWN, _TYPE, _BOUNDS = 0, 1, 2  # the order of a config's own problems


class _Place(NamedTuple):
    path: str  # dotted path of the field, or of the dict entry
    hint: Any  # declared type there
    rest: tuple[Any, ...]  # what is left of loc below the field (tuple index, dict key)
    order: tuple[tuple[int, int], ...]
    unknown: list[str] | None  # the valid keys, when loc names a key the config lacks


def problems_from(cls: type, exc: pydantic.ValidationError, where: str) -> list[str]:
    """Return every problem pydantic found in a ``cls`` built at path ``where``, in order.

    Args:
        cls: the config class validated.
        exc: what pydantic raised.
        where: dotted path of the config in a larger document, put before every problem.

    Returns:
        One line per problem, each starting with its dotted path.
    """
    keyed: list[tuple[tuple[tuple[int, int], ...], list[str]]] = []
    seen: dict[str, int] = {}  # dict entries keep the order pydantic met them in
    for error in exc.errors():
        place = _locate(cls, error["loc"], where, seen)
        kind = _BOUNDS if error["type"] == "config_bounds" else _TYPE
        if place.unknown is not None:
            kind = _UNKNOWN
        keyed.append(((*place.order[:-1], (kind, place.order[-1][1])), _words(place, error)))
    problems: list[str] = []
    for _, words in sorted(keyed, key=lambda pair: pair[0]):
        problems.extend(word for word in words if word not in problems)
    return problems


def _locate(cls: type, loc: tuple[Any, ...], where: str, seen: dict[str, int]) -> _Place:
    node, path, hint = cls, where, Any
    order: list[tuple[int, int]] = []
    parts = list(loc)
    while parts:
        name = parts.pop(0)
        specs = field_specs(node)
        if name not in specs:
            order.append((_UNKNOWN, 0))
            return _Place(path, Any, (name, *parts), tuple(order), list(specs))
        order.append((_TYPE, list(specs).index(name)))
        path, hint = join(path, name), specs[name].hint
        inner, _ = split_optional(hint)
        if parts and is_config(inner):
            node = inner
            continue
        if len(parts) > 1 and get_origin(inner) is dict and is_config(get_args(inner)[1]):
            if parts[1] == "[key]":
                break
            path = join(path, str(parts.pop(0)))
            order.append((_TYPE, seen.setdefault(path, len(seen))))
            node = get_args(inner)[1]
            continue
        break
    else:
        if not order:  # the whole config, say a cross-field problem of the root
            order.append((_TYPE, -1))
    return _Place(path, hint, tuple(parts), tuple(order), None)


def _words(place: _Place, error: Any) -> list[str]:
    kind, path, rest = error["type"], place.path, place.rest
    if place.unknown is not None:
        return [unknown_key(path, rest[0], place.unknown)]
    if kind == "missing" and not rest:
        return [f"{path}: missing required key"]
    if kind == "missing":  # a [low, high] range with one value; input is the whole list
        return [mismatch(path, place.hint, error["input"])]
    if kind == "config_check":
        return [join(path, problem) for problem in error["ctx"]["problems"]]
    if kind == "config_bounds":
        return [
            at(join(path, sub) if sub else path, problem)
            for sub, problem in error["ctx"]["problems"]
        ]
    inner, _ = split_optional(place.hint)
    origin, args = get_origin(inner), get_args(inner)
    if rest and rest[-1] == "[key]":
        return [at(path, f"expected string keys, got {got(rest[0])}")]
    if rest and origin is tuple and isinstance(rest[0], int):
        item = args[0] if variadic(args) else args[rest[0]]
        return [mismatch(f"{path}[{rest[0]}]", item, error["input"])]
    if rest and origin is dict:
        return [mismatch(join(path, str(rest[0])), args[1], error["input"])]
    return [mismatch(path, place.hint, error["input"])]
