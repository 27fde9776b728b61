"""The advisor's hard constraints: which candidates a profile excludes, and why.

The rules are listed in :mod:`crossroads.decide.advisor`'s docstring. (Moved from there.)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal

from ..catalog import CatalogEntry
from .dimensions import DimensionScore, serving_tier
from .profile import Constraints

if TYPE_CHECKING:
    from .ranking import Candidate

__all__ = ["exclusion_reasons", "fmt_tokens", "language_support"]

_SMALL_TIERS = frozenset({"cpu", "small-gpu"})
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


def fmt_tokens(volume: float) -> str:
    for factor, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if volume >= factor:
            return f"{volume / factor:.3g}{unit}"
    return f"{volume:.3g}"


def exclusion_reasons(
    c: Constraints, cand: Candidate, scores: Mapping[str, DimensionScore], monthly: float | None
) -> tuple[list[str], list[str]]:
    """Why ``cand`` breaks the profile's hard constraints (empty: it is kept), and notes on
    the constraints that could not be checked or hold only by a broad claim."""
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
                f"${monthly:,.0f}/month at {fmt_tokens(c.volume_tokens_per_month)} "
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
