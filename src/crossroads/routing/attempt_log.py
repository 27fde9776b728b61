"""One info-level log line for each upstream failure, retry, fallback and stream cut.

Each line names the request (its gateway request id, set by the caller in
:data:`REQUEST_ID`; ``-`` outside the gateway), the deployment (its configured name,
never its URL), the HTTP status, the error's class and the attempt number. Never a key,
a header, a prompt or an upstream's error text (which can echo all three).
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import TYPE_CHECKING

from ..errors import APIError

if TYPE_CHECKING:
    from .router import Target

__all__ = ["REQUEST_ID", "log_cut", "log_failure", "log_served"]

log = logging.getLogger("crossroads.routing")

#: The request the current task works for (the gateway sets its ``x-request-id``).
REQUEST_ID: ContextVar[str | None] = ContextVar("crossroads_request_id", default=None)


def _status(exc: BaseException) -> str:
    status = exc.status_code if isinstance(exc, APIError) else None
    return str(status) if status is not None else "-"


def log_failure(
    target: Target,
    attempt: int,
    max_attempts: int,
    exc: BaseException,
    *,
    retryable: bool,
    following: Target | None,
) -> None:
    """Attempt ``attempt`` on ``target`` failed with ``exc``; ``following`` is the
    deployment tried next (None: none is)."""
    if not retryable:
        outcome = "not retried"
    elif following is None:
        outcome = "giving up"
    elif following is target:
        outcome = "retrying"
    else:
        outcome = f"falling back to {following.name}"
    log.info(
        "upstream failure: request=%s deployment=%s status=%s error=%s attempt=%d/%d; %s",
        REQUEST_ID.get() or "-",
        target.name,
        _status(exc),
        type(exc).__name__,
        attempt,
        max_attempts,
        outcome,
    )


def log_served(target: Target, attempt: int) -> None:
    """A fallback worked: ``target`` answered on attempt ``attempt`` (> 1)."""
    log.info(
        "upstream fallback served: request=%s deployment=%s status=200 attempt=%d",
        REQUEST_ID.get() or "-",
        target.name,
        attempt,
    )


def log_cut(target: Target, attempt: int, exc: BaseException) -> None:
    """A stream from ``target`` broke after its first chunk (no fallback is possible)."""
    log.info(
        "upstream stream cut: request=%s deployment=%s status=%s error=%s attempt=%d",
        REQUEST_ID.get() or "-",
        target.name,
        _status(exc),
        type(exc).__name__,
        attempt,
    )
