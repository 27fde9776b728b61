"""Semantic similarity: cosine of all-MiniLM-L6-v2 sentence embeddings, offline.

The model lives with the backends (:mod:`crossroads.backends.embedding_model`); inference
runs in a worker thread so the event loop keeps going.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import Field

from ...backends.embedding_model import embed
from ...errors import ConfigError
from ..scoring import Answer, Score, Scorer, ScorerParams, ScoringContext

__all__ = ["SemanticSimilarity"]

def _similarities(answer: str, references: list[str]) -> list[float]:
    first, *rest = embed([answer, *references])
    return [sum(a * b for a, b in zip(first, other, strict=True)) for other in rest]


class SemanticParams(ScorerParams):
    #: Pass when the cosine similarity reaches this.
    threshold: float = Field(0.7, ge=0, le=1)


class SemanticSimilarity(Scorer):
    """Cosine similarity of the answer and ``expected`` (the best over a list of
    references), clipped to [0, 1]; passes at ``threshold`` (default 0.7)."""

    type = "semantic"
    Params = SemanticParams
    params: SemanticParams

    async def score(
        self, answer: Answer, expected: Any, variables: dict[str, Any], ctx: ScoringContext
    ) -> Score:
        if expected is None or expected == []:
            raise ConfigError("semantic: the item has no reference (`expected`).")
        refs = [str(e) for e in (expected if isinstance(expected, list | tuple) else [expected])]
        if not answer.text.strip():
            return Score.binary(False, "empty answer", similarity=0.0)
        sims = await asyncio.to_thread(_similarities, answer.text, refs)
        best = max(sims)
        value = min(1.0, max(0.0, best))
        ok = value >= self.params.threshold
        detail = f"cosine {best:.3f} (threshold {self.params.threshold:g})"
        return Score(value, ok, False, detail, {"similarity": best})
