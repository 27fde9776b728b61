"""Login (master key or a virtual key), logout, and ``/ui/`` itself."""

from __future__ import annotations

import datetime as dt
import hmac
import secrets

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from ...gateway.keys import is_master
from ..sessions import MAX_AGE_S
from ..web import COOKIE, CSRF_FIELD, PREFIX, CsrfSession, form, gateway, render, state, url

__all__ = ["LOGIN_COOKIE", "routes"]

#: A pre-login token (double-submit) so that another site cannot log a browser in.
LOGIN_COOKIE = "crossroads_login"


def routes(router: APIRouter) -> None:
    @router.get("/")
    async def home() -> Response:
        return RedirectResponse(url("/playground"), status_code=303)

    @router.get("/login")
    async def login_form(request: Request) -> Response:
        return _login_page(request)

    @router.post("/login")
    async def login(request: Request) -> Response:
        console = state(request)
        address = request.client.host if request.client else "-"
        wait = console.logins.retry_after(address)
        if wait:
            return _login_page(
                request,
                f"Too many failed logins from this address: try again in {wait} s.",
                status=429,
                headers={"retry-after": str(wait)},
            )
        fields = await form(request)
        expected = request.cookies.get(LOGIN_COOKIE) or ""
        if not expected or not hmac.compare_digest(expected, fields.get(CSRF_FIELD, "")):
            return _login_page(request, "The login form expired: try again.", status=403)
        raw = fields.get("key", "").strip()
        gw = gateway(request)
        if raw and is_master(raw, gw.master_key):
            session = console.sessions.open(admin=True, name="master", key_id=None, secret=raw)
        else:
            record = await gw.keys.authenticate(raw) if raw else None
            if record is None or not record.active(dt.datetime.now(dt.UTC)):
                console.logins.failed(address)
                left = console.logins.remaining(address)
                return _login_page(
                    request,
                    "Wrong, revoked or expired key. Use the master key or a virtual key "
                    f"({max(left, 0)} more tries before a pause).",
                    status=401,
                )
            session = console.sessions.open(
                admin=False, name=record.name, key_id=record.id, secret=raw
            )
        console.logins.succeeded(address)
        response = RedirectResponse(url("/playground"), status_code=303)
        response.set_cookie(
            COOKIE, session.id, max_age=MAX_AGE_S, path=PREFIX, httponly=True,
            samesite="strict", secure=request.url.scheme == "https",
        )
        response.delete_cookie(LOGIN_COOKIE, path=PREFIX)
        return response

    @router.post("/logout")
    async def logout(request: Request, session: CsrfSession) -> Response:
        state(request).sessions.close(session.id)
        response = RedirectResponse(url("/login"), status_code=303)
        response.delete_cookie(COOKIE, path=PREFIX, httponly=True, samesite="strict",
                               secure=request.url.scheme == "https")
        return response


def _login_page(
    request: Request, error: str | None = None, *, status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    token = secrets.token_urlsafe(32)
    response = render(request, "login.html", {"error": error, "login_token": token},
                      status=status, headers=headers)
    response.set_cookie(LOGIN_COOKIE, token, max_age=3600, path=PREFIX, httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")
    response.headers["cache-control"] = "no-store"
    return response
