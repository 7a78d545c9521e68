"""An escalation within a period reroutes the rest of it (envs/mta.py ``run_period_hours``).

The routing (each IP's weight, acceptance and the share of mail sent to blocked IPs)
stays fixed within a period until an event: a block that starts at the end of the first
hour must reject the mail of every later hour of the period, not only the next period's.
"""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils import seeding

from ipwarmup.envs import build_config
from ipwarmup.envs.mta import Period, run_hours
from ipwarmup.envs.simulator import Simulator

ROWS = 2


@pytest.mark.parametrize("overflow", ["shared", "queue"])
def test_a_block_after_the_first_hour_rejects_every_later_hours_mail(overflow: str) -> None:
    config = build_config(
        scenario="steady_b2c_transactional",
        overrides=["decision_interval_hours=24", f"mta.overflow={overflow}"],
    )
    sim = Simulator(config, ROWS)
    sim.reset(np.arange(ROWS), [seeding.np_random(21 + i)[0] for i in range(ROWS)])
    state = sim.state
    assert np.all(state.n_ips == 1)
    hour_of_day = state.hour_of_day
    # Row 0's one IP is throttled (until long after the period) and its pressure is past
    # every threshold: blocked at every provider at the end of the period's first hour.
    state.throttled[0, 0] = True
    state.throttled_until[0, 0] = state.hour[0] + 1000
    state.pressure[0, 0] = 1.0e9
    demand = state.demand_today[0, hour_of_day:, :].copy()
    cap = state.caps[0, 0].copy()
    period = Period(ROWS, sim.max_ips, sim.n_providers)
    run_hours(state, period, sim.config)
    assert period.blocks[0] == sim.n_providers and period.blocks[1] == 0
    assert np.all(state.blocked[0, 0]) and not state.blocked[1].any()
    if overflow == "shared":  # what each later hour sends is its demand up to the cap
        later = np.minimum(demand[1:], cap).sum(axis=0)
        np.testing.assert_allclose(period.rejected[0], later, rtol=1e-12)
        assert np.all(later > 0.0)
    else:  # queued mail is retried too: every later hour rejects all that it sends
        first = np.minimum(demand[0], cap)
        np.testing.assert_allclose(period.rejected[0], period.sent[0] - first, rtol=1e-12)
    assert np.all(period.rejected[0] > 0.0) and np.all(period.rejected[1] == 0.0)
