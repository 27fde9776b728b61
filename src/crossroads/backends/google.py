"""Google's Gemini API (Google AI Studio keys), spoken natively over HTTP.

Wire format: https://ai.google.dev/api/generate-content — ``POST
/v1beta/models/{model}:generateContent`` and ``:streamGenerateContent?alt=sse``, the key
in the ``x-goog-api-key`` header (never in the URL). Errors follow
https://ai.google.dev/gemini-api/docs/troubleshooting: ``{"error": {"code", "message",
"status", "details"}}``.

Choices made where the OpenAI shape and Gemini's differ:

* Tool schemas and ``json_schema`` formats are raw JSON Schema, so they go out as
  ``parametersJsonSchema`` / ``responseJsonSchema`` (the fields Google recommends for
  JSON Schema) rather than the OpenAPI-subset ``parameters`` / ``responseSchema``.
* Gemini 3 requires each ``functionCall`` part to come back with its
  ``thoughtSignature``. It is kept on the tool call as
  ``extra_content.google.thought_signature``, the convention of Gemini's own
  OpenAI-compatible endpoint, and sent back from there.
* A prompt blocked outright (``promptFeedback.blockReason``, no candidates) is an
  answer, not an error: one choice with empty content and ``finish_reason`` set to
  ``content_filter``, as OpenAI reports filtered output.
"""

from __future__ import annotations

import base64
import json
import mimetypes
import re
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import httpx

from ..errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    UpstreamUnavailableError,
    error_for_status,
)
from ..types import (
    AssistantMessage,
    ChatChunk,
    ChatRequest,
    ChatResponse,
    FinishReason,
    ImagePart,
    NamedToolChoice,
    SystemMessage,
    ToolMessage,
    Usage,
    UserMessage,
    new_id,
    now,
    text_of,
)
from ._http import HTTPBackend, decode_event, parse_retry_after
from .base import Capabilities, Deployment

__all__ = [
    "GeminiStreamState",
    "GoogleBackend",
    "error_from_gemini",
    "finish_from_gemini",
    "request_to_gemini",
    "response_from_gemini",
    "usage_from_gemini",
]

VENDOR = "google"
API_VERSION = "v1beta"

_FILTER_REASONS = """SAFETY RECITATION LANGUAGE BLOCKLIST PROHIBITED_CONTENT SPII IMAGE_SAFETY
    IMAGE_PROHIBITED_CONTENT IMAGE_RECITATION ESCALATION MODEL_ARMOR PUP_LIMITED_DISABLED"""
# Stopped without a usable answer: a malformed or refused tool call, an unknown cause.
_ERROR_REASONS = """OTHER MALFORMED_FUNCTION_CALL UNEXPECTED_TOOL_CALL TOO_MANY_TOOL_CALLS
    MISSING_THOUGHT_SIGNATURE MALFORMED_RESPONSE NO_IMAGE IMAGE_OTHER"""
_FILTERED: FinishReason = "content_filter"
_ERROR: FinishReason = "error"
_FINISH: dict[str, FinishReason] = {
    "STOP": "stop",
    "FINISH_REASON_UNSPECIFIED": "stop",
    "MAX_TOKENS": "length",
    "CONTINUATION": "length",
    **dict.fromkeys(_FILTER_REASONS.split(), _FILTERED),
    **dict.fromkeys(_ERROR_REASONS.split(), _ERROR),
}
_TOOL_MODE = {"auto": "AUTO", "required": "ANY", "none": "NONE"}


def finish_from_gemini(value: str | None, has_tool_calls: bool = False) -> FinishReason | None:
    """OpenAI finish reason for a Gemini ``finishReason`` (None while still generating)."""
    if not value:
        return None
    reason = _FINISH.get(value.upper(), "stop")
    return "tool_calls" if reason == "stop" and has_tool_calls else reason


# --- request -------------------------------------------------------------------------


def _bad_request(message: str) -> BadRequestError:
    return BadRequestError(message, vendor=VENDOR)


def _compact(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None and v != ""}


def _image_part(url: str) -> dict[str, Any]:
    if url.startswith("data:"):
        header, _, payload = url[5:].partition(",")
        mime, *params = header.split(";")
        if "base64" not in params:
            payload = base64.b64encode(urllib.parse.unquote_to_bytes(payload)).decode()
        return {"inlineData": {"mimeType": mime or "image/jpeg", "data": payload}}
    # Gemini wants a MIME type with fileData; guess from the extension, else assume JPEG.
    mime = mimetypes.guess_type(urllib.parse.urlsplit(url).path)[0] or "image/jpeg"
    return {"fileData": {"fileUri": url, "mimeType": mime}}


def _content_parts(content: str | list[Any] | None) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    parts: list[dict[str, Any]] = []
    for part in content:
        if isinstance(part, ImagePart):
            parts.append(_image_part(part.image_url.url))
        elif part.text:
            parts.append({"text": part.text})
    return parts


def _function_args(arguments: str, name: str) -> dict[str, Any]:
    if not arguments.strip():
        return {}
    try:
        args = json.loads(arguments)
    except ValueError as exc:
        raise _bad_request(f"arguments of tool call {name!r} are not JSON") from exc
    if not isinstance(args, dict):
        raise _bad_request(f"arguments of tool call {name!r} must be a JSON object")
    return args


def _thought_signature(extra: dict[str, Any] | None) -> str | None:
    google = ((extra or {}).get("extra_content") or {}).get("google") or {}
    signature = google.get("thought_signature")
    return signature if isinstance(signature, str) else None


def _function_response(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {"result": text}
    return value if isinstance(value, dict) else {"result": value}


def _contents(request: ChatRequest) -> list[dict[str, Any]]:
    contents: list[dict[str, Any]] = []
    call_names: dict[str, str] = {}

    def add(role: str, parts: list[dict[str, Any]]) -> None:
        if not parts:
            return
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)  # Gemini wants alternating turns
        else:
            contents.append({"role": role, "parts": parts})

    for message in request.messages:
        if isinstance(message, SystemMessage):
            continue
        if isinstance(message, UserMessage):
            add("user", _content_parts(message.content))
        elif isinstance(message, AssistantMessage):
            parts = _content_parts(message.content)
            for call in message.tool_calls or []:
                call_names[call.id] = call.function.name
                part: dict[str, Any] = {
                    "functionCall": {
                        "name": call.function.name,
                        "args": _function_args(call.function.arguments, call.function.name),
                    }
                }
                signature = _thought_signature(call.model_extra)
                if signature:
                    part["thoughtSignature"] = signature
                parts.append(part)
            add("model", parts)
        elif isinstance(message, ToolMessage):
            name = call_names.get(message.tool_call_id)
            if name is None:
                raise _bad_request(
                    f"tool message answers tool_call_id {message.tool_call_id!r}, but no "
                    "earlier assistant message made that call (Gemini needs its name)"
                )
            response = _function_response(text_of(message.content))
            add("user", [{"functionResponse": {"name": name, "response": response}}])
    return contents


def _generation_config(request: ChatRequest) -> dict[str, Any]:
    extra = request.model_extra or {}
    max_tokens = request.max_tokens or extra.get("max_completion_tokens")
    config: dict[str, Any] = {
        "temperature": request.temperature,
        "topP": request.top_p,
        "maxOutputTokens": max_tokens,
        "stopSequences": request.stop_list() or None,
        "seed": request.seed,
        "presencePenalty": request.presence_penalty,
        "frequencyPenalty": request.frequency_penalty,
        "candidateCount": request.n,
    }
    fmt = request.response_format
    if fmt is not None and fmt.type in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
        if fmt.type == "json_schema" and fmt.json_schema and fmt.json_schema.schema_:
            config["responseJsonSchema"] = fmt.json_schema.schema_
    if request.logprobs:
        config["responseLogprobs"] = True
        config["logprobs"] = request.top_logprobs
    return _compact(config)


def _tool_config(request: ChatRequest) -> dict[str, Any] | None:
    choice = request.tool_choice
    if choice is None:
        return None
    if isinstance(choice, NamedToolChoice):
        config = {"mode": "ANY", "allowedFunctionNames": [choice.function.name]}
    else:
        config = {"mode": _TOOL_MODE[choice]}
    return {"functionCallingConfig": config}


def request_to_gemini(request: ChatRequest) -> dict[str, Any]:
    """The JSON body for ``generateContent`` / ``streamGenerateContent``."""
    body: dict[str, Any] = {"contents": _contents(request)}
    system = request.system_text()
    if system:
        body["systemInstruction"] = {"parts": [{"text": system}]}
    if request.tools:
        declarations = [
            {"name": fn.name, "description": fn.description, "parametersJsonSchema": fn.parameters}
            for fn in (tool.function for tool in request.tools)
        ]
        body["tools"] = [{"functionDeclarations": [_compact(d) for d in declarations]}]
    tool_config = _tool_config(request)
    if tool_config:
        body["toolConfig"] = tool_config
    config = _generation_config(request)
    if config:
        body["generationConfig"] = config
    return body


# --- response ------------------------------------------------------------------------


def usage_from_gemini(data: dict[str, Any] | None) -> Usage:
    """Usage from ``usageMetadata``; thinking tokens count as completion, as OpenAI's do.

    Tool-use prompt tokens (server-side tools) are billed as input, so they are added to
    the prompt count.
    """
    if not data:
        return Usage()
    thoughts = int(data.get("thoughtsTokenCount") or 0)
    usage = Usage.of(
        int(data.get("promptTokenCount") or 0) + int(data.get("toolUsePromptTokenCount") or 0),
        int(data.get("candidatesTokenCount") or 0) + thoughts,
        cached=int(data.get("cachedContentTokenCount") or 0),
        reasoning=thoughts,
    )
    if data.get("totalTokenCount"):
        usage.total_tokens = int(data["totalTokenCount"])
    return usage


def _tool_call(call: dict[str, Any], part: dict[str, Any], n: int) -> dict[str, Any]:
    tool_call: dict[str, Any] = {
        "id": call.get("id") or f"call_{n}",
        "type": "function",
        "function": {
            "name": call.get("name") or "",
            "arguments": json.dumps(call.get("args") or {}),
        },
    }
    if part.get("thoughtSignature"):
        tool_call["extra_content"] = {"google": {"thought_signature": part["thoughtSignature"]}}
    return tool_call


def _read_parts(candidate: dict[str, Any], first_call: int) -> tuple[str, list[dict[str, Any]]]:
    """The visible text (thoughts skipped) and the OpenAI tool calls of a candidate."""
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for part in (candidate.get("content") or {}).get("parts") or []:
        if part.get("thought"):
            continue
        if isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif isinstance(part.get("functionCall"), dict):
            calls.append(_tool_call(part["functionCall"], part, first_call + len(calls)))
    return "".join(texts), calls


def _logprob(token: dict[str, Any]) -> dict[str, Any]:
    return {"token": token.get("token", ""), "logprob": token.get("logProbability", 0.0)}


def _logprobs(candidate: dict[str, Any]) -> dict[str, Any] | None:
    """OpenAI ``logprobs.content`` from ``logprobsResult`` (chosen and top tokens)."""
    result = candidate.get("logprobsResult")
    if not isinstance(result, dict):
        return None
    tops = [t.get("candidates") or [] for t in result.get("topCandidates") or []]
    chosen = result.get("chosenCandidates") or []
    return {
        "content": [
            {**_logprob(c), "top_logprobs": [_logprob(a) for a in (tops[i:] or [[]])[0]]}
            for i, c in enumerate(chosen)
        ]
    }


def _blocked(data: dict[str, Any]) -> bool:
    return not data.get("candidates") and bool(
        (data.get("promptFeedback") or {}).get("blockReason")
    )


def response_from_gemini(data: dict[str, Any], model: str) -> ChatResponse:
    """Canonical response from a ``GenerateContentResponse``; ``model`` is our name.

    A blocked prompt (``promptFeedback.blockReason`` and no candidates) becomes one choice
    with empty content and ``finish_reason="content_filter"``.
    """
    choices: list[dict[str, Any]] = []
    calls_so_far = 0
    for position, candidate in enumerate(data.get("candidates") or []):
        text, calls = _read_parts(candidate, calls_so_far)
        calls_so_far += len(calls)
        choices.append(
            {
                "index": candidate.get("index", position),
                "message": {
                    "role": "assistant",
                    "content": text if text or not calls else None,
                    "tool_calls": calls or None,
                },
                "finish_reason": finish_from_gemini(candidate.get("finishReason"), bool(calls))
                or "stop",
                "logprobs": _logprobs(candidate),
            }
        )
    if _blocked(data):
        blocked = {"role": "assistant", "content": ""}
        choices.append({"index": 0, "message": blocked, "finish_reason": _FILTERED})
    return ChatResponse.model_validate(
        {
            "id": data.get("responseId") or new_id(),
            "created": now(),
            "model": model,
            "choices": choices,
            "usage": usage_from_gemini(data.get("usageMetadata")),
        }
    )


class GeminiStreamState:
    """Turns the ``data:`` payloads of ``streamGenerateContent?alt=sse`` into chunks.

    Gemini sends whole function calls in one part, so each becomes one complete
    ``ToolCallDelta``. Call :meth:`finish` when the stream ends: it returns the trailing
    usage chunk and raises if no candidate ever reported a ``finishReason``.
    """

    def __init__(self, model: str) -> None:
        self.model = model
        self.id: str | None = None
        self.created = now()
        self.usage: dict[str, Any] | None = None
        self._role_sent: set[int] = set()
        self._open: set[int] = set()
        self._finished: set[int] = set()
        self._calls: dict[int, int] = {}  # candidate index -> tool calls so far
        self._ids = 0  # generated call ids, unique across candidates

    def _chunk(self, choices: list[dict[str, Any]]) -> ChatChunk:
        return ChatChunk.model_validate(
            {"id": self.id, "created": self.created, "model": self.model, "choices": choices}
        )

    def feed(self, data: dict[str, Any]) -> list[ChatChunk]:
        """Chunks for one parsed payload; raises the mapped error for an ``error`` object."""
        if isinstance(data.get("error"), dict):
            code = data["error"].get("code")
            status = code if isinstance(code, int) and code >= 400 else 500
            raise error_from_gemini(status, data, httpx.Headers(), mid_stream=True)
        self.id = self.id or data.get("responseId") or new_id()
        if data.get("usageMetadata"):
            self.usage = data["usageMetadata"]
        chunks: list[ChatChunk] = []
        candidates = data.get("candidates") or []
        if _blocked(data):
            candidates = [{"index": 0, "finishReason": "SAFETY"}]
        for position, candidate in enumerate(candidates):
            index = candidate.get("index", position)
            self._open.add(index)
            text, calls = _read_parts(candidate, self._ids)
            self._ids += len(calls)
            delta: dict[str, Any] = {}
            if index not in self._role_sent:
                self._role_sent.add(index)
                delta["role"] = "assistant"
            if text or "role" in delta:
                delta["content"] = text
            if calls:
                first = self._calls.get(index, 0)
                self._calls[index] = first + len(calls)
                delta["tool_calls"] = [{"index": first + i, **c} for i, c in enumerate(calls)]
            if delta:
                chunks.append(
                    self._chunk(
                        [{"index": index, "delta": delta, "logprobs": _logprobs(candidate)}]
                    )
                )
            reason = finish_from_gemini(candidate.get("finishReason"), index in self._calls)
            if reason and index not in self._finished:
                self._finished.add(index)
                chunks.append(self._chunk([{"index": index, "delta": {}, "finish_reason": reason}]))
        return chunks

    def finish(self) -> ChatChunk:
        """The trailing usage chunk; raises if the stream was cut before the end."""
        if not self._finished or self._open - self._finished:
            raise UpstreamUnavailableError(
                "stream ended before the answer was finished", vendor=VENDOR
            )
        chunk = self._chunk([])
        chunk.usage = usage_from_gemini(self.usage)
        return chunk


# --- errors --------------------------------------------------------------------------


def _retry_delay(details: list[Any]) -> float | None:
    for detail in details:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("RetryInfo"):
            match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)s\s*", str(detail.get("retryDelay", "")))
            if match:
                return float(match.group(1))
    return None


def error_from_gemini(
    status: int, body: Any, headers: httpx.Headers, *, mid_stream: bool = False
) -> APIError:
    """The Crossroads error for a Gemini error body ``{"error": {...}}`` (or a list of one)."""
    if isinstance(body, list) and body and isinstance(body[0], dict):
        body = body[0]
    err = body.get("error") if isinstance(body, dict) else None
    details: list[Any] = []
    if isinstance(err, dict):
        message = str(err.get("message") or err)
        code = err.get("status")
        raw_details = err.get("details")
        details = raw_details if isinstance(raw_details, list) else []
    else:
        message, code = (str(body)[:500] or f"HTTP {status}"), None
    reasons = [d.get("reason") for d in details if isinstance(d, dict) and d.get("reason")]
    if reasons:
        code = reasons[0]
    if mid_stream:
        message = f"error in the middle of the stream: {message}"
    retry_after = parse_retry_after(headers)
    if retry_after is None:
        retry_after = _retry_delay(details)
    kw: dict[str, Any] = {
        "vendor": VENDOR,
        "code": str(code) if code else None,
        "request_id": headers.get("x-request-id"),
        "body": body,
    }
    if status in (400, 401) and ("API_KEY_INVALID" in reasons or "API key not valid" in message):
        return AuthenticationError(message, status_code=status, **kw)
    return error_for_status(status, message, retry_after=retry_after, **kw)


# --- backend -------------------------------------------------------------------------


class GoogleBackend(HTTPBackend):
    """Gemini models through the Gemini Developer API.

    The key comes from ``GEMINI_API_KEY``; ``GOOGLE_API_KEY`` (what the ``google-genai``
    SDK also reads) is accepted as a fallback. ``GOOGLE_GEMINI_BASE_URL`` overrides the
    host, as in the SDK.
    """

    name: ClassVar[str] = "google"
    default_base_url: ClassVar[str | None] = "https://generativelanguage.googleapis.com"
    api_key_env: ClassVar[str | None] = "GEMINI_API_KEY"
    api_key_env_fallbacks: ClassVar[tuple[str, ...]] = ("GOOGLE_API_KEY",)
    base_url_env: ClassVar[str | None] = "GOOGLE_GEMINI_BASE_URL"
    probe_path: ClassVar[str | None] = "/models?pageSize=1"
    features: ClassVar[Capabilities] = Capabilities(
        tools=True, json_schema=True, vision=True, logprobs=True
    )

    def __init__(self, deployment: Deployment, *, http: httpx.AsyncClient | None = None) -> None:
        super().__init__(deployment, http=http)
        model = deployment.model if "/" in deployment.model else f"models/{deployment.model}"
        self.model_path = "/" + model

    def base_url(self) -> str:
        base_url = super().base_url()
        # Accept a base URL given with or without the API version.
        if not re.search(r"/v1(beta\d*|alpha)?$", base_url):
            base_url = f"{base_url}/{API_VERSION}"
        return base_url

    def auth_headers(self) -> dict[str, str]:
        key = self.deployment.api_key
        return {"x-goog-api-key": key} if key else {}

    def map_error(self, status: int, body: Any, headers: httpx.Headers) -> APIError:
        return error_from_gemini(status, body, headers)

    async def complete(self, request: ChatRequest) -> ChatResponse:
        data, _ = await self.transport.post_json(
            f"{self.model_path}:generateContent", request_to_gemini(request)
        )
        if not isinstance(data, dict):
            raise UpstreamUnavailableError("answer was not a JSON object", vendor=VENDOR)
        return response_from_gemini(data, request.model)

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        state = GeminiStreamState(request.model)
        async for event in self.transport.stream_sse(
            f"{self.model_path}:streamGenerateContent",
            request_to_gemini(request),
            params={"alt": "sse"},
        ):
            payload = decode_event(event, VENDOR)
            for item in payload if isinstance(payload, list) else [payload]:
                if not isinstance(item, dict):
                    raise UpstreamUnavailableError(
                        f"unexpected stream event: {event.data[:200]!r}", vendor=VENDOR
                    )
                for chunk in state.feed(item):
                    yield chunk
        yield state.finish()
