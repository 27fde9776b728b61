"""The playground: one conversation sent to 2–4 models at once, streamed side by side,
with each answer's speed, tokens, cost and guard decisions; “Add to suite”."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ...errors import ConfigError
from ...gateway.http import read_body
from .. import records
from ..bridge import call_gateway, parse_call
from ..choices import ModelChoice, model_choices
from ..sessions import Session
from ..suites import add_to_suite
from ..web import (
    ConsoleError,
    CsrfAdminSession,
    CsrfSession,
    CurrentSession,
    NavEntry,
    gateway,
    render,
    state,
)

__all__ = ["CHAT_PATH", "NAV", "chat", "routes"]

NAV: NavEntry | None = NavEntry("Playground", "/playground")

GROUPS = (
    ("route", "Routes"),
    ("configured", "Configured models"),
    ("embedded", "Embedded open models"),
    ("catalog", "Catalog"),
)
PANES = 4
#: The playground's call, relative to ``/ui``.
CHAT_PATH = "/api/chat"


class SuiteAdd(BaseModel):
    model_config = ConfigDict(extra="forbid")
    suite: str = Field(default="playground", max_length=64)
    system: str = ""
    user: str
    expected: str = ""
    temperature: float | None = Field(default=None, ge=0, le=2, allow_inf_nan=False)
    max_tokens: int | None = Field(default=None, gt=0, le=1_000_000)


def routes(router: APIRouter) -> None:
    @router.get("/playground")
    async def page(request: Request, session: CurrentSession) -> Response:
        choices = await _choices(request)
        record = None if session.admin else await gateway(request).keys.authenticate(
            session.secret
        )
        if record is not None:
            choices = [c.for_key(record.allows(c.name)) for c in choices]
        answering = [c.name for c in choices if c.answers]
        selected = (answering[:2] + [""] * PANES)[:PANES]
        return render(request, "playground.html", {
            "choices": choices, "groups": GROUPS, "selected": selected, "panes": PANES,
        })

    @router.post(CHAT_PATH)
    async def chat_route(request: Request, session: CsrfSession) -> Response:
        return await chat(request, session)

    @router.get("/api/calls/{request_id}")
    async def call_record(request_id: str, request: Request, session: CurrentSession) -> Response:
        key_id = None if session.admin else session.key_id
        row = await asyncio.to_thread(records.one, gateway(request).db, request_id[:64],
                                      key_id=key_id)
        if row is None:
            raise ConsoleError(404, "No such request (or not one of your key's).")
        row.pop("request_body", None)
        row.pop("response_body", None)
        return JSONResponse(json.loads(json.dumps(row, default=_json_default)),
                            headers={"cache-control": "no-store"})

    @router.post("/api/suite")
    async def suite(request: Request, session: CsrfAdminSession) -> Response:
        """Writes a file on the server: the master key only."""
        try:
            spec = SuiteAdd.model_validate_json(await read_body(request, 1_000_000))
        except ValidationError as exc:
            first = exc.errors()[0]
            raise ConsoleError(400, f"Invalid request: {first['msg']} at "
                                    f"{'.'.join(map(str, first['loc']))}.") from None
        try:
            path, item = await asyncio.to_thread(
                add_to_suite, spec.suite.strip() or "playground", user=spec.user,
                system=spec.system, expected=spec.expected, temperature=spec.temperature,
                max_tokens=spec.max_tokens,
            )
        except ConfigError as exc:
            raise ConsoleError(400, exc.message) from None
        return JSONResponse({"path": str(path), "item": item,
                             "run": f"crossroads eval {path} --models MODEL"})


async def chat(request: Request, session: Session) -> Response:
    """One pane's call (``POST /ui/api/chat``), for a session whose CSRF token was checked.
    The console app also serves this path directly, in front of FastAPI's routing (see
    :func:`crossroads.console.app.mount`), as the gateway does its chat endpoints."""
    gw = gateway(request)
    call = parse_call(await read_body(request, gw.config.gateway.max_request_bytes))
    return await call_gateway(request, gw, session, call)


async def _choices(request: Request) -> list[ModelChoice]:
    console = state(request)
    cached = console.cache.get("playground.choices")
    if cached is None:
        cached = console.cache["playground.choices"] = await asyncio.to_thread(
            model_choices, console.config
        )
    found: list[ModelChoice] = cached
    return found


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return str(value)
