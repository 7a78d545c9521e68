"""One delivery event read from an MTA log, and the reply classes.

Reply classes (issue 13): 2xx accepted; 4xx deferred; 5.1.x (bad address) bounced; every
other 5xx (policy, 5.7.x, blocks) rejected; Postfix ``status=expired`` and KumoMTA
``Expiration`` lost. The enhanced status code (RFC 3463 ``class.subject.detail``) decides
when there is one, else the basic reply code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Kind = Literal["received", "attempt", "expired"]
Outcome = Literal["accepted", "deferred", "bounced", "rejected"]

REPLY = re.compile(r"\b([2-5]\d\d)[ -](?:([2-5])\.(\d{1,3})\.\d{1,3}\b)?")
"""The first reply line's basic code and optional enhanced code in a reply text."""


@dataclass(frozen=True, slots=True)
class Event:
    """A delivery event.

    Attributes:
        line: 1-based line number in the log.
        time: UNIX seconds (UTC).
        kind: ``received`` (new mail), ``attempt`` (one answer to one recipient) or
            ``expired`` (given up; ``recipient`` empty means every recipient of ``message``).
        message: the MTA's message id (Postfix queue id, KumoMTA id).
        recipient: the lower-cased recipient address, or "".
        route: the Postfix transport or the KumoMTA egress source.
        address: the KumoMTA source address, or "".
        mx_host: the host that answered, or "".
        outcome: the reply class of an attempt, else None.
        reply: the reply text (multi-line replies joined by spaces).
    """

    line: int
    time: float
    kind: Kind
    message: str
    recipient: str = ""
    route: str = ""
    address: str = ""
    mx_host: str = ""
    outcome: Outcome | None = None
    reply: str = ""

    @property
    def domain(self) -> str:
        """Return the recipient's domain, lower-cased."""
        return self.recipient.rpartition("@")[2]


def classify(basic: int | None, enhanced: str | None) -> Outcome | None:
    """Return the reply class of a basic code (``421``) and/or enhanced code (``4.7.28``).

    Returns None when neither is a 2xx-5xx code.
    """
    if enhanced:
        klass, _, rest = enhanced.partition(".")
        subject = rest.partition(".")[0]
        if klass == "2":
            return "accepted"
        if klass == "4":
            return "deferred"
        if klass == "5":
            return "bounced" if subject == "1" else "rejected"
    if basic is not None:
        if 200 <= basic < 300:
            return "accepted"
        if 400 <= basic < 500:
            return "deferred"
        if 500 <= basic < 600:
            return "rejected"
    return None


def classify_text(reply: str) -> Outcome | None:
    """Classify a reply text by its first ``NNN[ -]X.Y.Z``; None if it carries no code."""
    match = REPLY.search(reply)
    if match is None:
        return None
    enhanced = f"{match[2]}.{match[3]}.0" if match[2] else None
    return classify(int(match[1]), enhanced)
