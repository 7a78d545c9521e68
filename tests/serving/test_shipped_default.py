"""The shipped ``models/default``: a policy with memory that knows its MTA (issue 10)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from ipwarmup.actions import ENV_VERSION
from ipwarmup.agents.registry import make_policy
from ipwarmup.envs import IPWarmupEnv, build_config
from ipwarmup.errors import TelemetryError
from ipwarmup.serving import load_policy

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = ROOT / "models" / "default"
EXAMPLE = json.loads((ROOT / "examples" / "telemetry.json").read_text())


@pytest.fixture(scope="module")
def policy():
    return load_policy(DEFAULT)


def test_it_is_trained_on_this_env_with_history_and_the_mta(policy) -> None:
    manifest = policy.manifest
    assert manifest["env"]["version"] == ENV_VERSION == 2
    observation = manifest["observation"]
    assert observation["history_periods"] == 3 and observation["mta_inputs"] is True
    # 189 inputs with five providers, as the env's default observation.
    assert IPWarmupEnv().observation_space.shape == (189,)


def test_it_decides_on_a_schema_2_record_and_names_what_a_v1_record_lacks(policy) -> None:
    decision = policy.decide(copy.deepcopy(EXAMPLE))
    assert set(decision["providers"]) == set(EXAMPLE["providers"])
    v1 = {k: v for k, v in copy.deepcopy(EXAMPLE).items() if k not in ("mta", "history")}
    v1["schema_version"] = 1
    with pytest.raises(TelemetryError, match="schema_version: bundle needs schema_version 2"):
        policy.decide(v1)


def test_the_card_reports_both_suites_against_every_baseline() -> None:
    card = (DEFAULT / "README.md").read_text()
    for needed in ("validation", "test", "aimd", "hold-shared", "fixed-sendgrid", "oracle"):
        assert needed in card, needed
    assert "declared for" not in card  # trained on this env version, not re-declared


def test_in_the_env_it_warms_a_clean_steady_sender() -> None:
    """evaluate --policy models/default: the bundle acts on the env's own observation."""
    config = build_config(scenario="steady_b2c_transactional")
    served = make_policy(str(DEFAULT), config)
    env = IPWarmupEnv(config=config)
    observation, _ = env.reset(seed=3)
    for _ in range(14):
        action, _ = served.predict(observation[None, :], deterministic=True)
        assert action.shape == (1, 6) and np.all(np.abs(action) <= 1.0)
        observation, _, _, _, info = env.step(action[0])
    counts = info["accounting"]
    # Two weeks into a clean 50k-a-day sender's warmup: part of the mail is on its own IPs,
    # none of it lost (the oracle it learned from sends most of it there by then).
    share = counts["sent_dedicated"] / counts["demand"]
    assert 0.2 < share < 1.0, share
    assert counts["rejected"] + counts["expired"] <= 0.01 * counts["demand"]
