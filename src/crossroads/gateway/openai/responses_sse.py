"""A streamed Responses answer as server-sent events:
https://platform.openai.com/docs/api-reference/responses-streaming.

Every event is ``event: TYPE`` + ``data: {"type": TYPE, "sequence_number": N, ...}``,
numbered from 0. The order is the one the official SDK's ``responses.stream`` accumulates:
``response.created``, ``response.in_progress``; for text ``response.output_item.added``
(a ``message``), ``response.content_part.added``, ``response.output_text.delta``…; for a
tool call ``response.output_item.added`` (a ``function_call``),
``response.function_call_arguments.delta``…; at the end each open item is closed
(``response.output_text.done`` + ``response.content_part.done`` or
``response.function_call_arguments.done``, then ``response.output_item.done``) and
``response.completed`` (``response.incomplete`` when the answer hit
``max_output_tokens``) carries the whole response with its usage. A failure after the
stream began is ``response.failed`` and then an ``error`` event, which the SDK raises as
``openai.APIError``.
"""

from __future__ import annotations

from typing import Any

from ...errors import APIError
from ...types import ChatChunk, FinishReason, Usage, now
from .chat import dumps
from .errors import error_body
from .responses import (
    ResponsesOptions,
    function_call_item,
    message_item,
    new_item_id,
    response_object,
)

__all__ = ["ResponsesEncoder"]


class _Text:
    """A ``message`` output item being streamed."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.id = new_item_id("msg")
        self.pieces: list[str] = []
        self.done = False

    def item(self, status: str = "completed") -> dict[str, Any]:
        return message_item(self.id, "".join(self.pieces), status=status)


class _Call:
    """A ``function_call`` output item being streamed."""

    def __init__(self, index: int, call_id: str, name: str) -> None:
        self.index = index
        self.id = new_item_id("fc")
        self.call_id, self.name = call_id, name
        self.pieces: list[str] = []
        self.done = False

    def item(self, status: str = "completed") -> dict[str, Any]:
        return function_call_item(
            self.id, self.call_id, self.name, "".join(self.pieces), status=status
        )


class ResponsesEncoder:
    """The events of one streamed Responses answer (a :class:`~..protocol.StreamEncoder`).

    :meth:`completed` is the final ``response`` object once the usage is known (the
    gateway stores it, when asked, before the last event goes out).
    """

    def __init__(self, response_id: str, model: str, options: ResponsesOptions) -> None:
        self.response_id, self.model, self.options = response_id, model, options
        self.created_at = now()
        self.sequence = 0
        self.started = self.finished = False
        self.items: list[_Text | _Call] = []
        self._text: _Text | None = None  # the message item text goes to
        self._calls: dict[int, _Call] = {}  # tool call index → its item
        self.finish_reason: FinishReason | None = None
        self._final: dict[str, Any] | None = None

    # -- events ------------------------------------------------------------------------

    def _event(self, kind: str, data: dict[str, Any]) -> bytes:
        payload = dumps({"type": kind, "sequence_number": self.sequence, **data})
        self.sequence += 1
        return b"event: " + kind.encode() + b"\ndata: " + payload + b"\n\n"

    def _snapshot(self, status: str, **extra: Any) -> dict[str, Any]:
        return response_object(
            self.response_id, self.model, self.options, [], usage=None,
            status=status, created_at=self.created_at, **extra,
        )

    def start(self) -> bytes:
        if self.started:
            return b""
        self.started = True
        return self._event(
            "response.created", {"response": self._snapshot("in_progress")}
        ) + self._event("response.in_progress", {"response": self._snapshot("in_progress")})

    def _added(self, item: _Text | _Call) -> bytes:
        self.items.append(item)
        out = self._event(
            "response.output_item.added",
            {"output_index": item.index, "item": item.item("in_progress")},
        )
        if isinstance(item, _Text):
            out += self._event("response.content_part.added", {
                "item_id": item.id, "output_index": item.index, "content_index": 0,
                "part": {"type": "output_text", "text": "", "annotations": [], "logprobs": []},
            })
        return out

    def _text_delta(self, text: str) -> bytes:
        out = b""
        if self._text is None:
            self._text = _Text(len(self.items))
            out = self._added(self._text)
        item = self._text
        item.pieces.append(text)
        return out + self._event("response.output_text.delta", {
            "item_id": item.id, "output_index": item.index, "content_index": 0,
            "delta": text, "logprobs": [],
        })

    def _close(self, item: _Text | _Call) -> bytes:
        if item.done:
            return b""
        item.done = True
        text = "".join(item.pieces)
        if isinstance(item, _Text):
            out = self._event("response.output_text.done", {
                "item_id": item.id, "output_index": item.index, "content_index": 0,
                "text": text, "logprobs": [],
            }) + self._event("response.content_part.done", {
                "item_id": item.id, "output_index": item.index, "content_index": 0,
                "part": item.item()["content"][0],
            })
        else:
            out = self._event("response.function_call_arguments.done", {
                "item_id": item.id, "output_index": item.index, "name": item.name,
                "arguments": text,
            })
        return out + self._event(
            "response.output_item.done", {"output_index": item.index, "item": item.item()}
        )

    def feed(self, chunk: ChatChunk) -> bytes:
        """The events for one chunk (role-only and empty deltas send nothing)."""
        if self.finished:
            return b""
        out = self.start()
        for choice in chunk.choices:
            if choice.index != 0:
                continue
            delta = choice.delta
            text = (delta.content or "") + (delta.refusal or "")
            if text:
                out += self._text_delta(text)
            for call in delta.tool_calls or []:
                fn = call.function
                item = self._calls.get(call.index)
                if item is None:
                    if self._text is not None:  # text after the calls opens a new message
                        out += self._close(self._text)
                        self._text = None
                    item = _Call(len(self.items), call.id or new_item_id("call"),
                                 (fn.name if fn else None) or "")
                    self._calls[call.index] = item
                    out += self._added(item)
                if fn is not None and fn.arguments:
                    item.pieces.append(fn.arguments)
                    out += self._event("response.function_call_arguments.delta", {
                        "item_id": item.id, "output_index": item.index, "delta": fn.arguments,
                    })
            if choice.finish_reason is not None:
                self.finish_reason = choice.finish_reason
        return out

    def completed(self, usage: Usage | None) -> dict[str, Any]:
        """The final ``response`` object (the same one on every call)."""
        if self._final is None:
            output = [item.item() for item in self.items]
            if not output:
                output = [message_item(new_item_id("msg"), "")]
            self._final = response_object(
                self.response_id, self.model, self.options, output,
                usage=usage or Usage(), finish_reason=self.finish_reason,
                created_at=self.created_at,
            )
        return self._final

    def finish(self, usage: Usage | None) -> bytes:
        """Close every open item, then ``response.completed`` (or ``.incomplete``)."""
        if self.finished:
            return b""
        out = self.start()
        if not self.items:  # an empty answer is still one (empty) message
            self._text = _Text(0)
            out += self._added(self._text)
        for item in self.items:
            out += self._close(item)
        self.finished = True
        final = self.completed(usage)
        kind = "response.completed" if final["status"] == "completed" else "response.incomplete"
        return out + self._event(kind, {"response": final})

    def error(self, exc: BaseException) -> bytes:
        """``response.failed`` and the ``error`` event that ends a failed stream."""
        if self.finished:
            return b""
        out = self.start()
        self.finished = True
        body = error_body(exc)["error"]
        failure = {"code": body.get("code") or body.get("type"), "message": body["message"]}
        failed = self._snapshot("failed", error=failure)
        failed["output"] = [item.item("incomplete") for item in self.items]
        out += self._event("response.failed", {"response": failed})
        return out + self._event("error", {
            "code": failure["code"], "message": body["message"], "param": body.get("param"),
            "error": body,  # what the official SDK raises as openai.APIError
        })

    # -- the gateway's StreamEncoder ---------------------------------------------------

    def __call__(self, item: ChatChunk | APIError) -> bytes:
        if isinstance(item, APIError):
            return self.error(item)
        if item.usage is not None and not item.choices:
            return self.finish(item.usage)
        return self.feed(item)

    def close(self) -> bytes:
        # An upstream that never reported usage still gets its response.completed.
        return self.finish(None)
