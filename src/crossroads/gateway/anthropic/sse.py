"""A streamed answer as Anthropic's server-sent events:
https://docs.anthropic.com/en/api/messages-streaming.

:class:`StreamEncoder` writes the events (``message_start``, content blocks,
``message_delta``, ``message_stop``, ``error``); :class:`EventEncoder` drives it for one
gateway stream (a :class:`~..protocol.StreamEncoder`).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from ...errors import APIError
from ...types import ChatChunk, ChatRequest, FinishReason, Usage
from .answer import new_message_id, stop_reason_of, usage_json
from .errors import error_body

__all__ = ["EventEncoder", "StreamEncoder"]


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


class EventEncoder:
    """The events of one gateway stream: ``message_start`` before the first chunk (with
    the prompt's estimated size), then :class:`StreamEncoder`'s events."""

    def __init__(self, request: ChatRequest | None, model: str) -> None:
        from ...client import estimate_prompt_tokens

        self.encoder = StreamEncoder(model)
        prompt = estimate_prompt_tokens(request) if request is not None else 0
        self.head = self.encoder.start(prompt)
        self.finish_reason: str | None = None

    def __call__(self, item: ChatChunk | APIError) -> bytes:
        head, self.head = self.head, b""
        if isinstance(item, APIError):
            return head + self.encoder.error(item)
        if item.usage is not None and not item.choices:
            return head + self.encoder.finish(item.usage, self.finish_reason)
        for choice in item.choices:
            if choice.finish_reason:
                self.finish_reason = choice.finish_reason
        return head + self.encoder.feed(item)

    def close(self) -> bytes:
        # An upstream that never reported usage still gets a proper message_stop
        # (a no-op when the stream already finished or failed).
        return self.encoder.finish(None, self.finish_reason)
