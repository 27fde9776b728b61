"""The W3C ``traceparent`` of the span now open (tracing on), for upstream requests.

A contextvar set by :mod:`crossroads.telemetry` while a span is current and read by
the backends' HTTP layer (:mod:`crossroads.backends._http`), which adds it to the
upstream request's headers. Off (the default) it is None and nothing is added.
"""

from __future__ import annotations

from contextvars import ContextVar

__all__ = ["TRACEPARENT"]

#: ``00-<trace id>-<span id>-<flags>`` of the current span, or None (no tracing).
TRACEPARENT: ContextVar[str | None] = ContextVar("crossroads_traceparent", default=None)
