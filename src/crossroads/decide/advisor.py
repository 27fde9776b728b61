"""The advisor: hard constraints, weighted dimensions, and where the answer would flip.

A :class:`Profile` (YAML, see ``examples/profiles/``) gives a weight to each of the ten
dimensions of :mod:`crossroads.decide.dimensions` and a few hard constraints. :func:`advise`
then

1. **excludes** candidates that break a constraint (every reason is listed):

   * the model is ``retired`` by its vendor (requests fail);
   * ``on_premises``: data must stay on premises, so every closed (API-only) model goes;
   * ``monthly_budget_usd``: the monthly cost at the profile's volume is above the budget
     (a candidate whose cost is unknown is kept, with a note);
   * ``no_ml_engineers``: open models that need more than a small single GPU are out,
     i.e. serving tier ``large-gpu`` or ``multi-gpu`` (fp16 weights above 20 GB, see
     :func:`~crossroads.decide.dimensions.serving_tier`); CPU-sized and single 24 GB-GPU
     models stay;
   * ``regulated``: requires control >= 7 **and** transparency >= 5;
   * ``languages``: each language must be *listed* in the catalog's ``languages`` text (its
     English name as a word, e.g. ``German``, or its ISO 639-1 code in a parenthesised code
     list such as ``(bg, ca, cs, ...)``; codes given in the profile are mapped to names), or
     - unless ``languages_strict`` - *claimed* by a text that declares the model broadly
     multilingual without a list ("Multilingual", "46 natural languages", "30+ languages",
     at least 20; such a claim counts as listing English); claimed matches are kept with
     a note to verify them with the multilingual suite;
   * ``p95_latency_s``: applies only to measured candidates (measured p95 above the limit);
2. **ranks** the rest by ``sum(w * s) / sum(w)`` (ties by name), with the dimensions that
   contribute most as reasons;
3. finds **flip points**: for each weight, the nearest value (raising it up to 10x its
   current value - up to 10 when it is 0 - or lowering it to 0) at which the top choice
   changes, solved exactly (each weighted score is linear-fractional in one weight); and for
   the volume, the nearest monthly volume (searched from 1/1000x to 1000x, 20 points per
   decade, then bisected) at which it changes, re-scoring cost at each volume through
   ``rescore_cost(volume) -> {name: cost score}`` (by default built from the candidates'
   cost curves, cost relative to the cheapest candidate) and re-checking the budget.

:func:`advise_at` re-runs the advisor with overrides (a weight, a constraint, the volume),
e.g. just past a flip point.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..catalog import CatalogEntry
from ..errors import ConfigError
from .dimensions import DIMENSIONS, DimensionScore, Evidence, cost_score, score_model, serving_tier

__all__ = [
    "Advice",
    "Candidate",
    "Constraints",
    "CostCurve",
    "CostRescorer",
    "Excluded",
    "FlipPoint",
    "Profile",
    "RankedOption",
    "Weights",
    "advise",
    "advise_at",
    "catalog_candidate",
    "language_support",
    "load_profile",
    "make_cost_rescorer",
    "option_label",
    "with_overrides",
]

#: Monthly tokens -> monthly USD.
CostCurve = Callable[[float], float]
#: Monthly tokens -> cost dimension score per candidate name.
CostRescorer = Callable[[float], dict[str, DimensionScore]]

_SMALL_TIERS = frozenset({"cpu", "small-gpu"})
_WEIGHT_RANGE = 10.0  # weights are searched up to 10x their current value
_VOLUME_DECADES = 3  # volumes are searched from 1/1000x to 1000x
_VOLUME_STEPS_PER_DECADE = 20
_ISO_639_1 = {
    "ar": "Arabic", "bg": "Bulgarian", "bn": "Bengali", "ca": "Catalan", "cs": "Czech",
    "da": "Danish", "de": "German", "el": "Greek", "en": "English", "es": "Spanish",
    "et": "Estonian", "fa": "Persian", "fi": "Finnish", "fr": "French", "ga": "Irish",
    "he": "Hebrew", "hi": "Hindi", "hr": "Croatian", "hu": "Hungarian", "id": "Indonesian",
    "it": "Italian", "ja": "Japanese", "ko": "Korean", "lt": "Lithuanian", "lv": "Latvian",
    "ms": "Malay", "mt": "Maltese", "nl": "Dutch", "no": "Norwegian", "pl": "Polish",
    "pt": "Portuguese", "ro": "Romanian", "ru": "Russian", "sk": "Slovak", "sl": "Slovenian",
    "sr": "Serbian", "sv": "Swedish", "sw": "Swahili", "ta": "Tamil", "th": "Thai",
    "tl": "Tagalog", "tr": "Turkish", "uk": "Ukrainian", "ur": "Urdu", "vi": "Vietnamese",
    "zh": "Chinese", "cy": "Welsh", "eu": "Basque", "gl": "Galician", "yo": "Yoruba",
}  # fmt: skip
_CODE_LIST_RE = re.compile(r"\(([a-z]{2}(?:,\s*[a-z]{2})+)\)")
_MULTILINGUAL_RE = re.compile(r"\bmultilingual\b|\b(\d+)\+?\s+(?:natural\s+)?languages\b", re.I)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Weights(_Strict):
    """How much each dimension matters (non-negative, any scale; at least one positive)."""

    cost: float = Field(1.0, ge=0)
    customization: float = Field(1.0, ge=0)
    transparency: float = Field(1.0, ge=0)
    performance: float = Field(1.0, ge=0)
    ease_of_use: float = Field(1.0, ge=0)
    scalability: float = Field(1.0, ge=0)
    support: float = Field(1.0, ge=0)
    ecosystem: float = Field(1.0, ge=0)
    control: float = Field(1.0, ge=0)
    ethics_bias: float = Field(1.0, ge=0)

    @model_validator(mode="after")
    def _some_positive(self) -> Weights:
        if not any(v > 0 for v in self.as_dict().values()):
            raise ValueError("at least one weight must be positive")
        return self

    def as_dict(self) -> dict[str, float]:
        return {key: float(getattr(self, key)) for key in DIMENSIONS}


class Constraints(_Strict):
    """Hard constraints (see the module docstring for exactly what each one excludes)."""

    on_premises: bool = False
    monthly_budget_usd: float | None = Field(None, ge=0)
    no_ml_engineers: bool = False
    regulated: bool = False
    languages: list[str] = Field(default_factory=list)
    languages_strict: bool = False
    p95_latency_s: float | None = Field(None, gt=0)
    volume_tokens_per_month: float = Field(10_000_000, gt=0)


class Profile(_Strict):
    """Who is choosing: weights per dimension and hard constraints."""

    name: str = Field(min_length=1)
    description: str = ""
    weights: Weights = Field(default_factory=Weights)
    constraints: Constraints = Field(default_factory=Constraints)


@dataclass(frozen=True)
class Candidate:
    """One option to rank: a catalog model with its dimension scores and cost."""

    name: str
    entry: CatalogEntry
    dimension_scores: Mapping[str, DimensionScore]
    monthly_cost_usd: float | None = None
    cost_curve: CostCurve | None = None  # monthly tokens -> monthly USD
    p95_latency_s: float | None = None
    measured: bool = False


class RankedOption(BaseModel):
    name: str
    label: str
    kind: str
    score: float
    monthly_cost_usd: float | None
    scores: dict[str, float]
    evidence: dict[str, list[str]]
    reasons: list[str]
    notes: list[str]


class Excluded(BaseModel):
    name: str
    label: str
    reasons: list[str]


class FlipPoint(BaseModel):
    """Where the top choice changes when one parameter moves (``value`` None: nowhere)."""

    kind: Literal["weight", "volume"]
    parameter: str
    direction: Literal["up", "down"]
    current: float
    value: float | None
    searched_to: float
    new_top: str | None
    sentence: str


class Advice(BaseModel):
    profile: str
    volume_tokens_per_month: float
    ranking: list[RankedOption]
    excluded: list[Excluded]
    flip_points: list[FlipPoint]

    @property
    def top(self) -> str | None:
        return self.ranking[0].name if self.ranking else None


def load_profile(path: str | Path) -> Profile:
    """Read a profile YAML; errors name the file, the line and the field."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read profile: {exc.strerror}") from None
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ConfigError(f"{where}: invalid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1: a profile is a mapping (name, weights, constraints).")
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            field = ".".join(str(p) for p in loc) or "(top level)"
            problems.append(f"{path}:{_line_of(root, loc)}: field '{field}': {err['msg']}")
        raise ConfigError("Invalid profile:\n  " + "\n  ".join(problems)) from None


def _line_of(root: Any, loc: tuple[int | str, ...]) -> int:
    import yaml

    node = root
    line: int = node.start_mark.line + 1 if node is not None else 1
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if getattr(k, "value", None) == key), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            node = None
        if node is None:
            break
        line = node.start_mark.line + 1
    return line


def with_overrides(profile: Profile, **overrides: Any) -> Profile:
    """A copy with weights (``cost=3`` or ``weights={...}``) or constraints replaced."""
    data = profile.model_dump()
    for key, value in overrides.items():
        if key == "weights":
            data["weights"].update(value)
        elif key in DIMENSIONS:
            data["weights"][key] = value
        elif key in Constraints.model_fields:
            data["constraints"][key] = value
        else:
            raise ValueError(f"unknown override {key!r}: a dimension or a constraint")
    return Profile.model_validate(data)


def language_support(entry: CatalogEntry, language: str) -> Literal["listed", "claimed", "no"]:
    """Whether the catalog's ``languages`` text lists, only broadly claims, or lacks it."""
    wanted = language.strip()
    code = wanted.lower() if wanted.lower() in _ISO_639_1 else None
    name = _ISO_639_1.get(wanted.lower(), wanted)
    if code is None:
        code = next((c for c, n in _ISO_639_1.items() if n.lower() == name.lower()), None)
    text = entry.languages
    if re.search(rf"\b{re.escape(name)}\b", text, re.I):
        return "listed"
    if code and any(
        code in {c.strip() for c in m.group(1).split(",")} for m in _CODE_LIST_RE.finditer(text)
    ):
        return "listed"
    for match in _MULTILINGUAL_RE.finditer(text):
        if match.group(1) is None or int(match.group(1)) >= 20:
            return "listed" if name.lower() == "english" else "claimed"
    return "no"


def option_label(entry: CatalogEntry) -> str:
    """How a sentence names the option: "self-hosting Llama 3.1 8B" or "GPT-4o mini"."""
    return f"self-hosting {entry.name}" if entry.self_host is not None else entry.name


def _fmt_tokens(volume: float) -> str:
    for factor, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if volume >= factor:
            return f"{volume / factor:.3g}{unit}"
    return f"{volume:.3g}"


def make_cost_rescorer(candidates: Sequence[Candidate]) -> CostRescorer:
    """Cost scores at a volume from the candidates' cost curves (cheapest curve = 10)."""
    curves = {c.name: c.cost_curve for c in candidates if c.cost_curve is not None}

    def rescore(volume: float) -> dict[str, DimensionScore]:
        per_1m = {name: curve(volume) / volume * 1e6 for name, curve in curves.items()}
        if not per_1m:
            return {}
        cheapest = min(per_1m.values())
        return {
            name: DimensionScore(
                cost_score(cost, cheapest),
                [
                    f"cost per 1M tokens at {_fmt_tokens(volume)} tokens/month: ${cost:.4g} "
                    f"(${cost * volume / 1e6:,.2f}/month)",
                    f"cheapest candidate: ${cheapest:.4g} per 1M (log scale, 10x dearer = -2.5)",
                ],
            )
            for name, cost in per_1m.items()
        }

    return rescore


def catalog_candidate(
    entry: CatalogEntry,
    cost_curve: CostCurve | None,
    *,
    volume_tokens_per_month: float,
    evidence: Evidence | None = None,
    name: str | None = None,
) -> Candidate:
    """A candidate scored from catalog facts (plus ``evidence``), cost from ``cost_curve``."""
    ev = evidence or Evidence()
    monthly = cost_curve(volume_tokens_per_month) if cost_curve is not None else None
    if monthly is not None and ev.cost_per_1m_tokens_usd is None:
        per_1m = monthly / volume_tokens_per_month * 1e6
        ev = dataclasses.replace(ev, cost_per_1m_tokens_usd=per_1m)
    return Candidate(
        name=name or entry.id,
        entry=entry,
        dimension_scores=score_model(entry, ev),
        monthly_cost_usd=monthly,
        cost_curve=cost_curve,
        p95_latency_s=ev.p95_latency_s,
        measured=ev.measured,
    )


def _exclusions(
    c: Constraints, cand: Candidate, scores: Mapping[str, DimensionScore], monthly: float | None
) -> tuple[list[str], list[str]]:
    entry, reasons, notes = cand.entry, [], []
    if entry.status == "retired":
        reasons.append(f"retired by {entry.vendor}: requests fail")
    if c.on_premises and entry.self_host is None:
        reasons.append(f"data must stay on premises; {entry.name} runs only on {entry.vendor}'s")
        reasons[-1] += " servers"
    if c.monthly_budget_usd is not None:
        if monthly is None:
            notes.append("monthly cost unknown: budget not checked")
        elif monthly > c.monthly_budget_usd:
            reasons.append(
                f"${monthly:,.0f}/month at {_fmt_tokens(c.volume_tokens_per_month)} "
                f"tokens/month exceeds the ${c.monthly_budget_usd:,.0f} budget"
            )
    tier = serving_tier(entry)
    if c.no_ml_engineers and tier != "api" and tier not in _SMALL_TIERS:
        reasons.append(f"no ML engineers: self-hosting needs more than a small single GPU ({tier})")
    if c.regulated:
        control, transparency = scores["control"].score, scores["transparency"].score
        if control < 7 or transparency < 5:
            reasons.append(
                f"regulated: needs control >= 7 and transparency >= 5 "
                f"(has {control:g} and {transparency:g})"
            )
    for language in c.languages:
        support = language_support(entry, language)
        if support == "no" or (support == "claimed" and c.languages_strict):
            reasons.append(f"language {language!r} not listed in {entry.languages!r}")
        elif support == "claimed":
            notes.append(
                f"{language}: claimed ({entry.languages!r}), not listed: verify with the "
                "multilingual suite"
            )
    if c.p95_latency_s is not None:
        if cand.measured and cand.p95_latency_s is not None:
            if cand.p95_latency_s > c.p95_latency_s:
                reasons.append(
                    f"measured p95 latency {cand.p95_latency_s:.2f} s above {c.p95_latency_s:g} s"
                )
        else:
            notes.append("latency not measured: p95 limit not checked")
    return reasons, notes


def _weighted(scores: Mapping[str, DimensionScore], weights: Mapping[str, float]) -> float:
    total = math.fsum(weights.values())
    return math.fsum(w * scores[k].score for k, w in weights.items()) / total


def _reasons(scores: Mapping[str, DimensionScore], weights: Mapping[str, float]) -> list[str]:
    total = math.fsum(weights.values())
    parts = sorted(
        (k for k in DIMENSIONS if weights[k] > 0),
        key=lambda k: (-weights[k] * scores[k].score, k),
    )
    out = [
        f"{DIMENSIONS[k]} {scores[k].score:.1f}/10 (weight {weights[k]:g}, "
        f"{weights[k] * scores[k].score / total:.2f} points): {scores[k].evidence[0]}"
        for k in parts[:3]
    ]
    weakest = min(parts, key=lambda k: (scores[k].score, k))
    out.append(f"weakest: {DIMENSIONS[weakest]} {scores[weakest].score:.1f}/10")
    return out


@dataclass(frozen=True)
class _Ranked:
    ranking: list[tuple[float, Candidate, dict[str, DimensionScore], float | None, list[str]]]
    excluded: list[Excluded]


def _rank(profile: Profile, candidates: Sequence[Candidate], rescore: CostRescorer) -> _Ranked:
    c = profile.constraints
    weights = profile.weights.as_dict()
    cost_scores = rescore(c.volume_tokens_per_month)
    rows, excluded = [], []
    for cand in candidates:
        scores = dict(cand.dimension_scores)
        if cand.name in cost_scores:
            scores["cost"] = cost_scores[cand.name]
        curve = cand.cost_curve
        monthly = curve(c.volume_tokens_per_month) if curve else cand.monthly_cost_usd
        reasons, notes = _exclusions(c, cand, scores, monthly)
        if reasons:
            excluded.append(
                Excluded(name=cand.name, label=option_label(cand.entry), reasons=reasons)
            )
        else:
            rows.append((_weighted(scores, weights), cand, scores, monthly, notes))
    rows.sort(key=lambda row: (-row[0], row[1].name))
    return _Ranked(rows, excluded)


def _top(ranked: _Ranked) -> Candidate | None:
    return ranked.ranking[0][1] if ranked.ranking else None


def _weight_flips(
    profile: Profile, candidates: Sequence[Candidate], rescore: CostRescorer, ranked: _Ranked
) -> list[FlipPoint]:
    top = _top(ranked)
    if top is None:
        return []
    weights = profile.weights.as_dict()
    top_scores = ranked.ranking[0][2]
    flips = []
    for dim in DIMENSIONS:
        current = weights[dim]
        others = {k: w for k, w in weights.items() if k != dim}
        base = math.fsum(others.values())
        a_top = math.fsum(w * top_scores[k].score for k, w in others.items())
        for direction in ("up", "down"):
            limit = _WEIGHT_RANGE * current if current > 0 else _WEIGHT_RANGE
            limit = limit if direction == "up" else 0.0
            best: float | None = None
            for _, _cand, scores, _, _ in ranked.ranking[1:]:
                slope = scores[dim].score - top_scores[dim].score
                if slope == 0 or (slope > 0) != (direction == "up"):
                    continue
                a_i = math.fsum(w * scores[k].score for k, w in others.items())
                x = (a_top - a_i) / slope
                inside = current <= x <= limit if direction == "up" else limit <= x <= current
                if (
                    inside
                    and base + x > 0
                    and (best is None or abs(x - current) < abs(best - current))
                ):
                    best = x
            flips.append(
                _weight_flip(profile, candidates, rescore, top, dim, direction, best, limit)
            )
    return flips


def _weight_flip(
    profile: Profile,
    candidates: Sequence[Candidate],
    rescore: CostRescorer,
    top: Candidate,
    dim: str,
    direction: Literal["up", "down"],
    value: float | None,
    limit: float,
) -> FlipPoint:
    current = profile.weights.as_dict()[dim]
    name = DIMENSIONS[dim].lower()
    verb = "rises" if direction == "up" else "falls"
    new: Candidate | None = None
    if value is not None:
        step = 1e-6 * max(1.0, value)
        probe = value + step if direction == "up" else max(0.0, value - step)
        new = _top(_rank(with_overrides(profile, **{dim: probe}), candidates, rescore))
    if value is None or new is None or new.name == top.name:
        how = f"up to {limit:g}" if direction == "up" else "down to 0"
        sentence = (
            f"the {name} weight can go {how} (now {current:g}) without changing the top choice"
        )
        return FlipPoint(
            kind="weight",
            parameter=dim,
            direction=direction,
            current=current,
            value=None,
            searched_to=limit,
            new_top=None,
            sentence=sentence,
        )
    sentence = (
        f"if the {name} weight {verb} from {current:g} to {value:.3g}, {option_label(new.entry)} "
        f"becomes the top choice instead of {option_label(top.entry)}"
    )
    return FlipPoint(
        kind="weight",
        parameter=dim,
        direction=direction,
        current=current,
        value=value,
        searched_to=limit,
        new_top=new.name,
        sentence=sentence,
    )


def _volume_flips(
    profile: Profile, candidates: Sequence[Candidate], rescore: CostRescorer, ranked: _Ranked
) -> list[FlipPoint]:
    top = _top(ranked)
    current = profile.constraints.volume_tokens_per_month
    if top is None:
        return []

    def top_at(volume: float) -> str | None:
        found = _top(
            _rank(with_overrides(profile, volume_tokens_per_month=volume), candidates, rescore)
        )
        return found.name if found else None

    flips = []
    steps = _VOLUME_DECADES * _VOLUME_STEPS_PER_DECADE
    for direction in ("up", "down"):
        sign = 1 if direction == "up" else -1
        inner, found = current, None
        for k in range(1, steps + 1):
            volume = current * 10 ** (sign * k / _VOLUME_STEPS_PER_DECADE)
            if top_at(volume) != top.name:
                found = volume
                break
            inner = volume
        limit = current * 10 ** (sign * _VOLUME_DECADES)
        if found is None:
            lo, hi = sorted((current, limit))
            flips.append(
                FlipPoint(
                    kind="volume",
                    parameter="volume_tokens_per_month",
                    direction=direction,
                    current=current,
                    value=None,
                    searched_to=limit,
                    new_top=None,
                    sentence=f"from {_fmt_tokens(lo)} to {_fmt_tokens(hi)} tokens/month the top "
                    f"choice stays {option_label(top.entry)}",
                )
            )
            continue
        for _ in range(60):  # bisect in log space: inner keeps the top, found changes it
            mid = math.sqrt(inner * found)
            if mid in (inner, found):
                break
            if top_at(mid) == top.name:
                inner = mid
            else:
                found = mid
        new_name = top_at(found)
        new = next((c for c in candidates if c.name == new_name), None)
        where = "above" if sign > 0 else "below"
        if new is None:
            what = f"no candidate remains: {option_label(top.entry)} and every other is excluded"
        else:
            what = f"{option_label(new.entry)} becomes the top choice instead of "
            what += option_label(top.entry)
        sentence = f"{where} {_fmt_tokens(found)} tokens/month {what}"
        flips.append(
            FlipPoint(
                kind="volume",
                parameter="volume_tokens_per_month",
                direction=direction,
                current=current,
                value=found,
                searched_to=limit,
                new_top=new_name,
                sentence=sentence,
            )
        )
    return flips


def _advice(profile: Profile, ranked: _Ranked, flips: list[FlipPoint]) -> Advice:
    weights = profile.weights.as_dict()
    return Advice(
        profile=profile.name,
        volume_tokens_per_month=profile.constraints.volume_tokens_per_month,
        ranking=[
            RankedOption(
                name=cand.name,
                label=option_label(cand.entry),
                kind=cand.entry.kind,
                score=round(score, 4),
                monthly_cost_usd=monthly,
                scores={k: scores[k].score for k in DIMENSIONS},
                evidence={k: list(scores[k].evidence) for k in DIMENSIONS},
                reasons=_reasons(scores, weights),
                notes=notes,
            )
            for score, cand, scores, monthly, notes in ranked.ranking
        ],
        excluded=ranked.excluded,
        flip_points=flips,
    )


def advise(
    profile: Profile,
    candidates: Sequence[Candidate],
    *,
    rescore_cost: CostRescorer | None = None,
    flip_points: bool = True,
) -> Advice:
    """Exclude, rank and find flip points (see the module docstring)."""
    names = [c.name for c in candidates]
    if len(set(names)) != len(names):
        raise ValueError("candidate names must be unique")
    for cand in candidates:
        missing = [k for k in DIMENSIONS if k not in cand.dimension_scores]
        if missing:
            raise ValueError(f"candidate {cand.name!r} lacks scores for {missing}")
    rescore = rescore_cost or make_cost_rescorer(candidates)
    ranked = _rank(profile, candidates, rescore)
    flips: list[FlipPoint] = []
    if flip_points:
        flips = _weight_flips(profile, candidates, rescore, ranked)
        flips += _volume_flips(profile, candidates, rescore, ranked)
    return _advice(profile, ranked, flips)


def advise_at(
    profile: Profile,
    candidates: Sequence[Candidate],
    *,
    rescore_cost: CostRescorer | None = None,
    flip_points: bool = False,
    **overrides: Any,
) -> Advice:
    """:func:`advise` with overrides: ``cost=3.2``, ``volume_tokens_per_month=5e7``, ...."""
    return advise(
        with_overrides(profile, **overrides),
        candidates,
        rescore_cost=rescore_cost,
        flip_points=flip_points,
    )
