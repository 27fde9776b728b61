"""The strings of a request that input checks read, and the request rebuilt with new ones.

:func:`rewrite` calls ``visit(kind, text)`` for each string, always in the same order,
and returns the request with the strings ``visit`` returned (the same objects when
nothing changed: no copy is made). ``kind`` is

* the message's role (``system`` for ``developer`` too) for what the model reads as the
  turn: content strings, text parts, tool-call arguments;
* ``field`` for any other string a client can send: message ``name`` and ``refusal``,
  tool descriptions and parameter schemas (keys too), ``stop``, ``response_format``,
  ``user`` (Anthropic ``metadata.user_id``), https image URLs, and every field the
  canonical model does not know (``extra``), at any depth;
* ``identifier`` for names other parts of the request refer to — function names,
  tool-call ids, the ``json_schema`` name — which a placeholder would break.

With ``everything=False`` (the Python Client, whose caller is trusted) only the turns
are visited. Never visited: ``model`` (the route, checked against the configuration),
``type``/``detail`` literals, and ``data:`` image URLs (images are not inspected).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any, TypeVar

from pydantic import BaseModel

from ..types import (
    AssistantMessage,
    ChatRequest,
    FunctionCall,
    FunctionDefinition,
    ImagePart,
    ImageURL,
    JSONSchemaFormat,
    Message,
    TextPart,
    ToolCall,
    ToolMessage,
)

__all__ = ["FIELD", "IDENTIFIER", "Visit", "rewrite", "role_of"]

FIELD = "field"
IDENTIFIER = "identifier"

Visit = Callable[[str, str], str]
M = TypeVar("M", bound=BaseModel)

#: Fields of a model that name something referred to elsewhere in the request.
_IDENTIFIERS: dict[type[BaseModel], frozenset[str]] = {
    FunctionDefinition: frozenset({"name"}),
    FunctionCall: frozenset({"name"}),
    ToolCall: frozenset({"id"}),
    ToolMessage: frozenset({"tool_call_id"}),
    JSONSchemaFormat: frozenset({"name"}),
}
#: Fields never visited: literals, and what the walk of a message handles itself.
_SKIP = frozenset({"type", "detail"})
_REQUEST_SKIP = _SKIP | {"messages", "model"}
_MESSAGE_SKIP = _SKIP | {"role", "content", "tool_calls"}
_TEXT_SKIP = _SKIP | {"text"}
_ARGUMENTS_SKIP = _SKIP | {"arguments"}
_FUNCTION_SKIP = _SKIP | {"function"}


def role_of(message: Message) -> str:
    return "system" if message.role == "developer" else message.role


def _value(value: Any, kind: str, visit: Visit) -> Any:
    if isinstance(value, str):
        return visit(kind, value)
    if isinstance(value, BaseModel):
        return _model(value, visit)
    if isinstance(value, dict):
        changed = False
        out: dict[Any, Any] = {}
        for k, v in value.items():
            nk = visit(FIELD, k) if isinstance(k, str) else k
            nv = _value(v, FIELD, visit)
            changed = changed or nk is not k or nv is not v
            out[nk] = nv
        return out if changed else value
    if isinstance(value, list | tuple):
        items = [_value(v, kind, visit) for v in value]
        if any(n is not o for n, o in zip(items, value, strict=True)):
            return type(value)(items)
        return value
    return value


@lru_cache(maxsize=256)
def _fields(cls: type[BaseModel], skip: frozenset[str]) -> tuple[tuple[str, str], ...]:
    """The fields of ``cls`` to visit and the kind of their strings."""
    identifiers = _IDENTIFIERS.get(cls, frozenset())
    return tuple(
        (name, IDENTIFIER if name in identifiers else FIELD)
        for name in cls.model_fields
        if name not in skip
    )


def _model(model: M, visit: Visit, skip: frozenset[str] = _SKIP) -> M:
    """Every string of ``model`` but those in ``skip``, extras included."""
    if isinstance(model, ImageURL) and model.url.startswith("data:"):
        return model
    update: dict[str, Any] = {}
    for name, kind in _fields(type(model), skip):
        value = getattr(model, name)
        if value is None or isinstance(value, bool | int | float):
            continue
        new = _value(value, kind, visit)
        if new is not value:
            update[name] = new
    for name, value in (model.__pydantic_extra__ or {}).items():
        new = _value(value, FIELD, visit)
        if new is not value:
            update[name] = new
    return model.model_copy(update=update) if update else model


def _message(message: Message, visit: Visit, everything: bool) -> Message:
    role = role_of(message)
    update: dict[str, Any] = {}
    content = message.content
    if isinstance(content, str):
        new = visit(role, content)
        if new is not content:
            update["content"] = new
    elif isinstance(content, list):
        parts: list[Any] = []
        for part in content:
            if isinstance(part, TextPart):
                text = visit(role, part.text)
                if text is not part.text:
                    part = part.model_copy(update={"text": text})
                if everything:
                    part = _model(part, visit, _TEXT_SKIP)
            elif isinstance(part, ImagePart) and everything:
                part = _model(part, visit)
            parts.append(part)
        if any(n is not o for n, o in zip(parts, content, strict=True)):
            update["content"] = parts
    if isinstance(message, AssistantMessage) and message.tool_calls:
        calls = []
        for call in message.tool_calls:
            fn = call.function
            arguments = visit(role, fn.arguments)
            if arguments is not fn.arguments:
                fn = fn.model_copy(update={"arguments": arguments})
            if everything:
                fn = _model(fn, visit, _ARGUMENTS_SKIP)
            new_call = call.model_copy(update={"function": fn}) if fn is not call.function else call
            if everything:
                new_call = _model(new_call, visit, _FUNCTION_SKIP)
            calls.append(new_call)
        if any(n is not o for n, o in zip(calls, message.tool_calls, strict=True)):
            update["tool_calls"] = calls
    if update:
        message = message.model_copy(update=update)
    if everything:
        message = _model(message, visit, _MESSAGE_SKIP)
    return message


def rewrite(request: ChatRequest, visit: Visit, *, everything: bool) -> ChatRequest:
    """``request`` with each visited string replaced by what ``visit`` returns."""
    messages = [_message(m, visit, everything) for m in request.messages]
    if any(n is not o for n, o in zip(messages, request.messages, strict=True)):
        request = request.model_copy(update={"messages": messages})
    if everything:
        request = _model(request, visit, _REQUEST_SKIP)
    return request
