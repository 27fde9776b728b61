"""The OpenAI Chat Completions wire format, as the gateway speaks it to its clients.

Requests: https://platform.openai.com/docs/api-reference/chat/create; stream chunks:
https://platform.openai.com/docs/api-reference/chat-streaming; errors:
https://platform.openai.com/docs/guides/error-codes. The canonical types already have this
shape, so parsing is validation plus a few documented fields handled on purpose:

* ignored (type-checked, then dropped): ``IGNORED_FIELDS``, e.g. ``store``, ``metadata``,
  ``service_tier``, ``reasoning_effort``, ``logit_bias``; ``modalities`` unless it asks
  for audio;
* refused with 400: ``REFUSED_FIELDS`` (``audio``, the deprecated ``functions`` /
  ``function_call``, ``web_search_options``), ``n`` other than 1, message parts other
  than text and images, the ``function`` role;
* ``max_completion_tokens`` becomes ``max_tokens``;
* Crossroads extensions kept for the backends: ``EXTENSION_FIELDS`` (``top_k`` ...);
  any other unknown field is dropped, so nothing unvetted reaches an upstream account.

Outputs follow OpenAI's layout: usage as ``prompt_tokens_details.cached_tokens`` and
``completion_tokens_details.reasoning_tokens``; Crossroads-only fields (timings, cache
writes, the "error" finish reason, which reads as "stop") do not appear. Server-sent
events are in :mod:`.sse`, error bodies in :mod:`.errors`.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

try:
    from orjson import dumps as _orjson_dumps
except ImportError:  # pragma: no cover - orjson is a dependency; kept working without it
    _orjson_dumps = None  # type: ignore[assignment]

from ...types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    FinishReason,
    ToolCall,
    Usage,
    now,
    text_of,
)
from ..errors import ProtocolError, from_validation_error, json_type
from ..errors import load_json_object as _load

__all__ = [
    "EXTENSION_FIELDS",
    "IGNORED_FIELDS",
    "REFUSED_FIELDS",
    "chunk_json",
    "dumps",
    "models_list",
    "parse_chat_request",
    "response_json",
    "usage_json",
]

#: Documented request fields the gateway accepts and drops, with their JSON types.
IGNORED_FIELDS: dict[str, type] = {
    "metadata": dict,
    "store": bool,
    "service_tier": str,
    "reasoning_effort": str,
    "prediction": dict,
    "logit_bias": dict,
    "modalities": list,
    "prompt_cache_key": str,
    "safety_identifier": str,
    "verbosity": str,
}
#: Documented request fields the gateway cannot honour: a 400 unless null.
REFUSED_FIELDS = ("audio", "functions", "function_call", "web_search_options")
#: Non-OpenAI fields kept on the canonical request for the backends that read them.
EXTENSION_FIELDS = ("top_k", "min_p", "repetition_penalty", "ignore_eos")

_KNOWN = frozenset(ChatRequest.model_fields)
_JSON_NAMES = {dict: "an object", bool: "a boolean", str: "a string", list: "an array"}
_RANGES: dict[str, tuple[float, float]] = {
    "temperature": (0.0, 2.0),
    "top_p": (0.0, 1.0),
    "frequency_penalty": (-2.0, 2.0),
    "presence_penalty": (-2.0, 2.0),
    "top_logprobs": (0, 20),
}
_PART_TYPES = {
    "system": ("text",),
    "developer": ("text",),
    "user": ("text", "image_url"),
    "assistant": ("text", "refusal"),
    "tool": ("text",),
}


def _unsupported(param: str, what: str | None = None) -> ProtocolError:
    return ProtocolError(
        f"{what or repr(param)} is not supported by this gateway.",
        param=param,
        code="unsupported_parameter",
    )


def _type_error(param: str, expected: str, value: Any) -> ProtocolError:
    return ProtocolError(
        f"Invalid type for '{param}': expected {expected}, but got {json_type(value)} instead.",
        param=param,
        code="invalid_type",
    )


def _message(index: int, raw: Any) -> dict[str, Any]:
    """A copy of one message, checked for the parts pydantic cannot explain well."""
    where = f"messages[{index}]"
    if not isinstance(raw, dict):
        raise _type_error(where, "an object", raw)
    role = raw.get("role")
    if role == "function":
        raise _unsupported(f"{where}.role", "The deprecated 'function' role (use 'tool')")
    if role not in _PART_TYPES:
        if role is None:
            raise ProtocolError(
                f"Missing required parameter: '{where}.role'.", param=f"{where}.role"
            )
        raise ProtocolError(
            f"Invalid value for '{where}.role': {role!r}; expected one of "
            "'system', 'developer', 'user', 'assistant', 'tool'.",
            param=f"{where}.role",
        )
    message = dict(raw)
    if role == "assistant":
        if message.get("function_call") is not None:
            raise _unsupported(f"{where}.function_call", "The deprecated 'function_call'")
        message.pop("function_call", None)
        message.pop("audio", None)  # a reference to an earlier audio answer
    content = message.get("content")
    if isinstance(content, list):
        parts: list[Any] = []
        refusals: list[str] = []
        for j, part in enumerate(content):
            kind = part.get("type") if isinstance(part, dict) else None
            if isinstance(part, dict) and kind not in _PART_TYPES[role]:
                param = f"{where}.content[{j}].type"
                if kind in ("input_audio", "file", "image_url", "refusal"):
                    raise _unsupported(param, f"A {kind!r} content part in a {role} message")
                raise ProtocolError(
                    f"Invalid value for '{param}': {kind!r}; expected one of "
                    + ", ".join(repr(t) for t in _PART_TYPES[role])
                    + ".",
                    param=param,
                )
            if kind == "refusal" and isinstance(part.get("refusal"), str):
                refusals.append(part["refusal"])
            else:
                parts.append(part)
        message["content"] = parts
        if refusals and message.get("refusal") is None:
            message["refusal"] = "".join(refusals)
    return message


def _check_ranges(data: dict[str, Any]) -> None:
    for name, (low, high) in _RANGES.items():
        value = data.get(name)
        if (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and not low <= value <= high
        ):
            raise ProtocolError(
                f"Invalid value for '{name}': {value} is outside the range {low}..{high}.",
                param=name,
                code="invalid_value",
            )
    max_tokens = data.get("max_tokens")
    if isinstance(max_tokens, int) and not isinstance(max_tokens, bool) and max_tokens < 1:
        raise ProtocolError(
            f"Invalid value for 'max_tokens': {max_tokens}; it must be at least 1.",
            param="max_tokens",
            code="invalid_value",
        )
    n = data.get("n")
    if isinstance(n, int) and not isinstance(n, bool) and n != 1:
        raise _unsupported("n", f"n={n} (this gateway returns one choice per request)")


def parse_chat_request(body: bytes | str | dict[str, Any]) -> ChatRequest:
    """A canonical request from a ``POST /v1/chat/completions`` body, or a
    :class:`~.errors.ProtocolError` (400) naming the offending ``param``."""
    data = _load(body)
    model = data.get("model")
    if model is None:
        raise ProtocolError("Missing required parameter: 'model'.", param="model")
    if not isinstance(model, str) or not model:
        raise _type_error("model", "a non-empty string", model)
    messages = data.get("messages")
    if messages is None:
        raise ProtocolError("Missing required parameter: 'messages'.", param="messages")
    if not isinstance(messages, list):
        raise _type_error("messages", "an array", messages)
    if not messages:
        raise ProtocolError(
            "Invalid value for 'messages': the array must hold at least one message.",
            param="messages",
            code="empty_array",
        )
    clean: dict[str, Any] = {
        "model": model,
        "messages": [_message(i, m) for i, m in enumerate(messages)],
    }
    for name, value in data.items():
        if name in ("model", "messages"):
            continue
        if name in REFUSED_FIELDS:
            if value is not None:
                raise _unsupported(name)
        elif name in IGNORED_FIELDS:
            if value is not None and not isinstance(value, IGNORED_FIELDS[name]):
                raise _type_error(name, _JSON_NAMES[IGNORED_FIELDS[name]], value)
            if name == "modalities" and isinstance(value, list) and any(m != "text" for m in value):
                raise _unsupported("modalities", "Output modalities other than 'text'")
        elif name == "max_completion_tokens":
            if value is not None:
                if not isinstance(value, int) or isinstance(value, bool):
                    raise _type_error(name, "an integer", value)
                clean["max_tokens"] = value  # the newer name wins over max_tokens
        elif name in _KNOWN:
            clean.setdefault(name, value)
        elif name in EXTENSION_FIELDS:
            clean[name] = value
    _check_ranges(clean)
    if clean.get("stream_options") is not None and clean.get("stream") is not True:
        raise ProtocolError(
            "The 'stream_options' parameter is only allowed when 'stream' is true.",
            param="stream_options",
        )
    try:
        request = ChatRequest.model_validate(clean, strict=True)
    except ValidationError as exc:
        raise from_validation_error(exc, clean, "openai") from exc
    fmt = request.response_format
    if fmt is not None and fmt.type == "json_schema" and fmt.json_schema is None:
        raise ProtocolError(
            "Missing required parameter: 'response_format.json_schema'.",
            param="response_format.json_schema",
        )
    return request


# --- outputs -------------------------------------------------------------------------


def dumps(value: Any) -> bytes:
    """Compact JSON as UTF-8 bytes, the way every body and event is sent: orjson (over
    10x the stdlib on a chunk, bench/codec.py), the stdlib for what orjson refuses
    (an integer over 64 bits) or when it is not installed."""
    if _orjson_dumps is not None:
        try:
            return _orjson_dumps(value)
        except TypeError:  # orjson.JSONEncodeError is a TypeError
            pass
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _finish(reason: FinishReason | None) -> str | None:
    return "stop" if reason == "error" else reason


def usage_json(usage: Usage) -> dict[str, Any]:
    """Usage in OpenAI's layout (no Crossroads-only fields)."""
    total = usage.total_tokens or usage.prompt_tokens + usage.completion_tokens
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": total,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


def _tool_call(call: ToolCall) -> dict[str, Any]:
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.function.name, "arguments": call.function.arguments},
    }


def response_json(resp: ChatResponse) -> bytes:
    """The body of a non-streaming answer (a ``chat.completion`` object)."""
    choices = []
    for choice in resp.choices:
        msg = choice.message
        message: dict[str, Any] = {
            "role": "assistant",
            "content": None if msg.content is None else text_of(msg.content),
            "refusal": msg.refusal,
        }
        if msg.tool_calls:
            message["tool_calls"] = [_tool_call(c) for c in msg.tool_calls]
        choices.append(
            {
                "index": choice.index,
                "message": message,
                "logprobs": choice.logprobs,
                "finish_reason": _finish(choice.finish_reason) or "stop",
            }
        )
    out: dict[str, Any] = {
        "id": resp.id,
        "object": "chat.completion",
        "created": resp.created,
        "model": resp.model,
        "choices": choices,
        "usage": usage_json(resp.usage),
    }
    if resp.system_fingerprint is not None:
        out["system_fingerprint"] = resp.system_fingerprint
    return dumps(out)


def chunk_json(chunk: ChatChunk) -> dict[str, Any]:
    """One ``chat.completion.chunk`` object."""
    choices = []
    for choice in chunk.choices:
        d = choice.delta
        delta: dict[str, Any] = {}
        if d.role is not None:
            delta["role"] = d.role
        if d.content is not None:
            delta["content"] = d.content
        if d.refusal is not None:
            delta["refusal"] = d.refusal
        if d.tool_calls:
            delta["tool_calls"] = [
                tc.model_dump(
                    mode="json", exclude_none=True, include={"index", "id", "type", "function"}
                )
                for tc in d.tool_calls
            ]
        choices.append(
            {
                "index": choice.index,
                "delta": delta,
                "logprobs": choice.logprobs,
                "finish_reason": _finish(choice.finish_reason),
            }
        )
    out: dict[str, Any] = {
        "id": chunk.id,
        "object": "chat.completion.chunk",
        "created": chunk.created,
        "model": chunk.model,
        "choices": choices,
    }
    if chunk.system_fingerprint is not None:
        out["system_fingerprint"] = chunk.system_fingerprint
    if chunk.usage is not None:
        out["usage"] = usage_json(chunk.usage)
    return out


# --- models --------------------------------------------------------------------------


def models_list(names: list[tuple[str, str]], *, created: int | None = None) -> dict[str, Any]:
    """The ``GET /v1/models`` body for ``(id, owned_by)`` pairs."""
    stamp = now() if created is None else created
    return {
        "object": "list",
        "data": [
            {"id": name, "object": "model", "created": stamp, "owned_by": owner}
            for name, owner in names
        ],
    }
