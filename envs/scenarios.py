"""Sender scenarios shipped as YAML in ``configs/scenarios/``, found by name or by path.

A scenario file holds the sender's fields (:class:`ScenarioConfig`) at its top level and,
optionally, the parts of the sender's world that differ from the defaults, written as the
env config writes them:

* ``providers``: tolerance ranges laid over the env's providers, field by field
  (``providers: {microsoft: {escalation_threshold: [4.0, 8.0]}}``); a new name adds a
  provider from the class defaults, ``null`` removes one.
* ``mta``: MTA settings laid over the env's, such as ``mta: {overflow: queue}``.

These sections are not part of :class:`ScenarioConfig`: the env's ``providers`` and ``mta``
stay the one place the simulator reads them, and :func:`read_scenario` lays the file's
sections over them when an env is built from the file (``build_config(scenario=...)``), so
a resolved :class:`~ipwarmup.envs.config.EnvConfig` shows what ran. They are checked when
the file is read, by the same classes and with the same messages as the env config
(``scenario (mine.yaml).providers.microsoft.escalation_threshold: ...``).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ipwarmup.config import Config, configclass, load, load_yaml, setting_factory, to_dict
from ipwarmup.config_schema import field_specs
from ipwarmup.config_words import unknown_key
from ipwarmup.envs.config import MTAConfig, ProviderConfig, ScenarioConfig, default_providers
from ipwarmup.errors import ConfigError

__all__ = ["ScenarioFile", "load_scenario", "read_scenario", "scenario_names", "scenario_path"]


@configclass
class ScenarioWorld(Config):
    """The env sections a scenario file may set beside its sender, checked over the defaults."""

    providers: dict[str, ProviderConfig] = setting_factory(
        default_providers, "Provider tolerances laid over the env's providers."
    )
    mta: MTAConfig = setting_factory(MTAConfig, "MTA settings laid over the env's.")


WORLD_SECTIONS = tuple(field_specs(ScenarioWorld))


@dataclass(frozen=True)
class ScenarioFile:
    """A scenario file read and checked: its sender and its env sections as written."""

    scenario: ScenarioConfig
    sections: dict[str, Any]  # as written; only the keys of WORLD_SECTIONS

    def lay_over(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """Return env config data with this sender and this file's sections laid over it.

        Args:
            data: plain env config data (as :func:`~ipwarmup.config.to_dict` gives it, or a
                partial mapping); it is left unchanged.

        Returns:
            A new mapping whose ``scenario`` is this file's sender and whose ``providers``
            and ``mta`` have this file's values merged over the given ones, key by key.
        """
        out = dict(data)
        out["scenario"] = to_dict(self.scenario)
        for key, section in self.sections.items():
            out[key] = _merge(out.get(key), section)
        return out


def _merge(base: Any, top: Any) -> Any:
    """Merge plain data ``top`` over ``base``: mappings key by key, anything else replaced."""
    if not (isinstance(base, Mapping) and isinstance(top, Mapping)):
        return top
    merged = dict(base)
    for key, value in top.items():
        merged[key] = _merge(base.get(key), value)
    return merged


def shipped_names(kind: str) -> list[str]:
    """Return the names of the YAML files shipped in ``configs/<kind>s/``, sorted."""
    folder = Path(str(resources.files("ipwarmup.configs"))) / f"{kind}s"
    return sorted(path.stem for path in folder.glob("*.yaml"))


def shipped_path(kind: str, name_or_path: str | Path) -> Path:
    """Resolve a shipped name of ``configs/<kind>s/`` or a YAML path to a file path.

    Raises:
        ConfigError: an unknown name, the closest shipped one suggested (``scenario:
            unknown scenario 'x'; did you mean ...``).
    """
    text = str(name_or_path)
    if text.endswith((".yaml", ".yml")) or "/" in text or Path(text).is_file():
        return Path(text)
    path = Path(str(resources.files("ipwarmup.configs"))) / f"{kind}s" / f"{text}.yaml"
    if not path.is_file():
        names = shipped_names(kind)
        close = difflib.get_close_matches(text, names, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else f"; expected one of {names}"
        raise ConfigError(f"{kind}: unknown {kind} '{text}'{hint}")
    return path


def scenario_names() -> list[str]:
    """Return the names of the shipped scenarios, sorted."""
    return shipped_names("scenario")


def scenario_path(name_or_path: str | Path) -> Path:
    """Resolve a scenario name (``bursty_b2c_marketing``) or a YAML path to a file path."""
    return shipped_path("scenario", name_or_path)


def read_scenario(name_or_path: str | Path) -> ScenarioFile:
    """Read a scenario file: its sender (named after the file's stem by default) and sections.

    Raises:
        ConfigError: listing every bad field of the sender and of its sections at once.
    """
    path = scenario_path(name_or_path)
    data = load_yaml(path)
    where = f"scenario ({path.name})"
    sections = {key: data.pop(key) for key in WORLD_SECTIONS if key in data}
    data.setdefault("name", path.stem)
    valid = [*field_specs(ScenarioConfig), *WORLD_SECTIONS]
    problems = [unknown_key(where, key, valid) for key in data if key not in valid]
    known = {key: value for key, value in data.items() if key in valid}
    try:
        load(ScenarioWorld, sections, path=where)
    except ConfigError as error:
        problems.extend(error.problems)
    try:
        scenario = load(ScenarioConfig, known, path=where)
    except ConfigError as error:
        raise ConfigError([*problems, *error.problems]) from None
    if problems:
        raise ConfigError(problems)
    return ScenarioFile(scenario, sections)


def load_scenario(name_or_path: str | Path) -> ScenarioConfig:
    """Load a scenario's sender by shipped name or YAML path.

    Its ``providers`` and ``mta`` sections are checked but not returned: build the env with
    ``build_config(scenario=name_or_path)`` to have them applied.
    """
    return read_scenario(name_or_path).scenario
