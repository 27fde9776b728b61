"""Input text scanned as the model reads it: decoded (:mod:`.unmask`), and across the
boundaries of adjacent strings.

The strings of a request (messages, content parts, Anthropic blocks, fields) are
*pieces* of one text laid end to end; offsets here are into that concatenation. The
redacting rules read the pieces joined with newlines — each piece as if alone, in one
call — and then a window of :data:`JOIN_WINDOW` characters on each side of every
boundary joined with nothing (windows that touch are merged, and all are read in one
call, so the extra work is at most the text once more), where what crosses the
boundary — ``ann.lee@exa`` + ``mple.com`` — is found too.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence

from .findings import Finding, RuleCheck
from .unmask import fold

__all__ = ["JOIN_WINDOW", "Hit", "merge_spans", "render", "scan_folded", "scan_pieces"]

Hit = tuple[Finding, RuleCheck]

#: Characters looked at on each side of a boundary between two pieces: what is split
#: there is found when its part on each side is at most this long.
JOIN_WINDOW = 64
#: Texts up to this long first ask each rule whether it could find anything (``quiet``).
_SHORT = 2 * JOIN_WINDOW


def scan_folded(text: str, rules: Sequence[RuleCheck], *, base64: bool = True) -> list[Hit]:
    """What ``rules`` find in ``text``. Redactable rules also read its folded form and
    the text of its base64 runs; findings are spans of ``text`` as written (a run's
    finding covers the whole run)."""
    readers = [r for r in rules if r.redactable]
    folded = fold(text, base64=base64) if readers else None
    decoded_text = text if folded is None or folded.starts is None else folded.text
    # A rule that says nothing can be in a short text (nor in its folded form) is
    # skipped: the seams and small fields cost a few string tests instead of a scan.
    short = len(text) <= _SHORT
    active = [
        r for r in rules
        if not (short and r.redactable and r.quiet(text) and r.quiet(decoded_text))
    ]  # fmt: skip
    hits: list[Hit] = [(f, r) for r in active for f in r.scan(text)]
    if folded is None:
        return hits
    readers = [r for r in readers if r in active]
    seen = {(f.start, f.end, f.category, id(r)) for f, r in hits}

    def add(start: int, end: int, category: str, rule: RuleCheck) -> None:
        key = (start, end, category, id(rule))
        if key not in seen:
            seen.add(key)
            hits.append((Finding(start, end, category), rule))

    if folded.starts is not None:
        for rule in readers:
            for f in rule.scan(folded.text):
                add(*folded.span(f.start, f.end), f.category, rule)
    for start, end, decoded in folded.blobs:
        for f, rule in scan_folded(decoded, [r for r in rules if r.redactable], base64=False):
            add(start, end, f.category, rule)
    return hits


def scan_pieces(texts: Sequence[str], rules: Sequence[Sequence[RuleCheck]]) -> list[Hit]:
    """Findings in ``texts`` laid end to end (``rules[i]`` read ``texts[i]``).

    Rules that only flag or block (``injection``) read each piece as written. The
    redacting rules read each run of adjacent pieces they share as one text joined with
    newlines (one call however many small strings a request has), then the windows
    around the boundaries joined with nothing."""
    hits: list[Hit] = []
    offsets = _offsets(texts)
    readers: dict[int, RuleCheck] = {}
    for i, (text, checks) in enumerate(zip(texts, rules, strict=True)):
        for rule in checks:
            if rule.redactable:
                readers[id(rule)] = rule
            elif text:
                at = offsets[i]
                hits += [
                    (Finding(f.start + at, f.end + at, f.category), rule) for f in rule.scan(text)
                ]
    groups: dict[tuple[int, ...], list[RuleCheck]] = {}
    for rule in readers.values():
        members = tuple(i for i, checks in enumerate(rules) if texts[i] and rule in checks)
        groups.setdefault(members, []).append(rule)
    for members, shared in groups.items():
        run: list[int] = []
        for i in [*members, -1]:
            if run and (i < 0 or offsets[i] != offsets[run[-1]] + len(texts[run[-1]])):
                found = _scan_joined([texts[k] for k in run], offsets[run[0]], shared)
                found += _scan_seams([texts[k] for k in run], offsets[run[0]], shared, found)
                hits += found
                run = []
            run.append(i)
    return hits


def _scan_joined(texts: list[str], base: int, rules: list[RuleCheck]) -> list[Hit]:
    """``texts`` (adjacent, the first at ``base``) joined with newlines and scanned once;
    a span that takes in a newline covers both sides."""
    joined = "\n".join(texts)
    starts: list[int] = []
    ends: list[int] = []  # where each text starts and ends, joined and laid end to end
    at = flat = 0
    for text in texts:
        starts.append(at)
        ends.append(flat)
        at += len(text) + 1
        flat += len(text)

    def place(j: int) -> int:
        k = bisect_right(starts, j) - 1
        return base + ends[k] + min(j - starts[k], len(texts[k]))

    out: list[Hit] = []
    for f, rule in scan_folded(joined, rules):
        start, end = place(f.start), place(f.end)
        if end > start:
            out.append((Finding(start, end, f.category), rule))
    return out


def _scan_seams(texts: list[str], base: int, rules: list[RuleCheck], found: list[Hit]) -> list[Hit]:
    """What crosses a boundary between two of ``texts`` (adjacent, the first at
    ``base``) joined with nothing, where it does not overlap ``found``. The windows
    around the boundaries are scanned in one call, joined with newlines."""
    if len(texts) < 2:
        return []
    whole = "".join(texts)
    bounds = _offsets(texts)[1:]
    windows = _windows(bounds, len(whole))
    starts: list[int] = []  # where each window starts in the joined text
    at = 0
    for lo, hi in windows:
        starts.append(at)
        at += hi - lo + 1
    joined = "\n".join(whole[lo:hi] for lo, hi in windows)
    crossing: list[Hit] = []
    for f, rule in scan_folded(joined, rules):
        k = bisect_right(starts, f.start) - 1
        lo, hi = windows[k]
        if f.end > starts[k] + hi - lo:
            continue  # runs on into the next window
        start, end = f.start - starts[k] + lo, f.end - starts[k] + lo
        b = bisect_right(bounds, start)
        if b < len(bounds) and bounds[b] < end:
            crossing.append((Finding(start + base, end + base, f.category), rule))
    if not crossing:
        return []
    # Keep what overlaps neither ``found`` nor an earlier crossing finding.
    taken = merge_spans(found)
    taken_starts = [g.start for g, _ in taken]
    out: list[Hit] = []
    for f, rule in sorted(crossing, key=lambda h: (h[0].start, -h[0].end)):
        i = bisect_left(taken_starts, f.end) - 1
        if (i >= 0 and taken[i][0].end > f.start) or (out and out[-1][0].end > f.start):
            continue
        out.append((f, rule))
    return out


def _offsets(texts: Sequence[str]) -> list[int]:
    offsets: list[int] = []
    at = 0
    for text in texts:
        offsets.append(at)
        at += len(text)
    return offsets


def _windows(bounds: list[int], total: int) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for b in bounds:
        lo, hi = max(0, b - JOIN_WINDOW), min(total, b + JOIN_WINDOW)
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out


def merge_spans(hits: Sequence[Hit]) -> list[Hit]:
    """Overlapping spans joined into one (the earliest finding names it), so no part of
    either is left out."""
    merged: list[Hit] = []
    for f, rule in sorted(hits, key=lambda h: (h[0].start, -h[0].end)):
        if merged and f.start < merged[-1][0].end:
            g, first = merged[-1]
            if f.end > g.end:
                merged[-1] = (Finding(g.start, f.end, g.category), first)
            continue
        merged.append((f, rule))
    return merged


def render(
    texts: Sequence[str], spans: Sequence[Hit], placeholder: Callable[[Hit, str], str]
) -> list[str]:
    """``texts`` with each span replaced: the placeholder (``placeholder(hit, value)``
    for the whole value) where the span starts, nothing in the pieces it runs on into."""
    out = list(texts)
    if not spans:
        return out
    offsets = _offsets(texts)
    whole = "".join(texts) if len(texts) > 1 else texts[0]
    cuts: list[list[tuple[int, int, str]]] = [[] for _ in texts]
    for hit in spans:
        f = hit[0]
        first = True
        text_value = whole[f.start : f.end]
        for i in range(bisect_right(offsets, f.start) - 1, bisect_left(offsets, f.end)):
            text = texts[i]
            lo, hi = offsets[i], offsets[i] + len(text)
            if hi <= f.start or not text:
                continue
            sub = placeholder(hit, text_value) if first else ""
            cuts[i].append((max(f.start, lo) - lo, min(f.end, hi) - lo, sub))
            first = False
    for i, pieces in enumerate(cuts):
        if not pieces:
            continue
        text, parts, last = texts[i], [], 0
        for start, end, sub in pieces:
            parts.append(text[last:start])
            parts.append(sub)
            last = end
        parts.append(text[last:])
        out[i] = "".join(parts)
    return out
