"""Scoring a candidate's answer against the production answer with a rule's scorers (the
same scorers, weights and result rows as ``crossroads eval``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError, CrossroadsError
from ..evals.scoring import Answer, Score, Scorer, ScoringContext, build_scorer

__all__ = ["Scored", "build_scorers", "score_answer"]


def build_scorers(specs: Sequence[dict[str, Any]], rule: str) -> list[Scorer]:
    """The rule's scorers; a :class:`ConfigError` naming the rule for a bad entry."""
    scorers = []
    for i, spec in enumerate(specs):
        where = f"shadow rule {rule!r}: scorers[{i}]"
        try:
            scorers.append(build_scorer(dict(spec), where))
        except ConfigError as exc:
            message = exc.message if exc.message.startswith(where) else f"{where}: {exc.message}"
            raise ConfigError(message) from None
    return scorers


@dataclass(frozen=True, slots=True)
class Scored:
    """The combined score of one answer and each scorer's part (as ``results`` rows
    store them)."""

    value: float
    passed: bool | None
    format_error: bool
    scores: dict[str, dict[str, Any]]


async def score_answer(
    scorers: Sequence[Scorer],
    answer: Answer,
    expected: str,
    prompt: str,
    ctx: ScoringContext,
) -> Scored:
    """``answer`` scored against ``expected`` (a failed scorer scores 0, as in a run)."""
    parts: list[tuple[str, Score]] = []
    for scorer in scorers:
        if answer.error is not None:
            parts.append((scorer.name, Score(0.0, False, False, "no answer")))
            continue
        try:
            score = await scorer.score(answer, expected, {"_prompt": prompt}, ctx)
        except CrossroadsError as exc:
            score = Score(0.0, False, True, f"scorer failed: {exc.message}")
        parts.append((scorer.name, score))
    weights = [s.params.weight for s in scorers]
    value = sum(w * sc.value for w, (_, sc) in zip(weights, parts, strict=True)) / max(
        sum(weights), 1e-9
    )
    binary = [sc.passed for _, sc in parts if sc.passed is not None]
    return Scored(
        value=value,
        passed=all(binary) if binary else None,
        format_error=any(sc.format_error for _, sc in parts),
        scores={
            name: {"value": sc.value, "passed": sc.passed, "detail": sc.detail}
            for name, sc in parts
        },
    )
