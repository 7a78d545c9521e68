"""Economics a deliverability engineer checks: when a clean ramp overtakes the shared pool.

A clean ramp is the oracle's allowance tracking (send at 90% of the tightest true
allowance) on a fixed pool: what a perfect warmup does. Each day the dedicated IPs' inbox
rate is compared with the shared pool's at its normal standing (noisy-neighbour incidents
are random and left out), weighted by the sender's provider mix. Both the stylized-fact
tests and ``python -m ipwarmup.training.calibration`` use it.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from gymnasium.utils import seeding

from ipwarmup.agents.oracle import OraclePolicy, track_allowance
from ipwarmup.envs import build_config, shared_pool
from ipwarmup.envs import providers as prov
from ipwarmup.envs.config import HOURS_PER_DAY
from ipwarmup.envs.simulator import Simulator

SCENARIOS = (
    "steady_b2c_transactional",
    "bursty_b2c_marketing",
    "b2b_microsoft_heavy",
    "fast_growing_startup",
    "seasonal_spike",
    "poor_list_quality",
)


@dataclass(frozen=True)
class Ramp:
    """Daily placement gaps of a clean ramp, one column per seed."""

    gap: np.ndarray  # (days, seeds) dedicated minus shared inbox rate, mix-weighted

    @property
    def overtakes_on(self) -> np.ndarray:
        """First day (1-based) from which dedicated stays above shared to the end; -1 never."""
        above = self.gap > 0
        stays = np.flip(np.cumprod(np.flip(above, axis=0), axis=0), axis=0).astype(bool)
        first: np.ndarray = np.where(stays.any(axis=0), stays.argmax(axis=0) + 1, -1)
        return first

    @property
    def final_gap(self) -> np.ndarray:
        """The gap on the last day, (seeds,)."""
        final: np.ndarray = self.gap[-1]
        return final


def clean_ramp(scenario: str, *, seeds: int, ips: int = 1, overrides: Sequence[str] = ()) -> Ramp:
    """Run a clean ramp on ``ips`` IPs for ``seeds`` seeds and record the daily gaps."""
    config = build_config(scenario=scenario, overrides=[f"pool.initial_ips={ips}", *overrides])
    sim = Simulator(config, seeds)
    sim.reset(np.arange(seeds), [seeding.np_random(i)[0] for i in range(seeds)])
    policy = OraclePolicy(config)
    view = sim.privileged()
    pool, headroom = np.full(seeds, float(ips)), np.full(seeds, 0.9)
    steps_per_day = HOURS_PER_DAY // config.decision_interval_hours
    gaps = []
    for step in range(config.steps_per_episode):
        sim.step(track_allowance(policy, view, pool, headroom))
        if (step + 1) % steps_per_day:
            continue
        state, d = sim.state, sim.state.draw
        dedicated, _ = view.placement()
        active = state.active[:, :, None]
        per_ip = (dedicated * active).sum(axis=1) / np.maximum(active.sum(axis=1), 1)
        normal = shared_pool.standing(state, state.hour // HOURS_PER_DAY, incidents=False)
        shared = prov.inbox_rate(
            normal,
            state.domain_reputation,
            d.base_inbox_rate,
            d.placement_sensitivity,
            ip_weight=d.ip_reputation_weight,
        )
        gaps.append(((per_ip - shared) * state.sender.mix).sum(axis=1))
    return Ramp(np.array(gaps))


def main(argv: Sequence[str] | None = None) -> None:
    """Print, per scenario and seed, the overtaking day and the final gap."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--scenario", action="append", default=None)
    parser.add_argument("--ips", type=int, default=1)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args(argv)
    for scenario in args.scenario or SCENARIOS:
        ramp = clean_ramp(scenario, seeds=args.seeds, ips=args.ips, overrides=args.overrides)
        days = ramp.overtakes_on.tolist()
        gaps = np.round(ramp.final_gap, 3).tolist()
        print(f"{scenario:<26} overtakes on day {days}; final inbox gap {gaps}")


if __name__ == "__main__":
    main()
