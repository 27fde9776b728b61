"""What an evaluation run tells the decision: per-model figures and pair comparisons.

``crossroads.evals`` produces these (:func:`crossroads.evals.stats.summarize` writes the
JSON shape, :func:`crossroads.evals.results.load_evidence` validates it into
:class:`RunEvidence`) and ``crossroads.decide`` reads them. Both packages sit on the same
layer and must not import each other, so the models they share live down here, next to the
canonical wire types. Field names and meanings are those of ``summarize``'s docstring.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Estimate",
    "ModelRunSummary",
    "PairComparison",
    "RunEvidence",
    "RunSummary",
    "TagSummary",
]


class _Figures(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Estimate(_Figures):
    """A point estimate with its confidence interval (None where undefined)."""

    estimate: float | None = None
    low: float | None = None
    high: float | None = None


class TagSummary(_Figures):
    """Mean score of one model on the items carrying one tag."""

    n: int = 0
    mean: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None


class ModelRunSummary(_Figures):
    """One model's figures in one run (scores 0-1, latencies in seconds, costs in USD)."""

    n_items: int = 0
    n_results: int = 0
    mean: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    pass_rate: float | None = None
    errors: int = 0
    format_errors: int = 0
    latency_p50: Estimate = Field(default_factory=Estimate)
    latency_p95: Estimate = Field(default_factory=Estimate)
    latency_p99: Estimate = Field(default_factory=Estimate)
    ttft_p50: Estimate = Field(default_factory=Estimate)
    tokens_per_s_median: float | None = None
    cost_usd_total: float | None = None
    cost_usd_per_item: float | None = None
    by_tag: dict[str, TagSummary] = Field(default_factory=dict)


class PairComparison(_Figures):
    """Model ``a`` against model ``b`` on the items both answered."""

    a: str
    b: str
    n: int = 0
    mean_diff: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    mcnemar_b: int | None = None
    mcnemar_c: int | None = None
    mcnemar_p: float | None = None
    significant: bool = False
    verdict: str = ""
    items_needed: int | None = None


class RunSummary(_Figures):
    """The statistical summary of a run: per model (in run order) and per pair."""

    models: dict[str, ModelRunSummary] = Field(default_factory=dict)
    pairs: list[PairComparison] = Field(default_factory=list)
    confidence: float = 0.95


class RunEvidence(_Figures):
    """A finished run as the decision uses it: its summary, the input share of the tokens
    it exchanged (for costing) and the reproducibility manifest."""

    run_id: str
    suite: str
    summary: RunSummary
    input_share: float = 0.75
    manifest: dict[str, Any] = Field(default_factory=dict)
    #: The runs pooled into this evidence (``crossroads compare --evidence A,B``).
    run_ids: list[str] = Field(default_factory=list)
    #: Items that are production requests (shadow and replay runs: their ids are request
    #: ids in the gateway's ledger), and the dates of the first and last (ISO).
    production_requests: int = 0
    production_from: str | None = None
    production_to: str | None = None

    def measured_on(self) -> str | None:
        """"measured on N production requests between DATE and DATE", when it was."""
        if not self.production_requests or not self.production_from or not self.production_to:
            return None
        return (
            f"measured on {self.production_requests} production requests between "
            f"{self.production_from[:10]} and {self.production_to[:10]}"
        )
