"""The MTA's set-up as a telemetry record's ``mta`` block (schema version 2).

A bundle whose observation reads the MTA (``observation.mta_inputs``) is told where mail
above the caps goes, how long a queued message lives and how often it is retried:

- ``overflow``: ``queue`` for both MTAs as ``ipwarmup control`` drives them. Postfix: every
  provider's mail goes to that provider's dedicated transports (``transport_maps``), whose
  rate delay holds the excess in Postfix's queue, retried there; KumoMTA: the overlay's
  ``max_message_rate`` holds it in the ready queue. An operator whose MTA spills to a
  shared pool says so in the sources file (``mta.overflow: shared``).
- ``max_age_hours``: Postfix's ``maximal_queue_lifetime`` (default 5d), KumoMTA's queue
  ``max_age`` (default 7 days).
- ``retry_interval_hours``: Postfix's ``maximal_backoff_time`` (default 4000s; the backoff
  doubles from ``minimal_backoff_time`` and stays at this ceiling after a few attempts, so
  it is the interval of most of a message's retries); KumoMTA's ``retry_interval`` (default
  20 minutes).

Postfix's values are read from ``main.cf`` (postconf(5) defaults where it sets none).
KumoMTA's live in its Lua policy (``kumo.make_queue_config``), which is code, not
configuration that can be read: its documented defaults apply unless the sources file gives
the values. The sources file's ``mta`` section overrides either MTA. On a drill's compressed
clock the MTA's real seconds are scaled to the virtual hours the records count. The values
are clamped to the record's bounds (a lifetime over a week reads as a week, the most the
observation distinguishes).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

from ipwarmup.errors import MTAError
from ipwarmup.mta.logs import MTA
from ipwarmup.mta.postfix_config import parameter
from ipwarmup.mta.sources import Sources
from ipwarmup.observation import MAX_AGE_SCALE_HOURS, MIN_RETRY_HOURS, RETRY_SCALE_HOURS

POSTFIX_DEFAULTS = {"maximal_queue_lifetime": "5d", "maximal_backoff_time": "4000s"}
"""postconf(5)'s defaults of the parameters read here."""
POSTFIX_UNITS = {"maximal_queue_lifetime": "d", "maximal_backoff_time": "s"}
"""The unit postconf(5) gives a bare number of each parameter."""
KUMOMTA_MAX_AGE_HOURS = 7 * 24.0
"""KumoMTA's queue ``max_age`` default, 7 days (make_queue_config/max_age)."""
KUMOMTA_RETRY_HOURS = 20 / 60
"""KumoMTA's ``retry_interval`` default, 20 minutes (make_queue_config/retry_interval)."""
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_TIME = re.compile(r"(\d+(?:\.\d+)?)([smhdw]?)\Z")


def postfix_seconds(value: str, name: str, where: str) -> float:
    """Read a postconf(5) time value (``5d``, ``4000s``, a bare number in the default unit).

    Raises:
        MTAError: naming the parameter and the file, when the value is not a time.
    """
    match = _TIME.match(value.strip())
    if match is None:
        raise MTAError(
            f"{where}: {name}: expected a time such as 5d, 4000s or 1h (postconf(5)), got {value!r}"
        )
    return float(match[1]) * _SECONDS[match[2] or POSTFIX_UNITS[name]]


def postfix_hours(config_dir: Path) -> tuple[float, float]:
    """Return (queue lifetime, retry interval) in real hours from a Postfix main.cf."""
    main = config_dir / "main.cf"
    try:
        text = main.read_text(encoding="utf-8")
    except OSError as error:
        raise MTAError(f"{main}: cannot read Postfix's main.cf: {error}") from error
    hours = []
    for name, default in POSTFIX_DEFAULTS.items():
        value = parameter(text, name)
        hours.append(postfix_seconds(default if value is None else value, name, str(main)) / 3600)
    return hours[0], hours[1]


def mta_block(
    *, mta: MTA, sources: Sources, postfix_config: Path | None, time_factor: float = 1.0
) -> dict[str, Any]:
    """Return the record's ``mta`` block for the MTA that ``ipwarmup control`` drives.

    Args:
        mta: ``postfix`` or ``kumomta``.
        sources: the sources file (its ``mta`` section overrides what the MTA says).
        postfix_config: Postfix's config_directory; None: postconf(5)'s defaults (``ipwarmup
            shadow`` reads a log without the configuration).
        time_factor: virtual seconds per real second (a drill's compressed clock; 1 in
            production).

    Raises:
        MTAError: Postfix's main.cf is unreadable or one of its times is not a time.
    """
    given = sources.mta
    if mta == "postfix" and postfix_config is not None:
        max_age, retry = postfix_hours(postfix_config)
    elif mta == "postfix":
        max_age, retry = (postfix_seconds(value, name, "postconf(5)") / 3600
                          for name, value in POSTFIX_DEFAULTS.items())  # fmt: skip
    else:
        max_age, retry = KUMOMTA_MAX_AGE_HOURS, KUMOMTA_RETRY_HOURS
    max_age, retry = max_age * time_factor, retry * time_factor
    if given.max_age_hours is not None:
        max_age = given.max_age_hours
    if given.retry_interval_hours is not None:
        retry = given.retry_interval_hours
    return {
        "overflow": given.overflow,
        "max_age_hours": int(min(max(math.floor(max_age + 0.5), 1), MAX_AGE_SCALE_HOURS)),
        "retry_interval_hours": min(max(retry, MIN_RETRY_HOURS), RETRY_SCALE_HOURS),
    }
