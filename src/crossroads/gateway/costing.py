"""What a gateway request costs, and the most it could cost (for budget reservations).

* A vendor deployment is priced from ``prices:`` in crossroads.yaml, else the catalog's
  dated list prices.
* A self-hosted deployment with ``gpu_hour_usd`` is priced from that and the throughput
  the gateway measures on it: its tokens over the seconds it was busy, so a request
  pays for the share of GPU time it used (idle time is not charged to anyone).
* The embedded in-process model is free by definition (it runs on this machine's CPU)
  and is flagged ``self-hosted``.
* Anything else has no known price: ``gateway.unpriced_models`` says whether it is
  blocked or served with ``cost_usd`` left empty and the ledger row flagged ``unpriced``
  — never silently priced at $0.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..routing import Target
from ..types import Usage

__all__ = ["Price", "price_of", "reserve_usd"]

#: Until a self-hosted deployment has been measured, assume this throughput.
_DEFAULT_TOKENS_PER_S = 50.0


@dataclass(frozen=True, slots=True)
class Price:
    """The cost of one request, or None with the reason it is unknown."""

    usd: float | None
    flag: str | None = None  # "self-hosted" | "unpriced"


def price_of(target: Target, usage: Usage) -> Price:
    if target.gpu_hour_usd is not None:
        throughput = target.tokens_per_busy_s() or _DEFAULT_TOKENS_PER_S
        tokens = usage.prompt_tokens + usage.completion_tokens
        return Price(tokens / throughput * target.gpu_hour_usd / 3600.0, "self-hosted")
    prices = target.deployment.prices
    if prices is None:
        return Price(None, "unpriced")
    flag = "self-hosted" if prices.input == 0 and prices.output == 0 else None
    usd = prices.cost(usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens)
    return Price(usd, flag)


def reserve_usd(targets: list[Target], prompt_tokens: int, max_tokens: int) -> float | None:
    """The most one request can cost on any of ``targets`` (None: a target is unpriced)."""
    worst = 0.0
    for target in targets:
        price = price_of(target, Usage(prompt_tokens=prompt_tokens, completion_tokens=max_tokens))
        if price.usd is None:
            return None
        worst = max(worst, price.usd)
    return worst
