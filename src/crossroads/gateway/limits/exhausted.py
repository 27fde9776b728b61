"""A key that nothing can get through, known before its request body is read.

:meth:`Limiter.precheck` runs right after authentication, so a key over its requests
per minute, or whose budget is spent, costs the gateway no JSON parsing (an attacker
holding such a key could otherwise make it parse 4 MB bodies for nothing). Only what
refuses *every* request is checked here: the tokens-per-minute limit and a budget that
still has something left depend on the request's size, so :meth:`Limiter.admit` (after
parsing) decides those.

* RPM: the window holds ``rpm`` requests; refused until the oldest leaves it.
* Budget: spent ≥ budget (for a budget above $0): every request is refused, $0 ones too.
"""

from __future__ import annotations

import math

from ..keys import KeyRecord
from .admission import BudgetExceededError, RateLimitedError, usd

__all__ = ["RpmMemo", "budget_spent", "over_rpm"]


def over_rpm(key: KeyRecord, retry_after_s: float) -> RateLimitedError:
    """The 429 for a key whose RPM window is full (as :func:`.admission.conclude` says it)."""
    retry = max(retry_after_s, 0.001)
    headers = {
        "x-ratelimit-limit-requests": str(key.rpm),
        "x-ratelimit-remaining-requests": "0",
        "retry-after": str(math.ceil(retry)),
        "retry-after-ms": str(math.ceil(retry * 1000)),
    }
    return RateLimitedError(
        f"Key {key.name!r} is limited to {key.rpm} requests per minute; retry in {retry:.1f}s.",
        retry_after_s=retry,
        headers=headers,
    )


def budget_spent(key: KeyRecord, spent_usd: float) -> BudgetExceededError | None:
    """The 429 for a key whose budget is used up, or None while some is left."""
    budget = key.budget_usd
    if budget is None or budget <= 0 or spent_usd < budget:
        return None
    return BudgetExceededError(
        f"Key {key.name!r} has used {usd(spent_usd)} of its {usd(budget)} budget; nothing "
        "is left. Ask an admin for a key with a larger budget: crossroads keys create "
        "--name NAME --budget-usd AMOUNT."
    )


class RpmMemo:
    """When each key's RPM window is full until (monotonic seconds), from the verdicts
    a shared store (Redis) returned: no round trip before parsing."""

    def __init__(self) -> None:
        self._full_until: dict[str, float] = {}

    def note(self, key: KeyRecord, rpm_used: int, reset_s: float, now: float) -> None:
        """After a verdict: ``rpm_used`` requests in the window, the oldest leaving it in
        ``reset_s`` seconds."""
        if key.rpm is not None and rpm_used >= key.rpm and reset_s > 0:
            self._full_until[key.id] = now + reset_s
        else:
            self._full_until.pop(key.id, None)

    def check(self, key: KeyRecord, now: float) -> None:
        until = self._full_until.get(key.id)
        if until is None or key.rpm is None:
            return
        if now >= until:
            del self._full_until[key.id]
            return
        raise over_rpm(key, until - now)
