"""Anthropic's Messages API ↔ the canonical types: the one translation of the pieces
both directions share.

The Anthropic backend (canonical request out, Anthropic answer in) and the gateway's
Anthropic protocol (Anthropic request in, canonical answer out as Anthropic) each
translate the same things the other way round: stop reasons, usage, tool-call
arguments, ``tool_use`` blocks and images. Both use these functions on plain JSON values
(the gateway's pydantic wire models hand over their fields).

Message: https://docs.anthropic.com/en/api/messages; stop reasons:
https://docs.anthropic.com/en/api/handling-stop-reasons; error types and their HTTP
statuses: https://docs.anthropic.com/en/api/errors.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, cast

from ..errors import BadRequestError
from ..types import FinishReason, ToolCall, Usage

__all__ = [
    "ERROR_TYPE_STATUS",
    "FINISH_TO_STOP_REASON",
    "STOP_REASON_TO_FINISH",
    "VENDOR",
    "finish_from_anthropic",
    "image_block",
    "image_url",
    "stop_reason_of",
    "tool_input",
    "tool_use_block",
    "usage_from_anthropic",
    "usage_to_anthropic",
]

VENDOR = "anthropic"

#: Anthropic ``stop_reason`` -> canonical finish reason.
STOP_REASON_TO_FINISH: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

#: Canonical finish reason -> Anthropic ``stop_reason`` (the reverse, one answer each;
#: "error" has no counterpart and reads as an ordinary end of turn).
FINISH_TO_STOP_REASON: dict[FinishReason, str] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
    "error": "end_turn",
}

#: HTTP status of each documented error type.
ERROR_TYPE_STATUS: dict[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


# --- stop reasons --------------------------------------------------------------------


def finish_from_anthropic(stop_reason: str | None) -> FinishReason | None:
    """The canonical finish reason for Anthropic's ``stop_reason`` (unknown ones: "stop")."""
    return None if stop_reason is None else STOP_REASON_TO_FINISH.get(stop_reason, "stop")


def stop_reason_of(finish_reason: str | None, *, called_tools: bool = False) -> str:
    """Anthropic's ``stop_reason`` for a canonical finish reason. An answer that calls
    tools has ``tool_use`` even when the upstream said "stop", as Anthropic clients run
    tools on that stop reason."""
    reason = FINISH_TO_STOP_REASON.get(cast(FinishReason, finish_reason or "stop"), "end_turn")
    return "tool_use" if called_tools and reason == "end_turn" else reason


# --- usage ---------------------------------------------------------------------------


def usage_from_anthropic(data: Mapping[str, Any] | None) -> Usage:
    """Canonical usage; prompt tokens include cache reads and cache writes."""
    data = data or {}
    fresh = int(data.get("input_tokens") or 0)
    read = int(data.get("cache_read_input_tokens") or 0)
    created = int(data.get("cache_creation_input_tokens") or 0)
    return Usage.of(
        fresh + read + created,
        int(data.get("output_tokens") or 0),
        cached=read,
        cache_creation=created,
    )


def usage_to_anthropic(usage: Usage) -> dict[str, int]:
    """Anthropic usage from canonical usage: ``input_tokens`` counts only the uncached
    prompt, with cache reads and writes beside it (the reverse of
    :func:`usage_from_anthropic`)."""
    fresh = usage.prompt_tokens - usage.cached_tokens - usage.cache_creation_tokens
    return {
        "input_tokens": max(fresh, 0),
        "output_tokens": usage.completion_tokens,
        "cache_creation_input_tokens": usage.cache_creation_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
    }


# --- tool calls ----------------------------------------------------------------------


def tool_input(arguments: str) -> dict[str, Any]:
    """A tool call's JSON arguments as a ``tool_use`` block's ``input`` (blank: ``{}``);
    a ValueError saying "not JSON" or "not a JSON object" otherwise, which each caller
    handles its own way."""
    if not arguments.strip():
        return {}
    try:
        value = json.loads(arguments)
    except ValueError as exc:
        raise ValueError("not JSON") from exc
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


def tool_use_block(call: ToolCall, input: dict[str, Any]) -> dict[str, Any]:
    """The ``tool_use`` content block of a canonical tool call."""
    return {"type": "tool_use", "id": call.id, "name": call.function.name, "input": input}


# --- images --------------------------------------------------------------------------


def image_block(url: str) -> dict[str, Any]:
    """The ``image`` block of a canonical image URL (a ``data:`` URI becomes a base64
    source); a data URI that is not base64 is a BadRequestError."""
    if not url.startswith("data:"):
        return {"type": "image", "source": {"type": "url", "url": url}}
    header, comma, data = url[5:].partition(",")
    if not comma or not header.endswith(";base64"):
        raise BadRequestError(
            "an image data: URI must be base64-encoded (data:image/png;base64,...)",
            vendor=VENDOR,
        )
    media_type = header.split(";", 1)[0] or "image/png"
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


def image_url(source: Mapping[str, Any]) -> str:
    """The canonical image URL of an ``image`` block's source (the reverse of
    :func:`image_block`)."""
    if source.get("type") == "base64":
        return f"data:{source['media_type']};base64,{source['data']}"
    return str(source["url"])
