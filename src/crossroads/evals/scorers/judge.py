"""LLM-as-a-judge: any configured model grades the answer against a rubric.

The judge gets one user message, :data:`JUDGE_PROMPT` filled in with the rubric
(default :data:`DEFAULT_RUBRIC`), the question, the reference answer (when the item has
``expected``) and the answer. The question is, in order of preference, the rendered user
prompt the runner stores in ``variables["_prompt"]``, else ``variables["question"]``,
else ``variables["input"]``.

The verdict is read by :func:`parse_verdict`: a JSON object ``{"score": n}`` (also
``rating``/``grade``), else the last line that starts with "score", "rating" or "grade"
(Markdown emphasis ignored), whose last number is the score; a denominator is skipped
("Score: 8/10" and "8 out of 10" are 8). On a ``pass/fail`` scale the words pass/fail
(yes/no, true/false, 1/0) are read instead. Scores outside the scale do not count.

With ``k`` > 1 the judge is asked k times (concurrently; temperature 1.0 unless set);
the value is the mean of the normalised scores that could be read, ``extra`` holds the
raw ``judgements`` (None when unreadable) and their ``agreement`` (the fraction of the k
equal to the most common one). No readable verdict at all is a format error.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from typing import Any

from pydantic import Field, field_validator

from ...errors import ConfigError
from ..scoring import Answer, Score, Scorer, ScorerParams, ScoringContext

__all__ = [
    "DEFAULT_RUBRIC",
    "JUDGE_PROMPT",
    "JudgeParams",
    "LLMJudge",
    "parse_scale",
    "parse_verdict",
]

DEFAULT_RUBRIC = (
    "Judge how well the answer responds to the question: correct and consistent with the "
    "reference answer (when one is given), complete, relevant and clear. Wrong facts weigh "
    "more than style; an answer that refuses or evades a harmless question scores lowest."
)

JUDGE_PROMPT = """You are an impartial grader. Grade the answer below.

Rubric:
{rubric}

Question:
{question}
{reference}
Answer to grade:
<answer>
{answer}
</answer>

Explain your judgement in at most three sentences, then give the grade on the last line, \
exactly as
SCORE: {format}"""

_REFERENCE = "\nReference answer (treat it as correct):\n{expected}\n"
_SCALE = re.compile(r"\s*(-?\d+)\s*(?:-|–|to|\.\.)\s*(-?\d+)\s*")
_PASS_FAIL = ("pass/fail", "pass-fail", "binary")
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?")
_LINE = re.compile(r"^\W*(?:final\s+)?(?:score|rating|grade|verdict)\b(?P<rest>.*)$", re.I | re.M)
_WORDS = {"pass": 1, "yes": 1, "true": 1, "fail": 0, "no": 0, "false": 0}


def parse_scale(scale: str) -> tuple[int, int] | None:
    """``"1-10"`` → (1, 10); ``"pass/fail"`` → None."""
    if scale.strip().lower() in _PASS_FAIL:
        return None
    m = _SCALE.fullmatch(scale)
    if not m or int(m[1]) >= int(m[2]):
        raise ValueError(f"scale {scale!r}: use 'LOW-HIGH' (e.g. '1-10') or 'pass/fail'")
    return int(m[1]), int(m[2])


def _on_scale(raw: Any, bounds: tuple[int, int] | None) -> float | None:
    """A raw verdict (number or word) as a number on the scale, or None."""
    if isinstance(raw, bool):
        raw = int(raw)
    if isinstance(raw, str):
        word = raw.strip().strip("*.:").lower()
        if bounds is None and word in _WORDS:
            return float(_WORDS[word])
        m = _NUMBER.search(raw)
        if not m:
            return None
        raw = float(m.group(0))
    if not isinstance(raw, int | float):
        return None
    low, high = bounds or (0, 1)
    return float(raw) if low <= raw <= high else None


def parse_verdict(text: str, bounds: tuple[int, int] | None) -> float | None:
    """The judge's score on the scale ``bounds`` (None: pass/fail → 1/0), or None."""
    for m in re.finditer(r"\{[^{}]*\}", text):
        try:
            data = json.loads(m.group(0))
        except ValueError:
            continue
        if isinstance(data, dict):
            for key in ("score", "rating", "grade", "verdict"):
                if key in data:
                    return _on_scale(data[key], bounds)
    lines = list(_LINE.finditer(text.replace("*", "").replace("_", "")))
    if not lines:
        return None
    rest = lines[-1]["rest"]
    if bounds is None:
        words = re.findall(r"[a-z]+", rest.lower())
        for word in reversed(words):
            if word in _WORDS:
                return float(_WORDS[word])
    numbers = [
        m
        for m in _NUMBER.finditer(rest)
        if not re.search(r"(?:/|\bout\s+of)\s*$", rest[: m.start()])
    ]
    return _on_scale(numbers[-1].group(0), bounds) if numbers else None


class JudgeParams(ScorerParams):
    #: The judge: any model name the client resolves.
    model: str = Field(min_length=1)
    rubric: str = DEFAULT_RUBRIC
    #: "LOW-HIGH" (integers) or "pass/fail".
    scale: str = "1-10"
    #: How many times to ask the judge.
    k: int = Field(1, ge=1, le=20)
    #: Pass when the normalised mean reaches this (default: 0.5 on pass/fail, else none).
    threshold: float | None = Field(None, ge=0, le=1)
    #: Judge temperature (default 0 for k=1, 1.0 for k>1).
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int = Field(512, ge=16)

    @field_validator("scale")
    @classmethod
    def _scale(cls, value: str) -> str:
        parse_scale(value)
        return value


def _question(variables: dict[str, Any]) -> str:
    for key in ("_prompt", "question", "input"):
        value = variables.get(key)
        if value not in (None, ""):
            return str(value)
    return "(not given)"


class LLMJudge(Scorer):
    """A model grades the answer on ``scale`` following ``rubric`` (see module doc)."""

    type = "judge"
    Params = JudgeParams
    params: JudgeParams

    def prompt(self, answer: str, expected: Any, variables: dict[str, Any]) -> str:
        p = self.params
        bounds = parse_scale(p.scale)
        fmt = (
            "PASS or SCORE: FAIL"
            if bounds is None
            else (f"<an integer from {bounds[0]} to {bounds[1]}>")
        )
        if isinstance(expected, list | tuple):
            expected = "\n".join(f"- {e}" for e in expected)
        reference = "" if expected is None else _REFERENCE.format(expected=expected)
        return JUDGE_PROMPT.format(
            rubric=p.rubric.strip(),
            question=_question(variables),
            reference=reference,
            answer=answer,
            format=fmt,
        )

    async def score(
        self, answer: Answer, expected: Any, variables: dict[str, Any], ctx: ScoringContext
    ) -> Score:
        p = self.params
        if ctx.client is None:
            raise ConfigError("judge: no client to call the judge model with.")
        bounds = parse_scale(p.scale)
        temperature = p.temperature if p.temperature is not None else (0.0 if p.k == 1 else 1.0)
        messages = [{"role": "user", "content": self.prompt(answer.text, expected, variables)}]
        replies = await asyncio.gather(
            *(
                ctx.client.chat(p.model, messages, temperature=temperature, max_tokens=p.max_tokens)
                for _ in range(p.k)
            )
        )
        texts = [str(r.text) for r in replies]
        raw = [parse_verdict(t, bounds) for t in texts]
        read = [r for r in raw if r is not None]
        judgements: list[Any] = [
            None
            if r is None
            else ("pass" if r else "fail")
            if bounds is None
            else int(r)
            if r == int(r)
            else r
            for r in raw
        ]
        if not read:
            tail = " ".join(texts[0].split())[-80:]
            return Score(
                0.0,
                False,
                True,
                f"unreadable verdict from {p.model}: {tail!r}",
                {"judgements": judgements, "agreement": 0.0},
            )
        low, high = bounds or (0, 1)
        value = sum((r - low) / (high - low) for r in read) / len(read)
        mode_count = Counter(read).most_common(1)[0][1]
        threshold = p.threshold if p.threshold is not None else (0.5 if bounds is None else None)
        passed = None if threshold is None else value >= threshold
        shown = ", ".join("?" if j is None else str(j) for j in judgements)
        scale = "pass/fail" if bounds is None else f"{low}-{high}"
        detail = f"judge {p.model}: {shown} on {scale} → {value:.2f}"
        extra = {"judgements": judgements, "agreement": mode_count / p.k, "judge": p.model}
        return Score(value, passed, False, detail, extra)
