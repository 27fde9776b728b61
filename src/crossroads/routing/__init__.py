"""Routing: model names → deployments, and one router that calls them for every caller.

* :mod:`.resolve` — what a name stands for (config entry or alias, tuned or embedded
  model, ``provider/model``, catalog id);
* :mod:`.router` — routes and their strategies, the failover loop, cooldowns, for whole
  and streamed answers;
* :mod:`.retry` — the one retry and backoff policy;
* :mod:`.plans` — the bounded (LRU) cache of what each name stands for;
* :mod:`.attempt_log` — one log line per upstream failure, retry, fallback, stream cut.
"""

from __future__ import annotations

from .attempt_log import REQUEST_ID
from .resolve import catalog_entry_for, resolve, resolve_all, suggest_names
from .retry import RETRYABLE_STATUS, RetryPolicy
from .router import OpenRelay, OpenStream, RoutePlan, Router, Target, close_stream

__all__ = [
    "REQUEST_ID",
    "RETRYABLE_STATUS",
    "OpenRelay",
    "OpenStream",
    "RetryPolicy",
    "RoutePlan",
    "Router",
    "Target",
    "catalog_entry_for",
    "close_stream",
    "resolve",
    "resolve_all",
    "suggest_names",
]
