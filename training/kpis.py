"""The KPI table: every per-episode KPI declared once, with its function, direction and format.

``KPI_TABLE`` drives ``ipwarmup evaluate`` (the JSON report, its per-seed values and the
paired differences), the terminal tables and plots (:mod:`ipwarmup.training.report`), the
MLflow ``kpi/`` metrics and ``ipwarmup compare``. Adding a KPI is one entry in the table
plus its function; the README's KPI list is generated from the table
(``python -m ipwarmup.training.kpis README.md`` rewrites it, a test checks it).

A KPI function takes the :class:`EpisodeRecord` of one policy on one scenario (every seed
at once) and returns one value per seed. Figures that compare policies (the share of a gap
between two policies closed) are not per-episode: the report derives them from the
per-seed values.

Every module reads the table at call time (``kpi_table()``), never a copy made at import,
so a test can patch ``KPI_TABLE`` and see its KPI everywhere.
"""

from __future__ import annotations

import difflib
import sys
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ipwarmup.errors import ConfigError

WARM_SHARE = 0.95
"""Share of a day's demand the dedicated pool must accept at every provider to be warm."""

DAILY_KEYS = (
    "demand",
    "sent_dedicated",
    "accepted_dedicated",
    "deferred",
    "rejected",
    "transmitted",
    "inbox_dedicated",
    "inbox_shared",
    "delivered_dedicated",
    "delivered_shared",
)
"""Per-day, per-provider message counts an :class:`EpisodeRecord` holds (see ``daily``)."""


@dataclass(frozen=True)
class EpisodeRecord:
    """What a batch of paired episodes recorded: the input of every KPI function.

    Row ``i`` of every array is the episode seeded ``seed + i``.

    Attributes:
        totals: the simulator's cumulative accounting at the end, (seeds,) per key
            (``demand``, ``delivered_inbox``, ``delivered_spam``, ``bounced``, ``rejected``,
            ``expired``, ``queued``, ``sent_dedicated``, ``sent_shared``, ``deferrals``,
            ``block_events``, ``ip_days``, ``accepted_dedicated``).
        daily: messages per day, provider and seed, (days, seeds, providers) per key of
            ``DAILY_KEYS``: ``demand``; on dedicated IPs ``sent_dedicated`` (attempted),
            ``accepted_dedicated``, ``deferred`` (4xx), ``rejected`` (5xx);
            ``transmitted`` (accepted on dedicated plus sent on the shared pool);
            ``inbox_*`` and ``delivered_*`` by pool (hidden from the ESP).
        final_reputation: hidden reputation at the end, (seeds,): mean over providers of
            the dedicated IPs, the shared pool's when the pool is empty.
        continuation: counts of the continuation after the horizon (the same sender on
            the warmed pool, caps held; see ``Simulator._continuation``), (seeds,) per key
            of ``ipwarmup.envs.simulator.CONTINUATION_KEYS``; zeros when it is off.
        horizon_days: days in the episode (the length of ``daily``).
        provider_names: the providers, in the order of the last axis of ``daily``.
        returns: the episode's return, (seeds,): every step's reward summed, the last
            one's continuation value included (the env's docstring, "Rewards").
        messages_per_period: the reward's ``V``, (seeds,): the episode's drawn mean daily
            volume per decision period, by which every step's mail is divided.
    """

    totals: Mapping[str, np.ndarray]
    daily: Mapping[str, np.ndarray]
    final_reputation: np.ndarray
    horizon_days: int
    provider_names: tuple[str, ...]
    continuation: Mapping[str, np.ndarray]
    returns: np.ndarray
    messages_per_period: np.ndarray

    @property
    def seeds(self) -> int:
        """Return the number of episodes (rows)."""
        return len(self.final_reputation)


@dataclass(frozen=True)
class Kpi:
    """One KPI: how it is computed, which direction is better, how it prints.

    Attributes:
        name: the key in reports, MLflow (``kpi/<name>``) and the CLI's ``--kpi``.
        function: the value of every episode of a record, shape (seeds,).
        higher_is_better: the direction of improvement (paired comparisons, ranking).
        format: a ``str.format`` pattern for one value in tables, such as ``"{:.3f}"``.
        doc: one line saying what the value is, for the README and ``--help``.
    """

    name: str
    function: Callable[[EpisodeRecord], np.ndarray]
    higher_is_better: bool
    format: str
    doc: str


def _share(numerator: np.ndarray, record: EpisodeRecord) -> np.ndarray:
    """Divide by the episode's demand (1 when there was none, so an empty episode gives 0)."""
    result: np.ndarray = numerator / np.maximum(record.totals["demand"], 1.0)
    return result


def inbox_share(record: EpisodeRecord) -> np.ndarray:
    """Return delivered to the inbox / demand."""
    return _share(record.totals["delivered_inbox"], record)


def dedicated_share(record: EpisodeRecord) -> np.ndarray:
    """Return accepted on dedicated IPs / demand."""
    return _share(record.totals["accepted_dedicated"], record)


def days_to_warm(record: EpisodeRecord) -> np.ndarray:
    """Return the first day (1-based) the dedicated pool accepted 95% of demand everywhere."""
    demand, accepted = record.daily["demand"], record.daily["accepted_dedicated"]
    warm = ((accepted >= WARM_SHARE * demand) | (demand <= 0)).all(axis=2)  # (days, seeds)
    first: np.ndarray = np.where(
        warm.any(axis=0), warm.argmax(axis=0) + 1, record.horizon_days + 1
    ).astype(float)
    return first


def deferral_rate(record: EpisodeRecord) -> np.ndarray:
    """Return 4xx deferrals / attempts on dedicated IPs (0 without attempts)."""
    attempts = record.totals["sent_dedicated"]
    rate: np.ndarray = np.divide(
        record.totals["deferrals"], attempts, out=np.zeros(len(attempts)), where=attempts > 0
    )
    return rate


def lost_share(record: EpisodeRecord) -> np.ndarray:
    """Return (rejected + expired) / demand."""
    return _share(record.totals["rejected"] + record.totals["expired"], record)


def block_events(record: EpisodeRecord) -> np.ndarray:
    """Return the IP-provider blocks started."""
    return np.array(record.totals["block_events"], dtype=float)


def ip_days(record: EpisodeRecord) -> np.ndarray:
    """Return the dedicated IPs held, summed over days."""
    return np.array(record.totals["ip_days"], dtype=float)


def final_reputation(record: EpisodeRecord) -> np.ndarray:
    """Return the hidden reputation at the end (see ``EpisodeRecord.final_reputation``)."""
    return np.array(record.final_reputation, dtype=float)


FINAL_DAYS = 7
"""Days at the end of the horizon over which ``final_dedicated_share`` is measured."""


def final_dedicated_share(record: EpisodeRecord) -> np.ndarray:
    """Return accepted on dedicated IPs / demand over the last ``FINAL_DAYS`` of the horizon."""
    days = slice(max(record.horizon_days - FINAL_DAYS, 0), record.horizon_days)
    accepted = record.daily["accepted_dedicated"][days].sum(axis=(0, 2))
    demand = record.daily["demand"][days].sum(axis=(0, 2))
    share: np.ndarray = accepted / np.maximum(demand, 1.0)
    return share


def continuation_inbox_share(record: EpisodeRecord) -> np.ndarray:
    """Return delivered to the inbox / demand in the continuation after the horizon."""
    c = record.continuation
    share: np.ndarray = c["delivered_inbox"] / np.maximum(c["demand"], 1.0)
    return share


def total_inbox_share(record: EpisodeRecord) -> np.ndarray:
    """Return delivered to the inbox / demand over the horizon and the continuation."""
    t, c = record.totals, record.continuation
    inbox = t["delivered_inbox"] + c["delivered_inbox"]
    share: np.ndarray = inbox / np.maximum(t["demand"] + c["demand"], 1.0)
    return share


def objective(record: EpisodeRecord) -> np.ndarray:
    """Return the episode's return per message of its demand, horizon and continuation.

    Every step's reward divides its mail by the same ``V``, so ``return * V`` is the
    weighted inbox mail less the penalties in messages, and over the demand it reads on
    ``total_inbox_share``'s scale whatever the sender's growth, interval or horizon. Within
    an episode it is the return times a constant that no action changes (demand is drawn
    apart from the actions), so paired comparisons order policies as the return does.
    """
    t, c = record.totals, record.continuation
    demand = t["demand"] + c.get("demand", np.zeros_like(t["demand"]))
    value: np.ndarray = record.returns * record.messages_per_period / np.maximum(demand, 1.0)
    return value


KPI_TABLE: tuple[Kpi, ...] = (
    Kpi("inbox_share", inbox_share, True, "{:.3f}", "delivered to the inbox / demand"),
    Kpi("dedicated_share", dedicated_share, True, "{:.3f}", "accepted on dedicated IPs / demand"),
    Kpi(
        "days_to_warm",
        days_to_warm,
        False,
        "{:.1f}",
        "first day (1 = the first) the dedicated pool accepted 95% of the day's demand at "
        "every provider; horizon + 1 if never",
    ),
    Kpi(
        "deferral_rate",
        deferral_rate,
        False,
        "{:.4f}",
        "4xx deferrals / attempts on dedicated IPs (0 without attempts)",
    ),
    Kpi("lost_share", lost_share, False, "{:.4f}", "(rejected + expired) / demand"),
    Kpi("block_events", block_events, False, "{:.2f}", "IP-provider blocks started"),
    Kpi("ip_days", ip_days, False, "{:.1f}", "dedicated IPs held, summed over days (cost)"),
    Kpi(
        "final_reputation",
        final_reputation,
        True,
        "{:.3f}",
        "hidden reputation at the end, mean over providers of the dedicated IPs "
        "(the shared pool's when the pool is empty)",
    ),
    Kpi(
        "final_dedicated_share",
        final_dedicated_share,
        True,
        "{:.3f}",
        "accepted on dedicated IPs / demand over the last 7 days of the horizon: where the "
        "warmup leaves the traffic",
    ),
    Kpi(
        "continuation_inbox_share",
        continuation_inbox_share,
        True,
        "{:.3f}",
        "delivered to the inbox / demand in the continuation after the horizon (the same "
        "sender on the warmed pool, caps held, reward.continuation_days days)",
    ),
    Kpi(
        "total_inbox_share",
        total_inbox_share,
        True,
        "{:.3f}",
        "delivered to the inbox / demand over the horizon and the continuation: the "
        "objective's inbox part, per message",
    ),
    Kpi(
        "objective",
        objective,
        True,
        "{:.3f}",
        "the return the agents maximise (reward summed over the horizon and the "
        "continuation) per message of demand: weighted inbox share less the penalties",
    ),
)
"""Every per-episode KPI, in report order."""


def kpi_table() -> tuple[Kpi, ...]:
    """Return the KPI table as it is now (read at call time, so a patched table counts)."""
    return KPI_TABLE


def kpi_names() -> tuple[str, ...]:
    """Return every KPI's name, in table order."""
    return tuple(k.name for k in kpi_table())


def get_kpi(name: str) -> Kpi:
    """Return the KPI called ``name``.

    Raises:
        ConfigError: no KPI has that name (the message suggests the closest).
    """
    for kpi in kpi_table():
        if kpi.name == name:
            return kpi
    names = kpi_names()
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise ConfigError(f"kpi: unknown KPI '{name}'; expected one of {', '.join(names)}{hint}")


def compute_kpis(record: EpisodeRecord) -> dict[str, np.ndarray]:
    """Return every KPI of the table on ``record``, each as float values of shape (seeds,).

    Raises:
        ValueError: a KPI function returned another shape (a bug in that function).
    """
    values = {}
    for kpi in kpi_table():
        value = np.asarray(kpi.function(record), dtype=float)
        if value.shape != (record.seeds,):
            raise ValueError(
                f"KPI {kpi.name}: expected one value per seed, shape ({record.seeds},), "
                f"got shape {value.shape}"
            )
        values[kpi.name] = value
    return values


README_START = "<!-- kpis: generated by python -m ipwarmup.training.kpis README.md -->"
README_END = "<!-- kpis: end -->"


def markdown() -> str:
    """Return the README's KPI list: one line per KPI with its direction and doc."""
    lines = [README_START]
    for kpi in kpi_table():
        better = "higher" if kpi.higher_is_better else "lower"
        item = f"- `{kpi.name}` ({better} is better): {kpi.doc}."
        lines += textwrap.wrap(item, width=92, subsequent_indent="  ", break_on_hyphens=False)
    return "\n".join([*lines, README_END])


def rewrite_readme(text: str) -> str:
    """Return ``text`` with the block between the KPI markers replaced by ``markdown()``.

    Raises:
        ValueError: the markers are missing or out of order.
    """
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        raise ValueError(f"expected the markers {README_START!r} ... {README_END!r}")
    return text[:start] + markdown() + text[end + len(README_END) :]


if __name__ == "__main__":  # pragma: no cover  # pragma: no mutate (a subprocess test runs it)
    for arg in sys.argv[1:]:
        path = Path(arg)
        path.write_text(rewrite_readme(path.read_text()))
        print(f"rewrote the KPI list in {path}")
