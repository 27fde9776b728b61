"""The ``shadow:`` section of crossroads.yaml: copies of real traffic for candidate models.

    shadow:
      - name: llama-vs-gpt          # the run's suite is named "shadow:llama-vs-gpt"
        match: gpt-4o-mini          # route or model name clients ask for (globs allowed)
        candidates: [local/smollm2] # models that get a copy
        sample: 0.05                # share of matching requests, 0..1
        seed: 0                     # which requests are sampled (hash of request id + seed)
        budget_usd: 5               # total spend cap on the candidates; then the rule pauses
        max_concurrency: 4          # candidate calls in flight for this rule
        max_queue: 1000             # exchanges waiting; more are dropped (and counted)
        scorers:                    # each candidate answer against the production answer
          - type: semantic

Schemas only: :mod:`crossroads.shadow` does the work (and checks the scorers' parameters
when the gateway starts).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["ShadowRule", "unique_rule_names"]


class ShadowRule(BaseModel):
    """One rule: which production requests are copied to which candidates, and how their
    answers are scored against the production answer."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    #: Route or model name clients ask for; ``*`` and ``?`` globs allowed.
    match: str = Field(min_length=1)
    candidates: list[str] = Field(min_length=1)
    sample: float = Field(ge=0.0, le=1.0)
    #: Selection is the hash of the request id and this seed: the same requests are
    #: chosen for the same seed.
    seed: int = 0
    #: Total spend cap on the candidates (ledger rows ``shadow:NAME``); None: no cap.
    budget_usd: float | None = Field(default=None, ge=0)
    max_concurrency: int = Field(default=4, ge=1, le=256)
    max_queue: int = Field(default=1000, ge=1, le=1_000_000)
    #: Largest answer asked of a candidate (the production request's own when it has one).
    max_tokens: int | None = Field(default=None, gt=0)
    scorers: list[dict[str, Any]] = Field(
        default_factory=lambda: [{"type": "semantic"}], min_length=1
    )

    @field_validator("scorers")
    @classmethod
    def _scorers_have_types(cls, scorers: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for i, spec in enumerate(scorers):
            if not isinstance(spec.get("type"), str):
                raise ValueError(
                    f"scorer {i + 1} needs a `type` (e.g. semantic, exact, judge; "
                    "`crossroads eval --help` lists them)"
                )
        return scorers

    @field_validator("candidates")
    @classmethod
    def _distinct_candidates(cls, candidates: list[str]) -> list[str]:
        if len(set(candidates)) != len(candidates):
            raise ValueError("a candidate is listed twice")
        if any(not c.strip() for c in candidates):
            raise ValueError("candidate names must not be empty")
        return candidates

    @property
    def suite(self) -> str:
        """The suite name of this rule's runs."""
        return f"shadow:{self.name}"


def unique_rule_names(rules: list[ShadowRule]) -> list[ShadowRule]:
    names = [r.name for r in rules]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"shadow rule names used twice: {', '.join(dupes)}")
    return rules
