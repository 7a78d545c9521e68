"""Read delivery events from a Postfix log (syslog or ``maillog_file`` lines).

Formats, from Postfix's ``src/global/log_adhoc.c`` and ``src/qmgr/qmgr_active.c``
(shared/MTA.md section C):

- a delivery attempt: ``postfix/<tag>[PID]: QUEUEID: to=<rcpt>[, orig_to=<...>],
  relay=host[ip]:port[, conn_use=N], delay=T, delays=a/b/c/d[, tls=...], dsn=X.Y.Z,
  status=sent|deferred|bounced (reason)``; a remote reason reads ``host H[IP] said: <reply>
  (in reply to <CMD> command)`` with a multi-line reply's lines joined by spaces
  (``421-4.7.28 ... 421 4.7.28 ...``);
- a soft error at one MX host before the next is tried (``smtp/smtp_trouble.c``):
  ``QUEUEID: host H[IP] said: <reply>`` without a status. It is counted as one deferred
  attempt of the same delivery, attached to the next status line of that queue id from the
  same process (which names the recipient and transport);
- an expiry (qmgr): ``QUEUEID: from=<sender>, status=expired, returned to sender``: every
  recipient of the message still queued is lost.

The transport is read from the log tag: a transport cloned in master.cf with
``-o syslog_name=postfix/$service_name`` logs as ``postfix/<transport>/smtp``; a plain
``postfix/smtp`` is the ``smtp`` transport. Traditional syslog stamps (``Nov 30 12:00:01``)
carry no year or zone: they are read as UTC in the given year, rolling over at New Year;
ISO 8601 stamps (rsyslog's high-precision format) are read as written.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator

from ipwarmup.mta.events import Event, Outcome, classify, classify_text
from ipwarmup.mta.logread import ReadReport

_PREFIX = re.compile(
    r"(?P<ts>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d(?:\.\d+)?"
    r"|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?)"
    r" (?P<host>\S+) (?P<tag>[^\s\[:]+)(?:\[(?P<pid>\d+)\])?: (?P<msg>.*)\Z"
)
_QUEUED = re.compile(r"(?P<qid>[0-9A-Za-z]{5,}): (?P<rest>.*)\Z")
_TO = re.compile(r"to=<(?P<rcpt>[^>]*)>")
_RELAY = re.compile(r"relay=(?P<host>[^\s,\[]+)")
_DSN = re.compile(r"dsn=(?P<dsn>\S+?),")
_STATUS = re.compile(r"status=(?P<status>[a-z]+)(?: \((?P<reason>.*)\))?\Z")
_ENHANCED = re.compile(r"([245])\.(\d{1,3})\.(\d{1,3})\Z")
_PER_MX = re.compile(
    r"host (?P<host>[^\s\[]+)\[[^\]]*\](?::\d+)? (?:said|refused to talk to me): (?P<reply>.*)\Z"
)
_EXPIRED = re.compile(r"from=<[^>]*>, status=expired\b")
_MONTHS = {
    m: i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
_REMOTE_PROGRAMS = ("smtp", "lmtp")
"""Postfix delivery agents that talk to a remote server; local, virtual, pipe, discard and
error deliveries are not provider answers."""


class _Clock:
    """Turn syslog stamps into UNIX seconds; a year without stamps rolls over at New Year."""

    def __init__(self, year: int) -> None:
        self.year = year
        self.last_month = 0

    def __call__(self, stamp: str) -> float:
        if stamp[0].isdigit():
            when = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
            if when.tzinfo is None:
                when = when.replace(tzinfo=dt.UTC)
            return when.timestamp()
        month = _MONTHS.get(stamp[:3])
        if month is None:
            raise ValueError(f"unknown month {stamp[:3]!r}")
        if month < self.last_month - 6:  # December, then January: a new year
            self.year += 1
        self.last_month = month
        day, clock = stamp[4:6], stamp[7:]
        when = dt.datetime.strptime(
            f"{self.year}-{month:02d}-{day.strip()} {clock}",
            "%Y-%m-%d %H:%M:%S" + (".%f" if "." in clock else ""),
        )
        return when.replace(tzinfo=dt.UTC).timestamp()


def first_month(lines: Iterable[str]) -> int | None:
    """Return the month (1-12) of the first traditional syslog stamp, for guessing the year."""
    for text in lines:
        month = _MONTHS.get(text[:3])
        if month is not None:
            return month
    return None


def _status_outcome(status: str, dsn: str) -> Outcome | None:
    """Return the reply class of a status line; a final failure is never a deferral."""
    if status == "sent":
        return "accepted"
    if status == "deferred":
        return "deferred"
    if status == "bounced":
        outcome = classify(None, dsn)
        return outcome if outcome in ("bounced", "rejected") else "rejected"
    return None


def read_postfix(
    lines: Iterable[str], report: ReadReport, *, year: int, first_line: int = 1
) -> Iterator[Event]:
    """Yield the delivery events of Postfix log lines, counting every line in ``report``.

    Args:
        lines: the log's lines (with or without their newline).
        report: counts lines read, used and skipped by reason; malformed lines by number.
        year: the year of the first traditional syslog stamp.
        first_line: the number of the first line (to continue after an offset).
    """
    clock = _Clock(year)
    pending: dict[tuple[str, str], list[Event]] = {}  # per-MX replies by (pid, queue id)
    number = first_line - 1
    for number, raw in enumerate(lines, first_line):
        text = raw.rstrip("\r\n")
        report.lines += 1
        if not text.strip():
            report.skip("blank")
            continue
        prefix = _PREFIX.match(text)
        if prefix is None:
            report.bad(number, "not a syslog line (expected 'Mon DD HH:MM:SS host tag[pid]: ...')")
            continue
        tag = prefix["tag"]
        if not tag.startswith("postfix"):
            report.skip("not postfix")
            continue
        parts = tag.split("/")
        program = parts[-1]
        transport = parts[-2] if len(parts) >= 3 else program
        queued = _QUEUED.match(prefix["msg"])
        rest = queued["rest"] if queued else ""
        is_delivery = rest.startswith("to=<") and "status=" in rest
        is_per_mx = _PER_MX.match(rest) is not None
        is_expiry = _EXPIRED.match(rest) is not None
        if not (is_delivery or is_per_mx or is_expiry):
            report.skip("other postfix event")
            continue
        try:
            time = clock(prefix["ts"])
        except ValueError as error:
            report.bad(number, f"bad time stamp {prefix['ts']!r}: {error}")
            continue
        assert queued is not None  # each kind above matched the text after a queue id
        qid = queued["qid"]
        key = (prefix["pid"] or "", qid)
        if is_expiry:
            report.used += 1
            yield Event(number, time, "expired", qid)
            continue
        if is_per_mx:
            per_mx = _PER_MX.match(rest)
            assert per_mx is not None
            outcome = classify_text(per_mx["reply"])
            if program not in _REMOTE_PROGRAMS:
                report.skip("not a remote delivery")
                continue
            if outcome is None:
                report.bad(number, f"per-MX reply without a reply code: {per_mx['reply']!r}")
                continue
            # Counted when the status line that names the recipient arrives.
            pending.setdefault(key, []).append(
                Event(
                    number,
                    time,
                    "attempt",
                    qid,
                    route=transport,
                    mx_host=per_mx["host"],
                    outcome=outcome,
                    reply=per_mx["reply"],
                )
            )
            continue
        rcpt, dsn, status = _TO.search(rest), _DSN.search(rest), _STATUS.search(rest)
        if rcpt is None or dsn is None or status is None:
            missing = [
                n for n, m in (("to=<...>", rcpt), ("dsn=", dsn), ("status=", status)) if m is None
            ]
            report.bad(number, f"delivery line without {', '.join(missing)}")
            continue
        if _ENHANCED.match(dsn["dsn"]) is None:
            report.bad(number, f"dsn: expected X.Y.Z with X in 2, 4, 5, got {dsn['dsn']!r}")
            continue
        if program not in _REMOTE_PROGRAMS:
            report.skip("not a remote delivery")
            continue
        relay = _RELAY.search(rest)
        mx_host = relay["host"] if relay and relay["host"] != "none" else ""
        recipient = rcpt["rcpt"].lower()
        if status["status"] == "expired":
            report.used += 1
            yield Event(number, time, "expired", qid, recipient=recipient)
            continue
        outcome = _status_outcome(status["status"], dsn["dsn"])
        if outcome is None:
            report.skip(f"status={status['status']}")
            continue
        for earlier in pending.pop(key, []):
            report.used += 1
            yield Event(
                earlier.line,
                earlier.time,
                "attempt",
                qid,
                recipient=recipient,
                route=transport,
                mx_host=earlier.mx_host,
                outcome=earlier.outcome,
                reply=earlier.reply,
            )
        report.used += 1
        yield Event(
            number,
            time,
            "attempt",
            qid,
            recipient=recipient,
            route=transport,
            mx_host=mx_host,
            outcome=outcome,
            reply=status["reason"] or "",
        )
    for events in pending.values():
        for _ in events:
            report.skip("per-MX reply without a later status line")
