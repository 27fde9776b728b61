"""The Anthropic Messages API (``POST /v1/messages``), as the gateway speaks it to clients.

Requests: https://docs.anthropic.com/en/api/messages; streaming:
https://docs.anthropic.com/en/api/messages-streaming; errors:
https://docs.anthropic.com/en/api/errors; structured outputs:
https://docs.claude.com/en/docs/build-with-claude/structured-outputs. The reverse of
``crossroads.backends.anthropic``, sharing its translation of images
(:mod:`crossroads.backends.anthropic_wire`). Where the canonical (OpenAI) shape differs:

* ``system`` (a string or text blocks) becomes the first message;
* a user turn's ``tool_result`` blocks become ``tool`` messages placed before the rest of
  the turn (OpenAI wants them right after the assistant's calls); ``is_error`` has no
  counterpart and is dropped, as are ``cache_control`` marks;
* ``thinking`` blocks of earlier turns and the ``thinking`` option are dropped: the
  canonical answer carries no thinking, so a client could not send it back;
* ``tool_choice`` ``any`` is ``required``; ``disable_parallel_tool_use`` is
  ``parallel_tool_calls: false``; ``stop_sequences`` is ``stop``; ``metadata.user_id`` is
  ``user``; ``top_k`` stays as an extension field (forwarded by backends that take it);
* ``output_config.format`` (or the beta's top-level ``output_format``) json_schema is a
  strict ``response_format`` json_schema named ``output``;
* server tools (web search, code execution, ...), ``mcp_servers``, documents and files are
  a 400: the gateway cannot run them. Unknown top-level fields are ignored.

Validation errors are 400 ``invalid_request_error`` with Anthropic's message style,
``messages.0.content.1.text: Field required``; the path is also the error's ``param``.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ...backends.anthropic_wire import image_url
from ...types import (
    AssistantMessage,
    ChatRequest,
    FunctionCall,
    FunctionDefinition,
    ImagePart,
    ImageURL,
    JSONSchemaFormat,
    Message,
    ResponseFormat,
    SystemMessage,
    TextPart,
    Tool,
    ToolCall,
    ToolChoice,
    ToolMessage,
    UserMessage,
)
from ...types import NamedToolChoice as _NamedToolChoice
from ..errors import ProtocolError, from_validation_error, load_json_object

__all__ = ["JSON_SCHEMA_NAME", "MessagesRequest", "parse_messages_request", "to_chat_request"]

#: The ``response_format.json_schema.name`` given to Anthropic structured outputs.
JSON_SCHEMA_NAME = "output"


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore")


# --- content blocks ------------------------------------------------------------------


class Base64Source(_Wire):
    type: Literal["base64"]
    media_type: str
    data: str


class URLSource(_Wire):
    type: Literal["url"]
    url: str


ImageSource = Annotated[Base64Source | URLSource, Field(discriminator="type")]


class TextBlock(_Wire):
    type: Literal["text"]
    text: str


class ImageBlock(_Wire):
    type: Literal["image"]
    source: ImageSource


class ToolUseBlock(_Wire):
    type: Literal["tool_use"]
    id: str
    name: str
    input: dict[str, Any]


class ToolResultBlock(_Wire):
    type: Literal["tool_result"]
    tool_use_id: str
    content: str | list[Annotated[TextBlock | ImageBlock, Field(discriminator="type")]] = ""
    is_error: bool | None = None


class ThinkingBlock(_Wire):
    type: Literal["thinking"]
    thinking: str
    signature: str | None = None


class RedactedThinkingBlock(_Wire):
    type: Literal["redacted_thinking"]
    data: str


ContentBlock = Annotated[
    TextBlock | ImageBlock | ToolUseBlock | ToolResultBlock | ThinkingBlock | RedactedThinkingBlock,
    Field(discriminator="type"),
]


class MessageParam(_Wire):
    role: Literal["user", "assistant"]
    content: str | list[ContentBlock]


# --- tools and options ---------------------------------------------------------------


class ToolParam(_Wire):
    name: str = Field(min_length=1)
    description: str | None = None
    input_schema: dict[str, Any]
    type: Literal["custom"] | None = None
    strict: bool | None = None


class ToolChoiceAuto(_Wire):
    type: Literal["auto"]
    disable_parallel_tool_use: bool | None = None


class ToolChoiceAny(_Wire):
    type: Literal["any"]
    disable_parallel_tool_use: bool | None = None


class ToolChoiceTool(_Wire):
    type: Literal["tool"]
    name: str
    disable_parallel_tool_use: bool | None = None


class ToolChoiceNone(_Wire):
    type: Literal["none"]


ToolChoiceParam = Annotated[
    ToolChoiceAuto | ToolChoiceAny | ToolChoiceTool | ToolChoiceNone,
    Field(discriminator="type"),
]


class Metadata(_Wire):
    user_id: str | None = None


class JSONOutputFormat(_Wire):
    type: Literal["json_schema"]
    schema_: dict[str, Any] = Field(alias="schema")


class OutputConfig(_Wire):
    format: JSONOutputFormat | None = None


class MessagesRequest(_Wire):
    """``POST /v1/messages``, fields in the order of the API reference (those we read)."""

    model: str = Field(min_length=1)
    messages: list[MessageParam] = Field(min_length=1)
    max_tokens: int = Field(ge=1)
    metadata: Metadata | None = None
    output_config: OutputConfig | None = None
    output_format: JSONOutputFormat | None = None  # the structured-outputs beta's name
    stop_sequences: list[str] | None = None
    stream: bool | None = None
    system: str | list[TextBlock] | None = None
    temperature: float | None = Field(default=None, ge=0, le=1)
    tool_choice: ToolChoiceParam | None = None
    tools: list[ToolParam] | None = None
    top_k: int | None = Field(default=None, ge=0)
    top_p: float | None = Field(default=None, ge=0, le=1)


# --- parsing -------------------------------------------------------------------------


def _bad(param: str, message: str) -> ProtocolError:
    return ProtocolError(f"{param}: {message}", param=param)


def _precheck(data: dict[str, Any]) -> None:
    """Refuse, with a clear message, what the gateway knowingly cannot do."""
    for name in ("model", "messages", "max_tokens"):
        if name not in data:
            raise _bad(name, "Field required")
    if data.get("mcp_servers"):
        raise _bad("mcp_servers", "MCP servers are not supported by this gateway")
    for i, tool in enumerate(data.get("tools") or []):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind not in (None, "custom"):
            raise _bad(
                f"tools.{i}.type",
                f"server tool {kind!r} is not supported by this gateway; "
                "only client tools (name, description, input_schema)",
            )
    for i, message in enumerate(data.get("messages") or []):
        content = message.get("content") if isinstance(message, dict) else None
        for j, block in enumerate(content if isinstance(content, list) else []):
            kind = block.get("type") if isinstance(block, dict) else None
            source = block.get("source") if isinstance(block, dict) else None
            if kind in ("document", "search_result", "container_upload") or (
                kind == "image" and isinstance(source, dict) and source.get("type") == "file"
            ):
                what = "file sources" if kind == "image" else f"{kind!r} blocks"
                raise _bad(f"messages.{i}.content.{j}", f"{what} are not supported by this gateway")


def _image(block: ImageBlock) -> ImagePart:
    return ImagePart(image_url=ImageURL(url=image_url(block.source.model_dump())))


def _tool_result(block: ToolResultBlock, where: str) -> ToolMessage:
    if isinstance(block.content, str):
        return ToolMessage(tool_call_id=block.tool_use_id, content=block.content)
    parts: list[TextPart] = []
    for k, part in enumerate(block.content):
        if not isinstance(part, TextBlock):
            raise _bad(f"{where}.content.{k}", "images inside tool_result are not supported")
        parts.append(TextPart(text=part.text))
    return ToolMessage(tool_call_id=block.tool_use_id, content=parts)


def _user_turn(message: MessageParam, i: int) -> list[Message]:
    if isinstance(message.content, str):
        return [UserMessage(content=message.content)]
    results: list[Message] = []
    parts: list[TextPart | ImagePart] = []
    for j, block in enumerate(message.content):
        where = f"messages.{i}.content.{j}"
        if isinstance(block, ToolResultBlock):
            results.append(_tool_result(block, where))
        elif isinstance(block, TextBlock):
            parts.append(TextPart(text=block.text))
        elif isinstance(block, ImageBlock):
            parts.append(_image(block))
        elif isinstance(block, ToolUseBlock):
            raise _bad(f"{where}.type", "tool_use blocks belong in assistant messages")
        # thinking blocks in a user turn: nothing to keep
    if parts:
        results.append(UserMessage(content=list(parts)))
    return results


def _assistant_turn(message: MessageParam, i: int) -> list[Message]:
    if isinstance(message.content, str):
        return [AssistantMessage(content=message.content)]
    texts: list[TextPart] = []
    calls: list[ToolCall] = []
    for j, block in enumerate(message.content):
        where = f"messages.{i}.content.{j}"
        if isinstance(block, TextBlock):
            texts.append(TextPart(text=block.text))
        elif isinstance(block, ToolUseBlock):
            arguments = json.dumps(block.input, ensure_ascii=False)
            calls.append(
                ToolCall(id=block.id, function=FunctionCall(name=block.name, arguments=arguments))
            )
        elif isinstance(block, ImageBlock | ToolResultBlock):
            raise _bad(f"{where}.type", f"{block.type} blocks belong in user messages")
    if not texts and not calls:
        return []
    return [AssistantMessage(content=texts or None, tool_calls=calls or None)]


_TOOL_CHOICE: dict[str, Literal["auto", "required", "none"]] = {
    "auto": "auto",
    "any": "required",
    "none": "none",
}


def _tool_choice(choice: ToolChoiceParam | None) -> tuple[ToolChoice | None, bool | None]:
    if choice is None:
        return None, None
    parallel = None if isinstance(choice, ToolChoiceNone) else choice.disable_parallel_tool_use
    if isinstance(choice, ToolChoiceTool):
        named = _NamedToolChoice.model_validate({"function": {"name": choice.name}})
        return named, (False if parallel else None)
    return _TOOL_CHOICE[choice.type], (False if parallel else None)


def to_chat_request(request: MessagesRequest) -> ChatRequest:
    """The canonical request for a validated Messages API request."""
    messages: list[Message] = []
    if isinstance(request.system, str):
        if request.system:
            messages.append(SystemMessage(content=request.system))
    elif request.system:
        messages.append(SystemMessage(content=[TextPart(text=b.text) for b in request.system]))
    for i, message in enumerate(request.messages):
        turn = _user_turn if message.role == "user" else _assistant_turn
        messages.extend(turn(message, i))
    tool_choice, parallel = _tool_choice(request.tool_choice)
    fmt = request.output_config.format if request.output_config else None
    fmt = fmt or request.output_format
    response_format = None
    if fmt is not None:
        response_format = ResponseFormat(
            type="json_schema",
            json_schema=JSONSchemaFormat(name=JSON_SCHEMA_NAME, schema=fmt.schema_, strict=True),
        )
    tools = [
        Tool(
            function=FunctionDefinition(
                name=t.name, description=t.description, parameters=t.input_schema, strict=t.strict
            )
        )
        for t in request.tools or []
    ]
    extra: dict[str, Any] = {}
    if request.top_k is not None:
        extra["top_k"] = request.top_k
    return ChatRequest(
        messages=messages,
        model=request.model,
        max_tokens=request.max_tokens,
        response_format=response_format,
        stop=list(request.stop_sequences) if request.stop_sequences else None,
        stream=request.stream,
        temperature=request.temperature,
        top_p=request.top_p,
        tools=tools or None,
        tool_choice=tool_choice,
        parallel_tool_calls=parallel,
        user=request.metadata.user_id if request.metadata else None,
        **extra,
    )


def parse_messages_request(body: bytes | str | dict[str, Any]) -> ChatRequest:
    """A canonical request from a ``POST /v1/messages`` body, or a 400
    :class:`~.errors.ProtocolError` whose message and ``param`` name the field."""
    data = load_json_object(body)
    _precheck(data)
    try:
        request = MessagesRequest.model_validate(data, strict=True)
    except ValidationError as exc:
        raise from_validation_error(exc, data, "anthropic") from exc
    return to_chat_request(request)
