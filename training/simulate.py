"""Run one policy through one seeded warmup and report it day by day, per provider."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ipwarmup.envs.env import IPWarmupEnv
from ipwarmup.policy import Policy

COLUMNS = ("day", "ips", "cap/h", "demand", "sent", "accepted", "deferred", "rejected", "inbox")


@dataclass
class Trace:
    """Per-day, per-provider figures of one warmup; every array is (days, P)."""

    providers: tuple[str, ...]
    cap_per_hour: list[np.ndarray] = field(default_factory=list)
    demand: list[np.ndarray] = field(default_factory=list)
    sent_dedicated: list[np.ndarray] = field(default_factory=list)
    accepted: list[np.ndarray] = field(default_factory=list)
    deferred: list[np.ndarray] = field(default_factory=list)
    rejected: list[np.ndarray] = field(default_factory=list)
    inbox: list[np.ndarray] = field(default_factory=list)
    delivered: list[np.ndarray] = field(default_factory=list)
    n_ips: list[int] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    accounting: dict[str, float] = field(default_factory=dict)

    def array(self, name: str) -> np.ndarray:
        """Return one figure as an array of shape (days, P)."""
        return np.array(getattr(self, name))


def run_episode(env: IPWarmupEnv, policy: Policy, seed: int) -> Trace:
    """Roll ``policy`` through one episode of ``env`` seeded ``seed``, summing each day."""
    sim = env.simulator
    steps_per_day = 24 // env.config.decision_interval_hours
    trace = Trace(providers=env.config.provider_names)
    obs, _ = env.reset(seed=seed)
    done = False
    day: dict[str, np.ndarray] = {}
    step = 0
    info: dict[str, dict[str, float]] = {}
    day_cap = np.zeros(len(trace.providers))
    state = None
    while not done:
        action, state = policy.predict(obs, state, np.array([step == 0]))
        obs, reward, terminated, truncated, info = env.step(action)
        done = terminated or truncated
        t, o = sim.telemetry, sim.outcome
        figures = {
            "demand": t.demand[0],
            "sent_dedicated": t.sent_dedicated[0],
            "accepted": t.accepted[0],
            "deferred": t.deferred[0],
            "rejected": t.rejected[0],
            "inbox": o["inbox_dedicated"][0] + o["inbox_shared"][0],
            "delivered": o["delivered_dedicated"][0] + o["delivered_shared"][0],
        }
        for name, value in figures.items():
            day[name] = day.get(name, 0.0) + value
        trace.rewards.append(reward)
        if step % steps_per_day == 0:
            day_cap = t.cap_per_hour[0].copy()  # the cap in force in the day's first period
        step += 1
        if step % steps_per_day == 0 or done:
            trace.cap_per_hour.append(day_cap)
            for name, value in day.items():
                getattr(trace, name).append(value)
            trace.n_ips.append(int(sim.state.n_ips[0]))
            day = {}
    trace.accounting = dict(info["accounting"])
    return trace


def format_table(trace: Trace) -> str:
    """Render the trace as one day-by-day table per provider."""
    lines = []
    inbox, delivered = trace.array("inbox"), trace.array("delivered")
    for p, name in enumerate(trace.providers):
        lines.append(f"\n{name}")
        lines.append("".join(f"{c:>11}" for c in COLUMNS))
        for d in range(len(trace.demand)):
            rate = inbox[d, p] / delivered[d, p] if delivered[d, p] > 0 else float("nan")
            row = [
                f"{d:>11d}",
                f"{trace.n_ips[d]:>11d}",
                f"{trace.cap_per_hour[d][p]:>11,.0f}",
                *(
                    f"{getattr(trace, key)[d][p]:>11,.0f}"
                    for key in ("demand", "sent_dedicated", "accepted", "deferred", "rejected")
                ),
                f"{rate:>11.1%}",
            ]
            lines.append("".join(row))
    acc = trace.accounting
    demand = max(acc["demand"], 1.0)
    lost = (acc["rejected"] + acc["expired"]) / demand
    lines.append(
        "\ntotal: "
        f"demand {acc['demand']:,.0f}, inbox {acc['delivered_inbox'] / demand:.1%}, "
        f"dedicated {acc['sent_dedicated'] / demand:.1%} of demand, "
        f"deferrals {acc['deferrals']:,.0f}, lost {lost:.2%}, "
        f"blocks {acc['block_events']:.0f}, IP-days {acc['ip_days']:.0f}, "
        f"reward {sum(trace.rewards):.2f}"
    )
    return "\n".join(lines)


def plot_trace(trace: Trace, path: Path, title: str) -> Path:
    """Write a PNG of the warmup curves: per provider, demand, cap and accepted per hour."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(trace.providers)
    fig, axes = plt.subplots(n, 1, figsize=(9, 2.2 * n), sharex=True, squeeze=False)
    days = np.arange(len(trace.demand))
    demand = trace.array("demand") / 24
    accepted = trace.array("accepted") / 24
    deferred = trace.array("deferred") / 24
    caps = trace.array("cap_per_hour")
    for p, name in enumerate(trace.providers):
        ax = axes[p, 0]
        ax.plot(days, demand[:, p], label="demand / h", color="black", linewidth=1)
        ax.step(days, caps[:, p], where="post", label="dedicated cap / h", color="tab:blue")
        ax.plot(days, accepted[:, p], label="accepted / h", color="tab:green")
        ax.plot(days, deferred[:, p], label="deferred / h", color="tab:red", linestyle="--")
        ax.set_yscale("symlog", linthresh=10)
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(loc="upper left", fontsize=7, ncol=4)
    axes[0, 0].set_title(title)
    axes[-1, 0].set_xlabel("day")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
