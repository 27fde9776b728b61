"""The one retry policy: which failures are worth another try, and how long to wait.

It follows the official SDKs: 408, 409, 429 and 5xx (529 included), connection errors
and timeouts are retried; other 4xx never are. An upstream's ``x-should-retry`` verdict
wins over the status; its ``Retry-After`` / ``retry-after-ms`` (or Gemini's RetryInfo)
replaces the jittered exponential backoff. The router applies it across deployments.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ..errors import APIError, RateLimitError, UpstreamTimeoutError, UpstreamUnavailableError

__all__ = ["RETRYABLE_STATUS", "RetryPolicy"]

RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504, 529})

_RETRYABLE_ERRORS = (RateLimitError, UpstreamUnavailableError, UpstreamTimeoutError)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    #: Total seconds allowed for waits between tries of one call.
    retry_budget_s: float = 30.0
    initial_delay_s: float = 0.5
    max_delay_s: float = 8.0

    @staticmethod
    def retryable(exc: APIError) -> bool:
        """Whether another try (on this or another deployment) may succeed."""
        if exc.should_retry is not None:
            return exc.should_retry
        if isinstance(exc, _RETRYABLE_ERRORS):
            return True
        return exc.status_code in RETRYABLE_STATUS

    def backoff(self, retry: int) -> float:
        """Jittered exponential backoff before retry number ``retry`` (0-based)."""
        ceiling = min(self.max_delay_s, self.initial_delay_s * 2.0**retry)
        return ceiling * (0.5 + random.random() / 2)

    def delay(self, retry: int, failure: APIError | None) -> float:
        """Seconds to wait before retry number ``retry``: the upstream's hint, else backoff."""
        hint = failure.retry_after if failure is not None else None
        return max(hint, 0.0) if hint is not None else self.backoff(retry)
