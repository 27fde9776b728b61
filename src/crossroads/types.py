"""Canonical wire model: the OpenAI Chat Completions shape, used by every backend.

Field order follows https://platform.openai.com/docs/api-reference/chat/create.
Request models accept unknown fields (``extra="allow"``) so vendor-specific options
pass through; fields that are not part of the OpenAI API are marked ``# crossroads``.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AssistantMessage",
    "ChatChunk",
    "ChatRequest",
    "ChatResponse",
    "Choice",
    "ChunkChoice",
    "ContentPart",
    "Delta",
    "FinishReason",
    "FunctionCall",
    "FunctionDefinition",
    "ImagePart",
    "ImageURL",
    "JSONSchemaFormat",
    "Message",
    "ResponseFormat",
    "StreamOptions",
    "SystemMessage",
    "TextPart",
    "Timings",
    "Tool",
    "ToolCall",
    "ToolCallDelta",
    "ToolChoice",
    "ToolMessage",
    "Usage",
    "UserMessage",
    "estimate_prompt_tokens",
    "new_id",
    "now",
    "prompt_token_bound",
]

FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "error"]


def new_id(prefix: str = "chatcmpl") -> str:
    """A fresh response id in the OpenAI style."""
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def now() -> int:
    """Unix seconds, as in the ``created`` field."""
    return int(time.time())


class _Wire(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


# --- content parts -------------------------------------------------------------------


class TextPart(_Wire):
    type: Literal["text"] = "text"
    text: str


class ImageURL(_Wire):
    url: str  # https URL or data: URI
    detail: Literal["auto", "low", "high"] | None = None


class ImagePart(_Wire):
    type: Literal["image_url"] = "image_url"
    image_url: ImageURL


ContentPart = Annotated[TextPart | ImagePart, Field(discriminator="type")]


# --- tools ---------------------------------------------------------------------------


class FunctionDefinition(_Wire):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(_Wire):
    type: Literal["function"] = "function"
    function: FunctionDefinition


class FunctionCall(_Wire):
    name: str
    arguments: str  # JSON text, as OpenAI sends it


class ToolCall(_Wire):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class _NamedFunction(_Wire):
    name: str


class NamedToolChoice(_Wire):
    type: Literal["function"] = "function"
    function: _NamedFunction


ToolChoice = Literal["none", "auto", "required"] | NamedToolChoice


# --- messages ------------------------------------------------------------------------


class SystemMessage(_Wire):
    role: Literal["system", "developer"] = "system"
    content: str | list[TextPart]
    name: str | None = None


class UserMessage(_Wire):
    role: Literal["user"] = "user"
    content: str | list[ContentPart]
    name: str | None = None


class AssistantMessage(_Wire):
    role: Literal["assistant"] = "assistant"
    content: str | list[TextPart] | None = None
    refusal: str | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None


class ToolMessage(_Wire):
    role: Literal["tool"] = "tool"
    content: str | list[TextPart]
    tool_call_id: str


Message = Annotated[
    SystemMessage | UserMessage | AssistantMessage | ToolMessage, Field(discriminator="role")
]


def text_of(content: str | list[Any] | None) -> str:
    """The plain text of a message's content (text parts joined, images dropped)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(p.text for p in content if isinstance(p, TextPart))


#: Characters per token in pre-flight estimates (OpenAI's rule of thumb).
CHARS_PER_TOKEN = 4


def estimate_prompt_tokens(request: ChatRequest) -> int:
    """A rough prompt size in tokens, good enough to refuse a hopeless call for free."""
    chars = sum(len(text_of(m.content)) for m in request.messages)
    return chars // CHARS_PER_TOKEN + 4 * len(request.messages)


#: Tokens one image may cost, whatever the length of its URL or data: the most a vendor
#: documents is gpt-4o-mini's high detail (2,833 + 8 tiles × 5,667 = 48,169 tokens);
#: ``detail: low`` is at most 2,833 there, and less everywhere else.
IMAGE_TOKEN_BOUND = 48_200
LOW_DETAIL_IMAGE_TOKEN_BOUND = 3_000
#: Vendors add a system prompt of their own when tools are offered (Anthropic documents
#: up to 530 tokens for it).
TOOLS_TOKEN_BOUND = 1_000


def prompt_token_bound(request: ChatRequest) -> int:
    """An upper bound on the prompt tokens any vendor bills for ``request`` (what budget
    reservations and tokens-per-minute limits count), cheap enough for every request.

    One token per UTF-8 byte of the whole request serialized as JSON: every string the
    upstream receives — messages, names, tool calls' arguments, tool definitions,
    ``response_format`` schemas, ``stop``, pass-through fields — plus the JSON's own
    quotes, keys and brackets, which stand in for each message's chat-template tokens. A
    token of a byte-level BPE tokenizer (GPT, Claude, Llama 3, Qwen, ...) or of a
    SentencePiece one with byte fallback (Gemini, Mistral, ...) covers at least one byte,
    so this never undercounts, whatever the script: a character of a non-Latin script is
    2 to 4 bytes and at most that many tokens. Images count :data:`IMAGE_TOKEN_BOUND`
    each instead of their URL (a vendor bills an image by its pixels, not its base64),
    and offered tools :data:`TOOLS_TOKEN_BOUND` more. English text comes out about four
    times over its real count: a reservation is settled to the upstream's usage after.
    """
    images = image_chars = 0
    low = 0
    for message in request.messages:
        content = message.content
        if isinstance(content, list):
            for part in content:
                if isinstance(part, ImagePart):
                    images += 1
                    low += part.image_url.detail == "low"
                    image_chars += len(part.image_url.url)  # ≤ its bytes in the JSON
    try:
        size = len(request.__pydantic_serializer__.to_json(request, exclude_none=True))
    except ValueError:  # not valid UTF-8 (a lone surrogate): 4 bytes per code point
        size = _json_size_bound(request.model_dump(mode="python", exclude_none=True))
    return (
        size
        - image_chars
        + (images - low) * IMAGE_TOKEN_BOUND
        + low * LOW_DETAIL_IMAGE_TOKEN_BOUND
        + (TOOLS_TOKEN_BOUND if request.tools else 0)
    )


def _json_size_bound(value: Any) -> int:
    """At least the size of ``value`` as UTF-8 JSON, whatever its strings hold."""
    if isinstance(value, str):
        return 6 * len(value) + 2  # a lone surrogate is escaped as \uXXXX
    if isinstance(value, dict):
        return 2 + sum(_json_size_bound(str(k)) + _json_size_bound(v) + 2 for k, v in value.items())
    if isinstance(value, list | tuple):
        return 2 + sum(_json_size_bound(v) + 1 for v in value)
    return len(str(value)) + 5  # numbers, booleans and null


# --- response format -----------------------------------------------------------------


class JSONSchemaFormat(_Wire):
    name: str
    description: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class ResponseFormat(_Wire):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JSONSchemaFormat | None = None


class StreamOptions(_Wire):
    include_usage: bool | None = None


# --- request -------------------------------------------------------------------------


class ChatRequest(_Wire):
    """A chat completion request; ``model`` is the Crossroads model name."""

    messages: list[Message]
    model: str
    frequency_penalty: float | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    max_tokens: int | None = None
    n: int | None = None
    presence_penalty: float | None = None
    response_format: ResponseFormat | None = None
    seed: int | None = None
    stop: str | list[str] | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    temperature: float | None = None
    top_p: float | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    user: str | None = None

    def stop_list(self) -> list[str]:
        """``stop`` as a list (OpenAI accepts a string or a list)."""
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)

    def system_text(self) -> str:
        """All system/developer messages joined, for vendors with one system field."""
        return "\n\n".join(
            text_of(m.content) for m in self.messages if isinstance(m, SystemMessage)
        )


# --- usage ---------------------------------------------------------------------------


class Timings(_Wire):  # crossroads
    """Wall-clock timings measured by Crossroads around the upstream call."""

    time_to_first_token_s: float | None = None
    total_s: float | None = None


class Usage(_Wire):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0  # crossroads: prompt_tokens_details.cached_tokens
    reasoning_tokens: int = 0  # crossroads: completion_tokens_details.reasoning_tokens
    cache_creation_tokens: int = 0  # crossroads: Anthropic cache writes
    timings: Timings | None = None  # crossroads

    @classmethod
    def of(
        cls,
        prompt: int,
        completion: int,
        *,
        cached: int = 0,
        reasoning: int = 0,
        cache_creation: int = 0,
    ) -> Usage:
        return cls(
            prompt_tokens=prompt,
            completion_tokens=completion,
            total_tokens=prompt + completion,
            cached_tokens=cached,
            reasoning_tokens=reasoning,
            cache_creation_tokens=cache_creation,
        )


# --- response ------------------------------------------------------------------------


class Choice(_Wire):
    index: int = 0
    message: AssistantMessage
    finish_reason: FinishReason | None = None
    logprobs: dict[str, Any] | None = None


class ChatResponse(_Wire):
    id: str = Field(default_factory=new_id)
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(default_factory=now)
    model: str
    choices: list[Choice]
    usage: Usage = Field(default_factory=Usage)
    system_fingerprint: str | None = None

    @property
    def text(self) -> str:
        """The first choice's text, the common case."""
        return text_of(self.choices[0].message.content) if self.choices else ""

    @property
    def tool_calls(self) -> list[ToolCall]:
        return (self.choices[0].message.tool_calls or []) if self.choices else []

    @property
    def finish_reason(self) -> FinishReason | None:
        return self.choices[0].finish_reason if self.choices else None


# --- streaming -----------------------------------------------------------------------


class FunctionCallDelta(_Wire):
    name: str | None = None
    arguments: str | None = None


class ToolCallDelta(_Wire):
    index: int
    id: str | None = None
    type: Literal["function"] | None = None
    function: FunctionCallDelta | None = None


class Delta(_Wire):
    role: Literal["assistant"] | None = None
    content: str | None = None
    refusal: str | None = None
    tool_calls: list[ToolCallDelta] | None = None


class ChunkChoice(_Wire):
    index: int = 0
    delta: Delta = Field(default_factory=Delta)
    finish_reason: FinishReason | None = None
    logprobs: dict[str, Any] | None = None


class ChatChunk(_Wire):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int = Field(default_factory=now)
    model: str
    choices: list[ChunkChoice] = Field(default_factory=list)
    usage: Usage | None = None
    system_fingerprint: str | None = None
