"""The one server-sent events parser, for every streamed answer of every HTTP backend.

It follows https://html.spec.whatwg.org/multipage/server-sent-events.html (§9.2.6,
"Interpreting an event stream"): the stream is UTF-8 whatever its ``charset`` says, one
leading byte order mark is skipped, lines end at CRLF, LF or CR only (a CRLF split
across two chunks counts once), ``:`` starts a comment, one space after the field's
colon is dropped, ``data`` lines join with LF, an event with no data is not dispatched,
``id`` persists until the next one and is ignored when it holds NUL, ``retry`` and
unknown fields are ignored (no reconnection happens here). One leniency: an event the
upstream left unterminated when the stream ended (``data: [DONE]`` with no blank line
after it) is still dispatched, where the spec drops it.

The parser works on whole chunks: one decode and one split per chunk, each line looked
at once, so the cost per event stays near that of the JSON decode that follows it.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import AsyncGenerator, AsyncIterable, Callable
from dataclasses import dataclass
from typing import Any

from ..errors import UpstreamUnavailableError

#: JSON decoding of stream events: orjson, about 5x faster than the stdlib on them
#: (bench/codec.py); the stdlib when orjson is not installed.
json_loads: Callable[[str | bytes], Any]
try:
    import orjson

    json_loads = orjson.loads
except ImportError:  # pragma: no cover - orjson is a dependency; kept working without it
    json_loads = json.loads

__all__ = ["SSEEvent", "SSEFramer", "SSEParser", "decode_event", "iter_sse", "json_loads"]


@dataclass(frozen=True, slots=True)
class SSEEvent:
    event: str
    data: str
    id: str | None = None

    def json(self) -> Any:
        return json.loads(self.data)


class SSEParser:
    """Bytes in (:meth:`feed`, then :meth:`close` at the end), events out."""

    __slots__ = ("_after_cr", "_data", "_decode", "_event", "_last_id", "_tail")

    def __init__(self) -> None:
        # "utf-8-sig" drops one leading BOM; "replace" is the spec's UTF-8 decode.
        self._decode = codecs.getincrementaldecoder("utf-8-sig")("replace").decode
        self._tail = ""  # the line in progress
        self._after_cr = False  # the last chunk ended in CR: a LF next ends no line
        self._event = ""
        self._data: list[str] = []
        self._last_id: str | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """The events that this chunk completes."""
        return self._text(self._decode(chunk))

    def close(self) -> list[SSEEvent]:
        """The events left when the stream ends: its unterminated last line and event."""
        events = self._text(self._decode(b"", True))
        if self._tail:
            events += self._lines([self._tail])
            self._tail = ""
        if self._data:
            events.append(SSEEvent(self._event or "message", "\n".join(self._data), self._last_id))
            self._event, self._data = "", []
        return events

    def _text(self, text: str) -> list[SSEEvent]:
        if not text:
            return []
        if self._after_cr:
            self._after_cr = False
            if text[0] == "\n":
                text = text[1:]
        if "\r" in text:
            self._after_cr = text[-1] == "\r"
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        lines = text.split("\n")
        if self._tail:
            lines[0] = self._tail + lines[0]
        self._tail = lines.pop()
        return self._lines(lines) if lines else []

    def _lines(self, lines: list[str]) -> list[SSEEvent]:
        events: list[SSEEvent] = []
        data = self._data
        for line in lines:
            if line[:6] == "data: ":  # nearly every line of a stream
                data.append(line[6:])
                continue
            if not line:
                if data:
                    events.append(
                        SSEEvent(self._event or "message", "\n".join(data), self._last_id)
                    )
                    data = self._data = []
                self._event = ""
                continue
            if line[0] == ":":
                continue
            name, _, value = line.partition(":")
            if value[:1] == " ":
                value = value[1:]
            if name == "data":
                data.append(value)
            elif name == "event":
                self._event = value
            elif name == "id" and "\0" not in value:
                self._last_id = value
        return events


class SSEFramer:
    """Bytes in, each complete event out as ``(its bytes, the event)``: for relaying a
    stream as it was sent while still reading what it says.

    The bytes of an event are the upstream's own, up to and including the blank line
    that ends it; line ends are turned into LF first only when the upstream uses CR
    (CRLF split across two chunks counts once, as in :class:`SSEParser`). A block with
    no data (comments, a lone ``retry:``) is not an event and is dropped; one leading
    byte order mark is dropped; an event left unterminated when the stream ends comes
    out of :meth:`close`, terminated."""

    __slots__ = ("_buf", "_started")

    def __init__(self) -> None:
        self._buf = b""
        self._started = False

    def feed(self, chunk: bytes) -> list[tuple[bytes, SSEEvent]]:
        buf = self._buf + chunk if self._buf else chunk
        if not self._started and buf:
            if len(buf) < 3 and b"\xef\xbb\xbf".startswith(buf):
                self._buf = buf  # a BOM might be arriving
                return []
            self._started = True
            if buf[:3] == b"\xef\xbb\xbf":
                buf = buf[3:]
        if b"\r" in buf:
            keep_cr = buf[-1:] == b"\r"  # a LF may follow in the next chunk
            if keep_cr:
                buf = buf[:-1]
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            if keep_cr:
                buf += b"\r"
        if b"\n\n" not in buf:
            self._buf = buf
            return []
        blocks = buf.split(b"\n\n")
        self._buf = blocks.pop()
        return [framed for block in blocks if (framed := _frame(block)) is not None]

    def close(self) -> list[tuple[bytes, SSEEvent]]:
        tail, self._buf = self._buf.rstrip(b"\r\n"), b""
        framed = _frame(tail) if tail else None
        return [framed] if framed is not None else []


def _frame(block: bytes) -> tuple[bytes, SSEEvent] | None:
    """One event's bytes (terminated) and the event, or None when it has no data."""
    if not block:
        return None
    if block[:6] == b"data: " and b"\n" not in block:  # nearly every event of a stream
        return block + b"\n\n", SSEEvent("message", block[6:].decode("utf-8", "replace"))
    events = SSEParser().feed(block + b"\n\n")
    if not events:
        return None
    return block + b"\n\n", events[0]


async def iter_sse(chunks: AsyncIterable[bytes]) -> AsyncGenerator[SSEEvent, None]:
    """The server-sent events of a byte stream, each as soon as its chunk arrives."""
    parser = SSEParser()
    async for chunk in chunks:
        for event in parser.feed(chunk):
            yield event
    for event in parser.close():
        yield event


def decode_event(event: SSEEvent, vendor: str) -> Any:
    """The JSON payload of a stream event; a malformed one is an upstream failure."""
    try:
        return json_loads(event.data)
    except ValueError as exc:
        raise UpstreamUnavailableError(
            f"malformed stream event: {event.data[:200]!r}", vendor=vendor
        ) from exc
