"""OpenAI Chat Completions, and every server that speaks it (vLLM, TGI, Ollama, ...).

Wire format: https://platform.openai.com/docs/api-reference/chat — the canonical types
already have this shape, so translation is mostly renaming the model and reading usage.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx

from ..errors import APIError, UpstreamUnavailableError, error_for_status
from ..types import ChatChunk, ChatRequest, ChatResponse, FinishReason, Usage
from ._http import HTTPBackend, decode_event, parse_retry_after
from ._sse import SSEEvent, SSEFramer
from .base import Capabilities, Deployment

__all__ = [
    "OpenAIBackend",
    "RawEvent",
    "chunk_from_openai",
    "error_from_openai",
    "request_to_openai",
    "response_from_openai",
    "usage_from_openai",
]

VENDOR = "openai"
OFFICIAL_HOST = "api.openai.com"

_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
    "eos": "stop",  # TGI
    "stop_sequence": "stop",
    "error": "error",
}


def finish_from_openai(value: str | None) -> FinishReason | None:
    return None if value is None else _FINISH.get(value, "stop")


def request_to_openai(
    request: ChatRequest, vendor_model: str, *, stream: bool, official: bool = False
) -> dict[str, Any]:
    """The JSON body for ``POST /chat/completions``."""
    body = request.model_dump(mode="json", exclude_none=True, by_alias=True)
    body["model"] = vendor_model
    body.pop("stream", None)
    body.pop("stream_options", None)
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    if official and "max_tokens" in body:
        # Reasoning models reject max_tokens; max_completion_tokens works for all.
        body["max_completion_tokens"] = body.pop("max_tokens")
    return body


def usage_from_openai(data: dict[str, Any] | None) -> Usage:
    if not data:
        return Usage()
    prompt_details = data.get("prompt_tokens_details") or {}
    completion_details = data.get("completion_tokens_details") or {}
    usage = Usage.of(
        int(data.get("prompt_tokens") or 0),
        int(data.get("completion_tokens") or 0),
        cached=int(prompt_details.get("cached_tokens") or 0),
        reasoning=int(completion_details.get("reasoning_tokens") or 0),
    )
    if data.get("total_tokens"):
        usage.total_tokens = int(data["total_tokens"])
    return usage


def response_from_openai(data: dict[str, Any], model: str) -> ChatResponse:
    """Canonical response from an OpenAI-shaped JSON answer; ``model`` is our name."""
    choices = []
    for raw in data.get("choices") or []:
        message = dict(raw.get("message") or {})
        message.setdefault("role", "assistant")
        choices.append(
            {
                "index": raw.get("index", 0),
                "message": message,
                "finish_reason": finish_from_openai(raw.get("finish_reason")),
                "logprobs": raw.get("logprobs"),
            }
        )
    return ChatResponse.model_validate(
        {
            "id": data.get("id") or "chatcmpl-unknown",
            "created": data.get("created") or 0,
            "model": model,
            "choices": choices,
            "usage": usage_from_openai(data.get("usage")),
            "system_fingerprint": data.get("system_fingerprint"),
        }
    )


def chunk_from_openai(data: dict[str, Any], model: str) -> ChatChunk:
    """Canonical chunk from one ``data:`` payload of an OpenAI stream."""
    if "error" in data and not data.get("choices"):
        raise error_from_openai(500, data, httpx.Headers(), mid_stream=True)
    choices = data.get("choices") or []
    for choice in choices:
        choice["finish_reason"] = finish_from_openai(choice.get("finish_reason"))
    usage = data.get("usage")
    return ChatChunk.model_validate(
        {
            "id": data.get("id") or "chatcmpl-unknown",
            "created": data.get("created") or 0,
            "model": model,
            "choices": choices,
            "usage": usage_from_openai(usage) if usage else None,
            "system_fingerprint": data.get("system_fingerprint"),
        }
    )


def error_from_openai(
    status: int, body: Any, headers: httpx.Headers, *, mid_stream: bool = False
) -> APIError:
    """The Crossroads error for an OpenAI error body ``{"error": {...}}``."""
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        message = str(err.get("message") or err)
        code = err.get("code") or err.get("type")
    elif isinstance(err, str):  # some compatible servers send {"error": "text"}
        message, code = err, None
    else:
        message, code = (str(body)[:500] or f"HTTP {status}"), None
    if mid_stream:
        message = f"error in the middle of the stream: {message}"
    return error_for_status(
        status,
        message,
        vendor=VENDOR,
        code=str(code) if code is not None else None,
        retry_after=parse_retry_after(headers),
        request_id=headers.get("x-request-id"),
        body=body,
    )


@dataclass(frozen=True, slots=True)
class RawEvent:
    """One event of an OpenAI stream as the upstream sent it: its bytes (blank line
    included) and its JSON payload (None for ``[DONE]``)."""

    raw: bytes
    data: dict[str, Any] | None


class OpenAIBackend(HTTPBackend):
    """OpenAI's API, or any OpenAI-compatible server given by ``base_url``."""

    name: ClassVar[str] = "openai"
    default_base_url: ClassVar[str | None] = "https://api.openai.com/v1"
    api_key_env: ClassVar[str | None] = "OPENAI_API_KEY"
    base_url_env: ClassVar[str | None] = "OPENAI_BASE_URL"
    probe_path: ClassVar[str | None] = "/models"
    features: ClassVar[Capabilities] = Capabilities(
        tools=True, json_schema=True, vision=True, logprobs=True
    )
    #: Its streams can be relayed byte for byte to an OpenAI client (:meth:`relay`).
    relays_openai_sse: ClassVar[bool] = True

    def __init__(self, deployment: Deployment, *, http: httpx.AsyncClient | None = None) -> None:
        super().__init__(deployment, http=http)
        self.official = OFFICIAL_HOST in self.transport.base_url

    def auth_headers(self) -> dict[str, str]:
        key = self.deployment.api_key
        return {"authorization": f"Bearer {key}"} if key else {}

    def map_error(self, status: int, body: Any, headers: httpx.Headers) -> APIError:
        return error_from_openai(status, body, headers)

    def _body(self, request: ChatRequest, stream: bool) -> dict[str, Any]:
        return request_to_openai(
            request, self.deployment.model, stream=stream, official=self.official
        )

    async def embeddings(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /embeddings`` (https://platform.openai.com/docs/api-reference/embeddings)
        with this backend's transport: its key, retries and error mapping."""
        data, _ = await self.transport.post_json("/embeddings", body)
        if not isinstance(data, dict):
            raise UpstreamUnavailableError("embeddings answer was not a JSON object", vendor=VENDOR)
        return data

    async def complete(self, request: ChatRequest) -> ChatResponse:
        data, _ = await self.transport.post_json("/chat/completions", self._body(request, False))
        return response_from_openai(data, request.model)

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        finished = False
        async for event in self.transport.stream_sse(
            "/chat/completions", self._body(request, True)
        ):
            if event.data.strip() == "[DONE]":
                finished = True
                continue  # read on to the end of the body so the connection is pooled
            payload = decode_event(event, VENDOR)
            if event.event == "error":
                raise error_from_openai(500, payload, httpx.Headers(), mid_stream=True)
            chunk = chunk_from_openai(payload, request.model)
            finished = finished or any(c.finish_reason for c in chunk.choices)
            yield chunk
        if not finished:
            raise UpstreamUnavailableError(
                "stream ended before the answer was finished", vendor=VENDOR
            )

    async def relay(self, request: ChatRequest) -> AsyncIterator[list[RawEvent]]:
        """The stream as the upstream sent it, for a relay that passes it on untouched:
        the events completed by each read from the connection, together (never an empty
        list). Failures are raised as :meth:`stream` raises them, after the events before
        them: an error event, or an end before any choice finished."""
        finished = False
        framer = SSEFramer()
        parts = self.transport.stream_bytes("/chat/completions", self._body(request, True))
        async for part in parts:
            framed = framer.feed(part)
            if framed:
                events, done, failure = _raw_events(framed)
                finished = finished or done
                if events:
                    yield events
                if failure is not None:
                    raise failure
        events, done, failure = _raw_events(framer.close())
        if events:
            yield events
        if failure is not None:
            raise failure
        if not (finished or done):
            raise UpstreamUnavailableError(
                "stream ended before the answer was finished", vendor=VENDOR
            )


def _raw_events(
    framed: list[tuple[bytes, SSEEvent]],
) -> tuple[list[RawEvent], bool, APIError | None]:
    """The events read, whether a choice finished, and the failure that ends them."""
    events: list[RawEvent] = []
    finished = False
    for raw, event in framed:
        if event.data.strip() == "[DONE]":
            events.append(RawEvent(raw, None))
            finished = True
            continue
        try:
            payload = decode_event(event, VENDOR)
        except APIError as exc:
            return events, finished, exc
        if event.event == "error" or (
            isinstance(payload, dict) and "error" in payload and not payload.get("choices")
        ):
            return events, finished, error_from_openai(
                500, payload, httpx.Headers(), mid_stream=True
            )
        if not isinstance(payload, dict):
            return events, finished, UpstreamUnavailableError(
                f"malformed stream event: {event.data[:200]!r}", vendor=VENDOR
            )
        for choice in payload.get("choices") or ():
            if isinstance(choice, dict) and choice.get("finish_reason"):
                finished = True
        events.append(RawEvent(raw, payload))
    return events, finished, None
