"""Reference-overlap scorers: BLEU and chrF (sacrebleu), ROUGE-L (here, LCS-based).

``expected`` is one reference string or a list of references. Values are in [0, 1]
(sacrebleu's 0–100 scores divided by 100). With ``threshold`` set the answer passes when
the value reaches it; without, ``passed`` is None.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field

from ...errors import ConfigError
from ..scoring import Answer, Score, Scorer, ScorerParams, ScoringContext

__all__ = ["BLEU", "ChrF", "OverlapParams", "RougeL", "lcs_length", "rouge_l"]


class OverlapParams(ScorerParams):
    #: Pass when the value is at least this (optional).
    threshold: float | None = Field(None, ge=0, le=1)


def _references(expected: Any, scorer: str) -> list[str]:
    if expected is None or expected == [] or expected == "":
        raise ConfigError(f"{scorer}: the item has no reference (`expected`).")
    values = expected if isinstance(expected, list | tuple) else [expected]
    return [str(v) for v in values]


def _result(value: float, threshold: float | None, label: str) -> Score:
    value = min(1.0, max(0.0, value))
    passed = None if threshold is None else value >= threshold
    detail = f"{label} {value:.3f}" + ("" if threshold is None else f" (threshold {threshold:g})")
    return Score(value, passed, False, detail)


class BLEU(Scorer):
    """sacrebleu sentence BLEU (default smoothing and tokenizer) / 100."""

    type = "bleu"
    Params = OverlapParams
    params: OverlapParams

    async def score(
        self, answer: Answer, expected: Any, variables: dict[str, Any], ctx: ScoringContext
    ) -> Score:
        import sacrebleu

        refs = _references(expected, self.type)
        value = sacrebleu.sentence_bleu(answer.text, refs).score / 100
        return _result(value, self.params.threshold, "BLEU")


class ChrF(Scorer):
    """sacrebleu sentence chrF (character n-gram F-score, β=2) / 100."""

    type = "chrf"
    Params = OverlapParams
    params: OverlapParams

    async def score(
        self, answer: Answer, expected: Any, variables: dict[str, Any], ctx: ScoringContext
    ) -> Score:
        import sacrebleu

        refs = _references(expected, self.type)
        value = sacrebleu.sentence_chrf(answer.text, refs).score / 100
        return _result(value, self.params.threshold, "chrF")


_TOKEN = re.compile(r"\w+")


def lcs_length(a: list[str], b: list[str]) -> int:
    """Length of the longest common subsequence of two token lists (O(len(a)·len(b)))."""
    if len(a) < len(b):
        a, b = b, a
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b):
            current.append(previous[j] + 1 if x == y else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def rouge_l(candidate: str, reference: str) -> float:
    """ROUGE-L F1 on lowercased word tokens: LCS-based precision and recall."""
    cand, ref = _TOKEN.findall(candidate.lower()), _TOKEN.findall(reference.lower())
    if not cand or not ref:
        return 0.0
    lcs = lcs_length(cand, ref)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(cand), lcs / len(ref)
    return 2 * precision * recall / (precision + recall)


class RougeL(Scorer):
    """ROUGE-L F-measure (the best over the references)."""

    type = "rouge_l"
    Params = OverlapParams
    params: OverlapParams

    async def score(
        self, answer: Answer, expected: Any, variables: dict[str, Any], ctx: ScoringContext
    ) -> Score:
        refs = _references(expected, self.type)
        value = max(rouge_l(answer.text, ref) for ref in refs)
        return _result(value, self.params.threshold, "ROUGE-L")
