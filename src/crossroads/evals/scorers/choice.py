"""Multiple choice without logprobs: find the option a free-text answer chose.

:func:`extract_choice` reads the answer in these steps; the first step that finds a
valid option letter wins (letters outside the item's options are ignored):

1. **Bare letter** – the whole answer is one letter, optionally bracketed, bold or
   followed by punctuation: ``B``, ``(b)``, ``B.``, ``B)``, ``**B**``, ``[C]``.
2. **JSON** – an object with an ``answer``/``choice``/``option``/``letter`` key:
   ``{"answer": "B"}``; its value is read again with these rules (a letter or an
   option's text).
3. **Final-answer markers**, last occurrence: ``Final answer: D``, ``\\boxed{D}``,
   ``respuesta final``, ``最终答案``.
4. **Answer markers**, last occurrence: ``Answer: B``, ``The correct answer is (C)``,
   ``the best option is B``, ``Respuesta: B``, ``La réponse est D``, ``Die Antwort ist
   C``, ``答案是B``, ``正解はA``. So ``Answer: C\\nExplanation: A is wrong`` is C.
5. **Leading letter** – the answer starts with a letter and a delimiter or a word:
   ``b) Paris``, ``C. Because…``, ``(B) Paris``, ``B and not A``, ``C because…``.
6. **Choice phrases**, first occurrence: ``I think it's C``, ``I'd go with B``,
   ``Option B``, ``my choice is D``.
7. **Option text** (when the options are known): the answer is, or mentions exactly
   one, option's text (``Paris``; a longer option text wins over one it contains).
8. **Lone letter** – exactly one distinct option letter appears as a token anywhere
   (``(B)``, ``B)`` or a bare capital); two or more (``Both A and B are plausible``,
   ``A or C``) is ambiguous: no choice.

Throughout, the word "a" and the pronoun "I" followed by a word are not letters ("It
is a city", "I think"), a capital ``A`` followed by a word is only a letter before
words such as "and", "or", "is" ("A good answer is B" chooses B), and a letter that
is negated (``not A``, ``rather than A``, ``A is wrong``) is skipped. No choice found
(``I don't know``, ambiguous answers) returns ``None``: the scorer counts it as a
format error, apart from wrong answers.
"""

from __future__ import annotations

import json
import re
import string
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ...errors import ConfigError
from ..scoring import Answer, Score, Scorer, ScorerParams, ScoringContext
from .text import normalize_answer

__all__ = ["MultipleChoice", "MultipleChoiceParams", "extract_choice", "normalize_choices"]

ALPHABET = string.ascii_uppercase
_WORD = r"[^\W\d_]"
_TAIL = r"(?![A-Za-z0-9'])"
_SEP = r"[\s:：=\-–—>(\[{\"'«»“”‘’]*"
_LATIN_FILL = (
    r"is|are|was|be|would|should|will|must|probably|likely|definitely|clearly|certainly|"
    r"therefore|thus|so|then|the|option|choice|letter|answer|correct|right|best|it's|it|"
    r"that|with|for|say|es|est|ist|è|é|era|sería|serait|wäre|sarebbe|seria|la|le|el|il|"
    r"die|der|das|correcta|correcto|correcte|richtige|richtig|corretta|corretto|correta|"
    r"correto|bonne|buena|opción|opcion|opzione|opção|alternativa|lettre|letra|buchstabe"
)
_CJK_FILL = r"是|为|為|は|が|는|은|이|가|选|選"
_FILL = rf"(?:{_SEP}(?:(?:{_LATIN_FILL})(?!{_WORD})|{_CJK_FILL}))*"
_LETTER = rf"{_SEP}(?P<l>[A-Za-z]){_TAIL}"


def _markers(latin: str, cjk: str = "") -> re.Pattern[str]:
    heads = rf"(?<!{_WORD})(?:{latin})(?!{_WORD})" + (f"|{cjk}" if cjk else "")
    return re.compile(rf"(?:{heads}){_FILL}{_LETTER}", re.IGNORECASE)


_FINAL = _markers(
    r"final\s+(?:answer|choice)|answer\s+final|respuesta\s+final|réponse\s+finale|"
    r"reponse\s+finale|risposta\s+finale|resposta\s+final|endgültige\s+antwort|"
    r"finale\s+antwort",
    r"最终答案|最終答案|\\boxed\{",
)
_ANSWER = _markers(
    r"answer|respuesta|réponse|reponse|antwort|risposta|resposta|antwoord|odpowiedź|"
    r"odpowiedz|ответ|svar|svaret|vastaus|cevap|yanıt|jawaban|jawapan|đáp án|"
    r"(?:correct|best|right)\s+(?:option|choice)|la\s+(?:bonne|buena)",
    r"答案|回答|正解|정답|उत्तर|الإجابة|الجواب|תשובה|απάντηση",
)
_PHRASE = _markers(
    r"i\s+(?:think|believe|guess|choose|pick|select|chose|picked|selected|go\s+with|"
    r"opt\s+for)|i(?:'d|\s+would)\s+(?:say|go\s+with|pick|choose|select)|"
    r"(?:it|that)(?:'s|\s+is|\s+must\s+be|\s+should\s+be|\s+would\s+be)|option|choice|"
    r"opción|opcion|opzione|opção|alternativa|my\s+(?:choice|pick|guess|selection)|"
    r"going\s+with"
)
_BARE = re.compile(r"[(\[{\"'«“]*\s*(?P<l>[A-Za-z])\s*[)\]}\"'»”]*\s*[.:!?,;。]*")
_CONNECTORS = frozenset(
    "and or nor is are was seems looks because since as but which would should it".split()  # noqa: SIM905
)
_NEG_BEFORE = re.compile(
    r"(?:\bnot|n't|\bnever|\brather\s+than|\binstead\s+of|\bexcept|\bexcluding|\beliminate|"
    r"\brule\s+out|\bover|\bthan|\bno)\s+(?:option|choice|answer)?\s*[(\[]?\s*$",
    re.IGNORECASE,
)
_NEG_AFTER = re.compile(
    r"[)\].:]?\s*(?:is|are|was|seems|would\s+be)\s+(?:wrong|incorrect|false|not|n't|"
    r"unlikely|a\s+distractor)",
    re.IGNORECASE,
)
_TOKENS = re.compile(
    r"[(\[]\s*(?P<b>[A-Za-z])\s*[)\]]|(?<![A-Za-z0-9'])(?P<p>[A-Za-z])\)|"
    r"(?<![A-Za-z0-9'])(?P<u>[A-Z])(?![A-Za-z0-9'])"
)
_JSON_KEYS = ("final_answer", "answer", "choice", "option", "letter", "selection")


def _clean(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).translate({0x2019: "'", 0x2018: "'"})
    text = re.sub(r"\\(?:text|textbf|mathrm|mathbf)\{([^{}]*)\}", r"\1", text)
    text = re.sub(r"[*_`]+", "", text)
    return re.sub(r"(?m)^#+\s*", "", text).strip()


def _word_after(text: str, end: int) -> str | None:
    """The lowercase word that follows position ``end`` on the same line, if any."""
    m = re.match(r"[ \t]+([a-z][\w']*)", text[end:])
    return m.group(1) if m else None


def _usable(text: str, start: int, end: int, valid: str) -> str | None:
    """The option letter ``text[start:end]`` stands for, unless it is a word or negated."""
    letter = text[start:end]
    if letter.upper() not in valid:
        return None
    word = _word_after(text, end)
    if word is not None and (
        (letter == "a" and word not in _CONNECTORS)
        or letter in "Ii"
        or (letter == "A" and word not in _CONNECTORS)
    ):
        return None
    if _NEG_BEFORE.search(text[max(0, start - 30) : start]) or _NEG_AFTER.match(text, end):
        return None
    return letter.upper()


def _marked(pattern: re.Pattern[str], text: str, valid: str, last: bool) -> str | None:
    found = [got for m in pattern.finditer(text) if (got := _usable(text, *m.span("l"), valid))]
    return (found[-1] if last else found[0]) if found else None


def _leading(text: str, valid: str) -> str | None:
    m = re.match(rf"[(\[]?\s*(?P<l>[A-Za-z]){_TAIL}", text)
    if not m:
        return None
    rest = text[m.end() :]
    if re.match(r"\s*(?:[)\].:\-–—,;!?]|$)", rest):
        letter = m["l"].upper()
        return letter if letter in valid and not _NEG_AFTER.match(text, m.end()) else None
    return _usable(text, *m.span("l"), valid)


def _by_text(text: str, choices: Mapping[str, str]) -> str | None:
    said = normalize_answer(text)
    options = {k: normalize_answer(v) for k, v in choices.items() if normalize_answer(v)}
    for letter, option in options.items():
        if option == said:
            return letter
    hits = {
        letter
        for letter, option in options.items()
        for m in re.finditer(rf"(?<!\w){re.escape(option)}(?!\w)", said)
        if not _NEG_BEFORE.search(said[max(0, m.start() - 30) : m.start()])
    }
    hits = {
        h
        for h in hits
        if not any(
            o != h and re.search(rf"(?<!\w){re.escape(options[h])}(?!\w)", options[o]) for o in hits
        )
    }
    return hits.pop() if len(hits) == 1 else None


def _lone(text: str, valid: str) -> str | None:
    found: set[str] = set()
    for m in _TOKENS.finditer(text):
        group = next(g for g in ("b", "p", "u") if m[g])
        start, end = m.span(group)
        if group == "u":
            got = _usable(text, start, end, valid)
        else:
            neg = _NEG_BEFORE.search(text[max(0, m.start() - 30) : m.start()])
            ok = m[group].upper() in valid and not neg and not _NEG_AFTER.match(text, m.end())
            got = m[group].upper() if ok else None
        if got and not (group == "u" and got == "I"):
            found.add(got)
    return found.pop() if len(found) == 1 else None


def _from_json(text: str, valid: str, choices: Mapping[str, str] | None) -> str | None:
    m = re.search(r"\{.*\}", text, re.DOTALL)
    if not m:
        return None
    try:
        data = json.loads(m.group(0))
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    keys = {str(k).lower(): v for k, v in data.items()}
    for key in _JSON_KEYS:
        value = keys.get(key)
        if isinstance(value, str) and value.strip() and "{" not in value:
            return extract_choice(value, valid, choices)
    return None


def normalize_choices(choices: Mapping[str, Any] | Sequence[Any] | None) -> dict[str, str] | None:
    """Options as ``{letter: text}``, from a list (A, B, … in order) or a mapping."""
    if choices is None:
        return None
    if isinstance(choices, Mapping):
        return {str(k).strip().upper(): str(v) for k, v in choices.items()}
    if isinstance(choices, str):
        raise TypeError("choices must be a list or a mapping, not a string")
    return {ALPHABET[i]: str(v) for i, v in enumerate(choices)}


def extract_choice(
    text: str,
    letters: str | Sequence[str] = "ABCD",
    choices: Mapping[str, Any] | Sequence[Any] | None = None,
) -> str | None:
    """The option letter (uppercase) a free-text answer chose, or None (see module doc)."""
    options = normalize_choices(choices)
    valid = "".join(str(x).upper() for x in letters) or "".join(options or ())
    text = _clean(text)
    if not text:
        return None
    bare = _BARE.fullmatch(text)
    if bare:
        return bare["l"].upper() if bare["l"].upper() in valid else None
    steps: list[Callable[[], str | None]] = [
        lambda: _from_json(text, valid, options) if "{" in text else None,
        lambda: _marked(_FINAL, text, valid, last=True),
        lambda: _marked(_ANSWER, text, valid, last=True),
        lambda: _leading(text, valid),
        lambda: _marked(_PHRASE, text, valid, last=False),
        lambda: _by_text(text, options) if options else None,
        lambda: _lone(text, valid),
    ]
    for step in steps:
        found = step()
        if found is not None:
            return found
    return None


class MultipleChoiceParams(ScorerParams):
    #: The item variable holding the options: a list (A, B, …) or {letter: text}.
    choices_var: str = "choices"
    #: The option letters when the item has no options (default: A–D, or up to the
    #: expected letter).
    letters: str | None = None


class MultipleChoice(Scorer):
    """The answer's chosen option (see :func:`extract_choice`) equals ``expected``: a
    letter, the option's text, or a 0-based index. No identifiable choice → format error.
    """

    type = "multiple_choice"
    Params = MultipleChoiceParams
    params: MultipleChoiceParams

    def _expected_letter(self, expected: Any, options: dict[str, str] | None) -> str:
        if isinstance(expected, int) and not isinstance(expected, bool):
            if 0 <= expected < len(options or ALPHABET):
                return ALPHABET[expected]
        elif isinstance(expected, str):
            bare = _BARE.fullmatch(expected.strip())
            if bare and (options is None or bare["l"].upper() in options):
                return bare["l"].upper()
            for letter, text in (options or {}).items():
                if normalize_answer(text) == normalize_answer(expected):
                    return letter
        raise ConfigError(
            f"multiple_choice: expected {expected!r} is neither an option letter nor the "
            "text of one of the item's options."
        )

    async def score(
        self, answer: Answer, expected: Any, variables: dict[str, Any], ctx: ScoringContext
    ) -> Score:
        raw = variables.get(self.params.choices_var)
        try:
            options = normalize_choices(raw)
        except TypeError as exc:
            raise ConfigError(
                f"multiple_choice: variable {self.params.choices_var!r}: {exc}"
            ) from exc
        want = self._expected_letter(expected, options)
        letters = self.params.letters or (
            "".join(options) if options else ALPHABET[: max(4, ALPHABET.index(want) + 1)]
        )
        got = extract_choice(answer.text, letters, options)
        short = " ".join(answer.text.split())[:60]
        if got is None:
            return Score(0.0, False, True, f"no choice found in {short!r}")

        def show(letter: str) -> str:
            return f"{letter} ({options[letter]!r})" if options and letter in options else letter

        ok = got == want
        detail = f"chose {show(got)}" if ok else f"expected {show(want)}, found {show(got)}"
        return Score.binary(ok, detail, choice=got)
