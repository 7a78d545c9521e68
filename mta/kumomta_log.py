"""Read delivery events from KumoMTA's JSON log records (one object per line).

Fields, from KumoMTA's ``docs/reference/log_record.md`` (shared/MTA.md section D):
``type`` (Reception, Delivery, TransientFailure, Bounce, Expiration, AdminBounce, ...),
``id``, ``recipient`` (a string, or a list for a multi-recipient batch), ``egress_source``,
``source_address.address`` (``ip:port``), ``peer_address.name`` (the MX host),
``response.{code, enhanced_code.{class, subject, detail}, content}``, ``timestamp`` (UNIX
seconds) or ``event_time`` (RFC 3339). KumoMTA writes them zstd-compressed under
``log_dir``: decompress first (``zstdcat``), or point a log hook at a plain file.

Reception is new mail; Delivery accepted; TransientFailure deferred; Bounce bounced (5.1.x)
or rejected (other 5xx); Expiration and AdminBounce lost. Other types (Feedback, OOB,
Rejection of inbound mail, Delayed, ...) are skipped by type.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from ipwarmup.mta.events import Event, Kind, Outcome, classify
from ipwarmup.mta.logread import ReadReport

_KINDS: dict[str, tuple[Kind, Outcome | None]] = {
    "Reception": ("received", None),
    "Delivery": ("attempt", "accepted"),
    "TransientFailure": ("attempt", "deferred"),
    "Bounce": ("attempt", None),
    "Expiration": ("expired", None),
    "AdminBounce": ("expired", None),
}


def _time(record: Mapping[str, Any]) -> float:
    stamp = record.get("timestamp")
    if isinstance(stamp, int | float) and not isinstance(stamp, bool) and math.isfinite(stamp):
        return float(stamp)
    text = record.get("event_time")
    if isinstance(text, str):
        # Python before 3.12 reads at most microseconds; KumoMTA writes nanoseconds.
        head, dot, tail = text.replace("Z", "+00:00").partition(".")
        if dot:
            digits = len(tail) - len(tail.lstrip("0123456789"))
            tail = tail[: min(digits, 6)] + tail[digits:]
        when = dt.datetime.fromisoformat(head + dot + tail)
        return (when if when.tzinfo else when.replace(tzinfo=dt.UTC)).timestamp()
    raise ValueError("expected 'timestamp' (UNIX seconds) or 'event_time' (RFC 3339)")


def _bounce_outcome(response: object) -> Outcome:
    if not isinstance(response, Mapping):
        return "rejected"
    code = response.get("code")
    enhanced = response.get("enhanced_code")
    text = None
    if isinstance(enhanced, Mapping) and all(
        isinstance(enhanced.get(k), int) for k in ("class", "subject", "detail")
    ):
        text = f"{enhanced['class']}.{enhanced['subject']}.{enhanced['detail']}"
    outcome = classify(code if isinstance(code, int) else None, text)
    # A Bounce is final: a 4xx code there (a bounce after retries) is no longer a deferral.
    return outcome if outcome in ("bounced", "rejected") else "rejected"


def _reply(response: object) -> str:
    if not isinstance(response, Mapping):
        return ""
    code, content = response.get("code", ""), response.get("content", "")
    enhanced = response.get("enhanced_code")
    middle = ""
    if isinstance(enhanced, Mapping):
        middle = ".".join(str(enhanced.get(k, "")) for k in ("class", "subject", "detail")) + " "
    return f"{code} {middle}{content}".strip()


def read_kumomta(
    lines: Iterable[str], report: ReadReport, *, first_line: int = 1
) -> Iterator[Event]:
    """Yield the delivery events of KumoMTA log lines, counting every line in ``report``.

    Args:
        lines: JSON log records, one per line.
        report: counts lines read, used and skipped by reason; malformed lines by number.
        first_line: the number of the first line (to continue after an offset).
    """
    for number, raw in enumerate(lines, first_line):
        report.lines += 1
        text = raw.strip()
        if not text:
            report.skip("blank")
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as error:
            report.bad(number, f"not JSON: {error.msg} at column {error.colno}")
            continue
        if not isinstance(record, dict):
            report.bad(number, f"expected a JSON object, got {type(record).__name__}")
            continue
        kind_name = record.get("type")
        if not isinstance(kind_name, str):
            report.bad(number, "type: missing or not a string")
            continue
        if kind_name not in _KINDS:
            report.skip(f"type {kind_name}")
            continue
        kind, outcome = _KINDS[kind_name]
        message = record.get("id")
        recipients = record.get("recipient")
        if isinstance(recipients, str):
            recipients = [recipients]
        problems = []
        if not isinstance(message, str) or not message:
            problems.append("id: missing or not a string")
        if not (
            isinstance(recipients, list)
            and recipients
            and all(isinstance(r, str) and "@" in r for r in recipients)
        ):
            problems.append("recipient: expected an address or a list of addresses")
        try:
            time = _time(record)
        except ValueError as error:
            problems.append(str(error))
        if problems:
            report.bad(number, "; ".join(problems))
            continue
        assert isinstance(message, str) and isinstance(recipients, list)
        response = record.get("response")
        if kind_name == "Bounce":
            outcome = _bounce_outcome(response)
        source = record.get("source_address")
        address = ""
        if isinstance(source, Mapping) and isinstance(source.get("address"), str):
            address = source["address"].rsplit(":", 1)[0].strip("[]")
        peer = record.get("peer_address")
        mx_host = peer.get("name", "") if isinstance(peer, Mapping) else ""
        route = record.get("egress_source")
        report.used += 1
        for recipient in recipients:
            yield Event(
                number,
                time,
                kind,
                message,
                recipient=recipient.lower(),
                route=route if isinstance(route, str) else "",
                address=address,
                mx_host=mx_host if isinstance(mx_host, str) else "",
                outcome=outcome,
                reply=_reply(response),
            )
