"""Personal data found by rules: e-mail, phone, payment card, IBAN, US SSN and IP addresses.

Every detector is a precompiled candidate regex followed by a real validation (Luhn for
cards, ISO 13616 mod-97 for IBANs, ``phonenumbers`` for phones, ``ipaddress`` for IPs),
so the expensive step runs on a handful of candidates, never on every token. Postal
addresses and names live in :mod:`crossroads.guard.places`.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from .findings import Finding, RuleCheck, word_tail
from .places import address_spans, multiword_tail, name_spans

__all__ = ["PIIDetector", "iban_valid", "luhn_valid"]

# -- e-mail -----------------------------------------------------------------------------
_EMAIL = re.compile(
    r"(?<![\w.%+/-])[\w%+-][\w.%+-]{0,63}@(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+[^\W\d_]{2,24}(?![\w-])"
)

# -- payment cards -------------------------------------------------------------------------
#: Groups separated by spaces, hyphens or dots (``4111.1111.1111.1111``); one kind per
#: number, checked by ``_card_groups_ok``.
_CARD = re.compile(r"(?<![\d.-])\d(?:[ .-]?\d){11,18}(?!\d|[.,]\d)")
_SEPARATORS = re.compile(r"[ .-]")


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) checksum of a card number (ISO/IEC 7812-1)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _card_brand(d: str) -> bool:
    """True when the number has a real issuer prefix and length (Visa, Mastercard, Amex,
    Discover, JCB, Diners, UnionPay, Maestro)."""
    n = len(d)
    if d[0] == "4":
        return n in (13, 16, 19)
    if d[:2] in ("51", "52", "53", "54", "55") or 2221 <= int(d[:4]) <= 2720:
        return n == 16
    if d[:2] in ("34", "37"):
        return n == 15
    if d[:2] in ("36", "38", "39") or 300 <= int(d[:3]) <= 305:
        return 14 <= n <= 19
    if 3528 <= int(d[:4]) <= 3589:
        return 16 <= n <= 19
    if d[0] == "6" or d[:2] in ("50", "56", "57", "58"):
        return 12 <= n <= 19
    return False


def _card_groups_ok(raw: str) -> bool:
    groups = _SEPARATORS.split(raw)
    if len(groups) == 1:
        return True
    if len({c for c in raw if not c.isdigit()}) > 1:
        return False  # mixed separators: "4111-1111 1111-1111" is not how cards are written
    sizes = [len(g) for g in groups]
    if sizes[:2] == [4, 6]:  # Amex 4-6-5, Diners 4-6-4
        return len(sizes) == 3 and sizes[2] in (4, 5)
    return all(s == 4 for s in sizes[:-1]) and 1 <= sizes[-1] <= 4


# -- IBAN -----------------------------------------------------------------------------------
#: ISO 13616 lengths by country (SWIFT IBAN registry).
_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22,
    "BH": 22, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28,
    "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
    "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24,
    "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24,
    "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SC": 31,
    "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
    "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip
_IBAN_START = re.compile(r"(?<![A-Za-z0-9])([A-Za-z]{2})(\d{2})(?=[ -]?[A-Za-z0-9])")


def iban_valid(iban: str) -> bool:
    """ISO 13616 check: the right length for the country and ``mod 97 == 1``."""
    iban = iban.replace(" ", "").replace("-", "").upper()
    if _IBAN_LENGTHS.get(iban[:2]) != len(iban) or not iban.isalnum():
        return False
    moved = iban[4:] + iban[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def _iban_spans(text: str, pos: int = 0) -> Iterable[tuple[int, int]]:
    for m in _IBAN_START.finditer(text, pos, pos + 6):
        length = _IBAN_LENGTHS.get(m.group(1).upper())
        if length is None:
            continue
        need, i, n = length - 4, m.end(), len(text)
        body: list[str] = []
        while len(body) < need and i < n:
            c = text[i]
            if c.isascii() and c.isalnum():
                body.append(c)
                i += 1
            elif c in " -" and i + 1 < n and text[i + 1].isalnum():
                i += 1
            else:
                break
        if len(body) != need or (i < n and text[i].isalnum()):
            continue
        if iban_valid(m.group(1) + m.group(2) + "".join(body)):
            yield m.start(), i


# -- US social security numbers ---------------------------------------------------------------
_SSN = re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}([- ])(?!00)\d{2}\1(?!0000)\d{4}(?![\d-])")
_SSN_BARE = re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}(?!00)\d{2}(?!0000)\d{4}(?![\d-])")
_SSN_CONTEXT = re.compile(r"(?i)\b(?:ssn|social\s+security|soc\.?\s*sec)")

# -- IP addresses ------------------------------------------------------------------------------
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(rf"(?<![\d.])(?:{_OCTET}\.){{3}}{_OCTET}(?!\.?\d)")
_VERSIONISH = re.compile(r"(?i)(?:\bv|version|release|build|ver\.?)\s*$")

# -- phones ---------------------------------------------------------------------------------
_DATEISH = re.compile(
    r"^(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}|\d{1,2}:\d{2})$"
)
_PHONE_WORDS = (
    "phone", "tel", "call", "mobile", "cell", "fax", "whatsapp", "sms", "text me", "ring me",
    "reach me", "telefon", "handy", "rufnummer", "anruf", "téléphone", "telephone",
    "portable", "appel", "teléfono", "telefono", "móvil", "movil", "llamar", "llama",
    "cellulare", "chiama", "bel ", "mobiel", "telefoon", "telemóvel", "celular", "ligue",
    "contato",
)  # fmt: skip


@lru_cache(maxsize=1)
def _phonenumbers() -> Any:
    import phonenumbers

    return phonenumbers


@lru_cache(maxsize=4096)
def _phone_valid(raw: str, regions: tuple[str, ...]) -> bool:
    """``phonenumbers``' full validation (cached: the same numbers recur in a
    conversation and across requests)."""
    pn = _phonenumbers()
    candidate = "+" + raw[2:] if raw.startswith("00") else raw
    if candidate.startswith("+"):
        try:
            return bool(pn.is_valid_number(pn.parse(candidate, None)))
        except pn.NumberParseException:
            return False
    for region in regions:
        try:  # per region: one that cannot parse the number leaves the others to try
            if pn.is_valid_number(pn.parse(candidate, region)):
                return True
        except pn.NumberParseException:
            continue
    return False


def _check_regions(regions: tuple[str, ...], policy: str) -> None:
    """Raise ConfigError for a ``phone_regions`` entry that is not a region code (the
    same check as :class:`~crossroads.config.guardrails.PIICheck` at config load)."""
    from ..config.guardrails import phone_region_problem
    from ..errors import ConfigError

    for region in regions:
        problem = phone_region_problem(region)
        if problem is not None:
            raise ConfigError(f"guardrails policy {policy!r}: {problem}")


def _digits(s: str) -> int:
    return sum(c.isdigit() for c in s)


#: A run of digits and the separators numbers are written with; candidates start here.
_NUM_RUN = re.compile(r"[0-9][0-9 \-().\/]*")
_NANP = re.compile(r"^(?:\+?1[ .\-]?)?\(?[2-9]\d{2}\)?[ .\-]?\d{3}[ .\-]\d{4}$")
_TRUNK = re.compile(r"^\(?0\d{1,5}\)?[ .\-/]?\d")
_NINE = re.compile(r"^[3679]\d{2}([ .\-])\d{2,3}\1\d{2,3}(?:\1\d{2})?$")
#: Shapes that are something else: US SSN (3-2-4), Brazilian and Portuguese postcodes.
_NOT_PHONE = re.compile(r"^(?:\d{3}-\d{2}-\d{4}|\d{5}-\d{3}|\d{4}-\d{3})$")
#: Words right before a number that make it an identifier, not a phone number.
_ID_WORDS = (
    "order",
    "#",
    "no.",
    "nr",
    "nr.",
    "id",
    "ref",
    "invoice",
    "transaction",
    "ticket",
    "bestellung",
    "artikelnummer",
    "commande",
    "pedido",
    "ordine",
    "bestelling",
    "lote",
    "lot",
    "isbn",
    "ean",
    "sku",
    "item",
    "case",
    "dossier",
    "account",
)


#: ASCII text mapped character for character: digits to "0", the separators numbers are
#: written with to "-", everything else to " ". A run then starts with a literal "0",
#: which the regex engine finds with a fast substring search instead of a class scan.
_MASK = str.maketrans(
    {**{chr(c): " " for c in range(128)}, **dict.fromkeys("0123456789", "0"),
     **dict.fromkeys(" -().\\/", "-")}
)  # fmt: skip
_MASK_RUN = re.compile(r"0(?:[0-]*0)?")


def _digit_runs(text: str) -> list[tuple[int, int]]:
    """(start, end) of digit runs, widened to a leading ``+`` or ``(`` and trimmed of
    trailing separators."""
    runs = []
    if text.isascii():
        for m in _MASK_RUN.finditer(text.translate(_MASK)):
            start, end = m.span()
            while start and text[start - 1] in "+(":
                start -= 1
            runs.append((start, end))
        return runs
    for m in _NUM_RUN.finditer(text):
        start, end = m.span()
        while end > start and text[end - 1] in " -(./":
            end -= 1
        while start and text[start - 1] in "+(":
            start -= 1
        runs.append((start, end))
    return runs


class PIIDetector(RuleCheck):
    """Finds personal data of the configured ``types``; spans never overlap."""

    name = "pii"
    redactable = True

    def __init__(
        self,
        action: str,
        policy: str,
        *,
        types: Iterable[str],
        phone_regions: Iterable[str] = ("US", "GB", "DE", "FR"),
    ) -> None:
        super().__init__(action, policy)
        self.types = frozenset(types)
        self.regions = tuple(r.upper() for r in phone_regions)
        if "phone" in self.types:
            _check_regions(self.regions, policy)
        self._multiword = bool(self.types & {"address", "name", "phone", "card", "iban", "ssn"})

    def scan(self, text: str) -> list[Finding]:
        found: list[Finding] = []
        types = self.types

        def add(start: int, end: int, kind: str) -> None:
            if not any(start < f.end and f.start < end for f in found):
                found.append(Finding(start, end, kind))

        runs = _digit_runs(text) if any(d in text for d in "0123456789") else []
        numbers: list[tuple[int, int, int]] = []  # start, end, digit count
        for start, end in runs:
            run = text[start:end]
            n = _digits(run)
            numbers.append((start, end, n))
            if "iban" in types and start >= 2 and text[start - 2 : start].isalpha():
                for span in _iban_spans(text, start - 2):
                    add(*span, "iban")
            if n >= 12 and "card" in types:
                for span in _cards(text, start, end):
                    add(*span, "card")
            if n >= 9 and "ssn" in types:
                for span in _ssns(text, start, end):
                    add(*span, "ssn")
            if n >= 4 and "ip" in types and "." in text[start:end]:
                for span in _ipv4s(text, start, end):
                    add(*span, "ip")
        if "ip" in types and text.count(":") >= 2:
            for span in _ipv6s(text):
                add(*span, "ip")
        if "email" in types and "@" in text:
            for span in _emails(text):
                add(*span, "email")
        if "address" in types and runs:
            for span in address_spans(text, runs):
                add(*span, "address")
        if "phone" in types:
            for start, end, n in numbers:
                if n >= 6 and not any(start < f.end and f.start < end for f in found):
                    for span in self._phones(text, start, end):
                        add(*span, "phone")
        if "name" in types:
            for span in name_spans(text):
                add(*span, "name")
        found.sort(key=lambda f: f.start)
        return found

    def quiet(self, segment: str) -> bool:
        # Every type needs a digit, an "@" or a capitalised word, except an IPv6 address,
        # which can be all lower-case hex letters (``fdab::abcd:ef``): the same gate as scan.
        if "ip" in self.types and segment.count(":") >= 2:
            return False
        return (
            "@" not in segment
            and segment == segment.lower()
            and not any(d in segment for d in "0123456789")
        )

    def hold_from(self, text: str) -> int:
        cut = word_tail(text)
        if self._multiword:
            cut = min(cut, multiword_tail(text))
        return cut

    def explain(self, categories: list[str], stage: str) -> str:
        what = "input" if stage == "input" else "answer"
        kinds = ", ".join(sorted(set(categories)))
        return (
            f"the {what} contains personal data ({kinds}). Remove it, or ask the "
            "administrator for a policy that redacts it instead of blocking."
        )

    def _phones(self, text: str, start: int, end: int) -> Iterable[tuple[int, int]]:
        raw = text[start:end]
        if raw.count("(") != raw.count(")"):
            if raw.startswith("("):
                raw, start = raw[1:], start + 1
            raw = raw.split("(")[0].rstrip(" .-/")
            end = start + len(raw)
        n = _digits(raw)
        if (
            not 7 <= n <= 15
            or _DATEISH.match(raw)
            or _NOT_PHONE.match(raw)
            or (end < len(text) and text[end].isalnum())
        ):
            return
        before_word = text[max(0, start - 20) : start].split()
        if before_word and before_word[-1].lower().rstrip(":") in _ID_WORDS:
            return
        if not raw.startswith(("+", "00")):
            before = text[max(0, start - 40) : start].lower()
            if not any(w in before for w in _PHONE_WORDS) and not (
                _NANP.match(raw) or _TRUNK.match(raw) or _NINE.match(raw)
            ):
                return
        if _phone_valid(raw, self.regions):
            yield start, end


# -- finders over a digit run -------------------------------------------------------------------
def _cards(text: str, start: int, end: int) -> Iterable[tuple[int, int]]:
    for m in _CARD.finditer(text, start, end):
        raw = m.group()
        digits = _SEPARATORS.sub("", raw)
        if (
            13 <= len(digits) <= 19
            and _card_brand(digits)
            and _card_groups_ok(raw)
            and luhn_valid(digits)
        ):
            yield m.span()


def _ssns(text: str, start: int, end: int) -> Iterable[tuple[int, int]]:
    for m in _SSN.finditer(text, start, end):
        if m.group(1) == "-" or _SSN_CONTEXT.search(text, max(0, m.start() - 40), m.start()):
            yield m.span()
    for m in _SSN_BARE.finditer(text, start, end):
        if _SSN_CONTEXT.search(text, max(0, m.start() - 40), m.start()):
            yield m.span()


def _ipv4s(text: str, start: int, end: int) -> Iterable[tuple[int, int]]:
    for m in _IPV4.finditer(text, start, end):
        if m.group().startswith(("127.", "0.")) or _VERSIONISH.search(
            text, max(0, m.start() - 12), m.start()
        ):
            continue
        yield m.span()


_HEX = frozenset("0123456789abcdefABCDEF:.")


def _ipv6s(text: str) -> Iterable[tuple[int, int]]:
    """IPv6 addresses: grow a span of hex digits, colons and dots around each colon."""
    n, done = len(text), 0
    at = text.find(":")
    while at >= 0:
        if at >= done:
            start = at
            while start and text[start - 1] in _HEX and at - start < 40:
                start -= 1
            end = at + 1
            while end < n and text[end] in _HEX and end - start < 46:
                end += 1
            done = end
            candidate = text[start:end].rstrip(".")
            if candidate.count(":") >= 2 and not (
                (start and text[start - 1].isalnum()) or (end < n and text[end].isalnum())
            ):
                try:
                    address = ipaddress.IPv6Address(candidate)
                except ValueError:
                    address = None
                if address is not None and not (address.is_loopback or address.is_unspecified):
                    yield start, start + len(candidate)
        at = text.find(":", max(at + 1, done))


def _emails(text: str) -> Iterable[tuple[int, int]]:
    at = text.find("@")
    last_end = 0
    while at >= 0:
        lo = max(last_end, at - 64)
        for m in _EMAIL.finditer(text, lo, min(len(text), at + 256)):
            start = m.start()
            if start and text[start - 1] == ":" and "://" in text[word_tail(text[:start]) : start]:
                continue  # user:password@host inside a URL is a credential, not an address
            last_end = m.end()
            yield m.span()
            break
        at = text.find("@", max(at + 1, last_end))
