"""Pure translation between the canonical types and Anthropic's Messages API (no network)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from crossroads.backends.anthropic import (
    JSON_OBJECT_INSTRUCTION,
    AnthropicStreamState,
    error_from_anthropic,
    json_tool_name,
    request_to_anthropic,
    response_from_anthropic,
    strict_schema,
    supports_structured_outputs,
)
from crossroads.errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ContextWindowExceededError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    UpstreamUnavailableError,
)
from crossroads.types import ChatChunk, ChatRequest

PNG = "iVBORw0KGgo="
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "temp": {"type": "number"}},
    "required": ["city", "temp"],
}
WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
CALL = {
    "id": "toolu_1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
}


def body_of(*, stream: bool = False, structured: bool = True, **fields: Any) -> dict[str, Any]:
    fields.setdefault("messages", [{"role": "user", "content": "Hi"}])
    request = ChatRequest.model_validate({"model": "claude", **fields})
    return request_to_anthropic(
        request,
        "claude-sonnet-4-5",
        stream=stream,
        default_max_tokens=1024,
        structured_outputs=structured,
    )


# --- request ---------------------------------------------------------------------------


def test_minimal_request() -> None:
    assert body_of() == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
    }
    assert body_of(stream=True)["stream"] is True
    assert body_of(max_tokens=50)["max_tokens"] == 50
    assert body_of(max_completion_tokens=60)["max_tokens"] == 60


def test_system_and_developer_messages_are_hoisted() -> None:
    body = body_of(
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "developer", "content": [{"type": "text", "text": "Use French."}]},
            {"role": "assistant", "content": "Bonjour"},
            {"role": "user", "content": "Again"},
        ]
    )
    assert body["system"] == "Be brief.\n\nUse French."
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]


def test_no_system_field_without_system_messages() -> None:
    assert "system" not in body_of()


def test_image_parts() -> None:
    body = body_of(
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                    {"type": "image_url", "image_url": {"url": "https://x.test/cat.jpg"}},
                ],
            }
        ]
    )
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://x.test/cat.jpg"}},
    ]


def test_non_base64_data_uri_is_a_bad_request() -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png,rawbytes"}}
    with pytest.raises(BadRequestError):
        body_of(messages=[{"role": "user", "content": [image]}])


def test_tool_calls_become_tool_use_and_results_merge_into_one_user_turn() -> None:
    second = {**CALL, "id": "toolu_2", "function": {"name": "get_weather", "arguments": ""}}
    body = body_of(
        messages=[
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {"role": "assistant", "content": "Checking.", "tool_calls": [CALL, second]},
            {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
            {
                "role": "tool",
                "tool_call_id": "toolu_2",
                "content": [{"type": "text", "text": "25C"}],
            },
            {"role": "user", "content": "Thanks"},
        ]
    )
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris and Rome?"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
                {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": "25C"},
                {"type": "text", "text": "Thanks"},
            ],
        },
    ]


def test_invalid_tool_arguments_are_a_bad_request() -> None:
    bad = {**CALL, "function": {"name": "get_weather", "arguments": "{not json"}}
    with pytest.raises(BadRequestError):
        body_of(
            messages=[{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [bad]}]
        )


def test_same_role_messages_merge_and_prefill_loses_trailing_space() -> None:
    body = body_of(
        messages=[
            {"role": "user", "content": "One"},
            {"role": "user", "content": "Two"},
            {"role": "assistant", "content": "The answer is "},
        ]
    )
    assert body["messages"] == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "One"}, {"type": "text", "text": "Two"}],
        },
        {"role": "assistant", "content": [{"type": "text", "text": "The answer is"}]},
    ]


def test_sampling_options_and_dropped_ones() -> None:
    body = body_of(
        temperature=1.7,
        top_p=0.9,
        stop="END",
        user="u-1",
        seed=3,
        frequency_penalty=0.5,
        presence_penalty=0.5,
        logprobs=True,
        n=1,
        top_k=40,
    )
    assert body["temperature"] == 1.0  # clamped to Anthropic's 0..1
    assert body["top_p"] == 0.9
    assert body["stop_sequences"] == ["END"]
    assert body["metadata"] == {"user_id": "u-1"}
    assert body["top_k"] == 40
    for dropped in ("seed", "frequency_penalty", "presence_penalty", "logprobs", "n"):
        assert dropped not in body
    assert body_of(stop=["a", "b"])["stop_sequences"] == ["a", "b"]


def test_tools() -> None:
    body = body_of(tools=[WEATHER_TOOL])
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather in a city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        }
    ]
    assert "tool_choice" not in body
    bare = {"type": "function", "function": {"name": "now"}}
    assert body_of(tools=[bare])["tools"] == [
        {"name": "now", "input_schema": {"type": "object", "properties": {}}}
    ]


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        ("auto", None, {"type": "auto"}),
        ("required", None, {"type": "any"}),
        ("none", None, {"type": "none"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            None,
            {"type": "tool", "name": "get_weather"},
        ),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("none", False, {"type": "none"}),
    ],
)
def test_tool_choice(choice: Any, parallel: bool | None, expected: dict[str, Any]) -> None:
    fields: dict[str, Any] = {"tools": [WEATHER_TOOL], "tool_choice": choice}
    if parallel is not None:
        fields["parallel_tool_calls"] = parallel
    assert body_of(**fields)["tool_choice"] == expected


def test_strict_tools_only_with_structured_outputs() -> None:
    tool = {**WEATHER_TOOL, "function": {**WEATHER_TOOL["function"], "strict": True}}
    native = body_of(tools=[tool])["tools"][0]
    assert native["strict"] is True
    assert native["input_schema"]["additionalProperties"] is False
    legacy = body_of(tools=[tool], structured=False)["tools"][0]
    assert "strict" not in legacy


def json_schema_format() -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": "weather", "schema": SCHEMA}}


def test_json_schema_uses_structured_outputs() -> None:
    body = body_of(response_format=json_schema_format())
    assert body["output_config"] == {
        "format": {"type": "json_schema", "schema": {**SCHEMA, "additionalProperties": False}}
    }
    assert "tools" not in body and "tool_choice" not in body


def test_json_schema_emulated_with_a_forced_tool_on_older_models() -> None:
    body = body_of(response_format=json_schema_format(), tools=[WEATHER_TOOL], structured=False)
    assert "output_config" not in body
    assert body["tools"][-1]["name"] == "weather"
    assert body["tools"][-1]["input_schema"] == SCHEMA
    assert body["tool_choice"] == {"type": "tool", "name": "weather"}
    request = ChatRequest.model_validate(
        {"model": "m", "messages": [], "response_format": json_schema_format()}
    )
    assert json_tool_name(request, structured_outputs=False) == "weather"
    assert json_tool_name(request, structured_outputs=True) is None


def test_json_object_adds_a_system_instruction() -> None:
    body = body_of(
        response_format={"type": "json_object"},
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
    )
    assert body["system"] == f"Be brief.\n\n{JSON_OBJECT_INSTRUCTION}"
    assert body_of(response_format={"type": "json_object"})["system"] == JSON_OBJECT_INSTRUCTION


def test_strict_schema_is_recursive_and_keeps_explicit_values() -> None:
    schema = {
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": {"type": "object", "properties": {}}},
            "extra": {"type": "object", "additionalProperties": {"type": "string"}},
        },
        "$defs": {"D": {"type": "object", "properties": {"a": {"type": "string"}}}},
    }
    out = strict_schema(schema)
    assert out["additionalProperties"] is False
    assert out["properties"]["items"]["items"]["additionalProperties"] is False
    assert out["properties"]["extra"]["additionalProperties"] == {"type": "string"}
    assert out["$defs"]["D"]["additionalProperties"] is False
    assert "additionalProperties" not in schema  # the input is not modified


@pytest.mark.parametrize(
    ("model", "native"),
    [
        ("claude-sonnet-4-5", True),
        ("claude-opus-4-5-20251101", True),
        ("claude-haiku-4-5", True),
        ("claude-3-5-haiku-latest", False),
        ("claude-3-7-sonnet-20250219", False),
        ("claude-sonnet-4-20250514", False),
        ("claude-opus-4-1", False),
        ("us.anthropic.claude-3-5-sonnet-20241022-v2:0", False),
    ],
)
def test_supports_structured_outputs(model: str, native: bool) -> None:
    assert supports_structured_outputs(model) is native


# --- response --------------------------------------------------------------------------


def message(
    content: list[dict[str, Any]], stop_reason: str = "end_turn", **usage: int
) -> dict[str, Any]:
    return {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 5, **usage},
    }


def test_text_response_and_usage() -> None:
    data = message(
        [{"type": "text", "text": "Hello"}, {"type": "text", "text": " world"}],
        cache_read_input_tokens=100,
        cache_creation_input_tokens=20,
    )
    response = response_from_anthropic(data, "claude")
    assert response.id == "msg_01"
    assert response.model == "claude"
    assert response.text == "Hello world"
    assert response.finish_reason == "stop"
    assert response.usage.prompt_tokens == 130
    assert response.usage.cached_tokens == 100
    assert response.usage.cache_creation_tokens == 20
    assert response.usage.completion_tokens == 5
    assert response.usage.total_tokens == 135


def test_tool_use_response() -> None:
    data = message(
        [
            {"type": "thinking", "thinking": "hmm", "signature": "sig"},
            {
                "type": "tool_use",
                "id": "toolu_1",
                "name": "get_weather",
                "input": {"city": "Paris"},
            },
        ],
        "tool_use",
    )
    response = response_from_anthropic(data, "claude")
    assert response.finish_reason == "tool_calls"
    assert response.choices[0].message.content is None
    [call] = response.tool_calls
    assert (call.id, call.function.name) == ("toolu_1", "get_weather")
    assert json.loads(call.function.arguments) == {"city": "Paris"}


def test_emulated_json_schema_response_is_text() -> None:
    data = message(
        [{"type": "tool_use", "id": "t", "name": "weather", "input": {"city": "Oslo"}}], "tool_use"
    )
    response = response_from_anthropic(data, "claude", json_tool="weather")
    assert json.loads(response.text) == {"city": "Oslo"}
    assert response.tool_calls == []
    assert response.finish_reason == "stop"


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("pause_turn", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("something_new", "stop"),
    ],
)
def test_stop_reasons(stop_reason: str, finish: str) -> None:
    data = message([{"type": "text", "text": "x"}], stop_reason)
    assert response_from_anthropic(data, "claude").finish_reason == finish


# --- stream ----------------------------------------------------------------------------

RECORDED: list[tuple[str, dict[str, Any]]] = [
    (
        "message_start",
        {
            "type": "message_start",
            "message": {
                "id": "msg_S",
                "type": "message",
                "role": "assistant",
                "content": [],
                "model": "claude-sonnet-4-5",
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {
                    "input_tokens": 20,
                    "cache_read_input_tokens": 5,
                    "cache_creation_input_tokens": 0,
                    "output_tokens": 1,
                },
            },
        },
    ),
    (
        "content_block_start",
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "thinking", "thinking": ""},
        },
    ),
    (
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "thinking_delta", "thinking": "Let me"},
        },
    ),
    (
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "signature_delta", "signature": "abc"},
        },
    ),
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    (
        "content_block_start",
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
    ),
    ("ping", {"type": "ping"}),
    (
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "text_delta", "text": "Checking"},
        },
    ),
    (
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "text_delta", "text": " now."},
        },
    ),
    ("content_block_stop", {"type": "content_block_stop", "index": 1}),
    (
        "content_block_start",
        {
            "type": "content_block_start",
            "index": 2,
            "content_block": {
                "type": "tool_use",
                "id": "toolu_9",
                "name": "get_weather",
                "input": {},
            },
        },
    ),
    (
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": 2,
            "delta": {"type": "input_json_delta", "partial_json": ""},
        },
    ),
    (
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": 2,
            "delta": {"type": "input_json_delta", "partial_json": '{"city": '},
        },
    ),
    (
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": 2,
            "delta": {"type": "input_json_delta", "partial_json": '"Paris"}'},
        },
    ),
    ("content_block_stop", {"type": "content_block_stop", "index": 2}),
    ("some_future_event", {"type": "some_future_event"}),
    (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": {"output_tokens": 42},
        },
    ),
    ("message_stop", {"type": "message_stop"}),
]


def feed_all(
    state: AnthropicStreamState, events: list[tuple[str, dict[str, Any]]]
) -> list[ChatChunk]:
    return [chunk for name, data in events for chunk in state.feed(name, data)]


def test_recorded_stream() -> None:
    state = AnthropicStreamState("claude")
    chunks = feed_all(state, RECORDED)
    state.close()
    assert {c.id for c in chunks} == {"msg_S"}
    assert {c.model for c in chunks} == {"claude"}
    first = chunks[0].choices[0].delta
    assert (first.role, first.content) == ("assistant", "")
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Checking now."
    calls = [call for c in chunks if c.choices for call in c.choices[0].delta.tool_calls or []]
    assert calls[0].index == 0 and calls[0].id == "toolu_9" and calls[0].type == "function"
    assert calls[0].function is not None and calls[0].function.name == "get_weather"
    assert {call.index for call in calls} == {0}  # tool blocks are counted on their own
    arguments = "".join(call.function.arguments or "" for call in calls if call.function)
    assert json.loads(arguments) == {"city": "Paris"}
    finish = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finish == ["tool_calls"]
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.cached_tokens, last.usage.completion_tokens) == (
        25,
        5,
        42,
    )
    assert all(c.usage is None for c in chunks[:-1])


def test_stream_of_emulated_json_schema_is_text() -> None:
    events = [
        RECORDED[0],
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "tool_use", "id": "t", "name": "weather", "input": {}},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": '{"city":'},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": ' "Oslo"}'},
            },
        ),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use"},
                "usage": {"output_tokens": 9},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    chunks = feed_all(AnthropicStreamState("claude", json_tool="weather"), events)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert json.loads(text) == {"city": "Oslo"}
    assert not any(c.choices[0].delta.tool_calls for c in chunks if c.choices)
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"


@pytest.mark.parametrize(
    ("error_type", "cls"),
    [
        ("overloaded_error", UpstreamUnavailableError),
        ("api_error", UpstreamUnavailableError),
        ("rate_limit_error", RateLimitError),
        ("invalid_request_error", BadRequestError),
    ],
)
def test_error_event_raises(error_type: str, cls: type[APIError]) -> None:
    state = AnthropicStreamState("claude")
    chunks = feed_all(state, RECORDED[:8])
    assert chunks  # the text before the error was delivered
    with pytest.raises(cls) as info:
        state.feed(
            "error", {"type": "error", "error": {"type": error_type, "message": "Overloaded"}}
        )
    assert "Overloaded" in str(info.value)
    assert info.value.code == error_type


def test_stream_without_message_stop_raises() -> None:
    state = AnthropicStreamState("claude")
    feed_all(state, RECORDED[:-1])
    with pytest.raises(UpstreamUnavailableError):
        state.close()


# --- errors ----------------------------------------------------------------------------


def error_body(kind: str, message: str = "nope") -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_body"}


@pytest.mark.parametrize(
    ("status", "kind", "cls"),
    [
        (400, "invalid_request_error", BadRequestError),
        (401, "authentication_error", AuthenticationError),
        (403, "permission_error", PermissionDeniedError),
        (404, "not_found_error", NotFoundError),
        (413, "request_too_large", BadRequestError),
        (429, "rate_limit_error", RateLimitError),
        (500, "api_error", UpstreamUnavailableError),
        (529, "overloaded_error", UpstreamUnavailableError),
    ],
)
def test_error_from_anthropic(status: int, kind: str, cls: type[APIError]) -> None:
    headers = httpx.Headers({"request-id": "req_hdr", "retry-after": "7"})
    error = error_from_anthropic(status, error_body(kind), headers)
    assert type(error) is cls
    assert error.status_code == status
    assert error.code == kind
    assert error.request_id == "req_hdr"
    assert error.vendor == "anthropic"
    assert "nope" in str(error)
    if isinstance(error, RateLimitError):
        assert error.retry_after == 7.0


def test_error_details() -> None:
    long_prompt = error_body(
        "invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum"
    )
    assert isinstance(
        error_from_anthropic(400, long_prompt, httpx.Headers()), ContextWindowExceededError
    )
    assert error_from_anthropic(400, error_body("x"), httpx.Headers()).request_id == "req_body"
    plain = error_from_anthropic(502, "<html>Bad gateway</html>", httpx.Headers())
    assert isinstance(plain, UpstreamUnavailableError) and "Bad gateway" in str(plain)
