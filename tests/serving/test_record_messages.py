"""The telemetry record's limits and messages, each at its boundary and just past it.

Through ``validate`` (and ``json_schema``), as the HTTP service and ``decide`` use them.
Bad values are echoed in at most 40 characters per string or number, 4 items per
container, 3 levels deep and 60 characters in all; integers past Python's 4,300-digit
``repr`` limit (over 14,000 bits) are named by their size.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from ipwarmup.errors import TelemetryError
from ipwarmup.serving.telemetry import COUNT_FIELDS, FIELD_DOCS, json_schema, validate

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "telemetry-v1.json"
PROVIDERS = ("gmail", "microsoft", "yahoo", "apple", "other")


def _record(path: str, value: object) -> dict[str, Any]:
    record: dict[str, Any] = json.loads(EXAMPLE.read_text())
    *parents, leaf = path.split(".")
    node = record
    for key in parents:
        node = node[key]
    node[leaf] = value
    return record


def _problems(record: object) -> list[str]:
    with pytest.raises(TelemetryError) as error:
        validate(record, PROVIDERS, max_ips=8)
    return error.value.problems


def _digits(bits: int) -> int:
    """Decimal digits of a number of ``bits`` bits, as the message rounds them."""
    return int(bits * math.log10(2))


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("providers.gmail.queued", 1e12),
        ("time.day", 36_500.0),
        ("pool.mean_ip_age_days", 36_500.0),
        ("time.weekday", 6),
        ("time.hour", 23),
    ],
)
def test_the_largest_plausible_value_is_accepted(path: str, value: float) -> None:
    validate(_record(path, value), PROVIDERS, max_ips=8)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("providers.gmail.queued", 1000000000001.0,
         "expected a count <= 1e+12, got 1000000000001.0"),
        ("time.day", 36_501.0, "expected a number <= 36500, got 36501.0"),
        ("time.weekday", 7, "expected an integer from 0 to 6, got 7"),
        ("time.hour", 24, "expected an integer from 0 to 23, got 24"),
        ("providers.gmail.queued", -(10**400),
         "expected a count >= 0, got -10000000000000000...0000000000000000000"),
        ("providers.gmail.queued", "q" * 50,
         "expected a number, got 'qqqqqqqqqqqqqqqqq...qqqqqqqqqqqqqqqqqq' (str)"),
        ("providers.gmail.queued", [1, 2, 3, 4, 5, 6],
         "expected a number, got [1, 2, 3, 4, ...] (list)"),
        ("providers.gmail.queued", [[[[1]]]], "expected a number, got [[[[...]]]] (list)"),
        # The echo of a container is cut at 60 characters: 60 is kept, 61 is cut to 57 + ...
        ("providers.gmail.queued", ["a" * 36, "b" * 16],
         f"expected a number, got ['{'a' * 36}', '{'b' * 16}'] (list)"),
        ("providers.gmail.queued", ["a" * 36, "b" * 17],
         f"expected a number, got ['{'a' * 36}', '{'b' * 15}... (list)"),
    ],
)  # fmt: skip
def test_a_value_past_its_limit_is_echoed_briefly(path: str, value: object, message: str) -> None:
    assert _problems(_record(path, value)) == [f"telemetry.{path}: {message}"]


@pytest.mark.parametrize("sign", [1, -1])
def test_integers_are_printed_up_to_14000_bits_and_named_beyond(sign: int) -> None:
    path = "providers.gmail.queued"
    at = sign * 2**13_999  # 14,000 bits: repr works, abbreviated to 40 characters
    text = str(at)
    short = f"{text[:18]}...{text[-19:]}"
    expected = "<=" if sign > 0 else ">="
    bound = "1e+12" if sign > 0 else "0"
    assert _problems(_record(path, at)) == [
        f"telemetry.{path}: expected a count {expected} {bound}, got {short}"
    ]
    past = sign * 2**14_000  # 14,001 bits
    size = "an" if sign > 0 else "a negative"
    assert _problems(_record(path, past)) == [
        f"telemetry.{path}: expected a count {expected} {bound}, got {size} integer of about "
        f"{_digits(14_001)} digits"
    ]
    # Inside a container the same rule holds, element by element.
    assert _problems(_record(path, [at])) == [
        f"telemetry.{path}: expected a number, got [{short}] (list)"
    ]
    assert _problems(_record(path, [past])) == [
        f"telemetry.{path}: expected a number, got [<{size} integer of about "
        f"{_digits(14_001)} digits>] (list)"
    ]


def test_consistency_allows_a_millionth_of_the_larger_side_or_of_one_message() -> None:
    def gmail(**counts: float) -> dict[str, Any]:
        record = _record("providers.gmail.accepted", 0.0)
        zero = dict.fromkeys(("sent_dedicated", "deferred", "rejected", "sent_shared"), 0.0)
        record["providers"]["gmail"].update({**zero, "complaints": 0.0, **counts})
        return record

    # Below one message the slack is a millionth of one message, not of the counts.
    validate(gmail(bounced=1e-6), PROVIDERS, max_ips=8)
    assert _problems(gmail(bounced=1.5e-6)) == [
        "telemetry.providers.gmail: bounced (1.5e-06) exceeds accepted + sent_shared (0)"
    ]
    # Over it, a millionth of the larger side: 1,000,001 - 1,000,000 is within it.
    validate(gmail(bounced=1_000_001.0, sent_shared=1_000_000.0), PROVIDERS, max_ips=8)
    assert _problems(gmail(bounced=0.5, sent_shared=0.25)) == [
        "telemetry.providers.gmail: bounced (0.5) exceeds accepted + sent_shared (0.25)"
    ]
    # The same slack on the attempts side, where deferred and rejected count with accepted.
    validate(gmail(accepted=1e-6, bounced=0.0), PROVIDERS, max_ips=8)
    assert _problems(gmail(accepted=1.5e-6, bounced=0.0)) == [
        "telemetry.providers.gmail: accepted + deferred + rejected (1.5e-06) exceeds "
        "sent_dedicated (0)"
    ]
    assert _problems(gmail(accepted=10.0, rejected=5.0, sent_dedicated=10.0, bounced=0.0)) == [
        "telemetry.providers.gmail: accepted + deferred + rejected (15) exceeds sent_dedicated (10)"
    ]
    validate(
        gmail(accepted=10.0, deferred=3.0, rejected=5.0, sent_dedicated=18.0, bounced=0.0),
        PROVIDERS,
        max_ips=8,
    )
    # With one side over, the message names only that side: the other, at the very edge of
    # its slack (a millionth of one message; a millionth of 1,000,001), is consistent.
    over = (
        "telemetry.providers.gmail: accepted + deferred + rejected (10) exceeds sent_dedicated (0)"
    )
    assert _problems(gmail(deferred=10.0, bounced=1e-6)) == [over]
    edge = gmail(deferred=10.0, bounced=1_000_001.0, sent_shared=1_000_000.0)
    assert _problems(edge) == [over]


def test_a_misspelt_count_gets_a_suggestion_and_many_unknown_counts_a_short_list() -> None:
    record = _record("providers.gmail.defered", 0.0)
    del record["providers"]["gmail"]["deferred"]
    assert _problems(record) == [
        "telemetry.providers.gmail.deferred: missing",
        "telemetry.providers.gmail.defered: unknown key; did you mean 'deferred'?",
    ]
    crowded = _record("providers.gmail.queued", 0.0)
    crowded["providers"]["gmail"].update({f"x{i}": 0.0 for i in range(70)})
    problems = _problems(crowded)
    assert len(problems) == 50
    assert problems[0] == (
        f"telemetry.providers.gmail.x0: unknown key; expected one of {list(COUNT_FIELDS)}"
    )
    assert problems[-1] == "telemetry.providers.gmail: 21 more unknown keys not listed"


def test_the_schema_describes_every_count_and_the_time_fields() -> None:
    schema = json_schema(PROVIDERS, 8)
    provider = schema["$defs"]["provider"]
    assert {name: provider["properties"][name]["description"] for name in COUNT_FIELDS} == (
        FIELD_DOCS
    )
    assert "accepted + deferred + rejected <= sent_dedicated" in provider["description"]
    time = schema["properties"]["time"]["properties"]
    assert (time["weekday"]["minimum"], time["weekday"]["maximum"]) == (0, 6)
    assert (time["hour"]["minimum"], time["hour"]["maximum"]) == (0, 23)


def test_a_count_holding_a_large_object_is_a_bad_value_not_unknown_keys() -> None:
    big = {f"k{i}": 0 for i in range(60)}
    assert _problems(_record("providers.gmail.queued", big)) == [
        "telemetry.providers.gmail.queued: expected a number, got "
        "{'k0': 0, 'k1': 0, 'k10': 0, 'k11': 0, ...} (dict)"
    ]


def test_fifty_unknown_counts_are_listed_one_by_one() -> None:
    # 10 counts + 50 unknown keys: not crowded (that takes more than 50), and exactly 50
    # problems, so none is left out and no "more" line is added.
    record = _record("providers.gmail.queued", 0.0)
    record["providers"]["gmail"].update({f"x{i}": 0.0 for i in range(50)})
    problems = _problems(record)
    assert len(problems) == 50
    assert problems[-1] == (
        f"telemetry.providers.gmail.x49: unknown key; expected one of {list(COUNT_FIELDS)}"
    )


def test_a_long_unknown_key_is_named_in_at_most_40_characters() -> None:
    forty, longer = "k" * 40, "k" * 41
    assert _problems(_record(f"time.{forty}", 1.0)) == [
        f"telemetry.time.{forty}: unknown key; expected one of ['day', 'weekday', 'hour']"
    ]
    assert _problems(_record(f"time.{longer}", 1.0)) == [
        f"telemetry.time.{'k' * 37}...: unknown key; expected one of ['day', 'weekday', 'hour']"
    ]
