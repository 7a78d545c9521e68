"""Version-2 telemetry from the MTA glue: the ``mta`` block and the ``history`` of past periods.

The ``mta`` block comes from Postfix's main.cf (postconf(5) times and defaults) or
KumoMTA's documented defaults, the sources file overriding either, scaled on a drill's
clock and clamped to the record's bounds; ``history`` is the last K periods' provider
counts, most recent first, kept across runs in the builder's state. Values by hand.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ipwarmup.errors import MTAError
from ipwarmup.mta.events import Event
from ipwarmup.mta.providers import PROVIDERS, ProviderMap
from ipwarmup.mta.setup import mta_block, postfix_seconds
from ipwarmup.mta.sources import Sources, load
from ipwarmup.mta.telemetry import TelemetryBuilder
from ipwarmup.observation import Layout
from ipwarmup.serving.telemetry import COUNT_FIELDS, validate

DAY = 86_400.0
QUIET = dict.fromkeys(COUNT_FIELDS, 0.0)


@pytest.mark.parametrize(
    ("value", "name", "seconds"),
    [
        ("5d", "maximal_queue_lifetime", 432_000.0),
        ("4000s", "maximal_backoff_time", 4_000.0),
        ("90m", "maximal_backoff_time", 5_400.0),
        ("2h", "maximal_queue_lifetime", 7_200.0),
        ("1w", "maximal_queue_lifetime", 604_800.0),
        ("1.5h", "maximal_backoff_time", 5_400.0),
        ("3", "maximal_queue_lifetime", 259_200.0),  # a bare number: days here
        (" 300 ", "maximal_backoff_time", 300.0),  # and seconds here
    ],
)
def test_postfix_times_by_hand(value: str, name: str, seconds: float) -> None:
    assert postfix_seconds(value, name, "main.cf") == seconds


@pytest.mark.parametrize("value", ["5x", "$other", "", "-1d", "1 d"])
def test_a_postfix_time_that_is_not_a_time_names_the_parameter(value: str) -> None:
    with pytest.raises(MTAError) as error:
        postfix_seconds(value, "maximal_backoff_time", "/etc/postfix/main.cf")
    assert str(error.value) == (
        "/etc/postfix/main.cf: maximal_backoff_time: expected a time such as 5d, 4000s or 1h "
        f"(postconf(5)), got {value!r}"
    )


def _sources(**mta: Any) -> Sources:
    return load(Sources, {"dedicated": {"ip1": {"address": "192.0.2.10"}}, "mta": mta})


def _postfix(tmp_path: Path, main: str, **kwargs: Any) -> dict[str, Any]:
    (tmp_path / "main.cf").write_text(main)
    sources = kwargs.pop("sources", _sources())
    return mta_block(mta="postfix", sources=sources, postfix_config=tmp_path, **kwargs)


def test_the_mta_block_from_postfix_main_cf(tmp_path: Path) -> None:
    main = "myhostname = x\nmaximal_queue_lifetime = 2d\nmaximal_backoff_time = 7200s\n"
    assert _postfix(tmp_path, main) == {
        "overflow": "queue", "max_age_hours": 48, "retry_interval_hours": 2.0,
    }  # fmt: skip
    # Neither set: postconf(5)'s defaults, 5 days and 4000 s.
    expected = {"overflow": "queue", "max_age_hours": 120, "retry_interval_hours": 4000 / 3600}
    assert _postfix(tmp_path, "myhostname = x\n") == expected
    assert mta_block(mta="postfix", sources=_sources(), postfix_config=None) == expected
    # A drill of 20 s a day (4,320 virtual seconds a real one): 2 s of backoff is 2.4 h,
    # and a day's lifetime is 4,320 days, read as the week the record allows at most.
    drill = "maximal_queue_lifetime = 1d\nmaximal_backoff_time = 2s\n"
    assert _postfix(tmp_path, drill, time_factor=4320.0) == {
        "overflow": "queue", "max_age_hours": 168, "retry_interval_hours": 2.4,
    }  # fmt: skip
    # Below the record's bounds: one hour's lifetime at least, a quarter-hour's retry.
    short = "maximal_queue_lifetime = 0\nmaximal_backoff_time = 60s\n"
    assert _postfix(tmp_path, short) == {
        "overflow": "queue", "max_age_hours": 1, "retry_interval_hours": 0.25,
    }  # fmt: skip
    # 90 minutes rounds to 2 hours (half up), 89 minutes to 1.
    assert _postfix(tmp_path, "maximal_queue_lifetime = 90m\n")["max_age_hours"] == 2
    assert _postfix(tmp_path, "maximal_queue_lifetime = 89m\n")["max_age_hours"] == 1


def test_the_sources_file_overrides_what_the_mta_says(tmp_path: Path) -> None:
    given = _sources(overflow="shared", max_age_hours=24, retry_interval_hours=0.5)
    block = _postfix(tmp_path, "maximal_queue_lifetime = 2d\n", sources=given, time_factor=9.0)
    assert block == {"overflow": "shared", "max_age_hours": 24, "retry_interval_hours": 0.5}
    # KumoMTA: its documented defaults (7 days, 20 minutes), or the sources file's.
    kumo = mta_block(mta="kumomta", sources=_sources(), postfix_config=None)
    assert kumo == {"overflow": "queue", "max_age_hours": 168, "retry_interval_hours": 1 / 3}
    kumo = mta_block(mta="kumomta", sources=_sources(max_age_hours=72), postfix_config=None)
    assert kumo == {"overflow": "queue", "max_age_hours": 72, "retry_interval_hours": 1 / 3}


def test_an_unreadable_main_cf_or_a_bad_time_in_it_is_named(tmp_path: Path) -> None:
    with pytest.raises(MTAError, match=f"^{tmp_path}/main.cf: cannot read Postfix's main.cf"):
        mta_block(mta="postfix", sources=_sources(), postfix_config=tmp_path)
    with pytest.raises(
        MTAError, match=r"main.cf: maximal_queue_lifetime: expected a time.*'5 days'"
    ):
        _postfix(tmp_path, "maximal_queue_lifetime = 5 days\n")


def _attempt(time: float, n: int, domain: str, outcome: str, route: str = "ip1_x") -> list[Event]:
    rcpt = f"u{n}@{domain}"
    return [
        Event(line=n, time=time, kind="received", message=f"m{n}", recipient=rcpt),
        Event(line=n, time=time + 1, kind="attempt", message=f"m{n}", recipient=rcpt,
              route=route, outcome=outcome),  # type: ignore[arg-type]
    ]  # fmt: skip


MTA = {"overflow": "queue", "max_age_hours": 72, "retry_interval_hours": 1.0}


def _builder(history_periods: int = 3, mta: dict[str, Any] | None = MTA) -> TelemetryBuilder:
    sources = load(Sources, {"dedicated": {"ip1": {"address": "192.0.2.10"}},
                             "cap_per_ip_per_hour": dict.fromkeys(PROVIDERS, 10.0)})  # fmt: skip
    return TelemetryBuilder(sources=sources, period_hours=24, provider_map=ProviderMap({}),
                            origin=0.0, mta=mta, history_periods=history_periods)  # fmt: skip


def _run(builder: TelemetryBuilder, day: int, n: int) -> dict[str, Any]:
    """Period ``day`` (ending at day + 1): n gmail messages accepted on the dedicated IP."""
    for i in range(n):
        builder.add(_attempt(day * DAY + 60 * i, 100 * day + i, "gmail.com", "accepted"))
    return builder.close(end=(day + 1) * DAY).record


def test_history_is_the_last_k_periods_most_recent_first() -> None:
    builder = _builder()
    records = [_run(builder, day, n) for day, n in enumerate((1, 2, 3, 4, 5))]
    gmail = [r["providers"]["gmail"]["accepted"] for r in records]
    assert gmail == [1, 2, 3, 4, 5]
    # Day 1 (one period old): one past period, before the warmup: all zeros. Day 2: that
    # one still counts (the warmup is two periods old), behind day 1's.
    assert records[0]["schema_version"] == 2 and records[0]["mta"] == MTA
    assert records[0]["history"] == [dict.fromkeys(PROVIDERS, QUIET)]
    assert records[1]["history"][1] == dict.fromkeys(PROVIDERS, QUIET)
    assert [[p["gmail"]["accepted"] for p in r["history"]] for r in records[1:]] == [
        [1, 0], [2, 1, 0], [3, 2, 1], [4, 3, 2],
    ]  # fmt: skip
    assert records[4]["history"][0] == records[3]["providers"]
    for record in records:  # each valid for a bundle that reads three periods and the MTA
        validate(record, PROVIDERS, max_ips=1, layout=Layout(history_periods=3, mta_inputs=True))


def test_history_survives_the_state_file_and_pads_what_it_lacks() -> None:
    builder = _builder()
    _run(builder, 0, 1)
    _run(builder, 1, 2)
    state = json.loads(json.dumps(builder.state()))  # as the controller saves it
    assert [p["gmail"]["accepted"] for p in state["recent"]] == [2, 1]
    restored = _builder()
    restored.restore(state)
    assert _run(restored, 2, 3) == _run(builder, 2, 3)
    # A state written before version-2 records (no "recent"), 10 days into the warmup:
    # the three past periods it must carry read as quiet.
    old = {key: value for key, value in state.items() if key != "recent"}
    late = _builder()
    late.restore(old)
    record = _run(late, 9, 1)
    assert record["time"]["day"] == 10.0
    assert record["history"] == [dict.fromkeys(PROVIDERS, QUIET)] * 3


def test_a_bundle_of_the_last_period_alone_still_gets_version_1() -> None:
    builder = _builder(history_periods=0, mta=None)
    record = _run(builder, 0, 1)
    assert record["schema_version"] == 1 and set(record) == {
        "schema_version", "period_hours", "time", "pool", "providers",
    }  # fmt: skip
    assert builder.state()["recent"] == []
