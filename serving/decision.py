"""Write one decision: the JSON answer of ``decide`` from one record's numbers.

:class:`DecisionWriter` is shared by the one-record path (:mod:`ipwarmup.serving.single`)
and the batch path (:mod:`ipwarmup.serving.batch`), so both word a decision alike: each
provider's cap with its reasons (the policy's factor first, then every guardrail that
fired), the pool's action with its reasons, the guardrails that fired and whether the
fallback rule decided.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ipwarmup.actions import GROW, SHRINK

DECISION_VERSION = 2
"""2: guardrails fire on their condition (not only when they cut), 0 IPs hold no cap."""
_POOL_ACTIONS = {GROW: "grow", SHRINK: "shrink", 0: "hold"}
_SOURCES = ((False, "policy"), (True, "aimd"))
"""Who proposed a decision, by whether the fallback rule decided: its reasons' prefix."""
_NO_IPS = "no dedicated IPs: nothing to cap; mail goes through the shared pool"


class DecisionWriter:
    """Write a policy's decisions.

    Args:
        providers: the provider names, in the policy's order.
        period_hours: the hours between decisions.
        name: the bundle's name.
        run_id: the MLflow run the bundle came from, if known.
    """

    def __init__(
        self, *, providers: Sequence[str], period_hours: int, name: str, run_id: str | None
    ) -> None:
        self.providers = tuple(providers)
        self.period_hours = period_hours
        self._model = {"name": name, "run_id": run_id}
        # Each provider's first reason, "policy: x1.234" (or "aimd: ..."), NUL-separated.
        self._factor_text = {
            fallback: "\0".join([f"{source}: x%.3f"] * len(self.providers))
            for fallback, source in _SOURCES
        }
        # The pool's first reason, "policy: grow (+0.38)", by the source and the proposal.
        self._pool_text = {
            fallback: {code: f"{source}: {word} (%+.2f)" for code, word in _POOL_ACTIONS.items()}
            for fallback, source in _SOURCES
        }

    def write(
        self, n: int, fallback: bool, factor: list[float], next_cap: list[float],
        ratio: list[float], hits: list[list[tuple[str, str]]] | None, pool_value: float,
        proposal: int, action: int, notes: list[tuple[str | None, str]],
    ) -> dict[str, Any]:  # fmt: skip
        """Write one decision from one record's numbers (lists over providers).

        ``hits[j]`` holds (guardrail, reason) for each guardrail that fired at provider
        ``j`` (None: none fired anywhere); ``notes`` the pool's (guardrail or None, reason).
        """
        fired: list[str] = []
        providers: dict[str, Any]
        if n == 0:
            providers = {name: {"dedicated_cap_per_hour": 0.0, "cap_per_ip_per_hour": 0.0,
                                "change": None, "reasons": [_NO_IPS]}
                         for name in self.providers}  # fmt: skip
        else:
            # One format call for every provider's first reason, then one dict each: this
            # is most of a decision's cost once the numbers are known.
            firsts = (self._factor_text[fallback] % tuple(factor)).split("\0")
            providers = {}
            for name, cap, change, first in zip(
                self.providers, next_cap, ratio, firsts, strict=True
            ):
                providers[name] = {
                    "dedicated_cap_per_hour": cap * n,
                    "cap_per_ip_per_hour": cap,
                    # NaN: below a millionth of a message an hour there was no cap, no ratio.
                    "change": None if change != change else change,
                    "reasons": [first],
                }
            if hits is not None:
                for name, here in zip(self.providers, hits, strict=True):
                    if here:
                        reasons = providers[name]["reasons"]
                        for hit, reason in here:
                            reasons.append(reason)
                            fired.append(f"{hit}:{name}")
        pool_reasons = [self._pool_text[fallback][proposal] % pool_value]
        for rule, reason in notes:
            pool_reasons.append(reason)
            if rule is not None:
                fired.append(rule)
        return {
            "decision_version": DECISION_VERSION,
            "model": self._model.copy(),
            "period_hours": self.period_hours,
            "providers": providers,
            "pool": {"action": _POOL_ACTIONS[action], "dedicated_ips": n + action,
                     "reasons": pool_reasons},
            "guardrails": fired,
            "fallback": "the network's output is not finite" if fallback else None,
        }  # fmt: skip
