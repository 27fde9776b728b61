"""Rate limits and budgets per virtual key, in one process or shared through Redis.

``admit`` runs before a request goes upstream and, atomically, checks requests per
minute, tokens per minute (the prompt estimate plus the most output tokens the request
may produce) and the budget (spent + reserved + this request's worst-case cost must fit),
then counts the request and reserves its worst-case cost. ``settle`` runs once the
real usage is known: it releases the reservation, adds the real cost to what the key
has spent and corrects the token count. Windows are strict sliding 60-second windows.

    RateLimitError (429)
    ├── RateLimitedError           over RPM/TPM; ``retry_after_s`` and response ``headers``
    └── BudgetExceededError        spent + reserved + worst case > budget (insufficient_quota)
    UpstreamUnavailableError (503)
    └── LimitStoreUnavailableError Redis unreachable and the key has a budget (fail closed)

Redis failures: a key with a budget fails closed (503), a key with only RPM/TPM fails
open (served without limits; logged once per outage), a key without limits never
touches Redis.

:mod:`.admission` holds what both limiters share (the verdict, the Admission, the
errors), :mod:`.memory` the in-process limiter and :mod:`.redis` the shared one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from ...errors import ConfigError
from .admission import (
    WINDOW_S,
    Admission,
    BudgetExceededError,
    Limiter,
    LimitStoreUnavailableError,
    RateLimitedError,
)
from .memory import MemoryLimiter
from .redis import RedisLimiter

if TYPE_CHECKING:
    from ...config.gateway import GatewaySettings

__all__ = [
    "WINDOW_S",
    "Admission",
    "BudgetExceededError",
    "LimitStoreUnavailableError",
    "Limiter",
    "MemoryLimiter",
    "RateLimitedError",
    "RedisLimiter",
    "make_limiter",
]


def make_limiter(
    settings: GatewaySettings, initial_spent: Mapping[str, float] | None = None
) -> Limiter:
    """Redis when ``gateway.redis_url`` is set (shared by replicas), else in-process."""
    if not settings.redis_url:
        return MemoryLimiter(initial_spent)
    url = settings.redis_url
    if "${" in url:
        from ...config import expand_env

        expanded, names = expand_env(url)
        if expanded is None:
            raise ConfigError(
                f"gateway.redis_url refers to {', '.join(names)}, which is not set; "
                "export it or remove redis_url to keep limits in one process."
            )
        url = expanded
    return RedisLimiter(url, timeout_s=settings.redis_timeout_s, initial_spent=initial_spent)
