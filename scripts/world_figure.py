"""How often warming pays in a world: the oracle against hold-shared on its draws (issue 10).

Usage: ``python scripts/world_figure.py [--world default] [--draws 200] [--seed 0]``.

Draw ``i`` is the sender, MTA and providers that env ``i`` of a world VecEnv seeded
``--seed`` meets in its first episode, and its episode is seeded ``seed + i`` for both
policies (paired). Per draw, the oracle's lead over ``hold-shared`` on
``total_inbox_share`` (horizon plus continuation, as the README's "Does warming pay?"
table) says whether warming pays: issue 8 asks a lead of at least 0.03 where it does.
Printed: the share of draws where it pays, overall and by daily volume, overflow mode and
list quality, and the oracle's final dedicated share, so the lead can see whether the world
teaches what the suites test (a world where warming never pays teaches to stay shared).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import numpy as np

from ipwarmup.agents.registry import make_policy
from ipwarmup.envs.config import EnvConfig
from ipwarmup.envs.world import WORLD_STREAM, WorldSampler, load_world
from ipwarmup.training.evaluate import run_scenario

PAYS = 0.03  # issue 8: the oracle's lead where warming pays
VOLUME_BANDS = ((0.0, 500.0), (500.0, 5_000.0), (5_000.0, 100_000.0), (1e5, 1e6), (1e6, np.inf))


def measure(world: str, draws: int, seed: int) -> dict[str, np.ndarray]:
    """Return per draw: volume, queue mode, bounce rate, both policies' KPIs."""
    sampler = WorldSampler(world=load_world(world), config=EnvConfig())
    configs = [
        sampler.draw(np.random.default_rng(np.random.SeedSequence([seed + i, WORLD_STREAM])))
        for i in range(draws)
    ]
    out = {
        "volume": np.array([c.scenario.daily_volume_messages[0] for c in configs]),
        "queue": np.array([c.mta.overflow == "queue" for c in configs]),
        "bounce": np.array([c.scenario.bounce_rate[0] for c in configs]),
        "oracle": np.zeros(draws),
        "hold-shared": np.zeros(draws),
        "oracle_dedicated": np.zeros(draws),
    }
    # One draw at a time: both policies meet draw i seeded seed + i (paired).
    for i, config in enumerate(configs):
        for name in ("oracle", "hold-shared"):
            kpis = run_scenario(make_policy(name, config), config, 1, seed + i).kpis
            out[name][i] = kpis["total_inbox_share"][0]
            if name == "oracle":
                out["oracle_dedicated"][i] = kpis["final_dedicated_share"][0]
    return out


def _line(label: str, mask: np.ndarray, lead: np.ndarray, dedicated: np.ndarray) -> str:
    n = int(mask.sum())
    if n == 0:
        return f"| {label} | 0 | | | |"
    pays = float((lead[mask] >= PAYS).mean())
    return (
        f"| {label} | {n} | {pays:.0%} | {float(np.median(lead[mask])):+.3f} | "
        f"{float(dedicated[mask].mean()):.2f} |"
    )


def table(data: dict[str, np.ndarray]) -> str:
    """Return the markdown table: share of draws where warming pays, by group."""
    lead = data["oracle"] - data["hold-shared"]
    dedicated = data["oracle_dedicated"]
    lines = [
        f"| draws | n | warming pays (oracle lead >= {PAYS}) | median lead | "
        "oracle final dedicated share |",
        "|---|---|---|---|---|",
        _line("all", np.ones(len(lead), dtype=bool), lead, dedicated),
    ]
    for low, high in VOLUME_BANDS:
        label = f"{low:,.0f}-{high:,.0f}/day" if np.isfinite(high) else f"over {low:,.0f}/day"
        band = (data["volume"] >= low) & (data["volume"] < high)
        lines.append(_line(label, band, lead, dedicated))
    lines.append(_line("MTA overflow shared", ~data["queue"], lead, dedicated))
    lines.append(_line("MTA overflow queue", data["queue"], lead, dedicated))
    lines.append(_line("poor list (bounces >= 3%)", data["bounce"] >= 0.03, lead, dedicated))
    lines.append(_line("cleaner list (bounces < 3%)", data["bounce"] < 0.03, lead, dedicated))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", default="default", help="world name or YAML path")
    parser.add_argument("--draws", type=int, default=200, help="senders drawn")
    parser.add_argument("--seed", type=int, default=0, help="seed of draw 0")
    args = parser.parse_args(argv)
    print(table(measure(args.world, args.draws, args.seed)))


if __name__ == "__main__":
    main()
