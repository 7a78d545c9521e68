"""Regenerate the telemetry examples: ``python examples/make_examples.py``.

``telemetry.json`` (schema version 2) is the telemetry of a real simulator state (the steady
B2C scenario, seed 0, after 10 days of SendGrid's published schedule), with counts rounded
to whole messages, the default MTA's set-up and the three days before it (rounded alike) as
its history. ``telemetry-v1.json`` (schema version 1) was made the same way by an earlier
simulator and is kept as it is: tests compute decisions from its numbers by hand. Each
``invalid/<kind>.json`` spoils that version-1 record in one way; ``invalid/<kind>.expected``
holds the exact problem lines ``ipwarmup.serving.telemetry.validate`` must report, one per line,
written here by hand (they are the specification, not a recording of the output).

This script may use the simulator; the serving module never does.
"""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ipwarmup.agents.registry import make_policy
from ipwarmup.envs import IPWarmupEnv
from ipwarmup.envs.config import MTAConfig
from ipwarmup.errors import TelemetryError
from ipwarmup.observation import Layout
from ipwarmup.serving.telemetry import record_from_telemetry, validate

HERE = Path(__file__).resolve().parent
SCENARIO = "steady_b2c_transactional"
SEED = 0
DAYS = 10
PROVIDERS = ("gmail", "microsoft", "yahoo", "apple", "other")
MAX_IPS = 8  # the default pool.max_ips
HISTORY = 3  # the default observation.history_periods

Record = dict[str, Any]


def _rounded(record: Record) -> Record:
    """Round a record's counts to whole messages, keeping its totals consistent."""
    record["pool"]["mean_ip_age_days"] = round(record["pool"]["mean_ip_age_days"], 3)
    for entry in record["providers"].values():
        counts = {name: round(value) for name, value in entry.items()}
        counts["dedicated_cap_per_hour"] = round(entry["dedicated_cap_per_hour"], 1)
        # Rounding each count alone could break the totals; keep them consistent.
        sent = counts["sent_dedicated"]
        counts["accepted"] = min(counts["accepted"], sent)
        counts["rejected"] = min(counts["rejected"], sent - counts["accepted"])
        counts["deferred"] = sent - counts["accepted"] - counts["rejected"]
        counts["bounced"] = min(counts["bounced"], counts["accepted"] + counts["sent_shared"])
        entry.update(counts)
    return record


def simulated_records() -> list[Record]:
    """Step the simulator ``DAYS`` days with fixed-sendgrid; export each day's, rounded.

    Version-1 records, the latest first.
    """
    env = IPWarmupEnv(scenario=SCENARIO)
    obs, _ = env.reset(seed=SEED)
    policy = make_policy("fixed-sendgrid", env.config)
    names = env.config.provider_names
    assert names == PROVIDERS, names
    hours = env.config.decision_interval_hours
    state = None
    records = [_rounded(record_from_telemetry(env.simulator.telemetry, 0, names,
                                              period_hours=hours))]  # fmt: skip
    for day in range(DAYS):
        action, state = policy.predict(obs, state, np.array([day == 0]))
        obs, *_ = env.step(action)
        records.insert(0, _rounded(record_from_telemetry(env.simulator.telemetry, 0, names,
                                                         period_hours=hours)))  # fmt: skip
    return records


def memory_record(records: list[Record]) -> Record:
    """The version-2 record of day ``DAYS``: the MTA's set-up and the last three periods."""
    mta = MTAConfig()
    return {
        **records[0],
        "schema_version": 2,
        "mta": {"overflow": mta.overflow, "max_age_hours": mta.max_age_hours,
                "retry_interval_hours": mta.retry_interval_hours},
        "history": [record["providers"] for record in records[1 : 1 + HISTORY]],
    }  # fmt: skip


def _locate(record: Record, path: str) -> tuple[Record, str]:
    """Return the object holding the dotted ``path`` and the last key."""
    *parents, leaf = path.split(".")
    for key in parents:
        record = record[key]
    return record, leaf


def _set(path: str, value: object) -> Callable[[Record], Any]:
    def change(record: Record) -> Any:
        node, leaf = _locate(record, path)
        node[leaf] = value
        return record

    return change


def _delete(path: str) -> Callable[[Record], Any]:
    def change(record: Record) -> Any:
        node, leaf = _locate(record, path)
        del node[leaf]
        return record

    return change


def _rename(path: str, new: str) -> Callable[[Record], Any]:
    def change(record: Record) -> Any:
        node, leaf = _locate(record, path)
        node[new] = node.pop(leaf)
        return record

    return change


def _chain(*changes: Callable[[Record], Any]) -> Callable[[Record], Any]:
    def change(record: Record) -> Any:
        for step in changes:
            record = step(record)
        return record

    return change


def _add_hotmail(record: Record) -> Record:
    record["providers"]["hotmail"] = copy.deepcopy(record["providers"]["microsoft"])
    return record


GMAIL_OVERCOUNTED = {
    "demand": 50000, "dedicated_cap_per_hour": 100.0, "sent_dedicated": 1000, "accepted": 990,
    "deferred": 200, "rejected": 10, "bounced": 5, "complaints": 0, "queued": 0,
    "sent_shared": 49000,
}  # fmt: skip
MICROSOFT_OVERBOUNCED = {
    "demand": 600, "dedicated_cap_per_hour": 20.0, "sent_dedicated": 500, "accepted": 400,
    "deferred": 100, "rejected": 0, "bounced": 600, "complaints": 0, "queued": 0,
    "sent_shared": 100,
}  # fmt: skip
ALL_KEYS = "['schema_version', 'period_hours', 'time', 'pool', 'providers']"
ALL_PROVIDERS = "['gmail', 'microsoft', 'yahoo', 'apple', 'other']"

# kind: (what it shows, how to spoil the record, the exact problem lines).
INVALID: dict[str, tuple[str, Callable[[Record], Any], list[str]]] = {
    "negative_count": (
        "a count below zero",
        _set("providers.gmail.deferred", -3),
        ["telemetry.providers.gmail.deferred: expected a count >= 0, got -3"],
    ),
    "not_a_number": (
        "a count sent as a string",
        _set("providers.gmail.accepted", "abc"),
        ["telemetry.providers.gmail.accepted: expected a number, got 'abc' (str)"],
    ),
    "nan": (
        "NaN and Infinity (JSON extensions Python's json module reads)",
        _chain(
            _set("providers.yahoo.bounced", float("nan")),
            _set("pool.mean_ip_age_days", float("inf")),
        ),
        [
            "telemetry.pool.mean_ip_age_days: expected a finite number, got inf",
            "telemetry.providers.yahoo.bounced: expected a finite number, got nan",
        ],
    ),
    "missing_provider": (
        "a provider the policy knows is absent",
        _delete("providers.yahoo"),
        ["telemetry.providers.yahoo: missing"],
    ),
    "unknown_provider": (
        "a provider the policy does not know",
        _add_hotmail,
        [f"telemetry.providers.hotmail: unknown provider; expected one of {ALL_PROVIDERS}"],
    ),
    "wrong_schema_version": (
        "a record of another schema version",
        _set("schema_version", 3),
        ["telemetry.schema_version: expected 1 or 2, got 3"],
    ),
    "bad_period": (
        "a period that does not divide a day",
        _set("period_hours", 5),
        ["telemetry.period_hours: expected one of [1, 2, 3, 4, 6, 8, 12, 24], got 5"],
    ),
    "too_many_ips": (
        f"more dedicated IPs than the policy's max_ips ({MAX_IPS})",
        _set("pool.dedicated_ips", 9),
        [f"telemetry.pool.dedicated_ips: expected an integer from 0 to {MAX_IPS}, got 9"],
    ),
    "inconsistent_counts": (
        "counts that contradict each other",
        _chain(
            _set("providers.gmail", GMAIL_OVERCOUNTED),
            _set("providers.microsoft", MICROSOFT_OVERBOUNCED),
        ),
        [
            "telemetry.providers.gmail: accepted + deferred + rejected (1200) exceeds "
            "sent_dedicated (1000)",
            "telemetry.providers.microsoft: bounced (600) exceeds accepted + sent_shared (500)",
        ],
    ),
    "huge_number": (
        "an implausibly large count",
        _set("providers.other.demand", 1e30),
        ["telemetry.providers.other.demand: expected a count <= 1e+12, got 1e+30"],
    ),
    "missing_field": (
        "a field left out",
        _delete("providers.apple.queued"),
        ["telemetry.providers.apple.queued: missing"],
    ),
    "unknown_field": (
        "a misspelt field and an extra one",
        _chain(_rename("pool.dedicated_ips", "dedicated_ip"), _set("customer_id", "acme")),
        [
            f"telemetry.customer_id: unknown key; expected one of {ALL_KEYS}",
            "telemetry.pool.dedicated_ips: missing",
            "telemetry.pool.dedicated_ip: unknown key; did you mean 'dedicated_ips'?",
        ],
    ),
    "boolean_count": (
        "a JSON boolean where a count belongs",
        _set("providers.microsoft.complaints", True),
        ["telemetry.providers.microsoft.complaints: expected a number, got True (bool)"],
    ),
    "not_an_object": (
        "a JSON array instead of an object",
        lambda record: [record],
        ["telemetry: expected a JSON object, got list"],
    ),
}


def _write_json(path: Path, value: object) -> None:
    path.write_text(json.dumps(value, indent=2) + "\n")


def main() -> int:
    """Write every example and check that validate reports exactly the expected lines."""
    record = json.loads((HERE / "telemetry-v1.json").read_text())
    validate(record, PROVIDERS, max_ips=MAX_IPS)
    memory = memory_record(simulated_records())
    validate(memory, PROVIDERS, max_ips=MAX_IPS, layout=Layout(HISTORY, mta_inputs=True))
    _write_json(HERE / "telemetry.json", memory)
    out = HERE / "invalid"
    out.mkdir(exist_ok=True)
    failures = 0
    for kind, (_, spoil, expected) in INVALID.items():
        bad = spoil(copy.deepcopy(record))
        _write_json(out / f"{kind}.json", bad)
        (out / f"{kind}.expected").write_text("".join(line + "\n" for line in expected))
        try:
            validate(bad, PROVIDERS, max_ips=MAX_IPS)
            got: list[str] = []
        except TelemetryError as error:
            got = error.problems
        if got != expected:
            failures += 1
            print(f"{kind}: validate reported {got}, expected {expected}", file=sys.stderr)
    print(f"wrote {HERE / 'telemetry.json'} and {len(INVALID)} invalid examples in {out}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
