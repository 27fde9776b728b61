"""Budget scorers: the answer came fast enough, or cheaply enough.

They read what the runner measured on the :class:`~crossroads.evals.scoring.Answer`
(``latency_s``, ``ttft_s``, ``cost_usd``); a measurement that is missing is a format
error, not a failure (e.g. the price of a local model is unknown).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from ..scoring import Answer, Score, Scorer, ScorerParams, ScoringContext

__all__ = ["CostBudget", "CostParams", "LatencyBudget", "LatencyParams"]


class LatencyParams(ScorerParams):
    #: Most seconds for the whole answer.
    max_s: float | None = Field(None, gt=0)
    #: Most seconds to the first token (streamed runs).
    max_ttft_s: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _some_limit(self) -> LatencyParams:
        if self.max_s is None and self.max_ttft_s is None:
            raise ValueError("give `max_s`, `max_ttft_s` or both")
        return self


class LatencyBudget(Scorer):
    """Passes when the answer took at most ``max_s`` (and its first token at most
    ``max_ttft_s``)."""

    type = "latency"
    Params = LatencyParams
    params: LatencyParams

    async def score(
        self, answer: Answer, expected: Any, variables: dict[str, Any], ctx: ScoringContext
    ) -> Score:
        p = self.params
        checks = [("latency", answer.latency_s, p.max_s), ("TTFT", answer.ttft_s, p.max_ttft_s)]
        notes: list[str] = []
        ok = True
        for label, measured, limit in checks:
            if limit is None:
                continue
            if measured is None:
                return Score(0.0, False, True, f"{label} was not measured")
            ok = ok and measured <= limit
            notes.append(f"{label} {measured:.2f}s {'<=' if measured <= limit else '>'} {limit:g}s")
        return Score.binary(ok, ", ".join(notes))


class CostParams(ScorerParams):
    #: Most US dollars for the answer.
    max_usd: float = Field(ge=0)


class CostBudget(Scorer):
    """Passes when the answer cost at most ``max_usd``; unknown cost is a format error."""

    type = "cost"
    Params = CostParams
    params: CostParams

    async def score(
        self, answer: Answer, expected: Any, variables: dict[str, Any], ctx: ScoringContext
    ) -> Score:
        limit = self.params.max_usd
        if answer.cost_usd is None:
            return Score(0.0, False, True, "cost unknown (no price for this model)")
        ok = answer.cost_usd <= limit
        sign = "<=" if ok else ">"
        return Score.binary(ok, f"${answer.cost_usd:.6f} {sign} ${limit:g}")
