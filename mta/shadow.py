"""Shadow mode: replay a log period by period and show what the policy would have set.

For each period the log's telemetry record goes to ``decide``; the caps it returns are set
beside what was sent and answered, and beside the fixed-sendgrid schedule for the same
warmup day (SendGrid's hourly cap per IP, ``SENDGRID_HOURLY_CAPS``, split over providers by
their share of demand, as the ``fixed-sendgrid`` baseline does). Nothing is written to the
MTA: this is how an ESP tries a policy without letting it act.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from ipwarmup.agents.baselines import SENDGRID_HOURLY_CAPS
from ipwarmup.mta.providers import PROVIDERS
from ipwarmup.mta.telemetry import Period


def sendgrid_caps(record: dict[str, Any]) -> dict[str, float]:
    """Return fixed-sendgrid's hourly cap for the whole pool per provider after this record.

    The cap per IP of warmup day ``round(time.day)`` (the last entry holds after the
    schedule), times the IPs, split by each provider's share of the period's demand.
    """
    day = min(max(round(float(record["time"]["day"])), 0), len(SENDGRID_HOURLY_CAPS) - 1)
    per_ip = float(SENDGRID_HOURLY_CAPS[day])
    demand = {p: float(record["providers"][p]["demand"]) for p in PROVIDERS}
    total = sum(demand.values())
    ips = int(record["pool"]["dedicated_ips"])
    return {p: per_ip * ips * (demand[p] / total if total > 0 else 0.0) for p in PROVIDERS}


def shadow_rows(periods: Sequence[Period], decide: Any) -> list[dict[str, Any]]:
    """Decide every period's record; return one row per period for the table and the JSON.

    Args:
        periods: the log's periods, in order.
        decide: ``policy.decide``.
    """
    rows = []
    for period in periods:
        record = period.record
        decision = decide(record)
        sendgrid = sendgrid_caps(record)
        providers = {}
        for name in PROVIDERS:
            seen = record["providers"][name]
            chosen = decision["providers"][name]
            providers[name] = {
                "demand": seen["demand"],
                "sent_dedicated": seen["sent_dedicated"],
                "accepted": seen["accepted"],
                "deferred": seen["deferred"],
                "rejected": seen["rejected"],
                "sent_shared": seen["sent_shared"],
                "cap_in_force_per_hour": seen["dedicated_cap_per_hour"],
                "policy_cap_per_hour": chosen["dedicated_cap_per_hour"],
                "policy_cap_per_ip_per_hour": chosen["cap_per_ip_per_hour"],
                "fixed_sendgrid_cap_per_hour": sendgrid[name],
                "reasons": list(chosen["reasons"]),
            }
        rows.append(
            {
                "start": _iso(period.start),
                "end": _iso(period.end),
                "day": record["time"]["day"],
                "providers": providers,
                "pool": {
                    "dedicated_ips": record["pool"]["dedicated_ips"],
                    "action": decision["pool"]["action"],
                    "next_dedicated_ips": decision["pool"]["dedicated_ips"],
                    "reasons": list(decision["pool"]["reasons"]),
                },
                "guardrails": list(decision["guardrails"]),
            }
        )
    return rows


def _iso(unix: float) -> str:
    return dt.datetime.fromtimestamp(unix, dt.UTC).isoformat().replace("+00:00", "Z")


def format_shadow(rows: Sequence[dict[str, Any]]) -> str:
    """Render the shadow rows as text: a table per period, then the reasons and guardrails."""
    head = (
        f"{'provider':<10} {'demand':>8} {'sent':>8} {'accepted':>8} {'deferred':>8} "
        f"{'rejected':>8} {'cap/h':>9} {'policy/h':>9} {'sendgrid/h':>10}"
    )
    out = []
    for row in rows:
        pool = row["pool"]
        out.append(
            f"{row['start'][:16]} -> {row['end'][:16]}  day {row['day']:g}  "
            f"pool {pool['dedicated_ips']} IPs: {pool['action']}"
        )
        out.append(head)
        for name, p in row["providers"].items():
            out.append(
                f"{name:<10} {p['demand']:>8.0f} {p['sent_dedicated']:>8.0f} "
                f"{p['accepted']:>8.0f} {p['deferred']:>8.0f} {p['rejected']:>8.0f} "
                f"{p['cap_in_force_per_hour']:>9.1f} {p['policy_cap_per_hour']:>9.1f} "
                f"{p['fixed_sendgrid_cap_per_hour']:>10.1f}"
            )
        for name, p in row["providers"].items():
            out.append(f"  {name}: " + "; ".join(p["reasons"]))
        out.append("  pool: " + "; ".join(pool["reasons"]))
        out.append("  guardrails: " + (", ".join(row["guardrails"]) or "none"))
        out.append("")
    return "\n".join(out).rstrip("\n")
