"""One HTTP/1.1 connection of :class:`~._fasthttp.FastTransport`: the wire work.

An asyncio protocol feeds llhttp (httptools) from ``data_received`` and runs one exchange
at a time: the request serialized whole with a Content-Length (RFC 9112 §6.2), 1xx
answers skipped, the body framed by Content-Length, chunking or the server's close
(RFC 9112 §6.3) and handed out as it arrives (:class:`Body`), reading paused while more
than ``MAX_BUFFERED`` bytes wait unread. The pool that owns connections is in
``_fasthttp``; errors raised here are the ``httpx.TransportError`` classes listed there.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, cast

import httptools
import httpx

if TYPE_CHECKING:
    from ._fasthttp import FastTransport

__all__ = ["MAX_BUFFERED", "Body", "Connection", "Origin", "expire", "serialize"]

#: Unread answer bytes held per connection before reading from the socket pauses.
MAX_BUFFERED = 1 << 20
_BODYLESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE", "TRACE"})

Origin = tuple[str, str, int]


def expire(waiter: asyncio.Future[Any]) -> None:
    """Timer callback: a wait that ran out is answered False."""
    if not waiter.done():
        waiter.set_result(False)


class Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: llhttp fed from ``data_received``, one exchange at a time."""

    def __init__(self, pool: FastTransport, origin: Origin, loop: asyncio.AbstractEventLoop):
        self.pool = pool
        self.origin = origin
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[bool] | None = None
        #: Holds one of the pool's connection slots (released exactly once).
        self.slot = True
        self.closed = False
        self.idle = False
        self.idle_since = 0.0
        self.answered = 0
        self.paused_reading = False
        self.paused_writing = False
        # the exchange in progress
        self.request: httpx.Request | None = None
        self.reusable = True
        self.interim = False
        self.received = False
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.headers_done = False
        self.complete = False
        self.body: list[bytes] = []
        self.buffered = 0
        self.error: httpx.TransportError | None = None

    # -- asyncio.Protocol ------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self.request is None or self.complete:
            # Nothing was asked (or the answer is over): the bytes cannot be framed.
            self.reusable = False
            self.close()
            return
        self.received = True
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            if not self.complete:
                self.fail(
                    httpx.RemoteProtocolError(
                        f"malformed HTTP answer: {exc!r}", request=self.request
                    )
                )
            self.reusable = False
            self.close()
        self.wake()

    def eof_received(self) -> bool:
        return False  # close our side too; connection_lost does the rest

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.request is not None and not self.complete and self.error is None:
            if exc is not None:
                self.error = httpx.ReadError(str(exc) or type(exc).__name__, request=self.request)
            elif self.headers_done and self._close_delimited():
                self.complete = True
                self.reusable = False
            elif self.received:
                self.error = httpx.RemoteProtocolError(
                    "the server closed the connection before the end of the answer",
                    request=self.request,
                )
            else:
                self.error = httpx.RemoteProtocolError(
                    "Server disconnected without sending a response.", request=self.request
                )
        self.wake()
        if self.idle:
            self.pool._forget(self)

    def pause_writing(self) -> None:
        self.paused_writing = True

    def resume_writing(self) -> None:
        self.paused_writing = False
        self.wake()

    # -- httptools callbacks ---------------------------------------------------------
    def on_message_begin(self) -> None:
        if self.complete:  # bytes after the end of the answer: stop parsing them
            raise ValueError("data after the end of the answer")
        self.interim = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if status < 200:
            if status == 101:
                raise ValueError("unexpected 101 Switching Protocols")
            self.interim = True  # 1xx: skip it, the real answer follows
            return
        self.status = status
        self.headers_done = True
        assert self.request is not None
        if self.request.method == "HEAD":
            # llhttp would wait for the Content-Length bytes that never come: stop here.
            self.complete = True
            self.reusable = False

    def on_body(self, body: bytes) -> None:
        self.body.append(body)
        self.buffered += len(body)
        if self.buffered > MAX_BUFFERED and not self.paused_reading and self.transport:
            self.paused_reading = True
            self.transport.pause_reading()

    def on_message_complete(self) -> None:
        if self.interim:
            self.interim = False
            self.headers = []
            return
        self.complete = True
        if not self.parser.should_keep_alive():
            self.reusable = False

    # -- the exchange ----------------------------------------------------------------
    def _close_delimited(self) -> bool:
        """Whether the answer's body runs until the server closes (RFC 9112 §6.3, item 8)."""
        for name, value in self.headers:
            lowered = name.lower()
            if lowered == b"content-length":
                return False
            if lowered == b"transfer-encoding" and b"chunked" in value.lower():
                return False
        return True

    def fail(self, error: httpx.TransportError) -> None:
        if self.error is None:
            self.error = error

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(True)

    async def wait(self, limit_s: float | None) -> bool:
        """Wait for news from the socket; False if ``limit_s`` seconds passed first."""
        waiter: asyncio.Future[bool] = self.loop.create_future()
        self.waiter = waiter
        timer = None if limit_s is None else self.loop.call_later(limit_s, expire, waiter)
        try:
            return await waiter
        finally:
            self.waiter = None
            if timer is not None:
                timer.cancel()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    async def exchange(
        self,
        request: httpx.Request,
        data: bytes,
        reusable: bool,
        write_timeout: float | None,
        read_timeout: float | None,
    ) -> None:
        """Send one request and wait for the head of its answer."""
        self.request = request
        self.reusable = reusable
        self.interim = self.received = self.headers_done = self.complete = False
        self.status = 0
        self.headers = []
        self.body = []
        self.buffered = 0
        self.error = None
        if self.closed or self.transport is None or self.transport.is_closing():
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            )
        self.transport.write(data)
        while self.paused_writing and self.error is None:
            if not await self.wait(write_timeout):
                raise httpx.WriteTimeout("timed out sending the request", request=request)
        while not self.headers_done:
            if self.error is not None:
                raise self.error
            if not await self.wait(read_timeout):
                raise httpx.ReadTimeout("timed out waiting for the answer", request=request)


class Body(httpx.AsyncByteStream):
    """The answer's body as it arrives; the connection goes back to the pool at its end."""

    def __init__(self, conn: Connection, read_timeout: float | None) -> None:
        self._conn: Connection | None = conn
        self._read_timeout = read_timeout

    def __aiter__(self) -> Body:
        return self

    async def __anext__(self) -> bytes:
        conn = self._conn
        if conn is None:
            raise StopAsyncIteration
        while True:
            body = conn.body
            if body:
                chunk = body[0] if len(body) == 1 else b"".join(body)
                conn.body = []
                conn.buffered = 0
                if conn.paused_reading and conn.transport is not None:
                    conn.paused_reading = False
                    conn.transport.resume_reading()
                if conn.complete:
                    self._conn = None
                    conn.pool._release(conn)
                return chunk
            if conn.complete:
                self._conn = None
                conn.pool._release(conn)
                raise StopAsyncIteration
            if conn.error is not None:
                self._discard()
                raise conn.error
            try:
                arrived = await conn.wait(self._read_timeout)
            except BaseException:
                self._discard()
                raise
            if not arrived:
                self._discard()
                raise httpx.ReadTimeout("timed out reading the answer", request=conn.request)

    def _discard(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.pool._drop(conn)

    async def aclose(self) -> None:
        """Closed before its end: the connection is closed, not pooled."""
        self._discard()


def serialize(request: httpx.Request, body: bytes) -> tuple[bytes, bool]:
    """The request's bytes on the wire, and whether the connection may be kept after it.

    The body is always sent whole with a Content-Length (RFC 9112 §6.2), never chunked.
    """
    lines = [request.method.encode("ascii"), b" ", request.url.raw_path, b" HTTP/1.1\r\n"]
    has_host = has_length = False
    keep = True
    for name, value in request.headers.raw:
        lowered = name.lower()
        if lowered == b"host":
            has_host = True
        elif lowered == b"content-length":
            has_length = True
        elif lowered == b"transfer-encoding":
            continue
        elif lowered == b"connection" and b"close" in value.lower():
            keep = False
        lines += (name, b": ", value, b"\r\n")
    if not has_host:
        lines[4:4] = (b"Host: ", request.url.netloc, b"\r\n")
    if not has_length and (body or request.method not in _BODYLESS_METHODS):
        lines += (b"Content-Length: ", str(len(body)).encode("ascii"), b"\r\n")
    lines += (b"\r\n", body)
    return b"".join(lines), keep
