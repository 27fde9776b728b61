"""Typed placeholders (``[EMAIL_1]``) and reversible pseudonymisation for one request."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TypeVar

from .findings import Finding

T = TypeVar("T")

__all__ = ["Vault", "resolve_overlaps"]

_PLACEHOLDER = re.compile(r"\[([A-Z][A-Z0-9_]*?)_(\d+)\]")


class Vault:
    """Placeholders of one request: the same value always gets the same placeholder, and
    values marked restorable are put back by :meth:`restore`."""

    def __init__(self) -> None:
        self._by_value: dict[tuple[str, str], str] = {}
        self._counts: dict[str, int] = {}
        self._originals: dict[str, str] = {}

    def placeholder(self, category: str, value: str, *, restorable: bool = False) -> str:
        key = (category, value)
        found = self._by_value.get(key)
        if found is None:
            kind = category.upper()
            self._counts[kind] = n = self._counts.get(kind, 0) + 1
            found = self._by_value[key] = f"[{kind}_{n}]"
        if restorable:
            self._originals[found] = value
        return found

    @property
    def restorable(self) -> bool:
        return bool(self._originals)

    def restore(self, text: str) -> str:
        """Put the originals back for this request's restorable placeholders."""
        if not self._originals or "[" not in text:
            return text
        return _PLACEHOLDER.sub(lambda m: self._originals.get(m.group(), m.group()), text)

    def longest(self) -> int:
        """Length of the longest restorable placeholder (streams hold that much back)."""
        return max((len(p) for p in self._originals), default=0)


def resolve_overlaps(findings: Iterable[tuple[Finding, T]]) -> list[tuple[Finding, T]]:
    """Keep non-overlapping spans, earliest first and longest on a tie."""
    kept: list[tuple[Finding, T]] = []
    last_end = -1
    for item in sorted(findings, key=lambda fc: (fc[0].start, -(fc[0].end - fc[0].start))):
        if item[0].start >= last_end:
            kept.append(item)
            last_end = item[0].end
    return kept
