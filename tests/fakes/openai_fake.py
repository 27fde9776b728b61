"""Loopback fake of OpenAI's Chat Completions API (JSON, SSE, errors, rate-limit headers).

Wire format: https://platform.openai.com/docs/api-reference/chat/create and
https://platform.openai.com/docs/api-reference/chat-streaming; errors as in
https://platform.openai.com/docs/guides/error-codes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .server import FakeServer, Reply

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_denied",
    404: "invalid_request_error",
    429: "rate_limit_exceeded",
}


class OpenAIFake(FakeServer):
    """OpenAI itself (a key is required) or, with ``require_key=False``, a self-hosted
    OpenAI-compatible server such as vLLM or Ollama started without a key."""

    created = 1_700_000_000

    def __init__(self, *, require_key: bool = True) -> None:
        super().__init__()
        self.require_key = require_key

    def routes(self) -> list[Route]:
        return [
            Route("/v1/chat/completions", self.chat, methods=["POST"]),
            Route("/v1/models", self.models, methods=["GET"]),
            Route("/v1/embeddings", self.embeddings, methods=["POST"]),
        ]

    async def embeddings(self, request: Request) -> Response:
        """https://platform.openai.com/docs/api-reference/embeddings/create (float only)."""
        body = await self.record(request)
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [
            {"object": "embedding", "index": i, "embedding": [float(len(t)), 0.5, -0.25]}
            for i, t in enumerate(texts)
        ]
        usage = {"prompt_tokens": 3 * len(texts), "total_tokens": 3 * len(texts)}
        return self.json({"object": "list", "data": data, "model": body["model"], "usage": usage})

    async def models(self, request: Request) -> Response:
        return self.json(
            {
                "object": "list",
                "data": [
                    {
                        "id": "gpt-4o",
                        "object": "model",
                        "created": self.created,
                        "owned_by": "openai",
                    }
                ],
            }
        )

    def _headers(self, reply: Reply) -> dict[str, str]:
        return {
            "x-request-id": "req_fake123",
            "x-ratelimit-limit-requests": "500",
            "x-ratelimit-remaining-requests": "499",
            "x-ratelimit-reset-requests": "120ms",
            **reply.headers,
        }

    def error_body(self, reply: Reply) -> dict[str, Any]:
        return {
            "error": {
                "message": reply.error_message,
                "type": reply.error_type or _ERROR_TYPES.get(reply.status, "server_error"),
                "param": None,
                "code": reply.error_type or None,
            }
        }

    def _tool_calls(self, reply: Reply) -> list[dict[str, Any]]:
        return [
            {
                "id": f"call_{i}",
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(args)},
            }
            for i, (name, args) in enumerate(reply.tool_calls)
        ]

    def _usage(self, reply: Reply) -> dict[str, Any]:
        return {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": reply.cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        }

    async def chat(self, request: Request) -> Response:
        body = await self.record(request)
        reply = self.next_reply()
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        has_key = request.headers.get("authorization", "").startswith("Bearer ")
        if self.require_key and not has_key:
            reply = Reply.error(401, "You didn't provide an API key.")
        if reply.status != 200:
            return self.json(self.error_body(reply), reply.status, self._headers(reply))
        model = body["model"]
        if body.get("stream"):
            include_usage = (body.get("stream_options") or {}).get("include_usage", False)
            return self.sse(self._stream(reply, model, include_usage), self._headers(reply))
        message: dict[str, Any] = {
            "role": "assistant",
            "content": reply.text or None,
            "refusal": None,
        }
        if reply.tool_calls:
            message["tool_calls"] = self._tool_calls(reply)
        return self.json(
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": self.created,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "logprobs": None,
                        "finish_reason": reply.finish,
                    }
                ],
                "usage": self._usage(reply),
                "system_fingerprint": "fp_fake",
            },
            headers=self._headers(reply),
        )

    async def _stream(self, reply: Reply, model: str, include_usage: bool) -> AsyncIterator[str]:
        def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
            data = {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": model,
                "system_fingerprint": "fp_fake",
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
                **extra,
            }
            return f"data: {json.dumps(data)}\n\n"

        yield chunk({"role": "assistant", "content": "", "refusal": None})
        sent = 0
        if reply.tool_calls:
            for i, call in enumerate(self._tool_calls(reply)):
                args = call["function"]["arguments"]
                yield chunk(
                    {
                        "tool_calls": [
                            {
                                "index": i,
                                "id": call["id"],
                                "type": "function",
                                "function": {"name": call["function"]["name"], "arguments": ""},
                            }
                        ]
                    }
                )
                for j in range(0, len(args), 5):
                    yield chunk(
                        {"tool_calls": [{"index": i, "function": {"arguments": args[j : j + 5]}}]}
                    )
        else:
            for piece in reply.pieces():
                if reply.fail_after_chunks is not None and sent >= reply.fail_after_chunks:
                    reply.status = 500
                    err = {
                        "error": {
                            "message": "The server had an error while processing your request.",
                            "type": "server_error",
                            "param": None,
                            "code": None,
                        }
                    }
                    yield f"data: {json.dumps(err)}\n\n"
                    return
                if reply.truncate_after_chunks is not None and sent >= reply.truncate_after_chunks:
                    return
                if reply.chunk_delay_s:
                    await asyncio.sleep(reply.chunk_delay_s)
                yield chunk({"content": piece})
                sent += 1
        yield chunk({}, reply.finish)
        if include_usage:
            data = {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": model,
                "system_fingerprint": "fp_fake",
                "choices": [],
                "usage": self._usage(reply),
            }
            yield f"data: {json.dumps(data)}\n\n"
        yield "data: [DONE]\n\n"
