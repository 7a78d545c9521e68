"""Build typed, validated configs from YAML files and ``--set`` overrides.

A config class is a :func:`configclass` (a frozen pydantic dataclass) deriving from
:class:`Config` whose fields are declared with :func:`setting` or :func:`setting_factory`: a
default, a one-line doc and optional bounds (``ge``, ``gt``, ``le``, ``lt``, ``choices``).
Constructing a config validates it; :mod:`ipwarmup.config_schema` says how.

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

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast, get_args, get_origin

import pydantic
import yaml

from ipwarmup.config_errors import problems_from
from ipwarmup.config_schema import (
    LOADING,
    Config,
    configclass,
    default_of,
    field_specs,
    is_config,
    setting,
    setting_factory,
)
from ipwarmup.config_words import at, got, join, split_optional
from ipwarmup.errors import ConfigError

__all__ = [
    "Config",
    "apply_overrides",
    "configclass",
    "flatten",
    "load",
    "load_config",
    "load_yaml",
    "setting",
    "setting_factory",
    "to_dict",
]

C = TypeVar("C", bound=Config)
_ADAPTERS: dict[type, pydantic.TypeAdapter[Any]] = {}


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
    if isinstance(data, cls):
        return data
    if not isinstance(data, Mapping | None):
        raise ConfigError(at(path, f"expected a mapping, got {got(data)}"))
    adapter = _ADAPTERS.setdefault(cls, pydantic.TypeAdapter(cls))
    try:
        return cast(C, adapter.validate_python(_overlay(cls, data or {}, None), context=LOADING))
    except pydantic.ValidationError as exc:
        raise ConfigError(problems_from(cls, exc, path)) from None


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
                problems.append(f"--set {override}: {where} is {got(child)}, not a mapping")
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
        raise ConfigError(f"{path}: expected a mapping at the top level, got {got(data)}")
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
        name = join(prefix, str(key))
        if isinstance(value, Config):
            value = to_dict(value)
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, name))
        elif isinstance(value, bool | int | float | str):
            flat[name] = value
        else:
            flat[name] = json.dumps(_plain(value, None), default=str)
    return flat


def _overlay(cls: type[Config], raw: Mapping[Any, Any], base: Any) -> dict[Any, Any]:
    """Lay ``raw`` over ``base`` (an instance) or else the class defaults, for pydantic."""
    specs = field_specs(cls)
    out: dict[Any, Any] = {name: getattr(base, name) for name in specs} if base is not None else {}
    for key, value in raw.items():
        spec = specs.get(key)
        if spec is None:  # an unknown key, which pydantic reports
            out[key] = value
            continue
        inner, _ = split_optional(spec.hint)
        default = getattr(base, key) if base is not None else default_of(spec)
        if is_config(inner) and isinstance(value, Mapping):
            out[key] = _overlay(inner, value, default if isinstance(default, inner) else None)
        elif get_origin(inner) is dict and is_config(get_args(inner)[1]):
            entries = default if isinstance(default, dict) else {}
            out[key] = _overlay_entries(get_args(inner)[1], value, entries)
        else:
            out[key] = _copy_tree(value)
    return out


def _overlay_entries(cls: type[Config], raw: Any, base: dict[str, Any]) -> Any:
    """Lay a mapping over a dict of configs: merge named entries, null removes one."""
    if not isinstance(raw, Mapping):
        return raw
    out = dict(base)
    for key, item in raw.items():
        if item is None:
            out.pop(key, None)
        elif isinstance(item, Mapping) and isinstance(out.get(key), cls):
            out[key] = _overlay(cls, item, out[key])
        else:
            out[key] = item
    return out


def _plain(value: Any, base: Any) -> Any:
    """Convert to plain data; ``base`` is what :func:`_build` would lay ``value`` over."""
    if isinstance(value, Config):
        specs = field_specs(type(value)).items()
        bases = {
            n: getattr(base, n) if type(base) is type(value) else default_of(s) for n, s in specs
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


def _yaml_reason(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        problem = exc.problem or exc.context or "syntax error"
        return f"{problem} at line {mark.line + 1}, column {mark.column + 1}"
    return " ".join(str(exc).split())
