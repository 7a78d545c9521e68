"""The Gymnasium environment: one warmup, a thin adapter over the batched simulator."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from ipwarmup.actions import ENV_ID, ENV_VERSION
from ipwarmup.config import apply_overrides, load, to_dict
from ipwarmup.envs.config import EnvConfig, ScenarioConfig
from ipwarmup.envs.scenarios import read_scenario
from ipwarmup.envs.simulator import Simulator
from ipwarmup.envs.state import accounting_block
from ipwarmup.observation import Telemetry, feature_bounds, feature_names

__all__ = ["ENV_ID", "ENV_VERSION", "IPWarmupEnv", "build_config", "check_no_options"]

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_COLUMNS = (
    ("demand", "demand"),
    ("cap/h", "cap_per_hour"),
    ("sent_ded", "sent_dedicated"),
    ("accepted", "accepted"),
    ("deferred", "deferred"),
    ("rejected", "rejected"),
    ("bounced", "bounced"),
    ("complaint", "complaints"),
    ("queued", "queued"),
)


def check_no_options(options: Mapping[str, Any] | None) -> None:
    """Refuse reset options: an episode's settings are the env's configuration.

    Raises:
        ValueError: ``options`` holds anything.
    """
    if options:
        raise ValueError(
            f"options: IPWarmupEnv takes no reset options, got {sorted(options)}; set "
            "scenario=, config= or overrides= when making the env"
        )


def render_table(telemetry: Telemetry, config: EnvConfig, row: int = 0) -> str:
    """Return one row's last period as a text table: one line per provider, what an ESP sees.

    Counts are messages in the period (``cap/h`` the dedicated pool's hourly cap);
    ``complaint`` counts complaints reported in the period (feedback loops lag). At most
    100 columns with five providers of names up to nine characters.
    """
    t = telemetry
    day = int(t.day[row])
    head = (
        f"day {day}/{config.horizon_days} ({WEEKDAYS[int(t.weekday[row]) % 7]}), "
        f"hour {int(t.hour[row]):02d}: {int(t.n_ips[row])} dedicated IPs, "
        f"mean age {float(t.mean_ip_age_days[row]):.1f} days"
    )
    width = max(10, *(len(name) + 1 for name in config.provider_names))
    lines = [head, f"{'provider':<{width}}" + "".join(f"{h:>10}" for h, _ in _COLUMNS)]
    for p, name in enumerate(config.provider_names):
        cells = "".join(f"{getattr(t, key)[row, p]:>10.0f}" for _, key in _COLUMNS)
        lines.append(f"{name:<{width}}{cells}")
    return "\n".join(lines)


def build_config(
    *,
    scenario: str | Path | ScenarioConfig | None = None,
    config: EnvConfig | Mapping[str, Any] | None = None,
    overrides: Sequence[str] = (),
) -> EnvConfig:
    """Resolve an env configuration from a scenario, a config (object or plain data), overrides.

    Every env constructor takes these three keyword arguments in this order.

    Args:
        scenario: a shipped scenario name, a path to a scenario YAML, or a
            :class:`ScenarioConfig`; replaces the config's scenario when given. A file's
            ``providers`` and ``mta`` sections are merged over the config's.
        config: an :class:`EnvConfig`, plain data for one (as read from YAML), or None for
            the defaults.
        overrides: ``dotted.key=value`` strings applied on top, checked like the file.
    """
    data = to_dict(config) if isinstance(config, EnvConfig) else dict(config or {})
    if isinstance(scenario, ScenarioConfig):
        data["scenario"] = to_dict(scenario)
    elif scenario is not None:
        # A scenario file's providers and mta sections refine the config's.
        data = read_scenario(scenario).lay_over(data)
    # Overrides come last, so `scenario.x=...` refines the chosen scenario.
    return load(EnvConfig, apply_overrides(data, overrides), path="env")


class IPWarmupEnv(gym.Env[np.ndarray, np.ndarray]):
    r"""Warm up a pool of dedicated email-sending IPs, per inbox provider.

    A customer of an email service provider moves from the shared IP pool onto dedicated
    IPs. Inbox providers accept little mail from a new IP and answer the rest with 4xx
    deferrals; a sender that keeps pushing through deferrals gets a 5xx block. Each step the
    agent moves every provider's dedicated hourly cap and may grow or shrink the pool; the
    simulated MTA enforces the plan hour by hour, sending what the caps hold back through
    the shared pool and deferred mail there at its retry, ``mta.retry_interval_hours``
    later (or both to a retry queue, ``mta.overflow="queue"``). Every provider's
    tolerance is hidden and drawn per episode, so the agent must read the replies.

    ## Action Space

    ``Box(-1, 1, (P + 1,), float32)`` with ``P`` providers in configured order:

    | Index | Name | Low | High | Effect |
    |-------|------|-----|------|--------|
    | p (0..P-1) | cap change at provider p | -1 | 1 | scale every IP's hourly cap at p |
    | P | pool change | -1 | 1 | > 1/3 add a cold IP, < -1/3 drop the newest, else hold |

    A cap action ``a`` multiplies the caps by ``max_cap_change_per_day ** (a * h / 24)``
    with ``h = decision_interval_hours``, then clips them to ``[min_hourly_cap_messages,
    max_hourly_cap_messages]``. A dropped IP loses its history. The pool changes at most
    once per ``pool_change_min_days``.

    ## Observation Space

    ``Box(low, high, (9P + 6 + 3 + 9PK,), float32)``: what an ESP sees of the last period
    (never the hidden reputation), what it knows of its own MTA, and the last ``K =
    observation.history_periods`` periods (default 3; with ``observation.mta_inputs=false``
    the MTA's three features are left out, and ``K = 0`` leaves the last period alone,
    ``(9P + 6,)``). Per provider ``p`` (feature index ``9p + i``):

    | Index | Name | Low | High | Meaning |
    |-------|------|-----|------|---------|
    | 9p+0 | demand | 0 | 2 | log10(1 + demand per hour) / 7 |
    | 9p+1 | cap | 0 | 2 | log10(1 + dedicated pool cap per hour) / 8 |
    | 9p+2 | dedicated_share | 0 | 2 | sent on dedicated / demand (retries can exceed 1) |
    | 9p+3 | accept_rate | 0 | 1 | accepted / sent on dedicated |
    | 9p+4 | deferral_rate | 0 | 1 | deferred (4xx) / sent on dedicated |
    | 9p+5 | reject_rate | 0 | 1 | rejected (5xx block) / sent on dedicated |
    | 9p+6 | bounce_rate | 0 | 1 | 10 x bounced / transmitted |
    | 9p+7 | complaint_rate | 0 | 1 | 100 x complaints reported / delivered (delayed; Apple: none) |
    | 9p+8 | queue | 0 | 2 | log10(1 + queued messages) / 7 |

    Then, at ``9P + j``:

    | Index | Name | Low | High | Meaning |
    |-------|------|-----|------|---------|
    | 9P+0 | pool.ips | 0 | 1 | dedicated IPs / max_ips |
    | 9P+1 | pool.mean_ip_age | 0 | 1 | mean age of the dedicated IPs in days / 60 |
    | 9P+2 | time.progress | 0 | 1 | days since the warmup started / horizon_days |
    | 9P+3 | time.weekday_sin | -1 | 1 | sin(2 pi weekday / 7) |
    | 9P+4 | time.weekday_cos | -1 | 1 | cos(2 pi weekday / 7) |
    | 9P+5 | time.hour | 0 | 1 | hour of day of the next decision / 24 |

    Then the MTA's set-up (``mta`` in the config; an ESP knows its own MTA):

    | Index | Name | Low | High | Meaning |
    |-------|------|-----|------|---------|
    | 9P+6 | mta.queue | 0 | 1 | 1 with overflow "queue" (retried on dedicated), 0 "shared" |
    | 9P+7 | mta.max_age | 0 | 1 | max_age_hours / 168 |
    | 9P+8 | mta.retry_interval | 0 | 1 | retry_interval_hours / 24 |

    Then for ``k = 1..K``, at ``9P + 9 + 9P(k-1) + 9p + i``, ``history.k.<p>.<name>``: the
    per-provider feature ``i`` (first table, same bounds) of the observation ``k``
    decisions ago, zeros where that decision came before the warmup started. Provider
    tolerances are hidden: the history is where the replies to earlier caps show them.

    ## Rewards

    Per message. With ``V`` the episode's expected demand per step (its drawn mean daily
    volume times ``decision_interval_hours / 24``, the same for every step of an episode)
    and the weights of ``reward`` in the config:

    ``r = (w_ded * inbox_dedicated + w_shared * inbox_shared - w_lost * (rejected +
    expired)) / V - w_block * new_blocks - w_ip * ip_days``

    So every message counts alike, a weekend's as a weekday's, and mail held in the retry
    queue earns nothing until it reaches an inbox. Dedicated inbox placement is weighted
    above shared (``w_shared <= w_ded``, defaults 1.0 and 0.9) because the customer is
    moving to dedicated IPs.

    The return values what the warmup leaves behind: at the horizon the same sender goes
    on for ``reward.continuation_days`` (default 30) on the warmed pool, caps and pool held,
    mail still queued delivered or expiring, and the continuation's rewards, counted the
    same way, are added to the last step's reward (``info["continuation"]`` holds that part
    and the continuation's counts). A pool left cold keeps its mail on the shared pool; a
    pool pushed into blocks pays after the horizon too.

    With ``H`` the mail handled in a step (new demand plus the retry queue at its start),
    a step's reward lies in ``[-(w_lost * H / V + w_block * max_ips * P + w_ip * max_ips *
    decision_interval_hours / 24), w_ded * H / V]`` (``H / V`` is about 1, several times
    that on a campaign day or late in a growing sender's episode), and the continuation's
    in the same bounds summed over its steps. KPIs (inbox share, lost share, days to warm,
    final dedicated share, ...) are reported apart from it.

    ## Starting State

    The pool holds ``pool.initial_ips`` cold IPs, each capped at
    ``pool.initial_hourly_cap_messages`` per provider. Provider tolerances, the sender's
    volume, mix and list quality, and the shared pool's reputation are drawn from their
    configured ranges with the env's ``np_random``. The first observation shows the
    customer's expected hourly demand and nothing else of traffic.

    ## Episode End

    No termination. Truncation after ``horizon_days`` (default 45) of simulated time.

    ## Info

    ``info["accounting"]`` holds cumulative message counts since reset: ``demand``,
    ``delivered_inbox``, ``delivered_spam``, ``bounced``, ``rejected``, ``expired``,
    ``queued`` (now in the MTA's queue: awaiting a retry), ``sent_dedicated`` (attempts on
    dedicated IPs),
    ``sent_shared``, ``deferrals`` (4xx answers), plus ``block_events`` and ``ip_days``.
    At every step ``demand = delivered_inbox + delivered_spam + bounced + rejected +
    expired + queued``. At the last step ``info["continuation"]`` holds the continuation's
    ``reward`` and its ``demand``, ``delivered_inbox``, ``accepted_dedicated``,
    ``rejected`` and ``expired``.

    ## Arguments

    ``gym.make("ipwarmup/IPWarmup-v0", scenario=None, config=None, overrides=(),
    render_mode=None)``, all keyword-only: ``scenario`` is a shipped scenario name (see
    ``configs/scenarios/``) or a YAML path; ``config`` an :class:`EnvConfig` or plain data;
    ``overrides`` ``dotted.key=value`` strings (see :func:`build_config`);
    ``render_mode`` None or ``"ansi"``: ``render()`` then returns the last period's
    per-provider table as text (what an ESP sees), to print.

    ``reset`` takes ``seed``; ``options`` must be None or empty (an episode's settings are
    the env's configuration, fixed when it is made), anything else raises ``ValueError``.

    ## Version History

    * v0: first version.
    * v1: warming pays what it pays in the world (issue 8): list rates count by the square
      of their ratio to the provider's thresholds; a volume spike is judged against the
      larger of the recent average and the day before; the shared pool's standing moves
      with this sender's share of its volume; the first decision may already size the
      pool; the reward is per message of the episode's expected demand and counts a
      continuation after the horizon.
    * v2: the policy sees more than the last period (issue 10): by default the observation
      appends the provider features of the last ``observation.history_periods`` (3)
      periods and the MTA's own set-up (overflow mode, queue, retry interval), 189 inputs
      with five providers (51 before); ``history_periods: 0`` with ``mta_inputs: false``
      is the v1 layout. The oracle plans ramps held within each provider's spike
      tolerance (issue 8); the dynamics are unchanged.
    """

    # Gymnasium reads metadata from the class (hence RUF012); one table per decision, and
    # render_fps only quiets Gymnasium's checker (nothing animates).
    metadata: dict[str, Any] = {"render_modes": ["ansi"], "render_fps": 1}  # noqa: RUF012

    def __init__(
        self,
        *,
        scenario: str | Path | ScenarioConfig | None = None,
        config: EnvConfig | Mapping[str, Any] | None = None,
        overrides: Sequence[str] = (),
        render_mode: str | None = None,
    ) -> None:
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(
                f"render_mode: expected None or 'ansi', got {render_mode!r}; "
                "the env has no graphical renderer"
            )
        self.render_mode = render_mode
        self.config = build_config(scenario=scenario, config=config, overrides=overrides)
        self.simulator = Simulator(self.config, 1)
        n_providers = len(self.config.providers)
        layout = self.config.observation.layout
        low, high = feature_bounds(n_providers, layout)
        self.observation_space = gym.spaces.Box(low, high, dtype=np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (n_providers + 1,), dtype=np.float32)
        self.feature_names = feature_names(self.config.provider_names, layout)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start a new warmup; ``seed`` seeds the env's ``np_random``.

        Raises:
            ValueError: ``options`` is not empty (nothing is configured per episode).
        """
        check_no_options(options)
        super().reset(seed=seed)
        obs = self.simulator.reset(np.array([0]), [self.np_random])
        return obs[0], self._info()

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Apply one decision and simulate ``decision_interval_hours``."""
        result = self.simulator.step(action)  # the codec's check makes it a float64 row
        info = self._info(result.accounting)
        truncated = bool(result.truncated[0])
        if truncated:
            info["continuation"] = self.simulator.continuation_info(0, result)
        return result.observation[0], float(result.reward[0]), False, truncated, info

    def render(self) -> str | None:
        """Return the last period's table (``render_mode="ansi"``), or None without a mode."""
        if self.render_mode is None:
            return None
        return render_table(self.simulator.telemetry, self.config)

    def _info(self, accounting: np.ndarray | None = None) -> dict[str, Any]:
        # One conversion of the accounting's rows (key order: ACCOUNTING_KEYS +
        # EXTRA_ACCOUNTING_KEYS), not one float() per count; ``accounting``: the block
        # the step returned (StepResult.accounting), else read from the state.
        state = self.simulator.state
        block = accounting_block(state) if accounting is None else accounting
        values = block[:, 0].tolist()
        return {"accounting": dict(zip(state.accounting, values, strict=True))}
