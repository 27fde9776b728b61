"""Loopback fake of Anthropic's Messages API (JSON, SSE, errors, rate-limit headers).

Wire format: https://docs.anthropic.com/en/api/messages, streaming as in
https://docs.anthropic.com/en/docs/build-with-claude/streaming (named events, ``ping``,
``error`` events), errors as in https://docs.anthropic.com/en/api/errors. Token counts of a
:class:`Reply` are OpenAI-style (prompt includes cached), so ``input_tokens`` is
``prompt_tokens - cached_tokens`` and ``cache_read_input_tokens`` is ``cached_tokens``.
``GET /v1/models`` answers health probes. A missing key or ``INVALID_KEY`` gets a 401, a
missing ``anthropic-version`` or a malformed body a 400, as from the real API.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .server import FakeServer, Reply

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}

#: An API key the fake refuses with 401 authentication_error.
INVALID_KEY = "invalid-key"

STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}


def event(name: str, data: dict[str, Any]) -> str:
    """One server-sent event, named as Anthropic names them."""
    return f"event: {name}\ndata: {json.dumps(data)}\n\n"


class AnthropicFake(FakeServer):
    message_id = "msg_01FakeXyZ"
    request_id = "req_01FakeAbC"

    def routes(self) -> list[Route]:
        return [
            Route("/v1/messages", self.messages, methods=["POST"]),
            Route("/v1/models", self.list_models, methods=["GET"]),
        ]

    async def list_models(self, request: Request) -> Response:
        """``GET /v1/models`` (list models), the probe used by ``Backend.check``."""
        await self.record(request)
        reply = self._invalid(dict(request.headers), None, need_body=False)
        if reply is not None:
            return self.json(self.error_body(reply), reply.status, self._headers(reply))
        model = {
            "type": "model",
            "id": "claude-sonnet-4-5-20250929",
            "display_name": "Claude Sonnet 4.5",
            "created_at": "2025-09-29T00:00:00Z",
        }
        page = {"data": [model], "has_more": False, "first_id": model["id"], "last_id": model["id"]}
        return self.json(page, headers=self._headers(Reply()))

    def _headers(self, reply: Reply) -> dict[str, str]:
        return {
            "request-id": self.request_id,
            "anthropic-ratelimit-requests-limit": "50",
            "anthropic-ratelimit-requests-remaining": "49",
            "anthropic-ratelimit-requests-reset": "2030-01-01T00:00:00Z",
            **reply.headers,
        }

    def error_body(self, reply: Reply) -> dict[str, Any]:
        kind = reply.error_type or ERROR_TYPES.get(reply.status, "api_error")
        if not reply.error_type and reply.status >= 400 and reply.status not in ERROR_TYPES:
            kind = "api_error" if reply.status >= 500 else "invalid_request_error"
        return {
            "type": "error",
            "error": {"type": kind, "message": reply.error_message or kind},
            "request_id": self.request_id,
        }

    def _invalid(
        self, headers: dict[str, str], body: Any, *, need_body: bool = True
    ) -> Reply | None:
        """The request errors the real API would answer before generating anything."""
        # The API reference documents x-api-key; recent official SDKs send the key as a
        # bearer token instead, which the API accepts too.
        bearer = headers.get("authorization", "")
        key = headers.get("x-api-key") or bearer.removeprefix("Bearer ")
        if not key or key == bearer:
            return Reply.error(401, "x-api-key header is required")
        if key == INVALID_KEY:
            return Reply.error(401, "invalid x-api-key")
        if not headers.get("anthropic-version"):
            return Reply.error(400, "anthropic-version: header is required")
        if not need_body:
            return None
        if not isinstance(body, dict):
            return Reply.error(400, "body must be a JSON object")
        for field in ("model", "max_tokens", "messages"):
            if field not in body:
                return Reply.error(400, f"{field}: Field required")
        previous = None
        for i, message in enumerate(body["messages"]):
            if message.get("role") not in ("user", "assistant"):
                return Reply.error(400, f"messages.{i}.role: Input should be 'user' or 'assistant'")
            if message["role"] == previous:
                return Reply.error(400, "messages: roles must alternate between user and assistant")
            previous = message["role"]
        return None

    def _usage(self, reply: Reply, output_tokens: int | None = None) -> dict[str, Any]:
        return {
            "input_tokens": reply.prompt_tokens - reply.cached_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": reply.cached_tokens,
            "output_tokens": reply.completion_tokens if output_tokens is None else output_tokens,
        }

    def _tool_blocks(self, reply: Reply) -> list[dict[str, Any]]:
        return [
            {"type": "tool_use", "id": f"toolu_{i:02d}Fake", "name": name, "input": arguments}
            for i, (name, arguments) in enumerate(reply.tool_calls)
        ]

    async def messages(self, request: Request) -> Response:
        body = await self.record(request)
        reply = self.next_reply()
        reply = self._invalid(dict(request.headers), body) or reply
        if reply.status != 200:
            return self.json(self.error_body(reply), reply.status, self._headers(reply))
        if body.get("stream"):
            return self.sse(self._stream(reply, body["model"]), self._headers(reply))
        content: list[dict[str, Any]] = []
        if reply.text or not reply.tool_calls:
            content.append({"type": "text", "text": reply.text})
        content.extend(self._tool_blocks(reply))
        return self.json(
            {
                "id": self.message_id,
                "type": "message",
                "role": "assistant",
                "model": body["model"],
                "content": content,
                "stop_reason": STOP_REASONS.get(reply.finish, "end_turn"),
                "stop_sequence": None,
                "usage": self._usage(reply),
            },
            headers=self._headers(reply),
        )

    async def _stream(self, reply: Reply, model: str) -> AsyncIterator[str]:
        message: dict[str, Any] = {
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": self._usage(reply, output_tokens=1),
        }
        yield event("message_start", {"type": "message_start", "message": message})
        index = 0
        if reply.text or not reply.tool_calls:
            yield event(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            )
            yield event("ping", {"type": "ping"})
            for sent, piece in enumerate(reply.pieces()):
                if reply.fail_after_chunks is not None and sent >= reply.fail_after_chunks:
                    error = {"type": "overloaded_error", "message": "Overloaded"}
                    yield event("error", {"type": "error", "error": error})
                    return
                if reply.truncate_after_chunks is not None and sent >= reply.truncate_after_chunks:
                    return
                delta = {"type": "text_delta", "text": piece}
                yield event(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": 0, "delta": delta},
                )
            yield event("content_block_stop", {"type": "content_block_stop", "index": 0})
            index = 1
        for block in self._tool_blocks(reply):
            start = {**block, "input": {}}
            yield event(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": start},
            )
            arguments = json.dumps(block["input"])
            for piece in ["", *(arguments[j : j + 5] for j in range(0, len(arguments), 5))]:
                delta = {"type": "input_json_delta", "partial_json": piece}
                yield event(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": index, "delta": delta},
                )
            yield event("content_block_stop", {"type": "content_block_stop", "index": index})
            index += 1
        stop = {"stop_reason": STOP_REASONS.get(reply.finish, "end_turn"), "stop_sequence": None}
        yield event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": stop,
                "usage": {"output_tokens": reply.completion_tokens},
            },
        )
        yield event("message_stop", {"type": "message_stop"})
