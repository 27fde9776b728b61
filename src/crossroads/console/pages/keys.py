"""The keys page (master key only): list, create (the key shown once), revoke; budget,
RPM, TPM, model allow-list, expiry, and spend against budget. The same key store and
validation as ``crossroads keys`` and ``POST /admin/keys``."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from ...errors import CrossroadsError
from ...gateway.admin import KeyCreate
from ...gateway.keys import KeyRecord
from ...gateway.ledger import spent_by_key
from ..web import (
    AdminSession,
    ConsoleError,
    CsrfAdminSession,
    NavEntry,
    form,
    form_lists,
    gateway,
    no_store,
    render,
    state,
)

__all__ = ["NAV", "routes"]

NAV: NavEntry | None = NavEntry("Keys", "/keys", admin_only=True)


def routes(router: APIRouter) -> None:
    @router.get("/keys")
    async def page(request: Request, session: AdminSession) -> Response:
        return await _page(request)

    @router.post("/keys")
    async def create(request: Request, session: CsrfAdminSession) -> Response:
        fields = await form(request)
        try:
            spec = _spec(fields, (await form_lists(request)).get("models", []))
            raw, record = await asyncio.to_thread(
                gateway(request).keys.create, spec.name, budget_usd=spec.budget_usd,
                rpm=spec.rpm, tpm=spec.tpm, models=tuple(spec.models),
                expires_at=spec.expires_at,
            )
        except (CrossroadsError, ValueError) as exc:
            message = exc.message if isinstance(exc, CrossroadsError) else str(exc)
            return await _page(request, error=message, fields=fields, status=400)
        return no_store(await _page(request, created=(raw, record), status=201))

    @router.post("/keys/{key_id}/revoke")
    async def revoke(key_id: str, request: Request, session: CsrfAdminSession) -> Response:
        try:
            record = await asyncio.to_thread(gateway(request).keys.get, key_id[:64])
            if record.id != key_id:  # only by id here: a name could be another key's
                raise ConsoleError(404, "No such key.")
            record = await asyncio.to_thread(gateway(request).keys.revoke, record.id)
        except CrossroadsError as exc:
            raise ConsoleError(404, exc.message) from None
        state(request).sessions.close_key(record.id)
        return await _page(request, notice=f"Revoked the key {record.name} ({record.prefix}…).")


def _spec(fields: dict[str, str], models: list[str]) -> KeyCreate:
    def number(name: str) -> str | None:
        value = fields.get(name, "").strip()
        return value or None

    allowed = [m.strip() for value in models for m in value.split(",") if m.strip()]
    expires = number("expires_at")
    data: dict[str, Any] = {
        "name": fields.get("name", "").strip(),
        "budget_usd": number("budget_usd"),
        "rpm": number("rpm"),
        "tpm": number("tpm"),
        "models": allowed,
        "expires_at": _utc(expires) if expires else None,
    }
    try:
        return KeyCreate.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValueError(f"Invalid key: {where}: {first['msg']}.") from None


def _utc(value: str) -> dt.datetime:
    """A date or date-time from the form, taken as UTC."""
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"Expiry {value[:40]!r}: give a date (2026-12-31) or a date and time "
            "(2026-12-31T18:00), in UTC."
        ) from None
    return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed


async def _page(
    request: Request,
    *,
    created: tuple[str, KeyRecord] | None = None,
    error: str | None = None,
    notice: str | None = None,
    fields: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    gw = gateway(request)
    records, spent = await asyncio.gather(
        asyncio.to_thread(gw.keys.list, True), asyncio.to_thread(spent_by_key, gw.db)
    )
    now = dt.datetime.now(dt.UTC)
    rows: list[dict[str, Any]] = [
        {
            "record": r,
            "status": r.status(now),
            "spent": spent.get(r.id, 0.0),
            "share": (min(spent.get(r.id, 0.0) / r.budget_usd, 1.0)
                      if r.budget_usd else None),
        }
        for r in records
    ]
    rows.sort(key=lambda row: (row["status"] != "active", row["record"].name))
    return render(request, "keys.html", {
        "rows": rows, "created": created, "error": error, "notice": notice,
        "fields": fields or {},
        "models": [*gw.router.route_names(), *(e.name for e in gw.config.models)],
    }, status=status)
