"""Hyperparameter presets in rl-baselines3-zoo's format, and their check against SB3.

A preset of ``configs/algorithms/<algorithm>.yaml`` holds SB3 keyword arguments plus the
zoo's own keys, which become defaults of the experiment (the experiment file and ``--set``
override them):

* ``n_timesteps``: ``training.total_timesteps``;
* ``n_envs``: ``training.n_envs``;
* ``policy``: ``algorithm.policy``;
* ``normalize``: true, or a mapping with ``norm_obs: true`` whose ``norm_reward`` sets
  ``training.norm_reward`` (observations are always normalised: the bundle carries the
  statistics).

The zoo reads such a file unchanged with ``--conf-file`` (it takes the ``default`` block),
and so does :func:`ipwarmup.training.config.load_experiment`.
"""

from __future__ import annotations

import difflib
import inspect
from importlib import resources
from pathlib import Path
from typing import Any

from ipwarmup.config import load_yaml
from ipwarmup.errors import ConfigError

ZOO_KEYS = {
    "n_timesteps": ("training", "total_timesteps"),
    "n_envs": ("training", "n_envs"),
    "policy": ("algorithm", "policy"),
}
"""rl-baselines3-zoo keys of a preset that set a field of the experiment."""
ZOO_UNREAD = (
    "env_wrapper",
    "vec_env_wrapper",
    "frame_stack",
    "callback",
    "env_kwargs",
    "monitor_kwargs",
)
"""rl-baselines3-zoo keys that ``ipwarmup train`` does not read (refused with a reason)."""


def algorithm_class(name: str) -> type[Any]:
    """Return the SB3 class of an algorithm name."""
    if name == "RecurrentPPO":
        from sb3_contrib import RecurrentPPO

        return RecurrentPPO
    import stable_baselines3

    algorithm: type[Any] = getattr(stable_baselines3, name)
    return algorithm


def preset_path(algorithm: str) -> Path:
    """Return the presets file of an algorithm: ``configs/algorithms/<name>.yaml``."""
    folder = Path(str(resources.files("ipwarmup.configs"))) / "algorithms"
    return folder / f"{algorithm.lower()}.yaml"


def read_preset(algorithm: str, preset: str) -> dict[str, Any]:
    """Return one preset block of an algorithm's file, as written.

    Raises:
        ConfigError: the preset is not in the file (the closest name is suggested).
    """
    presets = load_yaml(preset_path(algorithm))
    if preset not in presets:
        close = difflib.get_close_matches(preset, list(presets), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else f"; expected one of {list(presets)}"
        raise ConfigError(f"experiment.algorithm.preset: unknown preset '{preset}'{hint}")
    block = presets[preset] or {}
    if not isinstance(block, dict):
        raise ConfigError(f"{preset_path(algorithm)}: {preset}: expected a mapping, got {block!r}")
    return dict(block)


def split_preset(block: dict[str, Any], *, where: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a zoo-format preset into experiment defaults and SB3 keyword arguments.

    Args:
        block: one preset as written.
        where: the file and block, for messages.

    Returns:
        ``(defaults, hyperparameters)``: nested experiment data from the zoo's keys (see the
        module docstring) and the remaining SB3 keyword arguments.

    Raises:
        ConfigError: a zoo key ipwarmup does not read, or a ``normalize`` it cannot honour.
    """
    defaults: dict[str, dict[str, Any]] = {"training": {}, "algorithm": {}}
    hyperparameters: dict[str, Any] = {}
    problems = []
    for key, value in block.items():
        if key in ZOO_KEYS:
            section, field = ZOO_KEYS[key]
            defaults[section][field] = value
        elif key == "normalize":
            norm = value if isinstance(value, dict) else {"norm_obs": value, "norm_reward": value}
            if norm.get("norm_obs", True) is not True:
                problems.append(
                    f"{where}.normalize: expected true or a mapping with norm_obs: true "
                    f"(observations are always normalised, the bundle carries the statistics), "
                    f"got {value!r}"
                )
            else:
                defaults["training"]["norm_reward"] = norm.get("norm_reward", True)
        elif key in ZOO_UNREAD:
            problems.append(f"{where}.{key}: an rl-baselines3-zoo key ipwarmup train does not read")
        else:
            hyperparameters[key] = value
    if problems:
        raise ConfigError(problems)
    return defaults, hyperparameters


def check_hyperparameters(name: str, hyperparameters: dict[str, Any]) -> list[str]:
    """Return problems with hyperparameter names and scalar types, checked against SB3."""
    signature = inspect.signature(algorithm_class(name).__init__)
    known = {p for p in signature.parameters if p not in ("self", "policy", "env")}
    problems = []
    for key, value in hyperparameters.items():
        where = f"hyperparameters.{key}"
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            problems.append(f"{where}: not a {name} parameter{hint}")
            continue
        default = signature.parameters[key].default
        if isinstance(default, bool) and not isinstance(value, bool):
            problems.append(f"{where}: expected true or false, got {value!r}")
        elif isinstance(default, (int, float)) and not isinstance(default, bool):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                hint = ""
                if isinstance(value, str) and "e" in value.lower():
                    hint = "; YAML reads 3e-4 as text, write 3.0e-4"
                problems.append(f"{where}: expected a number, got {value!r}{hint}")
            elif isinstance(default, int) and isinstance(value, float) and not value.is_integer():
                problems.append(f"{where}: expected an integer, got {value!r}")
    return problems
