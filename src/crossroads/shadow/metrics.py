"""The shadow rules' Prometheus series, on the gateway's own registry (``GET /metrics``):
whether each rule is paused, its candidate calls by outcome, its spend and the
exchanges dropped because its queue was full."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

__all__ = ["ShadowMetrics"]


class ShadowMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.paused = Gauge(
            "crossroads_shadow_paused",
            "1 while a shadow rule is paused (its budget_usd is spent)",
            ["rule"], registry=r,
        )  # fmt: skip
        self.calls = Counter(
            "crossroads_shadow_calls",
            "Candidate calls of shadow rules by outcome (ok|error|blocked)",
            ["rule", "candidate", "outcome"], registry=r,
        )  # fmt: skip
        self.spend = Counter(
            "crossroads_shadow_spend_usd", "Spend on shadow candidates in US dollars",
            ["rule"], registry=r,
        )  # fmt: skip
        self.dropped = Counter(
            "crossroads_shadow_dropped",
            "Sampled exchanges dropped because the rule's queue was full",
            ["rule"], registry=r,
        )  # fmt: skip
