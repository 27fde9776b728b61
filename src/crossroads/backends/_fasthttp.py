"""A lean HTTP/1.1 transport for httpx, on asyncio protocols and the httptools C parser.

httpx's default transport (httpcore → anyio → h11) spends most of the client CPU of a
streamed request on bookkeeping; this one keeps httpx's public API (it is given to
``httpx.AsyncClient(transport=...)``, so requests, responses, ``Content-Encoding``
decoding, redirects and tests with ``MockTransport`` are unchanged) and does the wire
work with one asyncio protocol per connection feeding llhttp (``bench/http_client.py``).

Supported: HTTP/1.1 over TCP and TLS; a pool per (scheme, host, port) with keep-alive
reuse under :class:`httpx.Limits` (``max_connections`` across the transport, callers
queue and get ``PoolTimeout``; ``max_keepalive_connections``; ``keepalive_expiry``);
Content-Length, chunked and close-delimited answers (RFC 9112 §6.3), streamed as they
arrive, with reading paused while more than ``MAX_BUFFERED`` bytes wait unread. A request
sent on a reused connection that the server closed without one byte of answer back is
sent once more on a new connection: the keep-alive race of RFC 9112 §9.3.1, where the
server closed the idle connection as the request left (for a POST this trusts that a
server does not act on a request it closes unanswered). Not supported: HTTP/2, proxies
(:func:`fast_transport_enabled` sends those setups to httpx's own transport), client
certificates, protocol upgrades; a HEAD answer's connection is not reused.

Errors, each an ``httpx.TransportError`` carrying its request:

    ConnectTimeout / ConnectError   opening the connection (refused, DNS, TLS handshake)
    PoolTimeout                     no connection free within ``timeout.pool``
    WriteTimeout / WriteError       the request could not be sent in time / at all
    ReadTimeout                     no byte of the answer within ``timeout.read``
    ReadError                       the connection was reset
    RemoteProtocolError             the server closed before the end of the answer, or
                                    sent something that is not HTTP/1.1
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
from collections import deque
from collections.abc import Mapping
from typing import Any, cast

import httptools
import httpx

__all__ = ["MAX_BUFFERED", "FastTransport", "fast_transport_enabled"]

#: Unread answer bytes held per connection before reading from the socket pauses.
MAX_BUFFERED = 1 << 20
DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)
TRANSPORT_ENV = "CROSSROADS_HTTP_TRANSPORT"
_PROXY_VARS = frozenset({"http_proxy", "https_proxy", "all_proxy"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_BODYLESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE", "TRACE"})

Origin = tuple[str, str, int]


def fast_transport_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """Whether to use :class:`FastTransport`: not when ``CROSSROADS_HTTP_TRANSPORT=httpx``,
    nor when a proxy variable (``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY``, any case) is
    set, since only httpx's own transport speaks to proxies."""
    env = os.environ if environ is None else environ
    if env.get(TRANSPORT_ENV, "").strip().lower() == "httpx":
        return False
    return not any(value and name.lower() in _PROXY_VARS for name, value in env.items())


def _expire(waiter: asyncio.Future[Any]) -> None:
    if not waiter.done():
        waiter.set_result(False)


class _Connection(asyncio.Protocol):
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
        timer = None if limit_s is None else self.loop.call_later(limit_s, _expire, waiter)
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


class _Body(httpx.AsyncByteStream):
    """The answer's body as it arrives; the connection goes back to the pool at its end."""

    def __init__(self, conn: _Connection, read_timeout: float | None) -> None:
        self._conn: _Connection | None = conn
        self._read_timeout = read_timeout

    def __aiter__(self) -> _Body:
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


class FastTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 connection pool for ``httpx.AsyncClient(transport=FastTransport())``.

    ``verify`` is as httpx's: ``True`` (the system's certificates, certifi's if the
    system has none), ``False``, a CA bundle path, or an :class:`ssl.SSLContext`.
    """

    def __init__(
        self, *, verify: ssl.SSLContext | str | bool = True, limits: httpx.Limits = DEFAULT_LIMITS
    ) -> None:
        self._verify = verify
        self._ssl: ssl.SSLContext | None = None
        self._max_open = limits.max_connections or 1 << 30
        self._max_idle = (
            limits.max_keepalive_connections
            if limits.max_keepalive_connections is not None
            else self._max_open
        )
        self._expiry = limits.keepalive_expiry
        self._open = 0  # connection slots held: open or opening connections
        self._idle: dict[Origin, list[_Connection]] = {}
        self._idle_count = 0
        self._waiters: deque[tuple[Origin, asyncio.Future[Any]]] = deque()
        self._conns: set[_Connection] = set()
        self._closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        scheme = url.scheme
        if scheme not in _DEFAULT_PORTS:
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {scheme!r}", request=request)
        if self._closed:
            raise RuntimeError("the transport is closed")
        origin = (scheme, url.raw_host.decode("ascii"), url.port or _DEFAULT_PORTS[scheme])
        timeouts = request.extensions.get("timeout") or {}
        data, reusable = _serialize(request, await request.aread())
        conn = await self._acquire(origin, request, timeouts.get("pool"))
        for attempt in (0, 1):
            if conn is None:
                conn = await self._connect(origin, request, timeouts.get("connect"))
            try:
                await conn.exchange(
                    request, data, reusable, timeouts.get("write"), timeouts.get("read")
                )
            except (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError):
                if attempt == 0 and conn.answered and not conn.received:
                    # The server closed this idle connection before reading the request.
                    self._retire(conn)
                    conn = None
                    continue
                self._drop(conn)
                raise
            except BaseException:
                self._drop(conn)
                raise
            break
        assert conn is not None
        return httpx.Response(
            conn.status,
            headers=conn.headers,
            stream=_Body(conn, timeouts.get("read")),
            extensions={"http_version": b"HTTP/" + conn.parser.get_http_version().encode()},
            request=request,
        )

    async def aclose(self) -> None:
        self._closed = True
        while self._waiters:
            _, waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(False)
        self._idle.clear()
        self._idle_count = 0
        for conn in list(self._conns):
            conn.idle = False
            self._drop(conn)

    # -- the pool ------------------------------------------------------------------
    async def _acquire(
        self, origin: Origin, request: httpx.Request, limit_s: float | None
    ) -> _Connection | None:
        """An idle connection to ``origin``, or None with a slot held to open one."""
        idle = self._idle.get(origin)
        if idle:
            now = asyncio.get_running_loop().time()
            while idle:
                conn = idle.pop()
                self._idle_count -= 1
                conn.idle = False
                if conn.closed or (
                    self._expiry is not None and now - conn.idle_since > self._expiry
                ):
                    self._drop(conn)
                    continue
                return conn
        if self._open < self._max_open:
            self._open += 1
            return None
        for others in self._idle.values():
            if others:  # make room by closing the longest idle connection elsewhere
                victim = others.pop(0)
                self._idle_count -= 1
                victim.idle = victim.slot = False
                self._close(victim)
                return None
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Any] = loop.create_future()
        entry = (origin, waiter)
        self._waiters.append(entry)
        timer = None if limit_s is None else loop.call_later(limit_s, _expire, waiter)
        try:
            got = await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._give_back(waiter.result())
            else:
                self._unqueue(entry)
            raise
        finally:
            if timer is not None:
                timer.cancel()
        if got is False:
            self._unqueue(entry)
            if self._closed:
                raise RuntimeError("the transport is closed")
            raise httpx.PoolTimeout("no connection free in time", request=request)
        return got  # type: ignore[no-any-return]

    def _unqueue(self, entry: tuple[Origin, asyncio.Future[Any]]) -> None:
        with contextlib.suppress(ValueError):
            self._waiters.remove(entry)

    def _give_back(self, got: _Connection | bool | None) -> None:
        """What was handed to a waiter that left: a connection, or a slot (None)."""
        if isinstance(got, _Connection):
            self._release(got)
        elif got is None:
            self._free_slot()

    def _next_waiter(self, origin: Origin | None) -> asyncio.Future[Any] | None:
        for index, (wanted, waiter) in enumerate(self._waiters):
            if not waiter.done() and (origin is None or wanted == origin):
                del self._waiters[index]
                return waiter
        return None

    def _free_slot(self) -> None:
        waiter = self._next_waiter(None) if self._waiters else None
        if waiter is not None:
            waiter.set_result(None)  # the slot passes to the first waiter
        else:
            self._open -= 1

    async def _connect(
        self, origin: Origin, request: httpx.Request, limit_s: float | None
    ) -> _Connection:
        """Open a connection in a slot already held (the slot is freed if this fails)."""
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        conn = _Connection(self, origin, loop)
        try:
            ssl_context = self._ssl_context() if scheme == "https" else None
            connecting = loop.create_connection(
                lambda: conn,
                host,
                port,
                ssl=ssl_context,
                server_hostname=host if ssl_context is not None else None,
            )
            await asyncio.wait_for(connecting, limit_s)
        except BaseException as exc:
            if conn.transport is not None:  # connected as the timeout struck
                conn.transport.close()
            self._free_slot()
            if isinstance(exc, TimeoutError):
                raise httpx.ConnectTimeout(f"connecting to {host}:{port}", request=request) from exc
            if isinstance(exc, OSError):
                raise httpx.ConnectError(
                    f"cannot connect to {host}:{port}: {exc}", request=request
                ) from exc
            raise
        self._conns.add(conn)
        return conn

    def _release(self, conn: _Connection) -> None:
        """The answer was read to its end: pool the connection, or close it."""
        conn.request = None
        conn.answered += 1
        if not conn.reusable or conn.closed or not conn.slot or self._closed:
            self._drop(conn)
            return
        if self._waiters:
            waiter = self._next_waiter(conn.origin)
            if waiter is not None:
                waiter.set_result(conn)
                return
            waiter = self._next_waiter(None)
            if waiter is not None:  # its slot goes to a waiter for another origin
                self._retire(conn)
                waiter.set_result(None)
                return
        if self._idle_count >= self._max_idle:
            self._drop(conn)
            return
        conn.idle = True
        conn.idle_since = conn.loop.time()
        self._idle.setdefault(conn.origin, []).append(conn)
        self._idle_count += 1

    def _forget(self, conn: _Connection) -> None:
        """An idle connection was closed by the server."""
        idle = self._idle.get(conn.origin)
        if idle and conn in idle:
            idle.remove(conn)
            self._idle_count -= 1
        conn.idle = False
        self._drop(conn)

    def _drop(self, conn: _Connection) -> None:
        """Close a connection that is not in the idle lists and free its slot."""
        conn.request = None
        self._close(conn)
        if conn.slot:
            conn.slot = False
            self._free_slot()

    def _retire(self, conn: _Connection) -> None:
        """Close a connection but keep its slot for a new one."""
        conn.slot = False
        self._close(conn)

    def _close(self, conn: _Connection) -> None:
        conn.close()
        self._conns.discard(conn)

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            verify = self._verify
            if isinstance(verify, ssl.SSLContext):
                self._ssl = verify
                return verify
            if isinstance(verify, str):
                context = (
                    ssl.create_default_context(capath=verify)
                    if os.path.isdir(verify)
                    else ssl.create_default_context(cafile=verify)
                )
            else:
                context = ssl.create_default_context()
                if not verify:
                    context.check_hostname = False
                    context.verify_mode = ssl.CERT_NONE
                elif not context.cert_store_stats().get("x509_ca"):
                    import certifi  # httpx's own dependency, for systems without a CA store

                    context.load_verify_locations(certifi.where())
            context.set_alpn_protocols(["http/1.1"])
            self._ssl = context
        return self._ssl


def _serialize(request: httpx.Request, body: bytes) -> tuple[bytes, bool]:
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
