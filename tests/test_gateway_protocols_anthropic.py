"""The gateway's Anthropic Messages format: parsing, round trips, answers and streams read
by the official SDK, errors."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest
from anthropic.types import Message

from crossroads import errors
from crossroads.backends.anthropic import request_to_anthropic
from crossroads.gateway.anthropic import (
    StreamEncoder,
    error_response,
    message_json,
    parse_messages_request,
)
from crossroads.gateway.errors import ProtocolError
from crossroads.types import (
    AssistantMessage,
    ChatChunk,
    ChatResponse,
    Choice,
    ChunkChoice,
    Delta,
    FunctionCall,
    FunctionCallDelta,
    ImagePart,
    SystemMessage,
    ToolCall,
    ToolCallDelta,
    ToolMessage,
    Usage,
    UserMessage,
)

from .fakes.replay import Replay, replay_fixture

PNG = "iVBORw0KGgo="
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
    "additionalProperties": False,
}
USER = [{"role": "user", "content": "Hi"}]


replay = replay_fixture("POST")


@pytest.fixture
def client(replay: Replay) -> Iterator[anthropic.Anthropic]:
    replay.answers.clear()
    replay.requests.clear()
    with anthropic.Anthropic(base_url=replay.url, api_key="k", max_retries=0) as c:
        yield c


def body(**fields: Any) -> bytes:
    return json.dumps({"model": "claude", "max_tokens": 64, "messages": USER, **fields}).encode()


# --- parsing -------------------------------------------------------------------------


def test_parse_a_conversation_with_tools_images_and_results() -> None:
    request = parse_messages_request(
        body(
            system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Weather here?"},
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                        },
                        {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}},
                    ],
                },
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "hmm", "signature": "s"},
                        {"type": "text", "text": "Looking."},
                        {"type": "tool_use", "id": "t1", "name": "w", "input": {"city": "Oslo"}},
                        {"type": "tool_use", "id": "t2", "name": "w", "input": {"city": "Rome"}},
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Here:"},
                        {"type": "tool_result", "tool_use_id": "t1", "content": "5C"},
                        {
                            "type": "tool_result",
                            "tool_use_id": "t2",
                            "content": [{"type": "text", "text": "20C"}],
                            "is_error": False,
                        },
                    ],
                },
            ],
            tools=[{"name": "w", "description": "weather", "input_schema": SCHEMA}],
            tool_choice={"type": "any", "disable_parallel_tool_use": True},
            stop_sequences=["END"],
            temperature=0.2,
            top_p=0.9,
            top_k=40,
            metadata={"user_id": "u-1"},
            stream=True,
            thinking={"type": "enabled", "budget_tokens": 1024},
            service_tier="auto",
        )
    )
    kinds = [type(m) for m in request.messages]
    assert kinds == [
        SystemMessage,
        UserMessage,
        AssistantMessage,
        ToolMessage,
        ToolMessage,
        UserMessage,
    ]
    user = request.messages[1]
    assert isinstance(user, UserMessage) and isinstance(user.content, list)
    images = [p for p in user.content if isinstance(p, ImagePart)]
    assert [i.image_url.url for i in images] == [f"data:image/png;base64,{PNG}", "https://x/y.png"]
    assistant = request.messages[2]
    assert isinstance(assistant, AssistantMessage) and assistant.tool_calls is not None
    assert [json.loads(c.function.arguments) for c in assistant.tool_calls] == [
        {"city": "Oslo"},
        {"city": "Rome"},
    ]
    results = [m for m in request.messages if isinstance(m, ToolMessage)]
    assert [r.tool_call_id for r in results] == ["t1", "t2"]  # before the turn's text
    assert request.tool_choice == "required" and request.parallel_tool_calls is False
    assert request.stop == ["END"] and request.user == "u-1" and request.stream is True
    assert request.max_tokens == 64 and request.temperature == 0.2
    assert request.model_extra == {"top_k": 40}  # thinking and service_tier are dropped


def test_parse_structured_output_and_named_tool_choice() -> None:
    request = parse_messages_request(
        body(
            output_config={"format": {"type": "json_schema", "schema": SCHEMA}},
            tools=[{"name": "w", "input_schema": SCHEMA}],
            tool_choice={"type": "tool", "name": "w"},
        )
    )
    fmt = request.response_format
    assert fmt is not None and fmt.type == "json_schema" and fmt.json_schema is not None
    assert fmt.json_schema.schema_ == SCHEMA and fmt.json_schema.strict is True
    assert not isinstance(request.tool_choice, str) and request.tool_choice is not None
    assert request.tool_choice.function.name == "w"
    beta = parse_messages_request(body(output_format={"type": "json_schema", "schema": SCHEMA}))
    assert beta.response_format == fmt


BAD = [
    (b"nope", None, "not valid JSON"),
    (json.dumps({"model": "c", "messages": USER}).encode(), "max_tokens", "Field required"),
    (json.dumps({"max_tokens": 5, "messages": USER}).encode(), "model", "Field required"),
    (body(messages=[]), "messages", "at least 1"),
    (body(max_tokens=0), "max_tokens", "greater than or equal to 1"),
    (body(max_tokens="5"), "max_tokens", "valid integer"),
    (body(temperature=1.5), "temperature", "less than or equal to 1"),
    (body(messages=[{"role": "system", "content": "x"}]), "messages.0.role", "'user' or"),
    (
        body(messages=[{"role": "user", "content": [{"type": "text"}]}]),
        "messages.0.content.0.text",
        "Field required",
    ),
    (
        body(messages=[{"role": "user", "content": [{"type": "video"}]}]),
        "messages.0.content.0",
        "'video'",
    ),
    (
        body(messages=[{"role": "user", "content": [{"type": "document", "source": {}}]}]),
        "messages.0.content.0",
        "not supported",
    ),
    (
        body(
            messages=[
                {
                    "role": "user",
                    "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}],
                }
            ]
        ),
        "messages.0.content.0",
        "not supported",
    ),
    (
        body(
            messages=[
                {
                    "role": "user",
                    "content": [{"type": "tool_use", "id": "t", "name": "n", "input": {}}],
                }
            ]
        ),
        "messages.0.content.0.type",
        "assistant messages",
    ),
    (
        body(
            messages=[
                {"role": "assistant", "content": [{"type": "tool_result", "tool_use_id": "t"}]}
            ]
        ),
        "messages.0.content.0.type",
        "user messages",
    ),
    (
        body(
            messages=[
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "t",
                            "content": [{"type": "image", "source": {"type": "url", "url": "u"}}],
                        }
                    ],
                }
            ]
        ),
        "messages.0.content.0.content.0",
        "images inside tool_result",
    ),
    (body(tools=[{"name": "w"}]), "tools.0.input_schema", "Field required"),
    (
        body(tools=[{"type": "web_search_20250305", "name": "web_search"}]),
        "tools.0.type",
        "server tool",
    ),
    (body(tool_choice={"type": "tool"}), "tool_choice.name", "Field required"),
    (body(tool_choice={"type": "sometimes"}), "tool_choice", "'sometimes'"),
    (body(stop_sequences="END"), "stop_sequences", "valid list"),
    (body(system=5), "system", "valid"),
    (body(mcp_servers=[{"type": "url", "url": "u", "name": "n"}]), "mcp_servers", "MCP"),
]


@pytest.mark.parametrize(("raw", "param", "fragment"), BAD)
def test_parse_rejects_with_param(raw: bytes, param: str | None, fragment: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_messages_request(raw)
    assert info.value.status_code == 400 and info.value.param == param
    assert fragment in info.value.message
    if param:
        assert info.value.message.startswith(f"{param}: ")


# --- round trip through the backend's translator -------------------------------------

ROUND_TRIP: dict[str, Any] = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 300,
    "system": "You are terse.",
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in the picture, and the weather?"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                },
                {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "A cat. Checking the weather."},
                {"type": "tool_use", "id": "toolu_1", "name": "w", "input": {"city": "Oslo"}},
                {
                    "type": "tool_use",
                    "id": "toolu_2",
                    "name": "w",
                    "input": {"city": "Rome", "unit": ["C"]},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "5C"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": "20C"},
                {"type": "text", "text": "Summarise."},
            ],
        },
        {"role": "assistant", "content": [{"type": "text", "text": "Oslo is"}]},
    ],
    "temperature": 0.3,
    "top_p": 0.8,
    "top_k": 20,
    "stop_sequences": ["END", "STOP"],
    "tools": [
        {"name": "w", "description": "Weather in a city", "input_schema": SCHEMA},
        {"name": "strict_w", "input_schema": SCHEMA, "strict": True},
    ],
    "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
    "metadata": {"user_id": "user-7"},
    "output_config": {"format": {"type": "json_schema", "schema": SCHEMA}},
    "stream": True,
}


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"tool_choice": {"type": "any"}},
        {"tool_choice": {"type": "tool", "name": "w"}},
        {"tool_choice": {"type": "none"}},
        {"stream": None, "output_config": None, "metadata": None, "top_k": None},
    ],
)
def test_round_trip_through_the_backend_translator(change: dict[str, Any]) -> None:
    original = copy.deepcopy(ROUND_TRIP)
    for key, value in change.items():
        if value is None:
            del original[key]
        else:
            original[key] = value
    canonical = parse_messages_request(json.dumps(original))
    again = request_to_anthropic(
        canonical, original["model"], stream=bool(original.get("stream")), structured_outputs=True
    )
    assert again == original


# --- answers read by the SDK ---------------------------------------------------------


def test_message_json_is_an_sdk_message() -> None:
    resp = ChatResponse(
        id="chatcmpl-abc123",
        model="upstream-name",
        choices=[
            Choice(
                message=AssistantMessage(
                    content="Let me check.",
                    tool_calls=[
                        ToolCall(
                            id="toolu_9",
                            function=FunctionCall(name="w", arguments='{"city":"Oslo"}'),
                        ),
                        ToolCall(id="toolu_10", function=FunctionCall(name="w", arguments="{oops")),
                    ],
                ),
                finish_reason="stop",  # some upstreams say "stop" after calling tools
            )
        ],
        usage=Usage.of(100, 20, cached=60, cache_creation=10),
    )
    message = Message.model_validate(message_json(resp, "claude-gw"))
    assert message.id == "msg_abc123" and message.model == "claude-gw"
    assert message.stop_reason == "tool_use"
    text, call, broken = message.content
    assert text.type == "text" and text.text == "Let me check."
    assert call.type == "tool_use" and call.input == {"city": "Oslo"}
    assert broken.type == "tool_use" and broken.input == {"_raw_arguments": "{oops"}
    assert message.usage.input_tokens == 30 and message.usage.output_tokens == 20
    assert message.usage.cache_read_input_tokens == 60
    assert message.usage.cache_creation_input_tokens == 10


@pytest.mark.parametrize(
    ("finish", "stop_reason"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("content_filter", "refusal"),
        ("error", "end_turn"),
        (None, "end_turn"),
    ],
)
def test_message_json_stop_reasons(finish: Any, stop_reason: str) -> None:
    resp = ChatResponse(
        model="m", choices=[Choice(message=AssistantMessage(content="x"), finish_reason=finish)]
    )
    assert Message.model_validate(message_json(resp, "m")).stop_reason == stop_reason


def _chunk(delta: Delta | None = None, finish: Any = None, usage: Usage | None = None) -> ChatChunk:
    choices = [] if delta is None else [ChunkChoice(delta=delta, finish_reason=finish)]
    return ChatChunk(id="chatcmpl-1", model="up", choices=choices, usage=usage)


def _call(index: int, *, id: str | None = None, name: str | None = None, args: str = "") -> Delta:
    fn = FunctionCallDelta(name=name, arguments=args)
    return Delta(
        tool_calls=[ToolCallDelta(index=index, id=id, type="function" if id else None, function=fn)]
    )


STREAM = [
    _chunk(Delta(role="assistant", content="")),
    _chunk(Delta(content="Checking ")),
    _chunk(Delta(content="")),
    _chunk(Delta(content="both cities.")),
    _chunk(_call(0, id="toolu_a", name="w")),
    _chunk(_call(0, args='{"ci')),
    _chunk(_call(0, args='ty": "Oslo"}')),
    _chunk(_call(1, id="toolu_b", name="w", args='{"city":')),
    _chunk(_call(1, args=' "Rome"}')),
    _chunk(Delta(), finish="tool_calls"),
    _chunk(usage=Usage.of(50, 17, cached=20)),
]


def _encode(chunks: list[ChatChunk], **finish: Any) -> bytes:
    encoder = StreamEncoder("claude-gw", "msg_stream1")
    out = encoder.start(input_tokens=30) + encoder.ping()
    for chunk in chunks:
        out += encoder.feed(chunk)
    return out + encoder.finish(**finish)


def test_stream_events_are_well_formed() -> None:
    raw = _encode(STREAM).decode()
    events = [block.split("\n") for block in raw.strip().split("\n\n")]
    names = [e[0].removeprefix("event: ") for e in events]
    assert names == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    for name, data in events:
        assert json.loads(data.removeprefix("data: "))["type"] == name.removeprefix("event: ")


def test_sdk_accumulates_the_encoded_stream(client: anthropic.Anthropic, replay: Replay) -> None:
    replay.answers.append((200, {"content-type": "text/event-stream"}, _encode(STREAM)))
    with client.messages.stream(model="claude-gw", max_tokens=64, messages=USER) as stream:  # type: ignore[arg-type]
        texts = list(stream.text_stream)
        message = stream.get_final_message()
    assert "".join(texts) == "Checking both cities."
    assert message.id == "msg_stream1" and message.stop_reason == "tool_use"
    text, first, second = message.content
    assert text.type == "text" and text.text == "Checking both cities."
    assert first.type == "tool_use" and (first.id, first.name, first.input) == (
        "toolu_a",
        "w",
        {"city": "Oslo"},
    )
    assert second.type == "tool_use" and second.input == {"city": "Rome"}
    assert message.usage.output_tokens == 17
    assert message.usage.input_tokens == 30  # the final usage: 50 prompt - 20 cached
    assert message.usage.cache_read_input_tokens == 20


def test_sdk_accumulates_interleaved_tool_calls(
    client: anthropic.Anthropic, replay: Replay
) -> None:
    chunks = [
        _chunk(_call(0, id="toolu_a", name="w", args='{"city": ')),
        _chunk(_call(1, id="toolu_b", name="w", args='{"city": "Rome"}')),
        _chunk(_call(0, args='"Oslo"}')),  # late arguments for the first call
        _chunk(Delta(content="Done.")),
        _chunk(Delta(), finish="tool_calls"),
    ]
    replay.answers.append(
        (200, {"content-type": "text/event-stream"}, _encode(chunks, usage=Usage.of(5, 6)))
    )
    with client.messages.stream(model="claude-gw", max_tokens=64, messages=USER) as stream:  # type: ignore[arg-type]
        message = stream.get_final_message()
    first, second, text = message.content
    assert first.type == "tool_use" and first.input == {"city": "Oslo"}
    assert second.type == "tool_use" and second.input == {"city": "Rome"}
    assert text.type == "text" and text.text == "Done."


def test_encoder_ignores_empty_deltas_and_starts_on_its_own() -> None:
    encoder = StreamEncoder("m")
    assert encoder.feed(_chunk(Delta(role="assistant", content=""))).startswith(
        b"event: message_start"
    )
    assert encoder.feed(_chunk(Delta(content=""))) == b""
    assert encoder.feed(_chunk(Delta())) == b""
    assert encoder.message_id.startswith("msg_")
    tail = encoder.finish().decode()
    assert '"stop_reason":"end_turn"' in tail and "content_block_stop" not in tail


def test_sdk_raises_a_mid_stream_error(client: anthropic.Anthropic, replay: Replay) -> None:
    encoder = StreamEncoder("claude-gw")
    raw = encoder.start(10) + encoder.feed(_chunk(Delta(content="Hel")))
    raw += encoder.error(errors.UpstreamUnavailableError("x", status_code=529, vendor="anthropic"))
    assert b"event: error" in raw and b'"type":"overloaded_error"' in raw
    replay.answers.append((200, {"content-type": "text/event-stream"}, raw))
    with (
        pytest.raises(anthropic.APIStatusError) as info,
        client.messages.stream(model="claude-gw", max_tokens=64, messages=USER) as stream,  # type: ignore[arg-type]
    ):
        for _ in stream:
            pass
    assert "overloaded" in str(info.value)


# --- errors --------------------------------------------------------------------------

ERRORS: list[tuple[BaseException, int, type[anthropic.APIStatusError], str]] = [
    (
        ProtocolError("max_tokens: Field required", param="max_tokens"),
        400,
        anthropic.BadRequestError,
        "invalid_request_error",
    ),
    (
        errors.ContextWindowExceededError("prompt is too long", vendor="openai"),
        400,
        anthropic.BadRequestError,
        "invalid_request_error",
    ),
    (
        errors.AuthenticationError("invalid x-api-key"),
        401,
        anthropic.AuthenticationError,
        "authentication_error",
    ),
    (errors.PermissionDeniedError("no"), 403, anthropic.PermissionDeniedError, "permission_error"),
    (errors.UnknownModelError("claude-9"), 404, anthropic.NotFoundError, "not_found_error"),
    (
        errors.BadRequestError("too big", status_code=413),
        413,
        anthropic.RequestTooLargeError,
        "request_too_large",
    ),
    (
        errors.RateLimitError("slow down", retry_after=1),
        429,
        anthropic.RateLimitError,
        "rate_limit_error",
    ),
    (
        errors.RateLimitError("budget", code="insufficient_quota"),
        429,
        anthropic.RateLimitError,
        "rate_limit_error",
    ),
    (RuntimeError("boom"), 500, anthropic.InternalServerError, "api_error"),
    (
        errors.UpstreamUnavailableError("reset", vendor="vllm"),
        503,
        anthropic.InternalServerError,
        "api_error",
    ),
    (
        errors.UpstreamUnavailableError("busy", status_code=529, vendor="anthropic"),
        529,
        anthropic.OverloadedError,
        "overloaded_error",
    ),
    (
        errors.UpstreamTimeoutError("slow", vendor="google"),
        504,
        anthropic.InternalServerError,
        "timeout_error",
    ),
]


@pytest.mark.parametrize(("exc", "status", "sdk_class", "kind"), ERRORS)
def test_sdk_raises_the_mapped_class(
    client: anthropic.Anthropic,
    replay: Replay,
    exc: BaseException,
    status: int,
    sdk_class: type[anthropic.APIStatusError],
    kind: str,
) -> None:
    got, payload, headers = error_response(exc)
    assert got == status
    assert payload["type"] == "error" and payload["error"]["type"] == kind
    replay.answers.append((status, dict(headers), json.dumps(payload).encode()))
    with pytest.raises(anthropic.APIStatusError) as info:
        client.messages.create(model="claude-gw", max_tokens=8, messages=USER)  # type: ignore[arg-type]
    assert isinstance(info.value, sdk_class) and info.value.status_code == status
    assert info.value.body == payload
