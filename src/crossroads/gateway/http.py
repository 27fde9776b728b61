"""The HTTP machinery under the routes: the app class and its fast path, bounded body
reading, disconnect handling, error responses and the server-sent-event response.

Every response carries ``x-request-id``; every error has the body shape of the protocol
called (OpenAI ``{"error": {...}}``, Anthropic ``{"type": "error", "error": {...}}``).
Streams pass chunks through as they arrive; a client that disconnects cancels the
upstream call at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from ..errors import APIError, BadRequestError, ConfigError, CrossroadsError, UnknownModelError
from ..types import ChatChunk
from .call import Call, ClientGoneError, new_request_id
from .protocol import ClientProtocol, StreamEncoder

if TYPE_CHECKING:
    from .service import Gateway

__all__ = [
    "JSON",
    "BodyTooLargeError",
    "EventStream",
    "GatewayApp",
    "Handler",
    "Linger",
    "error_response",
    "read_body",
    "until_disconnect",
]

log = logging.getLogger("crossroads.gateway")

T = TypeVar("T")

#: An endpoint that answers a request on its own, errors included.
Handler = Callable[[Request], Awaitable[Response]]

JSON = "application/json"
_SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


class GatewayApp(FastAPI):
    """FastAPI with the running :class:`~.service.Gateway` and, in front of its whole
    middleware stack, :class:`_FastPath` for the ``direct_routes``."""

    #: POST paths whose handlers :class:`_FastPath` calls without FastAPI's routing.
    direct_routes: Mapping[str, Handler] = {}
    _gateway: Gateway | None = None

    @property
    def gateway(self) -> Gateway:
        """The gateway of the running app (made at start-up, closed at shutdown)."""
        if self._gateway is None:
            raise RuntimeError("The gateway app is not running (its lifespan has not started).")
        return self._gateway

    @gateway.setter
    def gateway(self, gateway: Gateway | None) -> None:
        self._gateway = gateway
        self.state.gateway = gateway

    def build_middleware_stack(self) -> ASGIApp:
        return _FastPath(super().build_middleware_stack(), self.direct_routes)


class _FastPath:
    """In front of FastAPI: the direct routes (the chat endpoints) go straight to their
    handlers (the router, dependency solving, error and telemetry middleware cost more
    than the rest of the request; the handlers turn every exception into a protocol
    error response themselves), and every other response gets ``x-request-id``."""

    def __init__(self, app: ASGIApp, direct_routes: Mapping[str, Handler]) -> None:
        self.app = app
        self.direct_routes = direct_routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        handler = self.direct_routes.get(scope["path"]) if scope["method"] == "POST" else None
        if handler is not None:
            response = await handler(Request(scope, receive))
            await response(scope, receive, send)
            return

        async def with_id(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(k == b"x-request-id" for k, _ in headers):
                    headers.append((b"x-request-id", new_request_id().encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_id)


# -- requests ----------------------------------------------------------------------------


class BodyTooLargeError(BadRequestError):
    """The request body is over ``gateway.max_request_bytes`` (HTTP 413)."""

    status_code = 413
    error_type = "request_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"The request body is larger than {limit:,} bytes "
            "(gateway.max_request_bytes). Send less, or raise the limit.",
            code="request_too_large",
        )


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with :class:`BodyTooLargeError` past ``limit`` bytes;
    :class:`ClientGoneError` when the connection ends first (the client left, or the
    server cut a body slower than ``gateway.body_timeout_s``)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyTooLargeError(limit)
    parts: list[bytes] = []
    size = 0
    try:
        async for part in request.stream():  # chunked bodies have no length to check first
            size += len(part)
            if size > limit:
                raise BodyTooLargeError(limit)
            parts.append(part)
    except ClientDisconnect:
        raise ClientGoneError(
            "The connection ended before the request body was complete."
        ) from None
    return b"".join(parts)


class Linger(Protocol):
    """Whether work goes on after its client left (to read what the upstream bills):
    ``begin`` gives the seconds it may still run, or None to cancel it now; ``end`` is
    called when it stops."""

    def begin(self) -> float | None: ...

    def end(self) -> None: ...


async def until_disconnect(
    request: Request, work: Awaitable[T], linger: Linger | None = None
) -> T:
    """Run ``work`` in this task; if the client goes away first, cancel it (and with it
    the upstream call) — or, when ``linger`` allows, let it finish within the seconds
    it gives and return its result for no one. The work is awaited directly, not wrapped
    in a task of its own: each hand-off between tasks costs a turn of the event loop,
    which under load is the larger part of the latency a gateway adds."""
    task = asyncio.current_task()
    assert task is not None
    gone = finished = False
    timer: asyncio.TimerHandle | None = None

    def on_disconnect(watcher: asyncio.Future[None]) -> None:
        nonlocal gone, timer
        # A callback already scheduled when the work finished must not cancel what
        # comes after it.
        if not finished and not watcher.cancelled() and watcher.exception() is None:
            gone = True
            grace = linger.begin() if linger is not None else None
            if grace is None:
                task.cancel()
            else:
                timer = asyncio.get_running_loop().call_later(grace, task.cancel)

    watcher = asyncio.ensure_future(_disconnected(request.receive))
    watcher.add_done_callback(on_disconnect)
    try:
        return await work
    except asyncio.CancelledError:
        if not gone:
            raise
        task.uncancel()
        raise ClientGoneError(
            "The client closed the connection before the answer was ready."
        ) from None
    finally:
        finished = True
        watcher.remove_done_callback(on_disconnect)
        watcher.cancel()
        if timer is not None:
            timer.cancel()
        if gone and linger is not None:
            linger.end()


async def _disconnected(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


# -- responses ---------------------------------------------------------------------------


def error_response(call: Call, exc: BaseException, protocol: ClientProtocol) -> Response:
    """The error answer for ``exc`` in the protocol's shape (499, empty, for a client
    that left); unexpected exceptions are logged."""
    if not isinstance(exc, CrossroadsError):
        log.exception("unexpected error in %s (%s)", call.endpoint, call.request_id)
    elif isinstance(exc, ConfigError) and not isinstance(exc, UnknownModelError):
        # The client is told to ask the operator; the details are for the operator only.
        log.warning("%s (%s): %s", call.endpoint, call.request_id, exc.message)
    if isinstance(exc, ClientGoneError):
        return Response(status_code=499, headers=call.headers)
    status, body, headers = protocol.error_response(exc)
    extra = getattr(exc, "headers", None)  # rate-limit and quota headers of the gateway's own
    if isinstance(extra, dict):
        headers = {**extra, **headers}
    return Response(
        json.dumps(body), status_code=status, media_type=JSON, headers={**call.headers, **headers}
    )


class EventStream(Response):
    """Server-sent events relayed as they arrive: ``items`` encoded by ``encode``; a
    disconnect cancels the relay (once ``linger``, if any, lets it run no longer) and
    calls ``abandon``."""

    def __init__(
        self,
        headers: Mapping[str, str],
        items: AsyncGenerator[ChatChunk | APIError, None],
        encode: StreamEncoder,
        abandon: Callable[[], Awaitable[None]],
        linger: Linger | None = None,
    ) -> None:
        super().__init__(
            status_code=200, headers={**headers, **_SSE_HEADERS}, media_type="text/event-stream"
        )
        self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        self.items, self.encode, self.abandon = items, encode, abandon
        self.linger, self.gone = linger, False
        self.request_id = headers.get("x-request-id")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": 200, "headers": self.raw_headers}
        )
        pump = asyncio.ensure_future(self._pump(send))
        watcher = asyncio.ensure_future(_disconnected(receive))
        try:
            await asyncio.wait({pump, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if not pump.done() and self.linger is not None:
                await self._linger(pump)
        finally:
            watcher.cancel()
            if not pump.done():
                pump.cancel()
                await asyncio.gather(pump, return_exceptions=True)
        if pump.cancelled():
            # The client went away; the relay recorded it, unless it never started.
            await self.abandon()
            return
        failure = pump.exception()
        if failure is not None:
            # A bug, not an upstream failure (those end the stream with an error event).
            log.error("stream %s failed", self.request_id, exc_info=failure)
            return
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _linger(self, pump: asyncio.Future[None]) -> None:
        """The client left: let the relay read on, unsent, while ``linger`` allows."""
        assert self.linger is not None
        grace = self.linger.begin()
        if grace is None:
            return
        self.gone = True
        try:
            await asyncio.wait({pump}, timeout=grace)
        finally:
            self.linger.end()

    async def _pump(self, send: Send) -> None:
        encode = self.encode
        async with aclosing(self.items) as items:
            async for item in items:  # closed even if cancelled mid-send: usage recorded
                if self.gone:
                    continue
                data = encode(item)
                if data:
                    await send({"type": "http.response.body", "body": data, "more_body": True})
        tail = encode.close()
        if tail:
            await send({"type": "http.response.body", "body": tail, "more_body": True})
