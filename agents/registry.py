"""Policies by name (baselines) or by path (a trained model), for the CLI and configs."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from pathlib import Path

from ipwarmup.agents.baselines import (
    AIMDPolicy,
    HoldPolicy,
    HoldSharedPolicy,
    SparkPostPolicy,
    fixed_braze,
    fixed_sendgrid,
)
from ipwarmup.agents.oracle import OraclePolicy
from ipwarmup.envs.config import EnvConfig
from ipwarmup.errors import ConfigError
from ipwarmup.policy import Policy

BASELINES: dict[str, Callable[[EnvConfig], Policy]] = {
    "fixed-sendgrid": fixed_sendgrid,
    "fixed-sparkpost": SparkPostPolicy,
    "fixed-braze": fixed_braze,
    "aimd": AIMDPolicy,
    "hold-shared": HoldSharedPolicy,
    "hold": HoldPolicy,
    "oracle": OraclePolicy,
}
"""Every baseline by the name the CLI and configs use."""

REFERENCE = "fixed-sendgrid"
"""The baseline every policy is compared against."""

CEILING = "oracle"
"""The perfect-foresight planner: the top of the gap a policy closes from ``REFERENCE``."""


def make_policy(name_or_path: str, config: EnvConfig) -> Policy:
    """Build a baseline by name, or load a trained model from a path.

    Args:
        name_or_path: a baseline name (see ``BASELINES``) or the path of a saved model.
        config: the env configuration the policy will act in.
    """
    if name_or_path in BASELINES:
        return BASELINES[name_or_path](config)
    if name_or_path.endswith(".zip") or "/" in name_or_path:
        from ipwarmup.agents.learned import load_bundle, load_learned

        if (Path(name_or_path) / "manifest.json").is_file():
            return load_bundle(name_or_path, config)
        return load_learned(name_or_path, config)
    close = difflib.get_close_matches(name_or_path, list(BASELINES), n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise ConfigError(
        f"policy: unknown policy '{name_or_path}'{hint} "
        f"(expected one of {sorted(BASELINES)} or a model path)"
    )
