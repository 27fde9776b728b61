"""Structured-output scorers: the answer is JSON, and JSON that fits a schema.

Models often wrap JSON in a Markdown fence; unless ``strict: true`` an answer that is
exactly one fenced block (```` ```json … ``` ```` or a bare ```` ``` ````), with only
whitespace around it, is read as its content. Prose around the JSON is not accepted.
"""

from __future__ import annotations

import importlib
import json
import re
from typing import Any

from pydantic import ConfigDict, Field, field_validator

from ...errors import ConfigError
from ..scoring import Answer, Score, Scorer, ScorerParams, ScoringContext

__all__ = ["JSONSchemaValid", "JSONValid", "parse_json_answer"]

_FENCE = re.compile(r"```[ \t]*(?:json5?|JSON)?[ \t]*\n?(?P<body>.*?)\n?[ \t]*```", re.DOTALL)
_MISSING = object()


def parse_json_answer(text: str, strict: bool = False) -> Any:
    """The JSON value of an answer; raises ``ValueError`` with the reason.

    ``strict`` forbids the Markdown fence (surrounding whitespace is always allowed).
    """
    body = text.strip()
    if not strict:
        fenced = _FENCE.fullmatch(body)
        if fenced:
            body = fenced["body"].strip()
    if not body:
        raise ValueError("empty answer")
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc


class JSONValidParams(ScorerParams):
    #: Forbid the Markdown code fence: the answer must be bare JSON.
    strict: bool = False


class JSONValid(Scorer):
    """Passes when the answer parses as JSON (see the module docstring for fences)."""

    type = "json_valid"
    Params = JSONValidParams
    params: JSONValidParams

    async def score(
        self, answer: Answer, expected: Any, variables: dict[str, Any], ctx: ScoringContext
    ) -> Score:
        try:
            value = parse_json_answer(answer.text, self.params.strict)
        except ValueError as exc:
            return Score.binary(False, str(exc))
        return Score.binary(True, f"valid JSON ({type(value).__name__})")


def _validator_class(schema: Any) -> Any:
    jsonschema = importlib.import_module("jsonschema")
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)  # raises jsonschema.SchemaError
    return cls


def _check_schema(schema: Any, where: str) -> Any:
    if not isinstance(schema, dict | bool):
        raise ConfigError(f"{where}: a JSON Schema is an object, got {type(schema).__name__}")
    try:
        return _validator_class(schema)(schema)
    except Exception as exc:  # jsonschema.SchemaError
        raise ConfigError(f"{where}: invalid JSON Schema: {getattr(exc, 'message', exc)}") from exc


class JSONSchemaParams(ScorerParams):
    #: The JSON Schema; when absent the item's ``expected`` is the schema.
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    #: When the item's ``expected`` is an object (and ``schema`` is given): the fields
    #: to compare (dotted paths for nested objects); default all of its keys.
    expected_fields: list[str] | None = None
    #: Forbid the Markdown code fence.
    strict: bool = False

    model_config = ConfigDict(populate_by_name=True)

    @field_validator("schema_")
    @classmethod
    def _valid_schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            try:
                _validator_class(value)
            except Exception as exc:
                raise ValueError(f"invalid JSON Schema: {getattr(exc, 'message', exc)}") from exc
        return value


def _get(data: Any, path: str) -> Any:
    for part in path.split("."):
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return _MISSING
    return data


def _same(a: Any, b: Any) -> bool:
    """JSON equality: ``1 == 1.0`` but ``True != 1``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


class JSONSchemaValid(Scorer):
    """The answer is JSON valid against ``schema`` (or the item's expected as schema).

    With ``schema`` given and an item ``expected`` object, the value is the fraction of
    its fields (or ``expected_fields``) the answer gets exactly right, and the answer
    passes when it is schema-valid and all fields match. Invalid JSON is a format error;
    JSON that breaks the schema scores 0.
    """

    type = "json_schema"
    Params = JSONSchemaParams
    params: JSONSchemaParams

    def __init__(self, params: ScorerParams) -> None:
        super().__init__(params)
        self._validator = (
            _check_schema(self.params.schema_, self.type) if self.params.schema_ else None
        )

    async def score(
        self, answer: Answer, expected: Any, variables: dict[str, Any], ctx: ScoringContext
    ) -> Score:
        validator, want = self._validator, None
        if validator is None:
            if expected is None:
                raise ConfigError("json_schema: give `schema`, or the schema as item `expected`.")
            validator = _check_schema(expected, "json_schema: item expected")
        elif isinstance(expected, dict):
            want = expected
        try:
            data = parse_json_answer(answer.text, self.params.strict)
        except ValueError as exc:
            return Score(0.0, False, True, str(exc))
        error = next(iter(validator.iter_errors(data)), None)
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "(root)"
            return Score.binary(False, f"schema: {where}: {error.message}")
        if want is None:
            return Score.binary(True, "valid against the schema")
        fields = self.params.expected_fields or list(want)
        wrong = [f for f in fields if not _same(_get(data, f), _get(want, f))]
        value = 1.0 - len(wrong) / len(fields) if fields else 1.0
        if not wrong:
            return Score(value, True, False, f"valid; all {len(fields)} fields match")
        first = wrong[0]
        got = _get(data, first)
        shown = "missing" if got is _MISSING else f"found {json.dumps(got)[:40]}"
        detail = (
            f"valid; {len(wrong)}/{len(fields)} fields wrong: {first} expected "
            f"{json.dumps(_get(want, first))[:40]}, {shown}"
        )
        return Score(value, False, False, detail, {"wrong_fields": wrong})
