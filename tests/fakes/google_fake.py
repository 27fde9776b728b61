"""Loopback fake of Google's Gemini API (generateContent, streamGenerateContent, errors).

Wire format: https://ai.google.dev/api/generate-content (``GenerateContentResponse``:
``candidates``, ``usageMetadata``, ``modelVersion``, ``responseId``), streaming with
``alt=sse`` as ``data:`` lines only, and errors as in
https://ai.google.dev/gemini-api/docs/troubleshooting: ``{"error": {"code", "message",
"status", "details"}}``. ``GET /v1beta/models`` (models.list) answers health probes.

The key is read from ``x-goog-api-key`` (or the ``key`` query parameter); none at all is
a 403 ``PERMISSION_DENIED``, ``INVALID_KEY`` a 400 ``INVALID_ARGUMENT`` with reason
``API_KEY_INVALID``, as the real API answers. Both ``/v1beta`` (the API reference, and
Crossroads) and ``/v1`` (the default of google-genai >= 3) are served.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .server import FakeServer, Reply

INVALID_KEY = "invalid-key"
THOUGHT_SIGNATURE = "c2lnbmF0dXJlLW9mLXRoZS1mYWtl"

STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_FINISH = {
    "stop": "STOP",
    "tool_calls": "STOP",
    "length": "MAX_TOKENS",
    "content_filter": "SAFETY",
}
_CATEGORIES = (
    "HARM_CATEGORY_SEXUALLY_EXPLICIT",
    "HARM_CATEGORY_HATE_SPEECH",
    "HARM_CATEGORY_HARASSMENT",
    "HARM_CATEGORY_DANGEROUS_CONTENT",
)


class GoogleFake(FakeServer):
    model_version = "gemini-2.5-flash"
    response_id = "fakeResponseId123"

    def routes(self) -> list[Route]:
        # One route per version: path parameters stop at '/', and the method follows ':'.
        # google-genai >= 3 defaults to v1; the API reference (and Crossroads) use v1beta.
        return [
            route
            for version in ("v1beta", "v1")
            for route in (
                Route(f"/{version}/models", self.list_models, methods=["GET"]),
                Route(f"/{version}/models/{{rest:path}}", self.models, methods=["POST"]),
            )
        ]

    # -- bodies --------------------------------------------------------------------
    def error_body(self, reply: Reply) -> dict[str, Any]:
        """``error_type`` is a status name (``FAILED_PRECONDITION``) or an ErrorInfo reason."""
        status = STATUS_NAMES.get(reply.status, "UNKNOWN")
        details: list[dict[str, Any]] = []
        if reply.error_type in STATUS_NAMES.values():
            status = reply.error_type
        elif reply.error_type:
            details.append(
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": reply.error_type,
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"},
                }
            )
        retry_after = reply.headers.get("retry-after")
        if reply.status == 429 and retry_after is not None:
            details.append(
                {
                    "@type": "type.googleapis.com/google.rpc.RetryInfo",
                    "retryDelay": f"{retry_after}s",
                }
            )
        error: dict[str, Any] = {
            "code": reply.status,
            "message": reply.error_message,
            "status": status,
        }
        if details:
            error["details"] = details
        return {"error": error}

    def _usage(self, reply: Reply, final: bool = True) -> dict[str, Any]:
        usage: dict[str, Any] = {"promptTokenCount": reply.prompt_tokens}
        if final:
            usage["candidatesTokenCount"] = reply.completion_tokens
        usage["totalTokenCount"] = reply.prompt_tokens + (reply.completion_tokens if final else 0)
        if reply.cached_tokens:
            usage["cachedContentTokenCount"] = reply.cached_tokens
        usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": reply.prompt_tokens}]
        return usage

    def _safety(self, reply: Reply) -> list[dict[str, Any]]:
        ratings = []
        for category in _CATEGORIES:
            rating: dict[str, Any] = {"category": category, "probability": "NEGLIGIBLE"}
            if reply.finish == "content_filter" and category.endswith("DANGEROUS_CONTENT"):
                rating.update(probability="HIGH", blocked=True)
            ratings.append(rating)
        return ratings

    def _candidate(self, reply: Reply, parts: list[dict[str, Any]], finish: bool) -> dict[str, Any]:
        candidate: dict[str, Any] = {}
        if reply.finish != "content_filter" and parts:
            candidate["content"] = {"role": "model", "parts": parts}
        if finish:
            candidate["finishReason"] = _FINISH.get(reply.finish, "STOP")
        candidate["index"] = 0
        if finish or reply.finish == "content_filter":
            candidate["safetyRatings"] = self._safety(reply)
        return candidate

    def _payload(
        self, reply: Reply, parts: list[dict[str, Any]], *, finish: bool, usage_final: bool
    ) -> dict[str, Any]:
        return {
            "candidates": [self._candidate(reply, parts, finish)],
            "usageMetadata": self._usage(reply, usage_final),
            "modelVersion": self.model_version,
            "responseId": self.response_id,
        }

    @staticmethod
    def _call_parts(reply: Reply) -> list[dict[str, Any]]:
        parts: list[dict[str, Any]] = []
        for i, (name, args) in enumerate(reply.tool_calls):
            part: dict[str, Any] = {"functionCall": {"name": name, "args": args}}
            if i == 0:  # thinking models sign the first call of a turn
                part["thoughtSignature"] = THOUGHT_SIGNATURE
            parts.append(part)
        return parts

    # -- endpoints -----------------------------------------------------------------
    @staticmethod
    def _auth_error(request: Request) -> Reply | None:
        key = request.headers.get("x-goog-api-key") or request.query_params.get("key")
        if not key:
            return Reply.error(
                403,
                "Method doesn't allow unregistered callers (callers without established "
                "identity). Please use API Key or other form of API consumer identity to "
                "call this API.",
            )
        if key == INVALID_KEY:
            return Reply.error(
                400, "API key not valid. Please pass a valid API key.", type="API_KEY_INVALID"
            )
        return None

    async def list_models(self, request: Request) -> Response:
        """``GET /v1beta/models`` (models.list), the probe used by ``Backend.check``."""
        await self.record(request)
        error = self._auth_error(request)
        if error is not None:
            return self.json(self.error_body(error), error.status)
        model = {
            "name": f"models/{self.model_version}",
            "version": "001",
            "displayName": "Gemini 2.5 Flash",
            "inputTokenLimit": 1048576,
            "outputTokenLimit": 65536,
            "supportedGenerationMethods": ["generateContent", "countTokens"],
        }
        return self.json({"models": [model]})

    async def models(self, request: Request) -> Response:
        await self.record(request)
        model, _, method = request.path_params["rest"].partition(":")
        error = self._auth_error(request)
        if method not in ("generateContent", "streamGenerateContent") or not model:
            reply = Reply.error(404, f"Method {method!r} not found for models/{model}.")
        elif error is not None:
            reply = error
        else:
            reply = self.next_reply()
        if reply.status != 200:
            return self.json(self.error_body(reply), reply.status, reply.headers)
        if method == "streamGenerateContent":
            if request.query_params.get("alt") == "sse":
                return self.sse(self._sse(reply), reply.headers)
            # Without alt=sse the API streams one JSON array of the same payloads.
            payloads = [json.loads(event[6:]) async for event in self._sse(reply)]
            return self.json(payloads, headers=reply.headers)
        parts = ([{"text": reply.text}] if reply.text else []) + self._call_parts(reply)
        return self.json(
            self._payload(reply, parts, finish=True, usage_final=True), headers=reply.headers
        )

    async def _sse(self, reply: Reply) -> AsyncIterator[str]:
        def event(data: dict[str, Any]) -> str:
            return f"data: {json.dumps(data)}\r\n\r\n"

        if reply.finish == "content_filter":
            yield event(self._payload(reply, [], finish=True, usage_final=True))
            return
        if reply.tool_calls:
            parts = ([{"text": reply.text}] if reply.text else []) + self._call_parts(reply)
            yield event(self._payload(reply, parts, finish=True, usage_final=True))
            return
        pieces = reply.pieces()
        for sent, piece in enumerate(pieces):
            if reply.fail_after_chunks is not None and sent >= reply.fail_after_chunks:
                yield event(
                    {
                        "error": {
                            "code": 500,
                            "message": "An internal error has occurred. Please retry or "
                            "report in https://developers.generativeai.google/guide/"
                            "troubleshooting",
                            "status": "INTERNAL",
                        }
                    }
                )
                return
            if reply.truncate_after_chunks is not None and sent >= reply.truncate_after_chunks:
                return
            last = sent == len(pieces) - 1
            yield event(self._payload(reply, [{"text": piece}], finish=last, usage_final=last))
