"""The decision report: what ``crossroads compare`` decides, as :mod:`crossroads.report`
renders it and ``report.json`` stores it.

:func:`crossroads.decide.compare.build_report` builds a :class:`DecisionReport`; the report
package turns it into HTML and Markdown. Field order is the order of ``report.json``.

Forgiving on input: a report read back from JSON (or written by hand) may lack fields or
hold values of the wrong type. Validation is where that is answered, once: a missing or
malformed number becomes None (so do NaN and infinities), a missing text None, a malformed
list entry an empty entry, a malformed section an empty section. Renderers then read typed
fields and never check types themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from .._pages import num, strict_dumps

__all__ = [
    "AdviceSection",
    "BreakEvenPoint",
    "CostSection",
    "DecisionReport",
    "DimensionEntry",
    "DimensionsSection",
    "ExcludedOption",
    "FlipRow",
    "ModelFacts",
    "ModelQuality",
    "PairVerdict",
    "ProfileSection",
    "PublishedBenchmark",
    "QualitySection",
    "RankedRow",
    "Recommendation",
    "VolumeSection",
]


# --------------------------------------------------------------------------- lenient types


def _text(value: Any) -> str | None:
    return value if value is None or isinstance(value, str) else str(value)


def _texts(value: Any) -> list[str]:
    """Non-empty strings (a lone string counts as a one-item list)."""
    if isinstance(value, str):
        return [value] if value else []
    if not isinstance(value, list | tuple):
        return []
    return [t for t in (_text(v) for v in value if v is not None) if t]


def _flag(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _entry(value: Any) -> Any:
    """A mapping or a model; anything else becomes an empty entry."""
    return value if isinstance(value, dict | BaseModel) else {}


def _entries(value: Any) -> list[Any]:
    return [_entry(v) for v in value] if isinstance(value, list | tuple) else []


def _keyed(inner: Callable[[Any], Any]) -> Callable[[Any], dict[str, Any]]:
    def validate(value: Any) -> dict[str, Any]:
        return {str(k): inner(v) for k, v in _mapping(value).items()}

    return validate


def _numbers(value: Any) -> list[float | None]:
    return [num(v) for v in value] if isinstance(value, list | tuple) else []


def _quality(value: Any) -> Any:
    return value if isinstance(value, BaseModel) or (isinstance(value, dict) and value) else None


def _score(value: Any) -> int | float | str | None:
    """A benchmark score: a number, or the text a source gave instead."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return num(value)
    return _text(value)


def _setting(value: Any) -> int | float | str | None:
    """A flip point's current / flip value: a finite number, a text, or JSON text."""
    n = num(value)
    if n is not None:
        return n
    return value if value is None or isinstance(value, str) else strict_dumps(value)


# int | float: an integer stays an integer in report.json.
Number = Annotated[int | float | None, BeforeValidator(num)]
Text = Annotated[str | None, BeforeValidator(_text)]
Texts = Annotated[list[str], BeforeValidator(_texts)]
Flag = Annotated[bool | None, BeforeValidator(_flag)]


class _Part(BaseModel):
    model_config = ConfigDict(extra="ignore")


# --------------------------------------------------------------------------- sections


class ProfileSection(_Part):
    """Who is choosing: the advisor profile's name, weights and hard constraints."""

    name: Text = None
    description: Text = None
    weights: Annotated[dict[str, Number], BeforeValidator(_keyed(num))] = Field(
        default_factory=dict
    )
    # Shown as given (key: value); a profile may carry constraints the advisor ignores.
    constraints: Annotated[dict[str, Any], BeforeValidator(_mapping)] = Field(default_factory=dict)


class VolumeSection(_Part):
    tokens_per_month: Number = None
    input_share: Number = None


class Recommendation(_Part):
    model: Text = None
    summary: Text = None
    flip_summary: Text = None


class ModelQuality(_Part):
    """Measured quality (0-1) with its confidence interval, and the pass rate."""

    mean: Number = None
    ci_low: Number = None
    ci_high: Number = None
    pass_rate: Number = None


class PublishedBenchmark(_Part):
    name: Text = None
    score: Annotated[int | float | str | None, BeforeValidator(_score)] = None
    source: Text = None
    as_of: Text = None


class ModelFacts(_Part):
    """One compared model: catalog facts, measurements (None: not measured) and cost."""

    name: Text = None
    catalog_id: Text = None
    display: Text = None
    kind: Text = None
    measured: Flag = None
    licence: Text = None
    params_b: Number = None
    context_window: Number = None
    quality: Annotated[ModelQuality | None, BeforeValidator(_quality)] = None
    latency_p50_s: Number = None
    latency_p95_s: Number = None
    tokens_per_s: Number = None
    monthly_cost_usd: Number = None
    cost_per_1m_usd: Number = None
    published_benchmarks: Annotated[list[PublishedBenchmark], BeforeValidator(_entries)] = Field(
        default_factory=list
    )
    note: Text = None


class DimensionEntry(_Part):
    """One dimension score of one model (0-10) with the facts it came from."""

    score: Number = None
    evidence: Texts = Field(default_factory=list)


class DimensionsSection(_Part):
    names: Annotated[dict[str, Text], BeforeValidator(_keyed(_text))] = Field(default_factory=dict)
    #: model -> dimension -> score
    scores: Annotated[
        dict[str, dict[str, DimensionEntry]], BeforeValidator(_keyed(_keyed(_entry)))
    ] = Field(default_factory=dict)


class PairVerdict(_Part):
    a: Text = None
    b: Text = None
    verdict: Text = None
    significant: Flag = None


class QualitySection(_Part):
    suite: Text = None
    run_id: Text = None
    #: The runs given to ``crossroads compare --evidence`` (shadow or replay runs).
    evidence_runs: Texts = Field(default_factory=list)
    #: "measured on N production requests between DATE and DATE", when it was.
    measured_on: Text = None
    pairs: Annotated[list[PairVerdict], BeforeValidator(_entries)] = Field(default_factory=list)


class BreakEvenPoint(_Part):
    """Monthly volume above which self-hosting ``open`` costs less than ``closed``."""

    open: Text = None
    closed: Text = None
    volume_tokens_per_month: Number = None
    sentence: Text = None


class CostSection(_Part):
    """Monthly cost per model at each volume (None where it cannot be costed)."""

    volumes: Annotated[list[Number], BeforeValidator(_numbers)] = Field(default_factory=list)
    curves: Annotated[dict[str, list[Number]], BeforeValidator(_keyed(_numbers))] = Field(
        default_factory=dict
    )
    break_even: Annotated[list[BreakEvenPoint], BeforeValidator(_entries)] = Field(
        default_factory=list
    )
    assumptions: Texts = Field(default_factory=list)


class RankedRow(_Part):
    model: Text = None
    score: Number = None
    reasons: Texts = Field(default_factory=list)


class ExcludedOption(_Part):
    model: Text = None
    reasons: Texts = Field(default_factory=list)


class FlipRow(_Part):
    parameter: Text = None
    current: Annotated[int | float | str | None, BeforeValidator(_setting)] = None
    flip_at: Annotated[int | float | str | None, BeforeValidator(_setting)] = None
    new_top: Text = None
    sentence: Text = None


class AdviceSection(_Part):
    ranking: Annotated[list[RankedRow], BeforeValidator(_entries)] = Field(default_factory=list)
    excluded: Annotated[list[ExcludedOption], BeforeValidator(_entries)] = Field(
        default_factory=list
    )
    flip_points: Annotated[list[FlipRow], BeforeValidator(_entries)] = Field(default_factory=list)


class DecisionReport(_Part):
    """The whole decision, section by section (see the module docstring)."""

    generated: Text = None
    title: Text = None
    profile: Annotated[ProfileSection, BeforeValidator(_entry)] = Field(
        default_factory=ProfileSection
    )
    volume: Annotated[VolumeSection, BeforeValidator(_entry)] = Field(default_factory=VolumeSection)
    recommendation: Annotated[Recommendation, BeforeValidator(_entry)] = Field(
        default_factory=Recommendation
    )
    models: Annotated[list[ModelFacts], BeforeValidator(_entries)] = Field(default_factory=list)
    dimensions: Annotated[DimensionsSection, BeforeValidator(_entry)] = Field(
        default_factory=DimensionsSection
    )
    quality: Annotated[QualitySection, BeforeValidator(_entry)] = Field(
        default_factory=QualitySection
    )
    tco: Annotated[CostSection, BeforeValidator(_entry)] = Field(default_factory=CostSection)
    advice: Annotated[AdviceSection, BeforeValidator(_entry)] = Field(default_factory=AdviceSection)
    manifest: Annotated[dict[str, Any], BeforeValidator(_mapping)] = Field(default_factory=dict)
