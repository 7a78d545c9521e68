"""What each row of a batch draws its episode from: its own sender and provider tolerances.

A :class:`~ipwarmup.envs.simulator.Simulator` built from one config gives every row that
config's sender and providers; a world (issue 10) hands each row a config of its own at
reset. Only what a row draws per episode or per day may differ between rows; what the
compiled period reads batch-wide (pool, MTA, reward, shared pool, horizon, the providers'
names and fixed behaviour) must be the batch's, and :func:`shared_difference` says when not.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ipwarmup.envs import providers as prov
from ipwarmup.envs import sender as snd
from ipwarmup.envs.config import EnvConfig, ProviderConfig, ScenarioConfig
from ipwarmup.envs.state import SimState

# What the compiled period reads of the config for the whole batch.
BATCH_FIELDS = ("pool", "shared_pool", "mta", "reward", "horizon_days", "decision_interval_hours")
BATCH_PROVIDER_FIELDS = ("hold_utilization", "complaint_feedback", "complaint_feedback_delay_hours")


def shared_difference(batch: EnvConfig, row: EnvConfig) -> str:
    """Return what a row's config changes of what the batch shares ('' when nothing)."""
    for name in BATCH_FIELDS:
        if getattr(row, name) != getattr(batch, name):
            return (
                f"{name}: expected the batch's {getattr(batch, name)!r}, got {getattr(row, name)!r}"
            )
    if tuple(row.providers) != tuple(batch.providers):
        return f"providers: expected {list(batch.providers)}, got {list(row.providers)}"
    for name, mine in row.providers.items():
        theirs = batch.providers[name]
        for field in BATCH_PROVIDER_FIELDS:
            if getattr(mine, field) != getattr(theirs, field):
                return (
                    f"providers.{name}.{field}: expected the batch's "
                    f"{getattr(theirs, field)!r}, got {getattr(mine, field)!r}"
                )
    return ""


class RowConfigs:
    """Each row's sender, provider tolerances and day shapes.

    Args:
        config: the batch's config, every row's until :meth:`use` gives it another.
        n_rows: rows in the batch.
    """

    def __init__(self, config: EnvConfig, n_rows: int) -> None:
        self.config = config
        self.provider_names = config.provider_names
        self.scenarios: list[ScenarioConfig] = [config.scenario] * n_rows
        self.providers: list[list[ProviderConfig]] = [list(config.providers.values())] * n_rows
        self.shapes = snd.RowShapes.of(config.scenario, n_rows)
        # The last scenario's Dirichlet shapes (a reset asks once per row; ~9 us each).
        self._gamma: tuple[ScenarioConfig, np.ndarray] | None = None

    def use(self, idx: np.ndarray, configs: Sequence[EnvConfig]) -> None:
        """Give rows ``idx`` the sender and providers of ``configs``, checked against the batch.

        Raises:
            ValueError: a config differs from the batch's in a setting the batch shares.
        """
        if len(configs) != len(idx):
            raise ValueError(f"configs: expected {len(idx)}, one per row, got {len(configs)}")
        for i, config in zip(idx, configs, strict=True):
            problem = shared_difference(self.config, config)
            if problem:
                raise ValueError(f"configs[row {int(i)}]: {problem}")
            self.scenarios[i] = config.scenario
            self.providers[i] = list(config.providers.values())
            self.shapes.set(int(i), config.scenario)

    def gamma_shapes(self, row: int) -> np.ndarray:
        """Return the Dirichlet shapes of row ``row``'s provider mix (read-only)."""
        scenario = self.scenarios[row]
        if self._gamma is None or self._gamma[0] is not scenario:
            shapes = snd.gamma_shapes(scenario, self.provider_names)
            shapes.setflags(write=False)
            self._gamma = (scenario, shapes)
        return self._gamma[1]

    def draw(
        self,
        state: SimState,
        idx: np.ndarray,
        u_prov: np.ndarray,
        u_send: np.ndarray,
        gammas: np.ndarray,
        u_dom: np.ndarray,
    ) -> None:
        """Draw the providers and senders of rows ``idx`` from their draws, into ``state``.

        Rows that share a sender and providers (all of them, without a world) draw in one
        call; a world's rows each from their own.
        """
        groups: dict[tuple[int, int], list[int]] = {}
        for r, i in enumerate(idx):
            groups.setdefault((id(self.scenarios[i]), id(self.providers[i])), []).append(r)
        for members in groups.values():
            at = np.array(members)
            rows, first = idx[at], int(idx[at[0]])
            draw = prov.draw_providers(self.providers[first], u_prov[at])
            for name, values in draw.rows(np.arange(len(at))).items():
                getattr(state.draw, name)[rows] = values
            sender = snd.draw_sender(
                self.scenarios[first], self.provider_names, u_send[at], gammas[at], u_dom[at]
            )
            for name in vars(sender):
                getattr(state.sender, name)[rows] = getattr(sender, name)

    def take(self, rows: np.ndarray) -> RowConfigs:
        """Return the rows ``rows`` of this batch, in that order."""
        taken = RowConfigs(self.config, 0)
        taken.scenarios = [self.scenarios[i] for i in rows]
        taken.providers = [self.providers[i] for i in rows]
        taken.shapes = self.shapes.take(rows)
        return taken
