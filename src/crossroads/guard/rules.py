"""Small rule-based checks: canary tokens, banned words and topics, size limits, JSON
schema validity of answers."""

from __future__ import annotations

import importlib
import json
import re
import secrets
import unicodedata
from collections.abc import Sequence
from typing import Any, NoReturn

from .findings import STRIP_INVISIBLE, Finding, RuleCheck, fixed_tail, word_tail
from .phrases import Slot, tokens_of

__all__ = [
    "CANARY_PREFIX",
    "BannedDetector",
    "CanaryDetector",
    "SchemaValidator",
    "SizeLimit",
    "invalid_response_format",
    "new_canary",
    "schema_problem",
]

CANARY_PREFIX = "crossroads-canary-"


def new_canary() -> str:
    """A fresh canary token: unguessable, and unlikely to be altered by a model."""
    return CANARY_PREFIX + secrets.token_hex(8)


class CanaryDetector(RuleCheck):
    """Finds any of the request's canary tokens in an answer (case-insensitive, also with
    zero-width characters or the prefix dropped)."""

    name = "canary"
    redactable = True

    def __init__(self, action: str, policy: str, tokens: list[str]) -> None:
        super().__init__(action, policy)
        needles = {t.lower() for t in tokens}
        needles |= {t[len(CANARY_PREFIX) :] for t in needles if t.startswith(CANARY_PREFIX)}
        self._needles = sorted(needles, key=len, reverse=True)

    def scan(self, text: str) -> list[Finding]:
        if not self._needles:
            return []
        lowered = text.lower()
        if not lowered.isascii():
            lowered = lowered.translate(STRIP_INVISIBLE)
            if len(lowered) != len(text):  # offsets no longer line up: report the whole text
                hit = any(n in lowered for n in self._needles)
                return [Finding(0, len(text), "canary")] if hit else []
        found: list[Finding] = []
        for needle in self._needles:
            at = lowered.find(needle)
            while at >= 0:
                span = (at, at + len(needle))
                if not any(f.start <= span[0] < f.end for f in found):
                    start = span[0]
                    if lowered.startswith(CANARY_PREFIX, max(0, start - len(CANARY_PREFIX))):
                        start -= len(CANARY_PREFIX)
                    found.append(Finding(start, span[1], "canary"))
                at = lowered.find(needle, at + 1)
        return sorted(found, key=lambda f: f.start)

    def hold_from(self, text: str) -> int:
        return word_tail(text)

    def quiet(self, segment: str) -> bool:
        lowered = segment.lower()
        if not lowered.isascii():
            lowered = lowered.translate(STRIP_INVISIBLE)
        return not any(n in lowered for n in self._needles)

    def explain(self, categories: list[str], stage: str) -> str:
        return (
            "the answer would have revealed the system prompt (its canary token was found). "
            "Ask differently; the assistant's instructions are not shared."
        )


def _fold(text: str) -> str:
    if text.isascii():
        return text.lower()
    return unicodedata.normalize("NFKC", text.translate(STRIP_INVISIBLE)).lower()


class BannedDetector(RuleCheck):
    """Banned words and topics. A topic is a name and the words or phrases that signal it;
    a match is on whole words of the case- and Unicode-folded text."""

    name = "banned"
    redactable = True

    def __init__(
        self, action: str, policy: str, *, words: list[str], topics: dict[str, list[str]]
    ) -> None:
        super().__init__(action, policy)
        self._topic_of: dict[str, str] = {}
        for w in words:
            self._topic_of[_fold(w).strip()] = "banned_word"
        for topic, phrases in topics.items():
            for w in phrases:
                self._topic_of[_fold(w).strip()] = topic
        self._slot = Slot(*(" ".join(p.split()) for p in self._topic_of if p))
        self._firsts = self._slot.firsts()
        alternatives = sorted(self._topic_of, key=len, reverse=True)
        self._pattern = re.compile(
            r"(?<!\w)(?:"
            + "|".join(r"\s+".join(map(re.escape, a.split())) for a in alternatives)
            + r")(?!\w)",
            re.IGNORECASE,
        )
        self._longest = max((len(p) for p in self._topic_of), default=0)

    def scan(self, text: str) -> list[Finding]:
        folded = _fold(text)
        tokens = tokens_of(folded)
        if not self._present(tokens):
            return []
        subject = text if len(folded) == len(text) else folded
        found = [
            Finding(
                m.start(),
                m.end(),
                self._topic_of.get(" ".join(_fold(m.group()).split()), "banned_word"),
            )
            for m in self._pattern.finditer(subject)
        ]
        if subject is folded and found:  # offsets differ after folding: flag the whole text
            return [Finding(0, len(text), f.category) for f in found[:1]]
        return found

    def _present(self, tokens: Sequence[str]) -> bool:
        for first in self._firsts.intersection(tokens):
            at = tokens.index(first)
            while True:
                if self._slot.at(tokens, at):
                    return True
                try:
                    at = tokens.index(first, at + 1)
                except ValueError:
                    break
        return False

    def hold_from(self, text: str) -> int:
        return fixed_tail(text, self._longest + 1)

    def quiet(self, segment: str) -> bool:
        folded = _fold(segment)
        return not any(first in folded for first in self._firsts)

    def explain(self, categories: list[str], stage: str) -> str:
        what = "input" if stage == "input" else "answer"
        topics = ", ".join(sorted(set(categories)))
        return f"the {what} touches a topic this service does not discuss ({topics})."


class SizeLimit:
    """Characters (and messages) per request or answer."""

    name = "size"

    def __init__(
        self, action: str, policy: str, *, max_chars: int | None, max_messages: int | None
    ) -> None:
        self.action = action
        self.policy = policy
        self.max_chars = max_chars
        self.max_messages = max_messages

    def check(self, chars: int, messages: int = 1) -> str | None:
        """The category of the breach (``too_long`` / ``too_many_messages``), or None."""
        if self.max_chars is not None and chars > self.max_chars:
            return "too_long"
        if self.max_messages is not None and messages > self.max_messages:
            return "too_many_messages"
        return None

    def explain(self, category: str, stage: str, chars: int, messages: int) -> str:
        if category == "too_many_messages":
            return (
                f"the conversation has {messages} messages; the limit is {self.max_messages}. "
                "Start a new conversation or summarise the earlier turns."
            )
        what = "input" if stage == "input" else "answer"
        return f"the {what} is {chars:,} characters; the limit is {self.max_chars:,}. Shorten it."


_FENCE = re.compile(r"^```(?:json)?\s*\n(.*)\n```\s*$", re.DOTALL)


def _json_path(parts: Sequence[Any]) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)


def schema_problem(schema: Any) -> str | None:
    """What is wrong with a JSON Schema, or None when it can be used: it must be valid
    against its dialect's metaschema (known types, regular expressions that compile) and
    every ``$ref`` must resolve within the schema (nothing is fetched from the network)."""
    jsonschema = importlib.import_module("jsonschema")
    referencing = importlib.import_module("referencing")
    specifications = importlib.import_module("jsonschema_specifications")
    validator_cls = jsonschema.validators.validator_for(schema)
    try:
        validator_cls.check_schema(schema)
    except jsonschema.exceptions.SchemaError as exc:
        return f"{_json_path(list(exc.path))}: {exc.message}"
    try:
        resource = referencing.Resource.from_contents(
            schema, default_specification=referencing.jsonschema.DRAFT202012
        )
    except referencing.exceptions.CannotDetermineSpecification as exc:  # pragma: no cover
        return str(exc)
    resolver = specifications.REGISTRY.resolver_with_root(resource)

    def walk(resource: Any, resolver: Any) -> str | None:
        contents = resource.contents
        if isinstance(contents, dict):
            # Older dialects' metaschemas do not check regular expressions.
            patterns = list(contents.get("patternProperties") or ())
            if isinstance(contents.get("pattern"), str):
                patterns.append(contents["pattern"])
            for pattern in patterns:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    return f"pattern {pattern!r} is not a valid regular expression ({exc})"
            ref = contents.get("$ref")
            if isinstance(ref, str):
                try:
                    resolver.lookup(ref)
                except referencing.exceptions.Unresolvable:
                    return f"$ref {ref!r} cannot be resolved within the schema"
        for sub in resource.subresources():
            problem = walk(sub, resolver.in_subresource(sub))
            if problem is not None:
                return problem
        return None

    return walk(resource, resolver)


class SchemaValidator:
    """The answer must be JSON, valid against a JSON Schema when one is given."""

    name = "json_schema"

    def __init__(self, action: str, policy: str, schema: dict[str, Any] | None) -> None:
        self.action = action
        self.policy = policy
        self.schema = schema

    def check(self, text: str, schema: dict[str, Any] | None = None) -> tuple[str, str] | None:
        """``(category, where)`` of the first problem, or None. ``where`` is a JSON path
        and the failed keyword, never the offending value."""
        schema = self.schema if self.schema is not None else schema
        body = text.strip()
        fenced = _FENCE.match(body)
        if fenced:
            body = fenced.group(1)
        try:
            data = json.loads(body)
        except ValueError as exc:
            return "invalid_json", f"line {getattr(exc, 'lineno', '?')}"
        if schema is None:
            return None
        jsonschema = importlib.import_module("jsonschema")
        referencing = importlib.import_module("referencing")
        validator_cls = jsonschema.validators.validator_for(schema)
        try:
            error = jsonschema.exceptions.best_match(validator_cls(schema).iter_errors(data))
        except (
            re.error,
            jsonschema.exceptions.UnknownType,
            referencing.exceptions.Unresolvable,
        ) as exc:  # a schema schema_problem() let through: still the schema's fault
            self._invalid(schema, f"{type(exc).__name__}: {exc}".splitlines()[0])
        if error is None:
            return None
        return "schema_mismatch", f"{_json_path(list(error.path))}: {error.validator}"

    def _invalid(self, schema: dict[str, Any], problem: str) -> NoReturn:
        """A schema that cannot be used: the policy's (configuration) or the client's."""
        from ..errors import BadRequestError, ConfigError

        if schema is self.schema:
            raise ConfigError(f"guardrails policy {self.policy!r}: json_schema: {problem}")
        raise BadRequestError(invalid_response_format(problem))


def invalid_response_format(problem: str) -> str:
    """The message for a client whose ``response_format`` schema cannot be used."""
    return f"response_format's JSON schema is invalid: {problem}. Fix the schema and retry."
