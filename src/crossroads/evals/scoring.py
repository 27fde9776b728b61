"""The scorer contract: how an answer is turned into a score.

A scorer is configured from a suite's ``scorers:`` list (``type`` picks the scorer,
the other keys are its parameters) and registered under the entry-point group
``crossroads.scorers`` exactly like a third-party plugin would be::

    [project.entry-points."crossroads.scorers"]
    my_scorer = "my_package.scorers:MyScorer"
"""

from __future__ import annotations

import builtins
import functools
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..client import AsyncClient

__all__ = [
    "Answer",
    "Score",
    "Scorer",
    "ScorerParams",
    "ScoringContext",
    "available_scorers",
    "build_scorer",
    "load_scorer",
]

SCORER_GROUP = "crossroads.scorers"


@dataclass(frozen=True, slots=True)
class Answer:
    """One model answer to one item, with what was measured around it."""

    text: str
    model: str
    latency_s: float | None = None
    ttft_s: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    finish_reason: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Score:
    """``value`` in [0, 1]; ``passed`` for pass/fail scorers (None when not binary).

    ``format_error`` marks answers the scorer could not read (e.g. no choice found by
    the multiple-choice extractor), counted apart from wrong answers.
    """

    value: float
    passed: bool | None = None
    format_error: bool = False
    detail: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def binary(cls, ok: bool, detail: str | None = None, **extra: Any) -> Score:
        return cls(1.0 if ok else 0.0, ok, False, detail, extra)


@dataclass(frozen=True, slots=True)
class ScoringContext:
    """What a scorer may need beyond the answer: a client for LLM judges."""

    client: AsyncClient | None = None


class ScorerParams(BaseModel):
    """Base of each scorer's parameters; unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")
    #: Display name (defaults to the scorer type).
    name: str | None = None
    #: Weight in the item's combined score.
    weight: float = 1.0


class Scorer(ABC):
    """Turns an answer (and the item's expected value and variables) into a Score."""

    #: The ``type:`` used in suites.
    type: ClassVar[str]
    Params: ClassVar[builtins.type[ScorerParams]] = ScorerParams

    def __init__(self, params: ScorerParams) -> None:
        self.params = params

    @property
    def name(self) -> str:
        return self.params.name or self.type

    @abstractmethod
    async def score(
        self, answer: Answer, expected: Any, variables: dict[str, Any], ctx: ScoringContext
    ) -> Score:
        """Score one answer."""


@functools.cache
def available_scorers() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group=SCORER_GROUP)}


@functools.cache
def load_scorer(type_: str) -> type[Scorer]:
    for ep in entry_points(group=SCORER_GROUP, name=type_):
        cls = ep.load()
        if not (isinstance(cls, type) and issubclass(cls, Scorer)):
            raise ConfigError(f"Entry point {ep.value!r} for scorer {type_!r} is not a Scorer")
        return cls
    known = ", ".join(sorted(available_scorers())) or "none"
    raise ConfigError(f"Unknown scorer type {type_!r}. Known scorers: {known}.")


def build_scorer(spec: dict[str, Any], where: str = "scorers") -> Scorer:
    """A scorer from its suite entry (``{"type": ..., **params}``)."""
    spec = dict(spec)
    type_ = spec.pop("type", None)
    if not isinstance(type_, str):
        raise ConfigError(
            f"{where}: each scorer needs a `type` (one of: "
            f"{', '.join(sorted(available_scorers()))})."
        )
    cls = load_scorer(type_)
    try:
        params = cls.Params.model_validate(spec)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or type_}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"{where} ({type_}): {problems}") from exc
    return cls(params)
