"""The console as an app mounted at ``/ui`` on the gateway app (same process, same keys).

``crossroads serve`` and ``crossroads ui`` serve :func:`app_from_env`; the gateway package
knows nothing of the console (it is composed here, from above).
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..config import Config, load_config
from ..gateway.app import create_app as create_gateway_app
from ..gateway.http import GatewayApp, Handler
from . import pages
from .pages import auth
from .pages.playground import CHAT_PATH, chat
from .web import (
    PREFIX,
    ConsoleError,
    ConsoleState,
    LoginRequiredError,
    make_templates,
    render,
    require_csrf,
    require_session,
    wants_json,
)

__all__ = ["SECURITY_HEADERS", "app_from_env", "create_app", "mount"]

#: On every console response: no inline script, no remote origin, no framing.
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}
_RAW_HEADERS = [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]


def create_app(config: Config | None = None) -> GatewayApp:
    """The gateway app for ``config`` with the console at ``/ui``."""
    config = config if config is not None else load_config()
    app = create_gateway_app(config)
    mount(app, config)
    return app


def app_from_env() -> GatewayApp:
    """Factory for ``uvicorn --factory`` workers: config from ``$CROSSROADS_CONFIG``."""
    return create_app(load_config(os.environ.get("CROSSROADS_CONFIG") or None))


def mount(app: GatewayApp, config: Config) -> FastAPI:
    """Mount the console on ``app`` at :data:`~.web.PREFIX`; the console app."""
    console = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    console.state.console = ConsoleState(
        gateway_app=app,
        config=config,
        nav=[page.NAV for page in pages.PAGES if page.NAV is not None],
        templates=make_templates(),
    )
    router = APIRouter()
    auth.routes(router)
    for page in pages.PAGES:
        page.routes(router)
    console.include_router(router)
    console.mount(
        "/static",
        StaticFiles(packages=[("crossroads.console", "static")], follow_symlink=False),
        name="static",
    )
    _errors(console)
    console.add_middleware(_SecurityHeaders)
    app.mount(PREFIX, console)
    # The playground's calls skip FastAPI's routing and dependency solving, like the
    # gateway's own chat endpoints: the same session and CSRF checks, called directly.
    app.direct_routes = {**app.direct_routes, PREFIX + CHAT_PATH: _direct_chat(console)}
    return console


def _direct_chat(console: FastAPI) -> Handler:
    async def handler(request: Request) -> Response:
        request.scope["app"] = console  # what the console's helpers read its state from
        try:
            session = await require_csrf(request, await require_session(request))
            response = await chat(request, session)
        except ConsoleError as exc:
            response = JSONResponse({"error": exc.message}, status_code=exc.status,
                                    headers=exc.headers)
        response.headers.update(SECURITY_HEADERS)
        return response

    return handler


def _errors(console: FastAPI) -> None:
    def answer(request: Request, status: int, message: str, headers: dict[str, str]) -> Response:
        if wants_json(request):
            return JSONResponse({"error": message}, status_code=status, headers=headers)
        return render(request, "error.html", {"status": status, "message": message},
                      status=status, headers=headers)

    @console.exception_handler(ConsoleError)
    async def console_error(request: Request, exc: ConsoleError) -> Response:
        if isinstance(exc, LoginRequiredError) and request.method == "GET" and not (
            request.url.path.startswith(PREFIX + "/api/")
        ):
            return RedirectResponse(PREFIX + "/login", status_code=303)
        return answer(request, exc.status, exc.message, exc.headers)

    @console.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        message = "No such page." if exc.status_code == 404 else str(exc.detail)
        return answer(request, exc.status_code, message, {})

    @console.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        first: dict[str, Any] = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return answer(request, 400, f"Invalid request: {first.get('msg', '?')} at {where}", {})


class _SecurityHeaders:
    """:data:`SECURITY_HEADERS` on every response of the console."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in _RAW_HEADERS if k not in names]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_headers)
