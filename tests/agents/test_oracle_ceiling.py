"""The oracle is the ceiling and warming pays where it should (issue 8's Done-when).

Measured on the shipped scenarios with paired seeds: on every scenario at or above the
eligibility line with a list fit for a dedicated IP, the oracle warms up (final dedicated
share >= 0.9) and beats staying shared on inbox share over horizon plus continuation by at
least 0.03 with a paired 95% interval above zero; where staying shared is right (below the
line, or a poor list, which places worse on its own IP) the oracle stays shared; and no
baseline beats the oracle on that objective in any scenario.

One miss against the issue's figure: on ``bursty_b2c_marketing`` campaign hours run at up
to 20 times an average hour and exceed what one warmed IP is allowed at some providers, so
even the oracle spills them to the shared pool (SES's managed pools do the same, DOMAIN §1)
and ends with 0.84-0.92 of the last week on dedicated IPs, not 0.9; more IPs split the
volume and warm slower (2 IPs: 0.75). The test holds it to [0.8, 1].

The test suite's ``early_spike_queue_mta`` is checked on the README's own run (32 seeds
from 0): its MTA queues what the caps hold back, so cold IPs let mail expire, and the lead
was 0.0295 there until the oracle could hold a ramp within the providers' spike tolerance.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from ipwarmup.agents.registry import BASELINES
from ipwarmup.training.evaluate import Suite, evaluate, load_suite, report
from ipwarmup.training.stats import stratified_bootstrap

SEEDS = 8
ELIGIBLE = (
    "steady_b2c_transactional",
    "bursty_b2c_marketing",
    "b2b_microsoft_heavy",
    "fast_growing_startup",
    "seasonal_spike",
)
STAY_SHARED = ("low_volume", "poor_list_quality")
QUEUEING = "early_spike_queue_mta"


@pytest.fixture(scope="module")
def validation() -> dict[str, Any]:
    result = evaluate(list(BASELINES), load_suite("validation"), seeds=SEEDS, seed=300)
    data = report(result)
    data["per_seed"] = {
        policy: {s: result.scores[policy][s]["total_inbox_share"] for s in data["scenarios"]}
        for policy in BASELINES
    }
    return data


@pytest.mark.slow
@pytest.mark.parametrize("scenario", ELIGIBLE)
def test_the_oracle_warms_up_and_beats_staying_shared(
    validation: dict[str, Any], scenario: str
) -> None:
    oracle = validation["per_seed"]["oracle"][scenario]
    shared = validation["per_seed"]["hold-shared"][scenario]
    diff = oracle - shared
    low, _ = stratified_bootstrap(diff[None, :], np.random.default_rng(0))
    assert diff.mean() >= 0.03, diff.mean()
    assert low > 0.0, low
    final = validation["results"]["oracle"][scenario]["final_dedicated_share"]["mean"]
    floor = 0.8 if scenario == "bursty_b2c_marketing" else 0.9
    assert floor <= final <= 1.0, final


@pytest.mark.slow
@pytest.mark.parametrize("scenario", STAY_SHARED)
def test_the_oracle_stays_shared_where_that_is_right(
    validation: dict[str, Any], scenario: str
) -> None:
    oracle = validation["per_seed"]["oracle"][scenario]
    shared = validation["per_seed"]["hold-shared"][scenario]
    assert abs(float((oracle - shared).mean())) < 0.005
    final = validation["results"]["oracle"][scenario]["final_dedicated_share"]["mean"]
    assert final < 0.2, final


@pytest.mark.slow
def test_no_baseline_beats_the_oracle_on_the_objective(validation: dict[str, Any]) -> None:
    for scenario in validation["scenarios"]:
        oracle = validation["per_seed"]["oracle"][scenario].mean()
        for policy in BASELINES:
            theirs = validation["per_seed"][policy][scenario].mean()
            assert theirs <= oracle + 1e-9, (scenario, policy, theirs, oracle)


@pytest.fixture(scope="module")
def queueing() -> dict[str, dict[str, np.ndarray]]:
    entry = next(e for e in load_suite("test").entries if e.name == QUEUEING)
    result = evaluate(["oracle", "hold-shared"], Suite("test", (entry,)), seeds=32, seed=0)
    return {policy: result.scores[policy][QUEUEING] for policy in ("oracle", "hold-shared")}


@pytest.mark.slow
def test_warming_pays_behind_an_mta_that_queues(queueing: dict[str, dict[str, np.ndarray]]) -> None:
    oracle, shared = queueing["oracle"], queueing["hold-shared"]
    diff = oracle["total_inbox_share"] - shared["total_inbox_share"]
    low, _ = stratified_bootstrap(diff[None, :], np.random.default_rng(0))
    assert diff.mean() >= 0.03, diff.mean()
    assert low > 0.0, low
    final = oracle["final_dedicated_share"].mean()
    assert 0.9 <= final <= 1.0, final
    # It pays although the queue costs it mail (cold IPs hold the first week back until
    # some expires, and the spike more); staying shared loses none.
    assert 0.02 < oracle["lost_share"].mean() < 0.08, oracle["lost_share"].mean()
    assert shared["lost_share"].max() == 0.0
