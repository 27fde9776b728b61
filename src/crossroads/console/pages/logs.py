"""Logs and audit: recent requests (a virtual key sees only its own), one request's
detail (bodies only where ``gateway.store_bodies`` kept them), and the audit chain's
state checked the way ``crossroads audit verify`` checks it (master key only)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ...guard.audit import verify
from .. import records
from ..web import (
    ConsoleError,
    CsrfAdminSession,
    CurrentSession,
    NavEntry,
    gateway,
    render,
)

__all__ = ["NAV", "routes"]

NAV: NavEntry | None = NavEntry("Logs", "/logs")
PAGE_SIZE = 50


def routes(router: APIRouter) -> None:
    @router.get("/logs")
    async def page(
        request: Request,
        session: CurrentSession,
        before: int | None = None,
        model: str | None = None,
        errors: bool = False,
    ) -> Response:
        gw = gateway(request)
        rows, cursor = await asyncio.to_thread(
            records.recent, gw.db, key_id=None if session.admin else session.key_id,
            limit=PAGE_SIZE, before=before, model=(model or "")[:200] or None,
            errors_only=errors,
        )
        return render(request, "logs.html", {
            "rows": rows, "cursor": cursor, "model": model or "", "errors": errors,
            "store_bodies": gw.config.gateway.store_bodies,
        })

    @router.get("/logs/{request_id}")
    async def detail(request_id: str, request: Request, session: CurrentSession) -> Response:
        row = await asyncio.to_thread(
            records.one, gateway(request).db, request_id[:64],
            key_id=None if session.admin else session.key_id,
        )
        if row is None:  # another key's request looks exactly like no request
            raise ConsoleError(404, "No such request (or not one of your key's).")
        return render(request, "log_detail.html", {
            "row": row,
            "request_body": _pretty(row.get("request_body")),
            "response_body": _pretty(row.get("response_body")),
            "store_bodies": gateway(request).config.gateway.store_bodies,
        })

    @router.post("/logs/audit/verify")
    async def audit_verify(request: Request, session: CsrfAdminSession) -> Response:
        report = await asyncio.to_thread(verify, gateway(request).db)
        return render(request, "audit_result.html", {"report": report})


def _pretty(body: Any) -> str | None:
    if body is None:
        return None
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            return str(body)
    return json.dumps(body, indent=2, ensure_ascii=False)
