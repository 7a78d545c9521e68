"""Reading Postfix and KumoMTA logs: reply classes, multi-line and per-MX replies, bad lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ipwarmup.mta.events import classify, classify_text
from ipwarmup.mta.kumomta_log import read_kumomta
from ipwarmup.mta.logread import ReadReport
from ipwarmup.mta.postfix_log import read_postfix
from ipwarmup.mta.providers import ProviderMap

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

PREFIX = "Nov 28 00:00:02 mta postfix/ip1_gmail/smtp[3001]: 4A1B2C3D4E: "
DELIVERY = (
    "to=<Ann@Gmail.com>, relay=gmail-smtp-in.l.google.com[142.250.1.26]:25, delay=1.2, "
    "delays=0.1/0/0.5/0.6, dsn={dsn}, status={status} ({reason})"
)


@pytest.mark.parametrize(
    ("basic", "enhanced", "expected"),
    [
        (250, "2.0.0", "accepted"),
        (421, "4.7.28", "deferred"),
        (451, "4.7.650", "deferred"),
        (550, "5.1.1", "bounced"),
        (550, "5.1.10", "bounced"),
        (550, "5.7.1", "rejected"),
        (553, "5.7.2", "rejected"),
        (554, "5.4.7", "rejected"),
        (550, None, "rejected"),
        (421, None, "deferred"),
        (250, None, "accepted"),
        (None, None, None),
        (199, None, None),
    ],
)
def test_reply_classes(basic: int | None, enhanced: str | None, expected: str | None) -> None:
    assert classify(basic, enhanced) == expected


@pytest.mark.parametrize(
    ("basic", "expected"),
    [
        (199, None),
        (200, "accepted"),
        (299, "accepted"),
        (300, None),
        (399, None),
        (400, "deferred"),
        (499, "deferred"),
        (500, "rejected"),
        (599, "rejected"),
        (600, None),
    ],
)
def test_basic_code_boundaries(basic: int, expected: str | None) -> None:
    assert classify(basic, None) == expected


def test_the_enhanced_code_decides_over_the_basic_one() -> None:
    # RFC 3463: the enhanced code is the finer answer; a server that sends both means it.
    assert classify(550, "2.0.0") == "accepted"
    assert classify(250, "4.7.0") == "deferred"
    assert classify(421, "5.7.1") == "rejected"
    assert classify(None, "9.9.9") is None


def test_event_is_immutable() -> None:
    import dataclasses

    from ipwarmup.mta.events import Event

    event = Event(1, 0.0, "attempt", "Q")
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.line = 2  # type: ignore[misc]
    assert not hasattr(event, "__dict__")  # slots: millions of events stay small


def test_multi_line_reply_is_classified_by_its_first_code() -> None:
    assert classify_text("550 blocked by policy") == "rejected"
    reply = "421-4.7.28 Gmail has detected an unusual rate. 421 4.7.28 To protect our users - gsmtp"
    assert classify_text(reply) == "deferred"
    assert classify_text("550 5.1.1 <x@icloud.com>: user does not exist") == "bounced"
    assert (
        classify_text("553 5.7.2 [TSS09] All messages will be permanently deferred") == "rejected"
    )
    assert classify_text("lost connection with host") is None


def _postfix(lines: list[str]) -> tuple[list, ReadReport]:  # type: ignore[type-arg]
    report = ReadReport("test.log")
    return list(read_postfix(lines, report, year=2026)), report


def test_postfix_delivery_line_fields() -> None:
    reason = (
        "host x[1.2.3.4] said: 421-4.7.28 rate limited. 421 4.7.28 more - gsmtp "
        "(in reply to end of DATA command)"
    )
    events, report = _postfix(
        [PREFIX + DELIVERY.format(dsn="4.7.28", status="deferred", reason=reason)]
    )
    assert report.lines == 1 and report.used == 1 and not report.skipped
    (event,) = events
    assert event.kind == "attempt" and event.outcome == "deferred"
    assert event.recipient == "ann@gmail.com" and event.domain == "gmail.com"
    assert event.route == "ip1_gmail" and event.mx_host == "gmail-smtp-in.l.google.com"
    assert event.message == "4A1B2C3D4E" and event.reply == reason
    assert event.time == 1795824002.0  # 2026-11-28T00:00:02Z


@pytest.mark.parametrize(
    ("dsn", "status", "expected"),
    [
        ("2.0.0", "sent", "accepted"),
        ("4.7.0", "deferred", "deferred"),
        ("5.1.1", "bounced", "bounced"),
        ("5.7.1", "bounced", "rejected"),
        ("4.4.1", "bounced", "rejected"),  # a final failure is never a deferral
    ],
)
def test_postfix_status_classes(dsn: str, status: str, expected: str) -> None:
    events, _ = _postfix([PREFIX + DELIVERY.format(dsn=dsn, status=status, reason="x")])
    assert [e.outcome for e in events] == [expected]


def test_plain_smtp_tag_is_the_smtp_transport_and_iso_stamps_are_read() -> None:
    line = "2026-11-28T01:00:00.250000+01:00 mta postfix/smtp[7]: ABCDE12345: " + DELIVERY.format(
        dsn="2.0.0", status="sent", reason="250 ok"
    )
    (event,), _ = _postfix([line])
    assert event.route == "smtp" and event.time == 1795824000.25


def test_per_mx_reply_counts_as_a_deferral_of_the_next_status_line() -> None:
    per_mx = (
        "Nov 28 02:00:00 mta postfix/ip1_yahoo/smtp[3003]: 6C3D4E5F60: host "
        "mta5.am0.yahoodns.net[67.195.204.72] said: 421 4.7.0 [TSS04] Messages from "
        "192.0.2.10 temporarily deferred (in reply to MAIL FROM command)"
    )
    other_pid = per_mx.replace("[3003]", "[9999]").replace("6C3D4E5F60", "FFFFF00000")
    final = (
        "Nov 28 02:00:01 mta postfix/ip1_yahoo/smtp[3003]: 6C3D4E5F60: to=<fay@yahoo.com>, "
        "relay=mta6.am0.yahoodns.net[67.195.204.73]:25, delay=1.5, delays=0/0/1/0.5, "
        "dsn=2.0.0, status=sent (250 ok)"
    )
    events, report = _postfix([per_mx, other_pid, final])
    assert [(e.outcome, e.recipient, e.line) for e in events] == [
        ("deferred", "fay@yahoo.com", 1),
        ("accepted", "fay@yahoo.com", 3),
    ]
    assert events[0].mx_host == "mta5.am0.yahoodns.net"
    assert report.used == 2
    assert report.skipped == {"per-MX reply without a later status line": 1}


def test_expiry_and_non_delivery_lines() -> None:
    lines = [
        "Nov 29 02:00:00 mta postfix/qmgr[1001]: 6C3D4E5F60: from=<n@s.example>, "
        "status=expired, returned to sender",
        "Nov 29 02:00:00 mta postfix/qmgr[1001]: 6C3D4E5F60: removed",
        "Nov 29 02:00:00 mta postfix/discard[1]: 6C3D4E5F61: to=<b@s.example>, relay=none, "
        "delay=0, delays=0/0/0/0, dsn=2.0.0, status=sent (s.example)",
        "Nov 29 02:00:00 mta CRON[4001]: (root) CMD (true)",
        "",
    ]
    events, report = _postfix(lines)
    assert [(e.kind, e.message, e.recipient) for e in events] == [("expired", "6C3D4E5F60", "")]
    assert report.lines == 5 and report.used == 1
    assert report.skipped == {
        "other postfix event": 1,
        "not a remote delivery": 1,
        "not postfix": 1,
        "blank": 1,
    }


def test_malformed_lines_are_counted_with_their_numbers_never_raised() -> None:
    lines = [
        "garbage",
        PREFIX + "to=<a@gmail.com>, relay=x[1.2.3.4]:25, delay=1, status=sent (250 ok)",
        PREFIX + DELIVERY.format(dsn="2.0", status="sent", reason="x"),
        "Nox 28 00:00:02 mta postfix/smtp[1]: ABCDE12345: "
        + DELIVERY.format(dsn="2.0.0", status="sent", reason="x"),
        PREFIX + "host x[1.2.3.4] said: no code at all",
    ]
    events, report = _postfix(lines)
    assert events == []
    assert [n for n, _ in report.malformed] == [1, 2, 3, 4, 5]
    assert "dsn=" in report.malformed[1][1] and "'2.0'" in report.malformed[2][1]
    assert "unknown month 'Nox'" in report.malformed[3][1]
    assert report.skipped == {"malformed": 5} and report.used == 0
    assert "test.log:2: malformed: delivery line without dsn=" in report.summary()


def test_syslog_year_rolls_over_at_new_year() -> None:
    dec = "Dec 31 23:59:59 mta postfix/smtp[1]: ABCDE12345: " + DELIVERY.format(
        dsn="2.0.0", status="sent", reason="x"
    )
    jan = dec.replace("Dec 31 23:59:59", "Jan  1 00:00:01").replace("ABCDE12345", "ABCDE12346")
    events, _ = _postfix([dec, jan])
    assert events[1].time - events[0].time == 2.0


def _kumo(records: list[object]) -> tuple[list, ReadReport]:  # type: ignore[type-arg]
    report = ReadReport("kumo.jsonl")
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    return list(read_kumomta(lines, report)), report


def test_kumomta_records() -> None:
    base = {
        "id": "k1",
        "recipient": "a@gmail.com",
        "timestamp": 1795824000,
        "egress_source": "ip1",
        "source_address": {"address": "192.0.2.10:40123"},
        "peer_address": {"name": "gmail-smtp-in.l.google.com.", "addr": "1.2.3.4"},
    }
    bounce = {
        "code": 550,
        "enhanced_code": {"class": 5, "subject": 1, "detail": 1},
        "content": "no",
    }
    block = {
        "code": 550,
        "enhanced_code": {"class": 5, "subject": 7, "detail": 1},
        "content": "S3150",
    }
    late = {"code": 451, "enhanced_code": {"class": 4, "subject": 4, "detail": 1}, "content": "x"}
    events, report = _kumo(
        [
            {**base, "type": "Reception"},
            {**base, "type": "Delivery"},
            {**base, "type": "TransientFailure"},
            {**base, "type": "Bounce", "response": bounce, "recipient": ["b@x.com", "c@x.com"]},
            {**base, "type": "Bounce", "response": block},
            {**base, "type": "Bounce", "response": late},
            {**base, "type": "Expiration"},
            {**base, "type": "Feedback"},
            {k: v for k, v in base.items() if k != "timestamp"}
            | {"type": "Delivery", "event_time": "2026-11-28T00:00:01.123456789Z"},
        ]
    )
    assert [(e.kind, e.outcome) for e in events] == [
        ("received", None),
        ("attempt", "accepted"),
        ("attempt", "deferred"),
        ("attempt", "bounced"),
        ("attempt", "bounced"),
        ("attempt", "rejected"),
        ("attempt", "rejected"),
        ("expired", None),
        ("attempt", "accepted"),
    ]
    assert events[3].recipient == "b@x.com" and events[4].recipient == "c@x.com"
    assert events[1].address == "192.0.2.10" and events[1].route == "ip1"
    assert events[1].mx_host == "gmail-smtp-in.l.google.com."
    assert events[-1].time == pytest.approx(1795824001.123456)
    assert report.lines == 9 and report.used == 8 and report.skipped == {"type Feedback": 1}


def test_kumomta_malformed_records() -> None:
    events, report = _kumo(
        [
            '{"type": "Delivery",',
            [1, 2],
            {"type": 3},
            {"type": "Delivery", "recipient": "a@b.c", "timestamp": 1},
            {"type": "Delivery", "id": "x", "recipient": "nobody", "timestamp": 1},
            {"type": "Delivery", "id": "x", "recipient": "a@b.c"},
        ]
    )
    assert events == []
    assert [n for n, _ in report.malformed] == [1, 2, 3, 4, 5, 6]
    assert "id: missing" in report.malformed[3][1]
    assert "'timestamp'" in report.malformed[5][1]


def test_provider_map() -> None:
    providers = ProviderMap({"example-corp.com": "microsoft", ".mx.example.net": "yahoo"})
    assert providers.provider("gmail.com") == "gmail"
    assert providers.provider("GoogleMail.com.") == "gmail"
    assert providers.provider("acme.example", "aspmx.l.google.com") == "gmail"
    assert (
        providers.provider("acme.example", "acme-example.mail.protection.outlook.com")
        == "microsoft"
    )
    assert providers.provider("aol.com") == "yahoo"
    assert providers.provider("me.com") == "apple"
    assert providers.provider("example-corp.com") == "microsoft"
    assert providers.provider("a.example", "in1.mx.example.net") == "yahoo"
    assert providers.provider("a.example", "notgoogle.com") == "other"
    assert providers.provider("example.org") == "other"
