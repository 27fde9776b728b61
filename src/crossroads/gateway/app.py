"""The HTTP surface: FastAPI routes for the OpenAI and Anthropic protocols, admin, health.

Every response carries ``x-request-id``; every error has the body shape of the protocol
called (OpenAI ``{"error": {...}}``, Anthropic ``{"type": "error", "error": {...}}``).
Streams pass chunks through as they arrive; a client that disconnects cancels the
upstream call at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import aclosing, asynccontextmanager
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

from ..config import Config, load_config
from ..errors import APIError, BadRequestError, CrossroadsError
from ..types import ChatChunk
from . import openapi
from .metrics import CONTENT_TYPE_LATEST
from .protocols import anthropic as anthropic_wire
from .protocols import openai as openai_wire
from .service import Call, ClientGoneError, Gateway, new_request_id

__all__ = ["app_from_env", "create_app"]

log = logging.getLogger("crossroads.gateway")

T = TypeVar("T")

Handler = Callable[[Request], Awaitable[Response]]

_SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
_JSON = "application/json"


def create_app(config: Config | None = None) -> FastAPI:
    """The gateway app for ``config`` (default: the usual config lookup)."""
    config = config if config is not None else load_config()
    holder: dict[str, Gateway] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        holder["gw"] = app.state.gateway = Gateway.create(config)
        try:
            yield
        finally:
            await holder.pop("gw").aclose()

    app = _GatewayApp(
        title="Crossroads gateway",
        version=_version(),
        description="OpenAI- and Anthropic-compatible gateway to open and closed models.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )

    def gw() -> Gateway:
        return holder["gw"]

    # -- OpenAI protocol ---------------------------------------------------------------

    @app.post("/v1/chat/completions", openapi_extra=openapi.chat_completions())
    async def chat_completions(request: Request) -> Response:
        call = Call(protocol="openai", endpoint="/v1/chat/completions")
        return await _serve(gw(), call, request, openai_wire.parse_chat_request, _openai_body)

    @app.get("/v1/models", openapi_extra=openapi.errors("openai"))
    async def models(request: Request) -> Response:
        call = Call(protocol="openai", endpoint="/v1/models")
        try:
            await gw().authenticate(call, request.headers)
            body = openai_wire.models_list(_model_names(gw(), call))
        except Exception as exc:
            return _error(call, exc, "openai")
        return Response(json.dumps(body), media_type=_JSON, headers=call.headers)

    @app.post("/v1/embeddings", openapi_extra=openapi.embeddings())
    async def embeddings(request: Request) -> Response:
        call = Call(protocol="openai", endpoint="/v1/embeddings")
        try:
            await gw().authenticate(call, request.headers)
            body = await _read(gw(), request)
            parsed = openai_wire.parse_embeddings_request(body)
            result = await _until_disconnect(request, gw().embed(call, parsed))
        except Exception as exc:
            return await _failed(gw(), call, exc)
        return Response(json.dumps(result), media_type=_JSON, headers=call.headers)

    # -- Anthropic protocol ------------------------------------------------------------

    @app.post("/v1/messages", openapi_extra=openapi.messages())
    async def messages(request: Request) -> Response:
        call = Call(protocol="anthropic", endpoint="/v1/messages")
        return await _serve(
            gw(), call, request, anthropic_wire.parse_messages_request, _anthropic_body
        )

    # -- operations --------------------------------------------------------------------

    @app.get("/health")
    async def health() -> Response:
        body = {"status": "ok", "version": _version(), "models": gw().router.route_names()}
        return Response(json.dumps(body), media_type=_JSON)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(gw().metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        """Unknown paths and methods, in the OpenAI error shape."""
        kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        body = {"error": {"message": f"{request.method} {request.url.path}: {exc.detail}",
                          "type": kind, "param": None, "code": None}}
        return Response(json.dumps(body), status_code=exc.status_code, media_type=_JSON)

    from .admin import admin_routes

    admin_routes(app, gw)
    app.hot = {
        "/v1/chat/completions": chat_completions,
        "/v1/messages": messages,
    }
    return app


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` workers: config from ``$CROSSROADS_CONFIG``."""
    return create_app(load_config(os.environ.get("CROSSROADS_CONFIG") or None))


# -- the shared request path -------------------------------------------------------------


async def _read(gateway: Gateway, request: Request) -> bytes:
    limit = gateway.config.gateway.max_request_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _TooLarge(limit)
    parts: list[bytes] = []
    size = 0
    async for part in request.stream():  # chunked bodies have no length to check first
        size += len(part)
        if size > limit:
            raise _TooLarge(limit)
        parts.append(part)
    return b"".join(parts)


class _TooLarge(BadRequestError):
    status_code = 413
    error_type = "request_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"The request body is larger than {limit:,} bytes "
            "(gateway.max_request_bytes). Send less, or raise the limit.",
            code="request_too_large",
        )


async def _serve(
    gateway: Gateway,
    call: Call,
    request: Request,
    parse: Callable[[bytes], Any],
    encode: Callable[[Any], bytes],
) -> Response:
    try:
        await gateway.authenticate(call, request.headers)
        chat_request = parse(await _read(gateway, request))
        await gateway.admit(call, chat_request)
        if call.stream:
            opened = await _until_disconnect(request, gateway.open_stream(call))
            return _EventStream(gateway, call, opened)
        response = await _until_disconnect(request, gateway.complete(call))
    except Exception as exc:
        return await _failed(gateway, call, exc)
    return Response(encode(response), media_type=_JSON, headers=call.headers)


async def _failed(gateway: Gateway, call: Call, exc: Exception) -> Response:
    """The protocol's error response, once the failed request is recorded."""
    failure = _error(call, exc, call.protocol)
    try:
        await gateway.fail(call, exc, failure.status_code)
    except Exception:  # the client still gets its own error, not a bare 500
        log.exception("could not record failed request %s", call.request_id)
    return failure


def _openai_body(response: Any) -> bytes:
    return openai_wire.response_json(response)


def _anthropic_body(response: Any) -> bytes:
    return json.dumps(anthropic_wire.message_json(response, response.model)).encode()


async def _until_disconnect(request: Request, work: Awaitable[T]) -> T:
    """Run ``work`` in this task; if the client goes away first, cancel it (and with it
    the upstream call). The work is awaited directly, not wrapped in a task of its own:
    each hand-off between tasks costs a turn of the event loop, which under load is the
    larger part of the latency a gateway adds."""
    task = asyncio.current_task()
    assert task is not None
    gone = finished = False

    def on_disconnect(watcher: asyncio.Future[None]) -> None:
        nonlocal gone
        # A callback already scheduled when the work finished must not cancel what
        # comes after it.
        if not finished and not watcher.cancelled() and watcher.exception() is None:
            gone = True
            task.cancel()

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


async def _disconnected(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


def _error(call: Call, exc: BaseException, protocol: str) -> Response:
    if not isinstance(exc, CrossroadsError):
        log.exception("unexpected error in %s (%s)", call.endpoint, call.request_id)
    if isinstance(exc, ClientGoneError):
        return Response(status_code=499, headers=call.headers)
    wire = openai_wire if protocol == "openai" else anthropic_wire
    status, body, headers = wire.error_response(exc)
    extra = getattr(exc, "headers", None)  # rate-limit and quota headers of the gateway's own
    if isinstance(extra, dict):
        headers = {**extra, **headers}
    return Response(
        json.dumps(body), status_code=status, media_type=_JSON, headers={**call.headers, **headers}
    )


def _model_names(gateway: Gateway, call: Call) -> list[tuple[str, str]]:
    names: list[tuple[str, str]] = [(r, "crossroads-route") for r in gateway.router.route_names()]
    names += [(e.name, e.backend) for e in gateway.config.models]
    from ..backends.embedded import EMBEDDED_MODELS

    names += [(n, "crossroads-embedded") for n in EMBEDDED_MODELS]
    seen: set[str] = set()
    unique = []
    for n, o in names:
        if n not in seen:
            seen.add(n)
            unique.append((n, o))
    key = call.key
    return [(n, o) for n, o in unique if key is None or key.allows(n)]


# -- streaming ---------------------------------------------------------------------------


class _EventStream(Response):
    """Server-sent events relayed from upstream; a disconnect cancels the relay."""

    def __init__(self, gateway: Gateway, call: Call, opened: Any) -> None:
        super().__init__(
            status_code=200,
            headers={**call.headers, **_SSE_HEADERS},
            media_type="text/event-stream",
        )
        self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        self.gateway, self.call, self.opened = gateway, call, opened

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": 200, "headers": self.raw_headers}
        )
        pump = asyncio.ensure_future(self._pump(send))
        watcher = asyncio.ensure_future(_disconnected(receive))
        try:
            await asyncio.wait({pump, watcher}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            watcher.cancel()
            if not pump.done():
                pump.cancel()
                await asyncio.gather(pump, return_exceptions=True)
        if pump.cancelled():
            # The client went away; the relay recorded it, unless it never started.
            await self.gateway.abandon(self.call, self.opened)
            return
        failure = pump.exception()
        if failure is not None:
            # A bug, not an upstream failure (those end the stream with an error event).
            log.error("stream %s failed", self.call.request_id, exc_info=failure)
            return
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _pump(self, send: Send) -> None:
        encode = _OpenAIEncoder(self.call) if self.call.protocol == "openai" else (
            _AnthropicEncoder(self.call)
        )
        async with aclosing(self.gateway.relay(self.call, self.opened)) as relay:
            async for item in relay:  # closed even if cancelled mid-send: usage recorded
                data = encode(item)
                if data:
                    await send({"type": "http.response.body", "body": data, "more_body": True})
        tail = encode.close()
        if tail:
            await send({"type": "http.response.body", "body": tail, "more_body": True})


class _OpenAIEncoder:
    def __init__(self, call: Call) -> None:
        request = call.request
        self.include_usage = bool(
            request is not None
            and request.stream_options is not None
            and request.stream_options.include_usage
        )
        self.failed = False

    def __call__(self, item: ChatChunk | APIError) -> bytes:
        if isinstance(item, APIError):
            self.failed = True
            return openai_wire.stream_error_sse(item)
        if item.usage is not None and not item.choices:
            return openai_wire.chunk_sse(item) if self.include_usage else b""
        return openai_wire.chunk_sse(item)

    def close(self) -> bytes:
        return b"" if self.failed else openai_wire.DONE


class _AnthropicEncoder:
    def __init__(self, call: Call) -> None:
        from ..client import estimate_prompt_tokens

        self.encoder = anthropic_wire.StreamEncoder(call.model)
        prompt = estimate_prompt_tokens(call.request) if call.request is not None else 0
        self.head = self.encoder.start(prompt)
        self.finish_reason: str | None = None
        self.done = b""

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


class _GatewayApp(FastAPI):
    """FastAPI with :class:`_Edge` in front of its whole middleware stack."""

    hot: Mapping[str, Handler] = {}

    def build_middleware_stack(self) -> Any:
        return _Edge(super().build_middleware_stack(), self.hot)


class _Edge:
    """In front of FastAPI: the two chat endpoints go straight to their handlers (the
    router, dependency solving, error and telemetry middleware cost more than the rest
    of the request; the handlers turn every exception into a protocol error response
    themselves), and every response gets ``x-request-id``."""

    def __init__(self, app: Any, hot: Mapping[str, Handler]) -> None:
        self.app = app
        self.hot = hot

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        handler = self.hot.get(scope["path"]) if scope["method"] == "POST" else None
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


def _version() -> str:
    from .. import __version__

    return __version__
