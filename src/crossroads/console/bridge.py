"""The playground's calls, made through the gateway's own request handling: the same
code as ``POST /v1/chat/completions`` (routing, the key's allow-list, budget and rate
limits, guardrails, the ledger), with the session's key as the caller."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.types import Message

from ..gateway import openai
from ..gateway.service import Gateway
from .sessions import Session
from .web import ConsoleError

__all__ = ["ENDPOINT", "PlaygroundCall", "call_gateway", "parse_call"]

#: The ledger's ``endpoint`` for playground calls (so the logs say where they came from).
ENDPOINT = "/ui/api/chat"


class PlaygroundCall(BaseModel):
    """One pane's request: the shared conversation and this pane's model."""

    model_config = ConfigDict(extra="forbid")
    model: str = Field(min_length=1, max_length=200)
    system: str = ""
    user: str = Field(min_length=1)
    temperature: float | None = Field(default=None, ge=0, le=2, allow_inf_nan=False)
    max_tokens: int | None = Field(default=None, gt=0, le=1_000_000)
    json_mode: bool = False

    def openai_body(self) -> dict[str, Any]:
        messages = [{"role": "system", "content": self.system}] if self.system else []
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [*messages, {"role": "user", "content": self.user}],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if self.temperature is not None:
            body["temperature"] = self.temperature
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        if self.json_mode:
            body["response_format"] = {"type": "json_object"}
        return body


def parse_call(raw: bytes) -> PlaygroundCall:
    try:
        return PlaygroundCall.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise ConsoleError(400, f"Invalid playground request: {first['msg']} at {where}.") from None


async def call_gateway(
    request: Request, gateway: Gateway, session: Session, call: PlaygroundCall
) -> Response:
    """The gateway's streamed answer (server-sent events in the OpenAI format, or its
    error response), for ``session``'s key. The key travels in this process only."""
    body = json.dumps(call.openai_body()).encode()
    headers = [
        (b"authorization", b"Bearer " + session.secret.encode()),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    scope = {**request.scope, "headers": headers, "query_string": b""}
    sent = False
    outer = request.receive

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await outer()  # the browser's connection: a disconnect cancels the call

    inner = Request(scope, receive)
    return await gateway.handle(inner, openai.PROTOCOL, ENDPOINT)
