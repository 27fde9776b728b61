"""Anthropic's Messages API (``POST /v1/messages``), translated to and from the canonical shape.

Wire format: https://docs.anthropic.com/en/api/messages; streaming events:
https://docs.anthropic.com/en/docs/build-with-claude/streaming; errors:
https://docs.anthropic.com/en/api/errors; structured outputs:
https://docs.claude.com/en/docs/build-with-claude/structured-outputs.

Where the OpenAI shape has no direct counterpart:

* system/developer messages, wherever they stand, are joined into the top-level ``system``.
* Consecutive messages of one role are merged into one turn, as the API wants user and
  assistant turns to alternate; ``tool`` messages become ``tool_result`` blocks of a user
  turn, placed before the other blocks of that turn (the API requires them first). A final
  assistant message (a prefill) loses its trailing whitespace, which the API rejects.
* ``max_tokens`` is required: the request's, else the deployment's ``max_output_tokens``,
  else ``DEFAULT_MAX_TOKENS``. ``temperature`` is clamped to Anthropic's range 0..1.
* ``response_format`` json_schema uses Anthropic's documented structured outputs
  (``output_config.format``, with ``additionalProperties: false`` added to object schemas,
  as the API requires) on models that have them. Older models (Claude 2/3.x, Claude 4.0
  and 4.1, see :func:`supports_structured_outputs`) get an emulation: a tool named after
  the schema, forced with ``tool_choice``, whose input is turned back into JSON text with
  finish_reason "stop" (the forced tool replaces any ``tool_choice`` of the request). The
  deployment option ``json_schema_mode: native | tool`` overrides the guess.
  ``json_object`` adds a system instruction to answer with JSON only.
* ``UNSUPPORTED_OPTIONS`` are dropped silently; of the fields the canonical request does not
  know, only ``PASSTHROUGH_OPTIONS`` are forwarded (``max_completion_tokens`` stands in for
  a missing ``max_tokens``).
* Thinking blocks (and their deltas) are not part of the canonical answer and are skipped;
  unknown stream events are ignored, as the versioning policy asks.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import httpx

from ..errors import APIError, BadRequestError, UpstreamUnavailableError, error_for_status
from ..types import (
    AssistantMessage,
    ChatChunk,
    ChatRequest,
    ChatResponse,
    Choice,
    ChunkChoice,
    Delta,
    FinishReason,
    FunctionCall,
    FunctionCallDelta,
    ImagePart,
    SystemMessage,
    TextPart,
    Tool,
    ToolCall,
    ToolCallDelta,
    ToolMessage,
    Usage,
    UserMessage,
    now,
    text_of,
)
from ._http import HTTPBackend, decode_event, parse_retry_after
from .anthropic_wire import (
    ERROR_TYPE_STATUS,
    VENDOR,
    finish_from_anthropic,
    image_block,
    tool_input,
    tool_use_block,
    usage_from_anthropic,
)
from .base import Capabilities, Deployment

__all__ = [
    "API_VERSION",
    "DEFAULT_MAX_TOKENS",
    "PASSTHROUGH_OPTIONS",
    "UNSUPPORTED_OPTIONS",
    "AnthropicBackend",
    "AnthropicStreamState",
    "error_from_anthropic",
    "finish_from_anthropic",
    "json_tool_name",
    "request_to_anthropic",
    "response_from_anthropic",
    "strict_schema",
    "supports_structured_outputs",
    "usage_from_anthropic",
]

API_VERSION = "2023-06-01"
MESSAGES_PATH = "/v1/messages"
DEFAULT_MAX_TOKENS = 4096

#: Chat Completions options with no Anthropic counterpart: dropped without a word.
UNSUPPORTED_OPTIONS = (
    "frequency_penalty",
    "presence_penalty",
    "seed",
    "logprobs",
    "top_logprobs",
    "n",
    "stream_options",
)
#: Extra (non-OpenAI) request fields forwarded unchanged to Anthropic.
PASSTHROUGH_OPTIONS = ("top_k", "thinking")

JSON_OBJECT_INSTRUCTION = (
    "Answer with one valid JSON object only: no prose, no Markdown code fences."
)

#: HTTP status of each documented error type, for errors that arrive inside a stream.
_ERROR_STATUS = ERROR_TYPE_STATUS

# Models released before structured outputs (output_config.format) became available.
_LEGACY_MODELS = re.compile(r"claude-(2|instant|3)|claude-(opus|sonnet)-4-(0|1|2025)")


def supports_structured_outputs(vendor_model: str) -> bool:
    """Whether the model takes ``output_config.format`` and strict tools (a name-based guess)."""
    name = vendor_model.rsplit("/", 1)[-1]
    name = name[name.find("claude-") :] if "claude-" in name else name
    return not _LEGACY_MODELS.match(name)


def strict_schema(schema: Any) -> Any:
    """A copy of a JSON schema with ``additionalProperties: false`` on every object."""
    if isinstance(schema, list):
        return [strict_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: strict_schema(value) for key, value in schema.items()}
    kind = out.get("type")
    is_object = kind == "object" or (isinstance(kind, list) and "object" in kind)
    if (is_object or "properties" in out) and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


# --- request -------------------------------------------------------------------------


def _bad_request(message: str) -> BadRequestError:
    return BadRequestError(message, vendor=VENDOR)


def _content_blocks(content: str | list[Any] | None) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        content = [TextPart(text=content)]
    blocks: list[dict[str, Any]] = []
    for part in content:
        if isinstance(part, TextPart):
            if part.text.strip():  # the API rejects empty and whitespace-only text blocks
                blocks.append({"type": "text", "text": part.text})
        elif isinstance(part, ImagePart):
            blocks.append(image_block(part.image_url.url))
    return blocks


def _tool_input(call: ToolCall) -> dict[str, Any]:
    try:
        return tool_input(call.function.arguments)
    except ValueError as exc:
        raise _bad_request(f"tool call {call.id!r} has arguments that are {exc}") from exc


def _messages(request: ChatRequest) -> list[dict[str, Any]]:
    turns: list[dict[str, Any]] = []
    for message in request.messages:
        blocks: list[dict[str, Any]]
        if isinstance(message, SystemMessage):
            continue
        if isinstance(message, ToolMessage):
            role = "user"
            blocks = [
                {
                    "type": "tool_result",
                    "tool_use_id": message.tool_call_id,
                    "content": text_of(message.content),
                }
            ]
        elif isinstance(message, UserMessage):
            role, blocks = "user", _content_blocks(message.content)
        else:
            role, blocks = "assistant", _content_blocks(message.content)
            for call in message.tool_calls or []:
                blocks.append(tool_use_block(call, _tool_input(call)))
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:
        if turn["role"] == "user":  # stable: tool results first, the rest in order
            turn["content"].sort(key=lambda block: block["type"] != "tool_result")
    if turns and turns[-1]["role"] == "assistant":  # a prefill may not end in whitespace
        blocks = turns[-1]["content"]
        if blocks[-1]["type"] == "text":
            blocks[-1]["text"] = blocks[-1]["text"].rstrip()
    return turns


def _tool(tool: Tool, *, structured_outputs: bool) -> dict[str, Any]:
    fn = tool.function
    schema = fn.parameters or {"type": "object", "properties": {}}
    out: dict[str, Any] = {"name": fn.name}
    if fn.description:
        out["description"] = fn.description
    if fn.strict and structured_outputs:
        out["input_schema"] = strict_schema(schema)
        out["strict"] = True
    else:
        out["input_schema"] = schema
    return out


def _tool_choice(request: ChatRequest) -> dict[str, Any] | None:
    choice = request.tool_choice
    result: dict[str, Any] | None
    if choice is None:
        result = {"type": "auto"} if request.parallel_tool_calls is False else None
    elif isinstance(choice, str):
        result = {"type": {"auto": "auto", "required": "any", "none": "none"}[choice]}
    else:
        result = {"type": "tool", "name": choice.function.name}
    if result is not None and request.parallel_tool_calls is False and result["type"] != "none":
        result["disable_parallel_tool_use"] = True
    return result


def json_tool_name(request: ChatRequest, *, structured_outputs: bool) -> str | None:
    """The tool that emulates ``response_format`` json_schema, if this request uses one."""
    fmt = request.response_format
    if structured_outputs or fmt is None or fmt.type != "json_schema" or not fmt.json_schema:
        return None
    return fmt.json_schema.name


def request_to_anthropic(
    request: ChatRequest,
    vendor_model: str,
    *,
    stream: bool,
    default_max_tokens: int = DEFAULT_MAX_TOKENS,
    structured_outputs: bool = True,
) -> dict[str, Any]:
    """The JSON body for ``POST /v1/messages``.

    ``structured_outputs`` says whether the model has Anthropic's structured outputs; when
    False a json_schema ``response_format`` is emulated with a forced tool (see the module
    docstring) and ``strict`` is left off tools.
    """
    extra = request.model_extra or {}
    max_tokens = request.max_tokens or extra.get("max_completion_tokens") or default_max_tokens
    body: dict[str, Any] = {
        "model": vendor_model,
        "max_tokens": int(max_tokens),
        "messages": _messages(request),
    }
    system = request.system_text()
    tools = [_tool(t, structured_outputs=structured_outputs) for t in request.tools or []]
    tool_choice = _tool_choice(request) if tools else None
    fmt = request.response_format
    json_tool = json_tool_name(request, structured_outputs=structured_outputs)
    if fmt is not None and fmt.json_schema is not None and fmt.type == "json_schema":
        schema = fmt.json_schema.schema_ or {"type": "object"}
        if json_tool is None:
            body["output_config"] = {
                "format": {"type": "json_schema", "schema": strict_schema(schema)}
            }
        else:
            description = fmt.json_schema.description or "Give your answer by calling this tool."
            tools.append({"name": json_tool, "description": description, "input_schema": schema})
            tool_choice = {"type": "tool", "name": json_tool}
    elif fmt is not None and fmt.type in ("json_object", "json_schema"):
        system = (
            f"{system}\n\n{JSON_OBJECT_INSTRUCTION}" if system.strip() else JSON_OBJECT_INSTRUCTION
        )
    if system.strip():
        body["system"] = system
    if request.temperature is not None:
        body["temperature"] = min(max(request.temperature, 0.0), 1.0)
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if stops := request.stop_list():
        body["stop_sequences"] = stops
    if tools:
        body["tools"] = tools
    if tool_choice is not None:
        body["tool_choice"] = tool_choice
    if request.user:
        body["metadata"] = {"user_id": request.user}
    for key in PASSTHROUGH_OPTIONS:
        if extra.get(key) is not None:
            body[key] = extra[key]
    if stream:
        body["stream"] = True
    return body


# --- response ------------------------------------------------------------------------


def response_from_anthropic(
    data: dict[str, Any], model: str, *, json_tool: str | None = None
) -> ChatResponse:
    """Canonical response from a Message object; ``model`` is our name.

    ``json_tool`` names the tool that emulates a json_schema ``response_format``: its input
    becomes the text content and its ``tool_use`` stop reason becomes "stop".
    """
    texts: list[str] = []
    calls: list[ToolCall] = []
    json_text: str | None = None
    for block in data.get("content") or []:
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text") or "")
        elif kind == "tool_use":
            arguments = json.dumps(block.get("input") or {})
            if json_tool is not None and block.get("name") == json_tool:
                json_text = arguments
            else:
                name, call_id = block.get("name") or "", block.get("id") or ""
                calls.append(
                    ToolCall(id=call_id, function=FunctionCall(name=name, arguments=arguments))
                )
    finish = finish_from_anthropic(data.get("stop_reason"))
    content: str | None = "".join(texts) if texts or not calls else None
    if json_text is not None:
        content = json_text
        if finish == "tool_calls" and not calls:
            finish = "stop"
    return ChatResponse(
        id=data.get("id") or "msg-unknown",
        created=now(),
        model=model,
        choices=[
            Choice(
                message=AssistantMessage(content=content, tool_calls=calls or None),
                finish_reason=finish,
            )
        ],
        usage=usage_from_anthropic(data.get("usage")),
    )


class AnthropicStreamState:
    """Turns Anthropic stream events into canonical chunks, one event at a time.

    :meth:`feed` takes the SSE event name and its parsed JSON and returns the chunks it
    produces (often none). The chunk of ``message_delta`` carries the finish reason and the
    chunk of ``message_stop`` carries usage with no choices, as OpenAI's last chunk does.
    An ``error`` event raises; :meth:`close` raises if ``message_stop`` never came.
    """

    _USAGE_KEYS = (
        "input_tokens",
        "output_tokens",
        "cache_read_input_tokens",
        "cache_creation_input_tokens",
    )

    def __init__(self, model: str, *, json_tool: str | None = None) -> None:
        self.model = model
        self.json_tool = json_tool
        self.id = "msg-unknown"
        self.created = now()
        self.usage: dict[str, int] = {}
        self.finish_reason: FinishReason | None = None
        self.done = False
        self._tool_index: dict[int, int] = {}  # content block index -> tool call index
        self._json_blocks: set[int] = set()

    def _chunk(
        self,
        delta: Delta | None = None,
        finish: FinishReason | None = None,
        usage: Usage | None = None,
    ) -> ChatChunk:
        choices = [] if delta is None else [ChunkChoice(delta=delta, finish_reason=finish)]
        return ChatChunk(
            id=self.id, created=self.created, model=self.model, choices=choices, usage=usage
        )

    def _take_usage(self, data: dict[str, Any] | None) -> None:
        for key in self._USAGE_KEYS:  # message_delta counts are cumulative: overwrite
            if data and data.get(key) is not None:
                self.usage[key] = int(data[key])

    def _finish_chunk(self, stop_reason: str | None) -> ChatChunk:
        finish = finish_from_anthropic(stop_reason) or "stop"
        if finish == "tool_calls" and self._json_blocks and not self._tool_index:
            finish = "stop"
        self.finish_reason = finish
        return self._chunk(Delta(), finish)

    def feed(self, event: str, data: dict[str, Any]) -> list[ChatChunk]:
        kind = data.get("type") or event
        if self.done or kind == "ping":
            return []
        if kind == "error":
            raise error_from_anthropic(_status_of(data), data, httpx.Headers(), mid_stream=True)
        if kind == "message_start":
            message = data.get("message") or {}
            self.id = message.get("id") or self.id
            self._take_usage(message.get("usage"))
            return [self._chunk(Delta(role="assistant", content=""))]
        index = int(data.get("index") or 0)
        if kind == "content_block_start":
            block = data.get("content_block") or {}
            if block.get("type") == "text" and block.get("text"):
                return [self._chunk(Delta(content=block["text"]))]
            if block.get("type") != "tool_use":
                return []
            if self.json_tool is not None and block.get("name") == self.json_tool:
                self._json_blocks.add(index)
                return []
            position = self._tool_index[index] = len(self._tool_index)
            call = ToolCallDelta(
                index=position,
                id=block.get("id"),
                type="function",
                function=FunctionCallDelta(name=block.get("name"), arguments=""),
            )
            return [self._chunk(Delta(tool_calls=[call]))]
        if kind == "content_block_delta":
            delta = data.get("delta") or {}
            if delta.get("type") == "text_delta" and delta.get("text"):
                return [self._chunk(Delta(content=delta["text"]))]
            piece = delta.get("partial_json") if delta.get("type") == "input_json_delta" else None
            if not piece:
                return []  # thinking_delta, signature_delta, citations_delta, empty pieces
            if index in self._json_blocks:
                return [self._chunk(Delta(content=piece))]
            if index in self._tool_index:
                call = ToolCallDelta(
                    index=self._tool_index[index], function=FunctionCallDelta(arguments=piece)
                )
                return [self._chunk(Delta(tool_calls=[call]))]
            return []
        if kind == "message_delta":
            self._take_usage(data.get("usage"))
            stop_reason = (data.get("delta") or {}).get("stop_reason")
            return [self._finish_chunk(stop_reason)] if stop_reason else []
        if kind == "message_stop":
            self.done = True
            chunks = [] if self.finish_reason else [self._finish_chunk(None)]
            return [*chunks, self._chunk(usage=usage_from_anthropic(self.usage))]
        return []  # content_block_stop, and event types added after this was written

    def close(self) -> None:
        """Call when the event stream ends: a stream without ``message_stop`` is cut short."""
        if not self.done:
            raise UpstreamUnavailableError(
                "stream ended before message_stop: the answer is incomplete", vendor=VENDOR
            )


# --- errors --------------------------------------------------------------------------


def _status_of(body: Any) -> int:
    err = body.get("error") if isinstance(body, dict) else None
    kind = err.get("type") if isinstance(err, dict) else None
    return _ERROR_STATUS.get(str(kind), 500)


def error_from_anthropic(
    status: int, body: Any, headers: httpx.Headers, *, mid_stream: bool = False
) -> APIError:
    """The Crossroads error for ``{"type": "error", "error": {"type", "message"}}``."""
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        code = err.get("type")
        message = str(err.get("message") or code or f"HTTP {status}")
    else:
        code, message = None, (str(body)[:500] if body else f"HTTP {status}")
    if mid_stream:
        message = f"error in the middle of the stream: {message}"
    request_id = headers.get("request-id")
    if request_id is None and isinstance(body, dict) and body.get("request_id"):
        request_id = str(body["request_id"])
    return error_for_status(
        status,
        message,
        vendor=VENDOR,
        code=str(code) if code is not None else None,
        retry_after=parse_retry_after(headers),
        request_id=request_id,
        body=body,
    )


# --- backend -------------------------------------------------------------------------


class AnthropicBackend(HTTPBackend):
    """Claude models through Anthropic's Messages API."""

    name: ClassVar[str] = "anthropic"
    default_base_url: ClassVar[str | None] = "https://api.anthropic.com"
    api_key_env: ClassVar[str | None] = "ANTHROPIC_API_KEY"
    base_url_env: ClassVar[str | None] = "ANTHROPIC_BASE_URL"
    allowed_options: ClassVar[frozenset[str] | None] = frozenset({"json_schema_mode"})
    probe_path: ClassVar[str | None] = "/v1/models?limit=1"
    features: ClassVar[Capabilities] = Capabilities(tools=True, json_schema=True, vision=True)

    def __init__(self, deployment: Deployment, *, http: httpx.AsyncClient | None = None) -> None:
        super().__init__(deployment, http=http)
        mode = deployment.options.get("json_schema_mode")
        if mode in ("native", "tool"):
            self.structured_outputs = mode == "native"
        else:
            self.structured_outputs = supports_structured_outputs(deployment.model)

    def base_url(self) -> str:
        return super().base_url().removesuffix("/v1")  # MESSAGES_PATH already has it

    def auth_headers(self) -> dict[str, str]:
        headers = {"anthropic-version": API_VERSION}
        if self.deployment.api_key:
            headers["x-api-key"] = self.deployment.api_key
        return headers

    def map_error(self, status: int, body: Any, headers: httpx.Headers) -> APIError:
        return error_from_anthropic(status, body, headers)

    def _body(self, request: ChatRequest, stream: bool) -> dict[str, Any]:
        return request_to_anthropic(
            request,
            self.deployment.model,
            stream=stream,
            default_max_tokens=self.deployment.max_output_tokens or DEFAULT_MAX_TOKENS,
            structured_outputs=self.structured_outputs,
        )

    def _json_tool(self, request: ChatRequest) -> str | None:
        return json_tool_name(request, structured_outputs=self.structured_outputs)

    async def complete(self, request: ChatRequest) -> ChatResponse:
        data, _ = await self.transport.post_json(MESSAGES_PATH, self._body(request, False))
        if not isinstance(data, dict):
            raise UpstreamUnavailableError("answer was not a JSON object", vendor=VENDOR)
        return response_from_anthropic(data, request.model, json_tool=self._json_tool(request))

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        state = AnthropicStreamState(request.model, json_tool=self._json_tool(request))
        async for event in self.transport.stream_sse(MESSAGES_PATH, self._body(request, True)):
            payload = decode_event(event, VENDOR)
            if not isinstance(payload, dict):
                raise UpstreamUnavailableError(
                    f"malformed stream event: {event.data[:200]!r}", vendor=VENDOR
                )
            for chunk in state.feed(event.event, payload):
                yield chunk
        state.close()
