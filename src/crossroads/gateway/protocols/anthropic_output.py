"""Answers in the Anthropic Messages API shape: Message objects, SSE streams, errors.

Message: https://docs.anthropic.com/en/api/messages; stream events:
https://docs.anthropic.com/en/api/messages-streaming; errors:
https://docs.anthropic.com/en/api/errors.

Usage is Anthropic's: ``input_tokens`` counts only the uncached prompt, with cache reads
and writes beside it (the reverse of ``backends.anthropic.usage_from_anthropic``). An
answer that calls tools has stop reason ``tool_use`` even when the upstream said "stop",
as Anthropic clients run tools on that stop reason.
"""

from __future__ import annotations

import json
import uuid
from typing import Any, cast

from ...backends._anthropic_wire import FINISH_TO_STOP_REASON
from ...types import ChatChunk, ChatResponse, FinishReason, ToolCall, Usage, text_of
from .errors import ErrorInfo, classify, retry_headers

__all__ = [
    "StreamEncoder",
    "error_body",
    "error_response",
    "message_json",
    "new_message_id",
    "stop_reason_of",
    "usage_json",
]

_STATUS_AND_TYPE: dict[str, tuple[int, str]] = {
    "invalid_request": (400, "invalid_request_error"),
    "authentication": (401, "authentication_error"),
    "permission": (403, "permission_error"),
    "not_found": (404, "not_found_error"),
    "conflict": (409, "invalid_request_error"),
    "too_large": (413, "request_too_large"),
    "unprocessable": (422, "invalid_request_error"),
    "rate_limit": (429, "rate_limit_error"),
    "quota": (429, "rate_limit_error"),
    "server": (500, "api_error"),
    "upstream": (502, "api_error"),
    "unavailable": (503, "api_error"),
    "overloaded": (529, "overloaded_error"),
    "timeout": (504, "timeout_error"),
}


def new_message_id() -> str:
    """A fresh id in Anthropic's style (``msg_`` and 24 hex digits)."""
    return f"msg_{uuid.uuid4().hex[:24]}"


def _message_id(response_id: str) -> str:
    if response_id.startswith("msg_"):
        return response_id
    _, dash, rest = response_id.partition("-")
    return "msg_" + (rest if dash and rest else response_id)


def usage_json(usage: Usage) -> dict[str, int]:
    """Anthropic usage from canonical usage (whose prompt includes cache reads and writes)."""
    fresh = usage.prompt_tokens - usage.cached_tokens - usage.cache_creation_tokens
    return {
        "input_tokens": max(fresh, 0),
        "output_tokens": usage.completion_tokens,
        "cache_creation_input_tokens": usage.cache_creation_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
    }


def stop_reason_of(finish_reason: str | None, *, called_tools: bool = False) -> str:
    """Anthropic's ``stop_reason`` for a canonical finish reason."""
    reason = FINISH_TO_STOP_REASON.get(cast(FinishReason, finish_reason or "stop"), "end_turn")
    return "tool_use" if called_tools and reason == "end_turn" else reason


def _tool_input(call: ToolCall) -> dict[str, Any]:
    """The parsed arguments; text that is not a JSON object is kept under ``_raw_arguments``
    so a broken call stays visible to the client instead of vanishing."""
    raw = call.function.arguments
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {"_raw_arguments": raw}
    return value if isinstance(value, dict) else {"_raw_arguments": raw}


def message_json(resp: ChatResponse, model: str) -> dict[str, Any]:
    """The Message object for a complete answer; ``model`` is the name the client asked for."""
    content: list[dict[str, Any]] = []
    finish: FinishReason | None = None
    calls: list[ToolCall] = []
    if resp.choices:
        choice = resp.choices[0]
        finish = choice.finish_reason
        text = text_of(choice.message.content)
        if choice.message.refusal:
            text += choice.message.refusal
        if text:
            content.append({"type": "text", "text": text})
        calls = choice.message.tool_calls or []
        for call in calls:
            content.append(
                {
                    "type": "tool_use",
                    "id": call.id,
                    "name": call.function.name,
                    "input": _tool_input(call),
                }
            )
    return {
        "id": _message_id(resp.id),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason_of(finish, called_tools=bool(calls)),
        "stop_sequence": None,
        "usage": usage_json(resp.usage),
    }


# --- errors --------------------------------------------------------------------------


def _render(info: ErrorInfo) -> tuple[int, dict[str, Any]]:
    status, kind = _STATUS_AND_TYPE[info.kind]
    if info.kind in ("invalid_request", "not_found", "permission", "authentication"):
        status = info.status if 400 <= info.status < 500 else status
    return status, {"type": "error", "error": {"type": kind, "message": info.message}}


def error_body(exc: BaseException) -> dict[str, Any]:
    """``{"type": "error", "error": {"type", "message"}}`` for any exception."""
    return _render(classify(exc))[1]


def error_response(exc: BaseException) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Status, JSON body and headers of the error answer for ``exc``.

    Statuses are the ones the official SDK maps to its classes: 400 BadRequestError, 401
    AuthenticationError, 403 PermissionDeniedError, 404 NotFoundError, 413
    RequestTooLargeError, 429 RateLimitError, 529 OverloadedError, other >=500
    InternalServerError.
    """
    info = classify(exc)
    status, body = _render(info)
    return status, body, retry_headers(info)


# --- streaming -----------------------------------------------------------------------


def _event(name: str, data: dict[str, Any]) -> bytes:
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return f"event: {name}\ndata: {payload}\n\n".encode()


class StreamEncoder:
    """Canonical chunks in, Anthropic stream events out (bytes ready to send).

    Call :meth:`start` once, :meth:`feed` per chunk, then :meth:`finish` — or :meth:`error`
    when the answer fails after the stream began. Text opens a ``text`` block and each tool
    call a ``tool_use`` block whose arguments stream as ``input_json_delta``; switching
    from one to another closes the open block. Arguments for a tool call whose block was
    already closed (upstreams that interleave calls) are sent to that block's index,
    which the official SDKs accumulate correctly.
    """

    def __init__(self, model: str, message_id: str | None = None) -> None:
        self.model = model
        self.message_id = message_id or new_message_id()
        self.started = False
        self.finished = False
        self.finish_reason: FinishReason | None = None
        self.usage: Usage | None = None
        self._next_block = 0
        self._open: int | None = None  # index of the open content block
        self._open_tool: int | None = None  # canonical tool call index of that block
        self._tool_blocks: dict[int, int] = {}  # tool call index -> block index

    def start(self, input_tokens: int = 0) -> bytes:
        """``message_start``: an empty assistant message with the prompt's token count
        (an estimate is fine: :meth:`finish` sends the final count)."""
        if self.started:
            return b""
        self.started = True
        message: dict[str, Any] = {
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": input_tokens,
                "output_tokens": 0,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
            },
        }
        return _event("message_start", {"type": "message_start", "message": message})

    def ping(self) -> bytes:
        """A ``ping`` event, to keep idle connections open."""
        return _event("ping", {"type": "ping"})

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        index, self._open, self._open_tool = self._open, None, None
        return _event("content_block_stop", {"type": "content_block_stop", "index": index})

    def _open_block(self, block: dict[str, Any]) -> bytes:
        out = self._close()
        self._open = self._next_block
        self._next_block += 1
        start = {"type": "content_block_start", "index": self._open, "content_block": block}
        return out + _event("content_block_start", start)

    def _delta(self, index: int, delta: dict[str, Any]) -> bytes:
        data = {"type": "content_block_delta", "index": index, "delta": delta}
        return _event("content_block_delta", data)

    def _text(self, text: str) -> bytes:
        out = b""
        if self._open is None or self._open_tool is not None:
            out = self._open_block({"type": "text", "text": ""})
        assert self._open is not None
        return out + self._delta(self._open, {"type": "text_delta", "text": text})

    def feed(self, chunk: ChatChunk) -> bytes:
        """The events for one chunk (often none: role-only and empty deltas send nothing)."""
        if self.finished:
            return b""
        out = b"" if self.started else self.start()
        if chunk.usage is not None:
            self.usage = chunk.usage
        for choice in chunk.choices:
            if choice.index != 0:  # one answer per message: other choices have no place
                continue
            delta = choice.delta
            text = (delta.content or "") + (delta.refusal or "")
            if text:
                out += self._text(text)
            for call in delta.tool_calls or []:
                fn = call.function
                if call.index not in self._tool_blocks:
                    block = {
                        "type": "tool_use",
                        "id": call.id or f"toolu_{uuid.uuid4().hex[:24]}",
                        "name": (fn.name if fn else None) or "",
                        "input": {},
                    }
                    out += self._open_block(block)
                    assert self._open is not None
                    self._tool_blocks[call.index] = self._open
                    self._open_tool = call.index
                if fn is not None and fn.arguments:
                    piece = {"type": "input_json_delta", "partial_json": fn.arguments}
                    out += self._delta(self._tool_blocks[call.index], piece)
            if choice.finish_reason is not None:
                self.finish_reason = choice.finish_reason
        return out

    def finish(self, usage: Usage | None = None, finish_reason: str | None = None) -> bytes:
        """Close the open block, then ``message_delta`` (stop reason, usage) and
        ``message_stop``. Without arguments it uses what the chunks carried."""
        if self.finished:
            return b""
        out = (b"" if self.started else self.start()) + self._close()
        self.finished = True
        usage = usage or self.usage
        reason = stop_reason_of(
            finish_reason or self.finish_reason, called_tools=bool(self._tool_blocks)
        )
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": reason, "stop_sequence": None},
            "usage": usage_json(usage) if usage is not None else {"output_tokens": 0},
        }
        out += _event("message_delta", delta)
        return out + _event("message_stop", {"type": "message_stop"})

    def error(self, exc: BaseException) -> bytes:
        """The ``error`` event that ends a failed stream (the SDK raises it as APIError);
        nothing once the stream has finished."""
        if self.finished:
            return b""
        self.finished = True
        return _event("error", error_body(exc))
