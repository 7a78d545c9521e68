"""Sender scenarios shipped as YAML in ``configs/scenarios/``, found by name or by path."""

from __future__ import annotations

import difflib
from importlib import resources
from pathlib import Path

from ipwarmup.config import load, load_yaml
from ipwarmup.envs.config import ScenarioConfig
from ipwarmup.errors import ConfigError


def _scenario_dir() -> Path:
    return Path(str(resources.files("ipwarmup.configs"))) / "scenarios"


def scenario_names() -> list[str]:
    """Return the names of the shipped scenarios, sorted."""
    return sorted(path.stem for path in _scenario_dir().glob("*.yaml"))


def scenario_path(name_or_path: str | Path) -> Path:
    """Resolve a scenario name (``bursty_b2c_marketing``) or a YAML path to a file path."""
    text = str(name_or_path)
    if text.endswith((".yaml", ".yml")) or "/" in text or Path(text).is_file():
        return Path(text)
    path = _scenario_dir() / f"{text}.yaml"
    if not path.is_file():
        names = scenario_names()
        close = difflib.get_close_matches(text, names, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else f"; expected one of {names}"
        raise ConfigError(f"scenario: unknown scenario '{text}'{hint}")
    return path


def load_scenario(name_or_path: str | Path) -> ScenarioConfig:
    """Load a scenario by shipped name or YAML path; its name defaults to the file's stem."""
    path = scenario_path(name_or_path)
    data = load_yaml(path)
    data.setdefault("name", path.stem)
    return load(ScenarioConfig, data, path=f"scenario ({path.name})")
