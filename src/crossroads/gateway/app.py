"""The HTTP routes: each hands its request to the running :class:`~.service.Gateway`.

``/v1/chat/completions``, ``/v1/models`` and ``/v1/embeddings`` speak the OpenAI protocol
(:mod:`.openai`), and so does ``/v1/responses`` (:mod:`.responses_api`); ``/v1/messages``
and ``/v1/messages/count_tokens`` the Anthropic one (:mod:`.anthropic`); ``/admin/*``
is in :mod:`.admin`; ``/health`` and ``/metrics`` are for operations. The chat routes
are also :attr:`~.http.GatewayApp.direct_routes`, served without FastAPI's routing.
"""

from __future__ import annotations

import gc
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..config import Config, load_config
from . import access_log, anthropic, json_log, openai, openapi, responses_api, token_count
from .admin import admin_routes
from .http import JSON, GatewayApp
from .metrics import CONTENT_TYPE_LATEST
from .responses_store import ResponseStore
from .service import Gateway
from .shadowing import GatewayShadow

__all__ = ["app_from_env", "create_app"]


def create_app(config: Config | None = None, *, freeze_heap: bool = False) -> GatewayApp:
    """The gateway app for ``config`` (default: the usual config lookup). With
    ``freeze_heap`` (``crossroads serve``, whose process is the gateway's alone) the
    start-up heap is frozen and young collections made rare: :func:`startup_heap_frozen`."""
    config = config if config is not None else load_config()
    json_log.configure_from_env()  # `serve --log-format json`, in every worker
    access_log.install()  # no query string (a key put in the URL) in the access log

    @asynccontextmanager
    async def lifespan(app: GatewayApp) -> AsyncIterator[None]:
        app.gateway = Gateway.create(config)
        GatewayShadow.install(app.gateway)  # ``shadow:`` rules, in the background
        if freeze_heap:
            startup_heap_frozen()
        try:
            yield
        finally:
            gateway, app.gateway = app.gateway, None
            await gateway.shadow.aclose()  # its tasks end before the router and ledger
            await gateway.aclose()

    app = GatewayApp(
        title="Crossroads gateway",
        version=_version(),
        description="OpenAI- and Anthropic-compatible gateway to open and closed models.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )

    # -- OpenAI protocol ---------------------------------------------------------------

    @app.post("/v1/chat/completions", openapi_extra=openapi.chat_completions())
    async def chat_completions(request: Request) -> Response:
        return await app.gateway.handle(request, openai.PROTOCOL, "/v1/chat/completions")

    @app.get("/v1/models", openapi_extra=openapi.errors("openai"))
    async def models(request: Request) -> Response:
        return await app.gateway.handle_models(request)

    @app.post("/v1/embeddings", openapi_extra=openapi.embeddings())
    async def embeddings(request: Request) -> Response:
        return await app.gateway.handle_embeddings(request)

    @app.post("/v1/responses", openapi_extra=openapi.responses())
    async def responses(request: Request) -> Response:
        store = ResponseStore(app.gateway.db)
        return await responses_api.create_response(app.gateway, request, store)

    @app.get("/v1/responses/{response_id}", openapi_extra=openapi.response_by_id())
    async def get_response(request: Request, response_id: str) -> Response:
        store = ResponseStore(app.gateway.db)
        return await responses_api.get_response(app.gateway, request, store, response_id)

    @app.delete("/v1/responses/{response_id}", openapi_extra=openapi.response_by_id())
    async def delete_response(request: Request, response_id: str) -> Response:
        store = ResponseStore(app.gateway.db)
        return await responses_api.delete_response(app.gateway, request, store, response_id)

    # -- Anthropic protocol ------------------------------------------------------------

    @app.post("/v1/messages", openapi_extra=openapi.messages())
    async def messages(request: Request) -> Response:
        return await app.gateway.handle(request, anthropic.PROTOCOL, "/v1/messages")

    @app.post("/v1/messages/count_tokens", openapi_extra=openapi.count_tokens())
    async def count_tokens(request: Request) -> Response:
        return await token_count.count_tokens(app.gateway, request)

    # -- operations --------------------------------------------------------------------

    @app.get("/health")
    async def health() -> Response:
        body = {"status": "ok", "version": _version(), "models": app.gateway.router.route_names()}
        return Response(json.dumps(body), media_type=JSON)

    @app.get("/metrics", openapi_extra=openapi.metrics())
    async def metrics(request: Request) -> Response:
        served = app.gateway.metrics
        if not served.access.allows(request.headers):  # a token when there is a master key
            return served.access.refusal()
        return Response(served.render(), media_type=CONTENT_TYPE_LATEST)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        """Unknown paths and methods, in the OpenAI error shape."""
        kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        body = {"error": {"message": f"{request.method} {request.url.path}: {exc.detail}",
                          "type": kind, "param": None, "code": None}}
        return Response(json.dumps(body), status_code=exc.status_code, media_type=JSON)

    admin_routes(app)
    app.direct_routes = {
        "/v1/chat/completions": chat_completions,
        "/v1/messages": messages,
        "/v1/responses": responses,
        "/v1/messages/count_tokens": count_tokens,
    }
    return app


def startup_heap_frozen() -> None:
    """Move everything start-up made (modules, config, routes, pydantic schemas) out of
    the collector's sight, so that a collection walks only what requests allocate, and
    make young collections rare (BENCHMARKS.md, issue 15; bench/tails.py)."""
    gc.collect()
    gc.freeze()
    # A young collection every 10,000 net allocations rather than 700: requests free
    # nearly all they allocate, so under load collections then almost never run.
    gc.set_threshold(10_000, 20, 20)


def app_from_env() -> GatewayApp:
    """Factory for ``uvicorn --factory`` workers: config from ``$CROSSROADS_CONFIG``."""
    return create_app(load_config(os.environ.get("CROSSROADS_CONFIG") or None), freeze_heap=True)


def _version() -> str:
    from .. import __version__

    return __version__
