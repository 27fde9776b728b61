"""Text as a reader would decode it, with a map back to the characters as written.

Rules match on the folded text; what they find is redacted in the original, so the
upstream receives the client's text with only the found spans replaced:

* Unicode compatibility forms are folded (NFKC: full-width ``＠`` and digits, ligatures,
  no-break spaces), and invisible characters — format characters such as zero-width
  spaces and joiners, soft hyphens, bidi controls and tag characters, variation
  selectors, fillers — are dropped;
* percent-escapes (``%40``, also multi-byte UTF-8) and HTML character references
  (``&#64;``, ``&#x40;``, ``&commat;``) are decoded, then the result is folded again;
* runs that look like base64 and decode to text are kept as :attr:`Folded.blobs`: the
  decoded text is scanned on its own, and anything found there covers the whole run
  (a position inside the encoding cannot be redacted on its own).

:func:`fold` returns ``None`` — the common case, decided with a few C-speed string tests
and one regex search — for ASCII text without ``%``, ``&`` or a base64-looking run.
"""

from __future__ import annotations

import binascii
import html.entities
import re
import unicodedata
from dataclasses import dataclass, field

__all__ = ["Folded", "fold"]

#: Invisible characters that are not of category Cf (which :func:`_invisible` drops too):
#: combining grapheme joiner, Hangul fillers, braille blank, variation selectors.
_INVISIBLE = frozenset(
    "\u034f\u115f\u1160\u17b4\u17b5\u2800\u3164\uffa0"
    + "".join(map(chr, range(0xFE00, 0xFE10)))
    + "".join(map(chr, range(0xE0100, 0xE01F0)))
)
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
#: Percent runs and HTML references apart: one literal first character each keeps the
#: search fast.
_PERCENT_RUN = re.compile(r"%[0-9A-Fa-f]{2}(?:%[0-9A-Fa-f]{2})*")
_HTML_REF = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6}|[A-Za-z][A-Za-z0-9]{1,30});")
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
_MIN_DECODED = 6  # "a@b.co"
_URLSAFE = bytes.maketrans(b"-_", b"+/")
#: ASCII mapped to "b" (a base64 character, standard or URL-safe) or " ": runs of 12 or
#: more (long enough to hold an e-mail address) are found with ``str.find``.
_B64_MASK = str.maketrans(
    {**{chr(c): " " for c in range(128)},
     **dict.fromkeys("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-", "b")}
)  # fmt: skip
_B64_NEEDLE = "b" * 12

Edit = tuple[int, int, str]  # start, end, replacement


@dataclass(slots=True)
class Folded:
    """``text`` is what the rules read; ``starts[i]``/``ends[i]`` are the original
    span of its ``i``-th character (None: ``text`` is the original); ``blobs`` are
    (start, end, decoded text) of base64 runs in the original."""

    text: str
    starts: list[int] | None = None
    ends: list[int] | None = None
    blobs: list[tuple[int, int, str]] = field(default_factory=list)

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original span of ``text[start:end]`` (``end > start``)."""
        if self.starts is None or self.ends is None:
            return start, end
        return self.starts[start], self.ends[end - 1]


def _invisible(c: str) -> bool:
    return c in _INVISIBLE or unicodedata.category(c) == "Cf"


def _unicode_edits(text: str) -> list[Edit]:
    """NFKC per character and invisible characters dropped (non-ASCII runs only)."""
    edits: list[Edit] = []
    for m in _NON_ASCII.finditer(text):
        run = m.group()
        if unicodedata.is_normalized("NFKC", run) and not any(map(_invisible, run)):
            continue
        base = m.start()
        for k, c in enumerate(run):
            if _invisible(c):
                edits.append((base + k, base + k + 1, ""))
                continue
            n = unicodedata.normalize("NFKC", c)
            if n != c:
                edits.append((base + k, base + k + 1, "".join(x for x in n if not _invisible(x))))
    return edits


def _unescape(token: str) -> str | None:
    """The text of one percent run or HTML character reference, or None."""
    if token[0] == "%":
        raw = bytes(int(h, 16) for h in _PERCENT.findall(token))
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return None
    if token[1] == "#":
        digits = token[2:-1]
        code = int(digits[1:], 16) if digits[0] in "xX" else int(digits)
        if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF or code == 0:
            return None
        return chr(code)
    return html.entities.html5.get(token[1:])


def _escape_edits(text: str) -> list[Edit]:
    edits: list[Edit] = []
    matches = list(_PERCENT_RUN.finditer(text)) if "%" in text else []
    if "&" in text:
        matches += _HTML_REF.finditer(text)
        matches.sort(key=lambda m: m.start())
    for m in matches:
        decoded = _unescape(m.group())
        if decoded is None and m.group()[0] == "%":
            # Not UTF-8 as a whole: decode the ASCII escapes one by one.
            for p in _PERCENT.finditer(m.group()):
                if int(p.group(1), 16) < 0x80:
                    at = m.start() + p.start()
                    edits.append((at, at + 3, chr(int(p.group(1), 16))))
        elif decoded is not None:
            edits.append((m.start(), m.end(), decoded))
    return edits


def _apply(
    text: str, edits: list[Edit], starts: list[int] | None, ends: list[int] | None
) -> tuple[str, list[int], list[int]]:
    """``text`` with ``edits`` made, and the original span of each new character
    (``starts``/``ends`` map ``text`` itself back, or None when it is the original)."""
    out: list[str] = []
    new_starts: list[int] = []
    new_ends: list[int] = []
    last = 0
    for start, end, replacement in edits:
        if start > last:
            out.append(text[last:start])
            new_starts.extend(range(last, start) if starts is None else starts[last:start])
            new_ends.extend(range(last + 1, start + 1) if ends is None else ends[last:start])
        if replacement:
            first = start if starts is None else starts[start]
            final = end if ends is None else ends[end - 1]
            out.append(replacement)
            new_starts.extend([first] * len(replacement))
            new_ends.extend([final] * len(replacement))
        last = end
    if last < len(text):
        out.append(text[last:])
        new_starts.extend(range(last, len(text)) if starts is None else starts[last:])
        new_ends.extend(range(last + 1, len(text) + 1) if ends is None else ends[last:])
    return "".join(out), new_starts, new_ends


def _decoded_base64(run: str) -> str | None:
    """The text a base64 run encodes, or None (binary, or not base64 at all)."""
    body = run.rstrip("=")
    if len(body) % 4 == 1 or (body.isalpha() and (body[1:].islower() or body.isupper())):
        return None  # impossible length, or a plain (capitalised) word
    raw = body.encode("ascii")
    if b"-" in raw or b"_" in raw:
        raw = raw.translate(_URLSAFE)
    try:
        data = binascii.a2b_base64(raw + b"=" * (-len(raw) % 4))
        text = data.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    if len(text) < _MIN_DECODED or not text.replace("\n", " ").replace("\t", " ").isprintable():
        return None
    return text


def _b64_candidates(text: str) -> list[tuple[int, int]]:
    """Spans of the base64-looking runs of ``text`` (plain words left out)."""
    mask = text.translate(_B64_MASK)
    out: list[tuple[int, int]] = []
    at = mask.find(_B64_NEEDLE)
    while at >= 0:
        end = mask.find(" ", at + len(_B64_NEEDLE))
        end = len(text) if end < 0 else end
        end = min(end, _first_other(mask, at, end))
        body = text[at:end]
        if not (body.isalpha() and (body[1:].islower() or body.isupper())):
            while end < len(text) and text[end] == "=" and end - at < len(body) + 2:
                end += 1
            out.append((at, end))
        at = mask.find(_B64_NEEDLE, end)
    return out


def _first_other(mask: str, start: int, end: int) -> int:
    """End of the run of "b" from ``start`` (a non-ASCII character also ends it)."""
    run = mask[start:end]
    if run.count("b") == len(run):
        return end
    for k, c in enumerate(run):
        if c != "b":
            return start + k
    return end


def fold(text: str, *, base64: bool = True) -> Folded | None:
    """The folded view of ``text``, or None when it reads as written."""
    if text.isascii() and "%" not in text and "&" not in text:
        runs = _b64_candidates(text) if base64 else []
        if not runs:
            return None
    starts: list[int] | None = None
    ends: list[int] | None = None
    current = text
    if not text.isascii():
        edits = _unicode_edits(current)
        if edits:
            current, starts, ends = _apply(current, edits, starts, ends)
    if "%" in current or "&" in current:
        edits = _escape_edits(current)
        if edits:
            current, starts, ends = _apply(current, edits, starts, ends)
            if not current.isascii():
                again = _unicode_edits(current)
                if again:
                    current, starts, ends = _apply(current, again, starts, ends)
    blobs: list[tuple[int, int, str]] = []
    if base64:
        for s, e in _b64_candidates(current):
            decoded = _decoded_base64(current[s:e])
            if decoded is not None:
                blobs.append(
                    (
                        s if starts is None else starts[s],
                        e if ends is None else ends[e - 1],
                        decoded,
                    )
                )
    if starts is None and not blobs:
        return None
    return Folded(current, starts, ends, blobs)
