"""The explicit privileged channel into a simulator's hidden state.

Only the oracle (a reference ceiling and a training teacher) and KPI computations read
it. Everything it returns is a copy: reading can never change a trajectory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ipwarmup.envs import providers as prov
from ipwarmup.envs import shared_pool
from ipwarmup.envs.config import HOURS_PER_DAY
from ipwarmup.envs.days import spike_reference
from ipwarmup.envs.escalation import acceptance_limit

if TYPE_CHECKING:
    from ipwarmup.envs.simulator import Simulator


class PrivilegedView:
    """The explicit privileged channel into a simulator's hidden state (copies, never views).

    Args:
        simulator: the simulator to read.
    """

    def __init__(self, simulator: Simulator) -> None:
        self._sim = simulator

    @property
    def n_ips(self) -> np.ndarray:
        """Dedicated IPs in each row's pool, (B,)."""
        return self._sim.state.n_ips.copy()

    @property
    def allowance(self) -> np.ndarray:
        """Earned hourly allowance per IP slot and provider, (B, K, P)."""
        return self._sim.state.allowance.copy()

    @property
    def caps(self) -> np.ndarray:
        """Hourly caps per IP slot and provider, (B, K, P)."""
        return self._sim.state.caps.copy()

    @property
    def blocked(self) -> np.ndarray:
        """Whether each IP is blocked at each provider, (B, K, P)."""
        return self._sim.state.blocked.copy()

    @property
    def acceptance_limit(self) -> np.ndarray:
        """Hourly messages each IP has accepted now: its allowance, cut while throttled."""
        return acceptance_limit(self._sim.state)

    @property
    def tolerated_volume(self) -> np.ndarray:
        """Messages each IP may have accepted today before its provider sees a spike, (B, K, P).

        ``spike_tolerance`` times the day's reference (:func:`~ipwarmup.envs.days.
        spike_reference`): a day above it costs the IP quality at midnight.
        """
        state = self._sim.state
        tolerated: np.ndarray = state.draw.spike_tolerance[:, None, :] * spike_reference(state)
        return tolerated

    @property
    def reputation(self) -> np.ndarray:
        """Hidden reputation per IP slot and provider, (B, K, P)."""
        return self._sim.state.reputation.copy()

    @property
    def domain_reputation(self) -> np.ndarray:
        """Hidden domain reputation per provider, (B, P)."""
        return self._sim.state.domain_reputation.copy()

    @property
    def shared_reputation(self) -> np.ndarray:
        """Shared pool reputation per provider today, incidents included, (B, P)."""
        state = self._sim.state
        return shared_pool.standing(state, state.hour // HOURS_PER_DAY)

    @property
    def draw(self) -> prov.ProviderDraw:
        """Each provider's hidden tolerances this episode, each (B, P)."""
        return prov.ProviderDraw(**{k: v.copy() for k, v in vars(self._sim.state.draw).items()})

    @property
    def demand_today(self) -> np.ndarray:
        """Today's demand per hour and provider, (B, 24, P)."""
        return self._sim.state.demand_today.copy()

    def placement(self) -> tuple[np.ndarray, np.ndarray]:
        """Return inbox rates (dedicated per IP (B, K, P), shared (B, P)) at today's state."""
        d = self._sim.state.draw
        dom = self._sim.state.domain_reputation
        dedicated = prov.inbox_rate(
            self._sim.state.reputation,
            dom[:, None, :],
            d.base_inbox_rate[:, None, :],
            d.placement_sensitivity[:, None, :],
            ip_weight=d.ip_reputation_weight[:, None, :],
        )
        shared = prov.inbox_rate(
            self.shared_reputation,
            dom,
            d.base_inbox_rate,
            d.placement_sensitivity,
            ip_weight=d.ip_reputation_weight,
        )
        return dedicated, shared

    def foresight(self, copies: int) -> Simulator:
        """Return ``copies`` copies of every row, to replay the future (see replicate)."""
        return self._sim.replicate(copies)

    def list_quality(self) -> np.ndarray:
        """Daily quality score (0..1) the sender's list earns at each provider, (B, P)."""
        s, d = self._sim.state.sender, self._sim.state.draw
        return prov.daily_quality(
            s.complaint_rate[:, None], s.bounce_rate[:, None], s.trap_rate[:, None], d
        )

    def final_reputation(self) -> np.ndarray:
        """Mean hidden reputation over providers of the sender's dedicated IPs, (B,).

        A row whose pool is empty reports the shared pool's reputation, the standing its
        mail then rides on.
        """
        state = self._sim.state
        per_provider = (state.reputation * state.active[:, :, None]).sum(axis=1)
        mean_ip = per_provider.mean(axis=1) / np.maximum(state.n_ips, 1)
        shared = self.shared_reputation.mean(axis=1)
        result: np.ndarray = np.where(state.n_ips > 0, mean_ip, shared)
        return result
