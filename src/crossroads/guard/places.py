"""Postal addresses and personal names, where a rule can find them.

Addresses: street patterns of English (US/UK), German, Dutch, French, Spanish, Italian
and Portuguese, with the house number and optional unit, postcode and city. Names: the
capitalised words after a cue (``my name is``, ``Mr.``, ``Dear``, ``je m'appelle``, a
sign-off line, a ``Name:`` label...). A bare name with no cue is not found: that needs
a statistical model, which this module deliberately is not.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .phrases import tokens_of

__all__ = ["address_spans", "multiword_tail", "name_spans"]


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_UP = "A-ZÀ-ÖØ-ÞĀĂĄĆČĎĐĒĘĚĞĪİŁŃŇŌŐŒŘŚŞŠŢŤŪŮŰŹŻŽ"
_LOW = "a-zß-öø-ÿāăąćčďđēęěğīıłńňōőœřśşšţťūůűźżž"
CAP = rf"[{_UP}][\w'’\-]*\.?"
#: A city or town: capitalised letters only (no digits, no trailing period).
CITY = rf"[{_UP}][{_LOW}]+(?:[-'’][{_UP}]?[{_LOW}]+)*"
_TAIL_UNIT = r"(?:,?\s+(?:Apt|Apartment|Suite|Ste|Unit|Flat|Fl|Floor|Room|#)\.?\s*#?[\w-]+)?"
_NOT_COUNT = (
    r"(?!\s*(?:times|x\b|%|km|mi\b|h\b|hours|days|minutes|volte|mal\b|fois|veces|vezes|keer))"
)

_EN_SUFFIX = (
    r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|"
    r"Pl|Terrace|Close|Crescent|Gardens|Square|Sq|Parkway|Pkwy|Highway|Hwy|Circle|Row|"
    r"Mews|Grove|Walk|Loop|Trail|Alley|Plaza|Pike|Quay|Wharf|Crossing|Run)"
)
_ADDRESSES: list[tuple[tuple[str, ...], re.Pattern[str]]] = [  # index 0 and 2 start with the number
    # English: 221B Baker Street, London NW1 6XE / 1600 Pennsylvania Ave NW, Washington, DC 20500
    (
        (),
        re.compile(
            rf"(?<![\w.,-])\d{{1,5}}[A-Za-z]?(?:[-/]\d{{1,5}})?,?\s+(?:(?:[NSEW]|North|South|East|West)\.?\s+)?"
            rf"(?:{CAP}\s+){{0,3}}{_EN_SUFFIX}\b\.?(?:\s+(?:NW|NE|SW|SE|N|S|E|W)\b)?{_TAIL_UNIT}"
            rf"(?:,\s*{CITY}(?:[ \t]{CITY}){{0,2}})?"
            r"(?:,?\s*(?:[A-Z]{2}\s+\d{5}(?:-\d{4})?|[A-Z]{1,2}\d[A-Z\d]?\s?\d[A-Z]{2})\b)?"
        ),
    ),
    # German / Dutch: Hauptstraße 5, 10115 Berlin / Keizersgracht 123, 1015 CJ Amsterdam
    (
        (
            "str",
            "weg",
            "gasse",
            "platz",
            "allee",
            "ring",
            "damm",
            "ufer",
            "laan",
            "plein",
            "gracht",
            "kade",
            "singel",
            "dijk",
            "chaussee",
            "markt",
        ),
        re.compile(
            rf"(?<![\w-])(?:{CAP}\s+)?[{_UP}][\w\-]*?(?i:straße|strasse|str\.|weg|gasse|platz|allee|ring|"
            r"damm|ufer|chaussee|pfad|straat|laan|plein|gracht|kade|singel|dijk|dreef|markt)"
            rf"\s+\d{{1,4}}(?:\s?[a-zA-Z]\b)?(?:-\d{{1,4}})?{_NOT_COUNT}"
            rf"(?:,?\s*(?:D-|A-|CH-)?\d{{4,5}}(?:\s?[A-Z]{{2}})?\s+{CITY}(?:\s+{CITY})?)?"
        ),
    ),
    # French: 12 bis rue de la Paix, 75002 Paris
    (
        (
            "rue",
            "av",
            "bd",
            "boulevard",
            "place",
            "allée",
            "allee",
            "impasse",
            "chemin",
            "quai",
            "route",
            "cours",
            "passage",
            "square",
        ),
        re.compile(
            r"(?<![\w.,-])\d{1,4}(?:\s?(?:bis|ter))?,?\s+(?i:rue|avenue|av\.|boulevard|bd|place|"
            r"allée|allee|impasse|chemin|quai|route|cours|passage|square)\s+"
            rf"(?:(?:de|du|des|la|le|l'|l’|d'|d’|aux?)\s*)*{CAP}"
            rf"(?:[ \t-]+(?:(?:de|du|des|la|le|l'|l’|d'|d’|et|aux?)\s*)*{CAP}){{0,4}}"
            rf"(?:,?\s*\d{{5}}\s+{CITY}(?:[ \t-]+{CITY}){{0,2}})?"
        ),
    ),
    # Spanish / Catalan: Calle de Alcalá 42, 3º B, 28014 Madrid
    (
        (
            "calle",
            "c/",
            "avenida",
            "avda",
            "av.",
            "plaza",
            "pza",
            "paseo",
            "camino",
            "carrer",
            "ronda",
            "travesía",
            "glorieta",
        ),
        re.compile(
            r"(?<![\w-])(?i:calle|c/|avenida|avda\.|av\.|plaza|pza\.|paseo|camino|carrer|ronda|"
            r"travesía|glorieta)\s*(?:(?:de|del|la|las|los|el|d')\s+)*"
            rf"{CAP}(?:[ \t]+(?:(?:de|del|la|las|los|y|i)\s+)*{CAP}){{0,4}},?\s*(?:n[º°o]\.?\s*)?"
            rf"\d{{1,4}}{_NOT_COUNT}(?:,?\s*\d{{1,2}}\s?[º°ª]\s?[A-Z]?\b)?"
            rf"(?:,?\s*\d{{5}}\s+{CITY}(?:\s+{CITY}){{0,2}})?"
        ),
    ),
    # Italian: Via Giuseppe Garibaldi 7, 20121 Milano (MI)
    (
        ("via", "viale", "piazza", "corso", "vicolo", "largo", "lungomare", "strada", "contrada"),
        re.compile(
            r"(?<![\w-])(?i:via|viale|piazza|piazzale|corso|vicolo|largo|lungomare|strada|"
            r"contrada)\s+(?:(?:di|del|della|dei|degli|delle|da|dal|dello)\s+)*"
            rf"{CAP}(?:[ \t]+(?:(?:di|del|della|dei|degli|delle|e)\s+)*{CAP}){{0,4}},?\s*"
            rf"(?:n\.?\s*)?\d{{1,4}}(?:/?[a-zA-Z]\b)?{_NOT_COUNT}"
            rf"(?:,?\s*\d{{5}}\s+{CITY}(?:\s+{CITY}){{0,2}}(?:\s*\([A-Z]{{2}}\))?)?"
        ),
    ),
    # Portuguese: Rua Augusta 274, 1100-053 Lisboa / Av. Paulista, 1578, 01310-200 São Paulo
    (
        (
            "rua",
            "r.",
            "avenida",
            "av.",
            "travessa",
            "praça",
            "praca",
            "largo",
            "alameda",
            "estrada",
            "rodovia",
        ),
        re.compile(
            r"(?<![\w-])(?i:rua|r\.|avenida|av\.|travessa|praça|praca|largo|alameda|estrada|"
            r"rodovia)\s+(?:(?:da|de|do|das|dos)\s+)*"
            rf"{CAP}(?:[ \t]+(?:(?:da|de|do|das|dos|e)\s+)*{CAP}){{0,4}},?\s*(?:n[º°o]\.?\s*)?"
            rf"\d{{1,5}}{_NOT_COUNT}"
            rf"(?:,?\s*(?:\d{{4}}-\d{{3}}|\d{{5}}-\d{{3}})(?:\s+{CITY}(?:\s+{CITY}){{0,2}})?)?"
        ),
    ),
]


_EN, _DE_NL, _FR, _ES, _IT, _PT = (p for _, p in _ADDRESSES)
_EN_SUFFIXES = _words(
    "street st avenue ave road rd boulevard blvd lane ln drive dr court ct way place pl "
    "terrace close crescent gardens square sq parkway pkwy highway hwy circle row mews "
    "grove walk loop trail alley plaza pike quay wharf crossing run"
)
_FR_WORDS = _words(
    "rue avenue av. boulevard bd place allée allee impasse chemin quai route cours passage square"
)
_DE_NL_ENDINGS = (
    "straße", "strasse", "str.", "weg", "gasse", "platz", "allee", "ring", "damm", "ufer",
    "chaussee", "pfad", "straat", "laan", "plein", "gracht", "kade", "singel", "dijk",
    "dreef", "markt",
)  # fmt: skip
#: Street words that come before the name (Spanish, Italian, Portuguese), by pattern.
# As tokens_of() spells them: "c/" gives "c", "av." gives "av".
_ES_WORDS = "calle c avenida avda av plaza pza paseo camino carrer ronda travesía glorieta"
_IT_WORDS = "via viale piazza piazzale corso vicolo largo lungomare strada contrada"
_PT_WORDS = "rua r avenida av travessa praça praca largo alameda estrada rodovia"
_KEYWORD_FIRST = tuple(
    (pattern, frozenset(words.split()))
    for pattern, words in ((_ES, _ES_WORDS), (_IT, _IT_WORDS), (_PT, _PT_WORDS))
)
_NUMBER_SIGNS = frozenset({"n", "nº", "n°", "no", "n.", "no."})


_FR_INITIALS = frozenset("rabpicqst")


def _number_first(text: str, end: int) -> tuple[re.Pattern[str], ...]:
    """The number-first patterns worth trying for a house number ending at ``end``: a
    street suffix among the next words (English), or a French street word right after."""
    i = end + (end < len(text) and text[end].isalpha())  # 221B
    i += i < len(text) and text[i] == ","
    nxt = text[i + 1 : i + 2]
    if text[i : i + 1] != " " or not nxt or not (nxt.isupper() or nxt in _FR_INITIALS):
        return ()  # the usual case: "41 of 60", "12.4%", "2024."
    after = text[end : end + 64].split(None, 6)
    if not after:
        return ()
    first = after[0].lower()
    if first.isalpha() and len(first) == 1 and len(after) > 1:  # 221 B Baker Street
        after = after[1:]
        first = after[0].lower()
    if first in ("bis", "ter") and len(after) > 1:
        first = after[1].lower()
    out: tuple[re.Pattern[str], ...] = ()
    if first.rstrip(",") in _FR_WORDS:
        out = (_FR,)
    if (after[0][:1].isupper() or after[0][:1].isdigit() or len(after[0]) <= 2) and any(
        w.rstrip(".,").lower() in _EN_SUFFIXES for w in after[:5]
    ):
        out += (_EN,)
    return out


def address_spans(text: str, runs: Iterable[tuple[int, int]]) -> Iterable[tuple[int, int]]:
    """Spans of postal addresses. Every pattern contains a number, so only the digit runs
    are looked at, each with a cheap test of its neighbouring words first: a number-first
    pattern is tried anchored at the run, a name-first one in a window before it."""
    seen: set[tuple[int, int]] = set()
    covered = 0
    words: set[str] | None = None

    def emit(m: re.Match[str]) -> tuple[int, int] | None:
        end = m.end()
        while end > m.start() and text[end - 1] in " \t,":
            end -= 1
        span = (m.start(), end)
        if span in seen:
            return None
        seen.add(span)
        return span

    for start, end in runs:
        while text[start] in "+(":
            start += 1
        if start < covered or end - start > 12:
            continue
        for pattern in _number_first(text, end):
            m = pattern.match(text, start)
            if m and (span := emit(m)):
                covered = span[1]
                yield span
                break
        if start < covered:
            continue
        before = text[max(0, start - 40) : start].rsplit(None, 1)
        prev = before[-1] if before else ""
        if (
            not prev
            or prev.endswith(":")
            or not (prev[0].isupper() or prev.lower() in _NUMBER_SIGNS)
        ):
            continue
        candidates = []
        if prev.lower().rstrip(",").endswith(_DE_NL_ENDINGS):
            candidates.append(_DE_NL)
        if words is None:
            words = set(tokens_of(text.lower()))
        candidates += [p for p, keys in _KEYWORD_FIRST if not keys.isdisjoint(words)]
        lo, hi = max(0, start - 90), min(len(text), end + 80)
        # The longest match wins: "Av. Augusta, 211, 01310-200 São Paulo" is Spanish up
        # to the house number and Portuguese up to the city.
        best: re.Match[str] | None = None
        for pattern in candidates:
            for m in pattern.finditer(text, lo, hi):
                if m.start() <= start < m.end() and (
                    best is None or m.end() - m.start() > best.end() - best.start()
                ):
                    best = m
        if best is not None and (span := emit(best)):
            covered = span[1]
            yield span


# -- names -------------------------------------------------------------------------------
_NW = rf"(?:[{_UP}]['’])?[{_UP}][{_LOW}]+(?:[-'’][{_UP}]?[{_LOW}]+)*"
_PARTICLE = r"(?:van|von|de|der|den|da|di|del|della|du|dos|das|le|la|ter|ten|y|bin|al|zu)"
_NAME = rf"{_NW}(?:[ \t]+(?:{_PARTICLE}[ \t]+)*{_NW}){{0,3}}"

#: Capitalised words that follow a cue but are not names.
_NOT_NAMES = _words(
    "Sir Sirs Madam Madame Monsieur Customer Customers Team All Everyone World There "
    "Friends Friend Colleagues Colleague Folks Guys Support Hiring Manager Client Clients "
    "Kunde Kunden Kollegen Kolleginnen Damen Herren Señores Señoras Signori Tutti Todos "
    "Todas Allemaal Iedereen User Users Assistant Bot Not Very Just Also So The A An In "
    "On At From And Or But Thank Thanks Please Sorry Happy Here Glad Good Morning "
    "Afternoon Evening Night Again Back Ready Done Fine Well Okay Ok Yes No Bonjour Hello "
    "Hi Hey Dear Mister Missus Doctor Professor Mesdames Messieurs Mes Chers Amigos "
    "Amigas Colegas Collega Colleghi Tous Toutes Bienvenue Welcome Anonymous Unknown "
    "Redacted Name"
)
#: Intensifiers that make "I am Very Happy" look like a first and last name.
_INTENSIFIERS = [
    "Sehr", "Très", "Muy", "Molto", "Heel", "Muito", "Really", "Quite", "Totally", "Bien",
    "Tan", "Così", "Erg", "Zeer", "Tão", "Super", "Ganz", "Completely", "Absolutely",
    "Extremely", "Incredibly", "Too", "Always", "Still", "Now", "Currently",
]  # fmt: skip
_NOT_NAMES |= frozenset(_INTENSIFIERS)


_NAME_AT = re.compile(_NAME)
_CUE_ENDINGS = tuple(
    """my name is|his name is|her name is|their name is|our name is|my name's|call me|i am called|
    mein name ist|sein name ist|ihr name ist|ich heiße|ich heisse|je m'appelle|mon nom est|
    son nom est|il s'appelle|elle s'appelle|me llamo|se llama|mi nombre es|su nombre es|
    mi chiamo|si chiama|il mio nome è|mijn naam is|ik heet|hij heet|zij heet|meu nome é|
    me chamo|chamo-me|se chama|hier spricht|u spreekt met|aqui fala""".replace("\n", "")
    .replace("    ", "")
    .split("|")
)
_PAIR_ENDINGS = (
    "i am", "i'm", "this is", "ich bin", "hier ist", "je suis", "c'est", "soy", "sono",
    "ik ben", "sou", "aqui é",
)  # fmt: skip
_TITLES = _words(
    "mr mrs ms miss mx dr prof herr frau mme mlle monsieur madame sr sra srta señor "
    "señora don doña sig sig.ra signor signora dott dott.ssa dhr mevr meneer mevrouw sir "
    "lady dame m"
)
_GREETINGS = _words(
    "dear hi hello hey liebe lieber hallo geehrte geehrter chère cher bonjour hola "
    "querido querida estimado estimada ciao caro cara gentile beste hoi olá prezado "
    "prezada"
)
_SIGNOFFS = frozenset(
    """regards|best|cheers|thanks|thank you|sincerely|best wishes|kind regards|warm regards|
    yours truly|mit freundlichen grüßen|viele grüße|liebe grüße|beste grüße|cordialement|
    bien à vous|amicalement|saludos|atentamente|un saludo|cordiali saluti|distinti saluti|
    saluti|met vriendelijke groet|met vriendelijke groeten|groeten|atenciosamente|
    cumprimentos|abraços|obrigado|obrigada""".replace("\n", "")
    .replace("    ", "")
    .split("|")
)
_SIGNOFF_ENDINGS = tuple(_SIGNOFFS)
_CUE_LAST_WORDS = (
    _TITLES | _GREETINGS | frozenset(e.split()[-1] for e in (*_CUE_ENDINGS, *_PAIR_ENDINGS))
)
_LABEL_TAIL = re.compile(r"[^\W\d_]+(?: [^\W\d_]+)?\s*$")
_LABEL_SET = frozenset(
    """name|full name|first name|last name|surname|nombre|nombre completo|apellido|apellidos|
    nom|nom complet|prénom|nome|nome completo|cognome|naam|achternaam|voornaam|vorname|
    nachname|patient|customer|client|kunde|cliente|klant|contact person|ansprechpartner|
    signed|signature|unterschrift|firma|assinatura|titular|holder|account holder|cardholder|
    kontoinhaber""".replace("\n", "")
    .replace("    ", "")
    .split("|")
)


def _cue_kind(text: str, pos: int) -> str | None:
    """Which cue, if any, ends just before the capitalised word at ``pos``."""
    j = pos
    while j and text[j - 1] in " \t":
        j -= 1
    if not j or (j == pos and text[j - 1] != "\n"):
        return None
    if text[j - 1] not in ":\n":  # the common case: test the previous word alone first
        words = text[max(0, j - 24) : j].rsplit(None, 1)
        if not words or words[-1].lower().rstrip(",.!").replace("’", "'") not in _CUE_LAST_WORDS:
            return None
    before = text[max(0, j - 40) : j].lower().replace("’", "'")
    last = before[-1]
    if last == "\n":
        line = before[:-1].rstrip("\r").rsplit("\n", 1)[-1].strip().rstrip(",!.")
        return "signoff" if line.endswith(_SIGNOFF_ENDINGS) else None
    if last == ":":
        label = _LABEL_TAIL.search(before[:-1])
        return "label" if label and label.group().strip() in _LABEL_SET else None
    word = before.rsplit(None, 1)[-1].rstrip(",.!")
    if word in _TITLES:
        return "title"
    if word in _GREETINGS:
        return "greeting"
    if before.endswith(_CUE_ENDINGS):
        return "cue"
    if before.endswith(_PAIR_ENDINGS):
        return "pair"
    return None


def _candidates(text: str) -> list[int]:
    """Starts of capitalised words right after a cue word, a colon or a line break: the
    cue words present are found with one tokenisation (shared with the other checks)."""
    lowered = text.lower()
    padded = " " + lowered.replace("’", "'")  # a cue word may open the text
    out: set[int] = set()
    n = len(text)
    cues = _CUE_LAST_WORDS.intersection(tokens_of(lowered))
    for anchor in [*(f" {w}" for w in cues), ":", "\n"]:
        at = padded.find(anchor)
        while at >= 0:
            pos = at + len(anchor) - 1  # index in text just after the anchor
            if anchor[0] != " " or pos >= n or not lowered[pos].isalnum():
                while pos < n and text[pos] in " \t.,!":
                    pos += 1
                if pos < n and text[pos].isupper():
                    out.add(pos)
            at = padded.find(anchor, at + 1)
    return sorted(out)


def name_spans(text: str) -> Iterable[tuple[int, int]]:
    """Spans of names that follow a cue; trailing non-name words are trimmed off."""
    done = 0
    for pos in _candidates(text):
        if pos < done or (pos and text[pos - 1] not in " \t\n"):
            continue
        kind = _cue_kind(text, pos)
        if kind is None:
            continue
        m = _NAME_AT.match(text, pos)
        if m is None:
            continue
        words = [(w.start() + pos, w.end() + pos) for w in _WORD.finditer(m.group())]
        while words and text[words[-1][0] : words[-1][1]] in _NOT_NAMES:
            words.pop()
        while words and text[words[0][0] : words[0][1]] in _NOT_NAMES:
            words.pop(0)
        if not words or (kind == "pair" and len(words) < 2):
            continue
        if kind == "signoff" and text[words[-1][1] :].lstrip(" \t\r")[:1] not in ("", "\n"):
            continue
        done = words[-1][1]
        yield words[0][0], words[-1][1]


_WORD = re.compile(r"\S+")


# -- streaming hold-back ---------------------------------------------------------------------
_CONNECTORS = _words(
    "de du des la le l' d' del della dei degli delle di da dal do dos das van von der den "
    "ter ten y e et i zu bis ter rue via calle c/ avenida avenue av. rua viale corso "
    "piazza chemin route place quai allée impasse boulevard bd n nº n° no. apt suite unit "
    "and"
)
_WS = " \t\n\r\u00a0"
_MAX_RUN = 256


def _addressish(token: str) -> bool:
    if not token:
        return False
    first = token[0]
    if first.isupper() or first.isdigit() or first in "+(#":
        return True
    return token.lower().rstrip(",.") in _CONNECTORS or any(c.isdigit() for c in token)


def multiword_tail(text: str) -> int:
    """Start of the trailing run of words that could still become an address, a name or
    a spaced number (capitalised words, numbers, connectors such as ``de la``)."""
    floor = max(0, len(text) - _MAX_RUN)
    j = len(text)
    while j > floor and text[j - 1] in _WS:
        j -= 1
    cut = len(text)
    while j > floor:
        k = j
        while k > floor and text[k - 1] not in _WS:
            k -= 1
        if not _addressish(text[k:j]):
            break
        cut = k
        j = k
        while j > floor and text[j - 1] in _WS:
            j -= 1
    return cut
