"""The Decision page (a placeholder until its own page replaces this module)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ..web import CurrentSession, NavEntry, render

__all__ = ["NAV", "routes"]

NAV: NavEntry | None = NavEntry("Decision", "/decision")


def routes(router: APIRouter) -> None:
    @router.get("/decision")
    async def page(request: Request, session: CurrentSession) -> Response:
        return render(request, "placeholder.html", {"title": "Decision"})
