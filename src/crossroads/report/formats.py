"""How the report prints numbers: money, token counts, durations, intervals, score tints.

Every formatter takes a typed value (a finite number or None, as
:class:`~crossroads.decide.decision.DecisionReport` holds them) and prints None as the dash.
"""

from __future__ import annotations

from .._pages import DASH, fixed

__all__ = [
    "ci",
    "compact",
    "general",
    "int_text",
    "params",
    "pct",
    "secs",
    "setting",
    "tint",
    "tokens",
    "truncate",
    "usd",
    "usd_tick",
]


def general(value: float | None) -> str:
    """A short general number: 0.25, 12, 1.5e-05."""
    return DASH if value is None else f"{value:.3g}"


def compact(value: float) -> str:
    """1500 → 1.5k, 2e6 → 2M, 1.25e9 → 1.25B; three significant digits at most."""
    a = abs(value)
    if a < 1000:
        text = f"{value:.3g}"
        return text if "e" not in text else f"{value:.1e}"
    for div, suffix in ((1e3, "k"), (1e6, "M"), (1e9, "B"), (1e12, "T")):
        text = f"{value / div:.3g}"
        if "e" not in text and abs(float(text)) < 1000:
            return text + suffix
    return f"{value / 1e12:,.0f}T"


def tokens(value: float | None) -> str:
    return DASH if value is None else compact(value)


def usd(value: float | None) -> str:
    if value is None:
        return DASH
    if value == 0:
        return "$0"
    sign, a = ("−" if value < 0 else ""), abs(value)
    if a >= 100:
        return f"{sign}${a:,.0f}"
    if a >= 1:
        return f"{sign}${a:,.2f}"
    return f"{sign}${a:.2g}" if a >= 1e-4 else f"{sign}${a:.1e}"


def usd_tick(value: float) -> str:
    return "$" + (compact(value) if value >= 1000 else f"{value:g}")


def pct(value: float | None) -> str:
    if value is None:
        return DASH
    return f"{value * 100:.0f}%" if value * 100 == int(value * 100) else f"{value:.1%}"


def secs(value: float | None) -> str:
    if value is None:
        return DASH
    return f"{value * 1000:.0f} ms" if abs(value) < 1 else f"{value:.2f} s"


def int_text(value: float | None) -> str:
    return DASH if value is None else f"{int(value):,}"


def params(value: float | None) -> str:
    return DASH if value is None else f"{value:g}B"


def ci(mean: float | None, low: float | None, high: float | None) -> str:
    """``0.72 [0.65–0.79]``; the bracket is dropped when either bound is missing."""
    if mean is None or low is None or high is None:
        return fixed(mean)
    return f"{fixed(mean)} [{fixed(low)}–{fixed(high)}]"


def setting(value: float | str | None) -> str:
    """A flip point's current / flip value: numbers compact (5e7 → 50M), texts as they are."""
    if value is None:
        return DASH
    if isinstance(value, str):
        return value
    return compact(value) if abs(value) >= 10_000 else f"{value:.4g}"


def tint(score: float | None, scale: float = 10.0) -> str:
    """Background colour for a score on 0..scale: red → amber → green, empty when unknown."""
    if score is None:
        return ""
    hue = round(max(0.0, min(1.0, score / scale)) * 120)
    return f"background-color: hsl({hue}, 70%, 88%)"


def truncate(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"
