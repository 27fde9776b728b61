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
from typing import Any

import httpx

from ._fastconn import MAX_BUFFERED, Body, Connection, Origin, expire, serialize

__all__ = ["MAX_BUFFERED", "FastTransport", "fast_transport_enabled"]

DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)
TRANSPORT_ENV = "CROSSROADS_HTTP_TRANSPORT"
_PROXY_VARS = frozenset({"http_proxy", "https_proxy", "all_proxy"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def fast_transport_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """Whether to use :class:`FastTransport`: not when ``CROSSROADS_HTTP_TRANSPORT=httpx``,
    nor when a proxy variable (``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY``, any case) is
    set, since only httpx's own transport speaks to proxies."""
    env = os.environ if environ is None else environ
    if env.get(TRANSPORT_ENV, "").strip().lower() == "httpx":
        return False
    return not any(value and name.lower() in _PROXY_VARS for name, value in env.items())


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
        self._idle: dict[Origin, list[Connection]] = {}
        self._idle_count = 0
        self._waiters: deque[tuple[Origin, asyncio.Future[Any]]] = deque()
        self._conns: set[Connection] = set()
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
        data, reusable = serialize(request, await request.aread())
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
            stream=Body(conn, timeouts.get("read")),
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
    ) -> Connection | None:
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
        timer = None if limit_s is None else loop.call_later(limit_s, expire, waiter)
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

    def _give_back(self, got: Connection | bool | None) -> None:
        """What was handed to a waiter that left: a connection, or a slot (None)."""
        if isinstance(got, Connection):
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
    ) -> Connection:
        """Open a connection in a slot already held (the slot is freed if this fails)."""
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        conn = Connection(self, origin, loop)
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

    def _release(self, conn: Connection) -> None:
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

    def _forget(self, conn: Connection) -> None:
        """An idle connection was closed by the server."""
        idle = self._idle.get(conn.origin)
        if idle and conn in idle:
            idle.remove(conn)
            self._idle_count -= 1
        conn.idle = False
        self._drop(conn)

    def _drop(self, conn: Connection) -> None:
        """Close a connection that is not in the idle lists and free its slot."""
        conn.request = None
        self._close(conn)
        if conn.slot:
            conn.slot = False
            self._free_slot()

    def _retire(self, conn: Connection) -> None:
        """Close a connection but keep its slot for a new one."""
        conn.slot = False
        self._close(conn)

    def _close(self, conn: Connection) -> None:
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
