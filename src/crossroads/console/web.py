"""What every console page uses: the console's state, sessions as FastAPI dependencies,
the CSRF check, form reading and :func:`render`.

Pages declare who may see them with a dependency::

    @router.get("/things")
    async def things(request: Request, session: CurrentSession) -> Response: ...      # any login
    @router.post("/things")
    async def add(request: Request, session: CsrfAdminSession) -> Response: ...      # master + CSRF

A missing or expired session sends a page to the login form (a 303) and an API call
(``/api/...``, or ``Accept: application/json``) a 401; a virtual-key session on a
master-only page gets 403; a state-changing request without the session's CSRF token gets
403 before the handler runs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import parse_qsl

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from .sessions import LoginLimiter, Session, SessionStore

if TYPE_CHECKING:
    from ..config import Config
    from ..gateway.http import GatewayApp
    from ..gateway.service import Gateway

__all__ = [
    "COOKIE",
    "CSRF_FIELD",
    "CSRF_HEADER",
    "PREFIX",
    "AdminSession",
    "ConsoleError",
    "ConsoleState",
    "CsrfAdminSession",
    "CsrfSession",
    "CurrentSession",
    "LoginRequiredError",
    "NavEntry",
    "form",
    "gateway",
    "render",
    "require_admin",
    "require_csrf",
    "require_csrf_admin",
    "require_session",
    "state",
    "url",
    "wants_json",
]

#: Where the console is mounted on the gateway app.
PREFIX = "/ui"
#: The session cookie (its value is a random session id, never a key).
COOKIE = "crossroads_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
#: The largest form body the console reads (bytes).
MAX_FORM_BYTES = 256 * 1024


@dataclass(frozen=True)
class NavEntry:
    """A page's place in the navigation: ``label`` linking to ``PREFIX + path``;
    ``admin_only`` entries are hidden from virtual-key sessions."""

    label: str
    path: str
    admin_only: bool = False


@dataclass
class ConsoleState:
    """Everything the console holds in one process (``request.app.state.console``)."""

    gateway_app: GatewayApp
    config: Config
    nav: list[NavEntry]
    templates: Environment
    sessions: SessionStore = field(default_factory=SessionStore)
    logins: LoginLimiter = field(default_factory=LoginLimiter)
    #: Whatever a page computes once per process (keyed by "page.thing").
    cache: dict[str, Any] = field(default_factory=dict)


class ConsoleError(Exception):
    """An error page (HTML) or, for API calls, ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


class LoginRequiredError(ConsoleError):
    """No live session: pages redirect to the login form, API calls get 401."""

    def __init__(self) -> None:
        super().__init__(401, "Log in first (your session ended or was never opened).")


def make_templates() -> Environment:
    env = Environment(
        loader=PackageLoader("crossroads.console", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["url"] = url
    env.filters["usd"] = _usd
    env.filters["when"] = _when
    return env


def state(request: Request) -> ConsoleState:
    console: ConsoleState = request.app.state.console
    return console


def gateway(request: Request) -> Gateway:
    """The running gateway this console belongs to (keys, ledger, router, ...)."""
    return state(request).gateway_app.gateway


def url(path: str = "/") -> str:
    """The console path ``path`` as the browser sees it (``/ui`` + path)."""
    return PREFIX + (path if path.startswith("/") else "/" + path)


def wants_json(request: Request) -> bool:
    """Whether an error should be JSON (``/ui/api/...`` or ``Accept: application/json``)
    rather than an HTML page."""
    path = request.url.path
    return path.startswith(PREFIX + "/api/") or "application/json" in request.headers.get(
        "accept", ""
    )


async def require_session(request: Request) -> Session:
    """The request's live session; its key is checked again (revoked or expired keys end
    it)."""
    console = state(request)
    session = console.sessions.get(request.cookies.get(COOKIE))
    if session is None:
        raise LoginRequiredError()
    if not session.admin:
        record = await gateway(request).keys.authenticate(session.secret)
        if record is None or not record.active(dt.datetime.now(dt.UTC)):
            console.sessions.close(session.id)
            raise LoginRequiredError()
    request.state.session = session
    return session


async def require_admin(session: Annotated[Session, Depends(require_session)]) -> Session:
    if not session.admin:
        raise ConsoleError(403, "This page needs the master key; you are logged in with a "
                                f"virtual key ({session.name}).")
    return session


async def form(request: Request) -> dict[str, str]:
    """The request's urlencoded form (read once, cached; last value of a repeated name
    wins, :func:`form_lists` has them all)."""
    return {k: v[-1] for k, v in (await form_lists(request)).items() if v}


async def form_lists(request: Request) -> dict[str, list[str]]:
    cached: dict[str, list[str]] | None = getattr(request.state, "form", None)
    if cached is not None:
        return cached
    fields: dict[str, list[str]] = {}
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/x-www-form-urlencoded":
        body = b""
        async for part in request.stream():
            body += part
            if len(body) > MAX_FORM_BYTES:
                raise ConsoleError(413, f"The form is larger than {MAX_FORM_BYTES:,} bytes.")
        for name, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
            fields.setdefault(name, []).append(value)
    request.state.form = fields
    return fields


async def _check_csrf(request: Request, session: Session) -> None:
    token = request.headers.get(CSRF_HEADER)
    if token is None:
        token = (await form(request)).get(CSRF_FIELD)
    if not session.csrf_ok(token):
        raise ConsoleError(403, "Missing or wrong CSRF token: reload the page and try again. "
                                "Nothing was changed.")


async def require_csrf(
    request: Request, session: Annotated[Session, Depends(require_session)]
) -> Session:
    """The session of a state-changing request that carries its CSRF token (the
    ``x-csrf-token`` header or the ``csrf_token`` form field); 403 otherwise."""
    await _check_csrf(request, session)
    return session


async def require_csrf_admin(
    request: Request, session: Annotated[Session, Depends(require_admin)]
) -> Session:
    await _check_csrf(request, session)
    return session


CurrentSession = Annotated[Session, Depends(require_session)]
AdminSession = Annotated[Session, Depends(require_admin)]
CsrfSession = Annotated[Session, Depends(require_csrf)]
CsrfAdminSession = Annotated[Session, Depends(require_csrf_admin)]


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """``template`` rendered (autoescaped) with ``context`` plus ``session``, ``nav``,
    ``csrf_token`` and ``path``; the security headers are added by the console app."""
    console = state(request)
    session: Session | None = getattr(request.state, "session", None)
    if session is None:
        session = console.sessions.get(request.cookies.get(COOKIE))
    nav = [e for e in console.nav if session is not None and (session.admin or not e.admin_only)]
    page = console.templates.get_template(template).render(
        {
            "session": session,
            "nav": nav,
            "csrf_token": session.csrf_token if session is not None else "",
            "path": request.url.path,
            **(context or {}),
        }
    )
    return HTMLResponse(page, status_code=status, headers=headers)


def no_store(response: Response) -> Response:
    response.headers["cache-control"] = "no-store"
    return response


def _usd(value: float | None) -> str:
    if value is None:
        return "—"
    if value == 0:
        return "$0.00"
    if 0 < abs(value) < 0.01:
        return f"${value:,.6f}"
    return f"${value:,.4f}" if abs(value) < 1 else f"${value:,.2f}"


def _when(value: dt.datetime | str | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
