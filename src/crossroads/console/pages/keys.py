"""The Keys page."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ..web import CurrentSession, NavEntry, render

__all__ = ["NAV", "routes"]

NAV: NavEntry | None = NavEntry("Keys", "/keys")


def routes(router: APIRouter) -> None:
    @router.get("/keys")
    async def page(request: Request, session: CurrentSession) -> Response:
        return render(request, "placeholder.html", {"title": "Keys"})
