"""Admin API (master key only): virtual keys and spend, the same as ``crossroads keys``
and ``crossroads usage`` on the command line."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .._time import parse_since
from ..errors import BadRequestError
from . import openapi
from .call import Call
from .http import JSON, GatewayApp, error_response
from .ledger import usage_report
from .openai import PROTOCOL as OPENAI

__all__ = ["MAX_LIMIT", "KeyCreate", "admin_routes"]


#: The largest RPM or TPM a key may have.
MAX_LIMIT = 2**31 - 1


class KeyCreate(BaseModel):
    """Body of ``POST /admin/keys``."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    budget_usd: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    # the ledger's INTEGER columns (32 bits on PostgreSQL)
    rpm: int | None = Field(default=None, gt=0, le=MAX_LIMIT)
    tpm: int | None = Field(default=None, gt=0, le=MAX_LIMIT)
    models: list[str] = Field(default_factory=list)
    expires_at: dt.datetime | None = None


def admin_routes(app: GatewayApp) -> None:
    """Add the ``/admin`` routes to ``app`` (errors in the OpenAI shape)."""

    async def admin_call(request: Request, endpoint: str) -> Call:
        call = Call(protocol="openai", endpoint=endpoint)
        await app.gateway.authenticate(call, request.headers)
        app.gateway.require_admin(call)
        return call

    def ok(call: Call, body: Any, status: int = 200) -> Response:
        return Response(
            json.dumps(body), status_code=status, media_type=JSON,
            headers=call.headers,
        )

    @app.post("/admin/keys", status_code=201, openapi_extra=openapi.admin_key_create())
    async def create_key(request: Request) -> Response:
        call = Call(protocol="openai", endpoint="/admin/keys")
        try:
            call = await admin_call(request, "/admin/keys")
            try:
                spec = KeyCreate.model_validate_json(await request.body())
            except ValidationError as exc:
                raise BadRequestError(f"Invalid key request: {exc.errors()[0]['msg']} "
                                      f"at {'.'.join(map(str, exc.errors()[0]['loc']))}") from exc
            raw, record = await asyncio.to_thread(
                app.gateway.keys.create,
                spec.name,
                budget_usd=spec.budget_usd,
                rpm=spec.rpm,
                tpm=spec.tpm,
                models=tuple(spec.models),
                expires_at=spec.expires_at,
            )
        except Exception as exc:
            return error_response(call, exc, OPENAI)
        return ok(call, {"key": raw, **record.public()}, 201)

    @app.get("/admin/keys", openapi_extra=openapi.admin_key_list())
    async def list_keys(request: Request) -> Response:
        call = Call(protocol="openai", endpoint="/admin/keys")
        try:
            call = await admin_call(request, "/admin/keys")
            records = await asyncio.to_thread(app.gateway.keys.list, True)
        except Exception as exc:
            return error_response(call, exc, OPENAI)
        return ok(call, {"object": "list", "data": [r.public() for r in records]})

    @app.delete("/admin/keys/{name_or_id}", openapi_extra=openapi.admin_key_revoke())
    async def revoke_key(name_or_id: str, request: Request) -> Response:
        call = Call(protocol="openai", endpoint="/admin/keys")
        try:
            call = await admin_call(request, "/admin/keys")
            record = await asyncio.to_thread(app.gateway.keys.revoke, name_or_id)
        except Exception as exc:
            return error_response(call, exc, OPENAI)
        return ok(call, record.public())

    @app.get("/admin/usage", openapi_extra=openapi.errors("openai"))
    async def usage(request: Request, by: str = "key", since: str | None = None) -> Response:
        call = Call(protocol="openai", endpoint="/admin/usage")
        try:
            call = await admin_call(request, "/admin/usage")
            if by not in ("key", "model", "day"):
                raise BadRequestError("`by` must be key, model or day.")
            start = _since(since)
            rows = await asyncio.to_thread(usage_report, app.gateway.db, by, start)  # type: ignore[arg-type]
        except Exception as exc:
            return error_response(call, exc, OPENAI)
        return ok(call, {"object": "list", "by": by, "data": rows})


def _since(value: str | None) -> dt.datetime | None:
    """The same forms as ``crossroads usage --since``: 7d, 24h, 30m, 2w or an ISO date."""
    if not value:
        return None
    try:
        return parse_since(value)
    except ValueError as exc:
        raise BadRequestError(f"`since`: {exc}") from None
