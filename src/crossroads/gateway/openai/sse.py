"""A streamed Chat Completions answer as server-sent events:
https://platform.openai.com/docs/api-reference/chat-streaming.

Each chunk is one ``data: {...}`` event and ``data: [DONE]`` ends the stream. The usage
chunk goes out only when the client asked for it (``stream_options.include_usage``); a
failure after the headers is one ``data: {"error": {...}}`` event with no ``[DONE]``.
"""

from __future__ import annotations

from ...errors import APIError
from ...types import ChatChunk, ChatRequest
from .chat import chunk_json, dumps
from .errors import error_body

__all__ = ["DONE", "ChunkEncoder", "chunk_sse", "stream_error_sse"]

DONE = b"data: [DONE]\n\n"


def chunk_sse(chunk: ChatChunk) -> bytes:
    """One server-sent event ``data: {...}\\n\\n`` of a streamed answer."""
    return b"data: " + dumps(chunk_json(chunk)) + b"\n\n"


def stream_error_sse(exc: BaseException) -> bytes:
    """The last event of a stream that failed after its headers were sent (no ``[DONE]``)."""
    return b"data: " + dumps(error_body(exc)) + b"\n\n"


class ChunkEncoder:
    """The events of one streamed answer (a :class:`~..protocol.StreamEncoder`)."""

    def __init__(self, request: ChatRequest | None, model: str) -> None:
        self.include_usage = bool(
            request is not None
            and request.stream_options is not None
            and request.stream_options.include_usage
        )
        self.failed = False

    def __call__(self, item: ChatChunk | APIError) -> bytes:
        if isinstance(item, APIError):
            self.failed = True
            return stream_error_sse(item)
        if item.usage is not None and not item.choices:
            return chunk_sse(item) if self.include_usage else b""
        return chunk_sse(item)

    def close(self) -> bytes:
        return b"" if self.failed else DONE
