"""Prometheus metrics of the gateway (``GET /metrics``), labelled by model and key name.

Keys appear by their name (``crossroads keys create --name``), never their value. With
``--workers N`` each worker process exposes its own counters. Label values are bounded:
a model name the configuration does not define is counted as ``other``
(:class:`~.exposure.Exposure`), so clients cannot add series or bytes to the scrape.
Reading the scrape needs a token when the gateway has a master key
(:mod:`.metrics_access`).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from .exposure import Exposure, key_label
from .metrics_access import MetricsAccess

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    """One registry per app, so tests and several apps in a process stay apart.

    ``exposure`` decides which model names are labels of their own (default: none);
    ``access`` who may read the scrape (default: anyone).
    """

    def __init__(
        self, exposure: Exposure | None = None, access: MetricsAccess | None = None
    ) -> None:
        self.exposure = exposure or Exposure(frozenset())
        self.access = access or MetricsAccess()
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "crossroads_requests", "Requests by model, key and HTTP status",
            ["model", "key", "status"], registry=r,
        )
        self.errors = Counter(
            "crossroads_errors", "Failed requests by model, key and error class",
            ["model", "key", "error"], registry=r,
        )
        self.latency = Histogram(
            "crossroads_request_latency_seconds", "End-to-end latency",
            ["model"], buckets=_LATENCY_BUCKETS, registry=r,
        )
        self.ttft = Histogram(
            "crossroads_time_to_first_token_seconds", "Time to first token (streams)",
            ["model"], buckets=_LATENCY_BUCKETS, registry=r,
        )
        self.tokens = Counter(
            "crossroads_tokens", "Tokens by model, key and kind (prompt|completion)",
            ["model", "key", "kind"], registry=r,
        )
        self.cost = Counter(
            "crossroads_cost_usd", "Spend in US dollars by model and key",
            ["model", "key"], registry=r,
        )
        self.fallbacks = Counter(
            "crossroads_fallbacks", "Requests served after at least one failed attempt",
            ["model"], registry=r,
        )

    def observe(
        self,
        *,
        model: str,
        key: str,
        status: int,
        error: str | None,
        latency_s: float,
        ttft_s: float | None,
        prompt_tokens: int,
        completion_tokens: int,
        cost_usd: float | None,
        attempts: int,
    ) -> None:
        model, key = self.exposure.model_label(model), key_label(key)
        self.requests.labels(model, key, str(status)).inc()
        if error:
            self.errors.labels(model, key, error).inc()
        self.latency.labels(model).observe(latency_s)
        if ttft_s is not None:
            self.ttft.labels(model).observe(ttft_s)
        if prompt_tokens:
            self.tokens.labels(model, key, "prompt").inc(prompt_tokens)
        if completion_tokens:
            self.tokens.labels(model, key, "completion").inc(completion_tokens)
        if cost_usd:
            self.cost.labels(model, key).inc(cost_usd)
        if attempts > 1 and not error:
            self.fallbacks.labels(model).inc()

    def count(self, *, model: str, key: str, status: int) -> None:
        """One request that is counted but not observed (refused before admission)."""
        self.requests.labels(self.exposure.model_label(model), key_label(key), str(status)).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
