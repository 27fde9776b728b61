"""What a request is charged when its client does not stay for the answer, and the upper
bound of a prompt that reservations and tokens-per-minute limits count.

A client that hangs up must not get the upstream's work for free: the upstream has read
the prompt (and often generated the answer) and bills it either way. So a request cut
short is charged

* **what the upstream reports**, when the gateway can wait for it: for a key with a
  budget the gateway keeps reading the upstream's answer after the client left
  (:class:`UsageWait`), for at most ``gateway.disconnect_wait_s`` (and never past the
  deployments' timeout) and for at most ``gateway.disconnect_max_waits`` requests at a
  time, and records the usage it reports (the ledger row says 499);
* **otherwise its reservation** (a key without a budget, whose upstream is freed at
  once; no room to wait; the wait ran out): the prompt's upper bound plus the tokens
  already streamed, or plus ``max_tokens`` for a whole answer (how much of it was
  generated is unknown), priced at the dearest deployment the request could have gone
  to (:func:`cut_charge`, :func:`cut_stream_usage`). Never less than the prompt.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ..types import ChatRequest, Usage, estimate_prompt_tokens, prompt_token_bound
from .costing import Price, reserve_usd

if TYPE_CHECKING:
    from ..config.gateway import GatewaySettings
    from ..routing import Target
    from .call import Call

__all__ = ["Billing", "UsageWait", "cut_charge", "cut_stream_usage", "prompt_bound"]


def prompt_bound(request: ChatRequest, targets: list[Target]) -> int:
    """The most prompt tokens ``request`` can be billed on any of ``targets``: every
    byte the upstream receives (:func:`~crossroads.types.prompt_token_bound`), and no more
    than the largest context window among them when all are known (a longer prompt is
    refused by the upstream, unbilled)."""
    bound = prompt_token_bound(request)
    windows = [t.deployment.context_window for t in targets]
    if windows and all(windows):
        bound = min(bound, max(w for w in windows if w))
    return bound


class Billing:
    """The gateway's waits for the usage of requests whose clients left (one per
    process)."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.wait_s = settings.disconnect_wait_s
        self.max_waits = settings.disconnect_max_waits
        #: Requests now read on after their client left.
        self.waiting = 0

    def wait_for(self, call: Call) -> UsageWait | None:
        """How ``call`` waits for its usage if its client leaves: only a key with a budget
        waits (the others' upstream is freed at once and they are charged their
        reservation)."""
        key, reservation = call.key, call.reservation
        if key is None or key.budget_usd is None or reservation is None:
            return None
        if self.wait_s <= 0 or self.max_waits <= 0:
            return None
        timeouts = [t.deployment.timeout for t in reservation.targets]
        return UsageWait(self, call, min(self.wait_s, max(timeouts, default=self.wait_s)))


class UsageWait:
    """One request's wait for its upstream's answer after its client left: ``begin``
    (each time the gateway notices the client is gone) says for how many more seconds to
    let the work run, or None to cut it now; ``end`` frees its place."""

    __slots__ = ("billing", "call", "deadline", "holding", "refused", "wait_s")

    def __init__(self, billing: Billing, call: Call, wait_s: float) -> None:
        self.billing, self.call, self.wait_s = billing, call, wait_s
        self.deadline: float | None = None
        self.holding = self.refused = False

    def begin(self) -> float | None:
        self.call.gone = True
        if self.refused:
            return None
        now = time.monotonic()
        if self.deadline is None:
            self.deadline = now + self.wait_s
        left = self.deadline - now
        if not self.holding:
            if left <= 0 or self.billing.waiting >= self.billing.max_waits:
                self.refused = True
                return None
            self.billing.waiting += 1
            self.holding = True
        return max(left, 0.0)

    def end(self) -> None:
        if self.holding:
            self.holding = False
            self.billing.waiting -= 1


def cut_charge(call: Call) -> tuple[Usage, Price]:
    """What a request cut before the upstream answered (or, for a stream, before its
    first chunk was relayed) is charged: its prompt's upper bound, plus its ``max_tokens``
    for a whole answer, at the dearest deployment it could have gone to."""
    reservation = call.reservation
    if reservation is None:  # refused before admission: nothing was sent upstream
        return Usage(), Price(0.0)
    completion = 0 if call.stream else reservation.max_tokens
    usd = (
        reservation.usd
        if completion == reservation.max_tokens
        else reserve_usd(reservation.targets, reservation.prompt_tokens, completion)
    )
    usage = Usage.of(reservation.prompt_tokens, completion)
    return usage, Price(usd, None if usd is not None else "unpriced")


def cut_stream_usage(call: Call, usage: Usage | None, streamed: int) -> Usage:
    """The usage of a stream cut before its end: the upstream's when it reported it, else
    the prompt's upper bound and the tokens streamed so far."""
    if usage is not None:
        return usage
    reservation = call.reservation
    if reservation is not None:
        prompt = reservation.prompt_tokens
    else:
        prompt = estimate_prompt_tokens(call.request) if call.request is not None else 0
    return Usage.of(prompt, streamed)
