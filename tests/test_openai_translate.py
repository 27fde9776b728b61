"""OpenAI translation, table-driven, no network."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from crossroads import errors
from crossroads.backends.openai import (
    chunk_from_openai,
    error_from_openai,
    request_to_openai,
    response_from_openai,
)
from crossroads.types import ChatRequest

BASE: dict[str, Any] = {"model": "mine", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(
    ("extra", "stream", "official", "expected"),
    [
        ({}, False, False, {"model": "gpt-4o", "messages": BASE["messages"]}),
        (
            {"temperature": 0.2, "seed": 7, "stop": "END"},
            False,
            False,
            {"temperature": 0.2, "seed": 7, "stop": "END"},
        ),
        ({}, True, False, {"stream": True, "stream_options": {"include_usage": True}}),
        ({"max_tokens": 5}, False, False, {"max_tokens": 5}),
        ({"max_tokens": 5}, False, True, {"max_completion_tokens": 5}),
        (
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "x", "schema": {"type": "object"}, "strict": True},
                }
            },
            False,
            False,
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "x", "schema": {"type": "object"}, "strict": True},
                }
            },
        ),
        (
            {"tool_choice": {"type": "function", "function": {"name": "f"}}},
            False,
            False,
            {"tool_choice": {"type": "function", "function": {"name": "f"}}},
        ),
        ({"vendor_extension": {"top_k": 3}}, False, False, {"vendor_extension": {"top_k": 3}}),
    ],
)
def test_request(
    extra: dict[str, Any], stream: bool, official: bool, expected: dict[str, Any]
) -> None:
    body = request_to_openai(
        ChatRequest(**BASE, **extra), "gpt-4o", stream=stream, official=official
    )
    assert body["model"] == "gpt-4o"
    for key, value in expected.items():
        assert body[key] == value
    if official:
        assert "max_tokens" not in body
    if not stream:
        assert "stream" not in body


def test_image_parts_pass_through() -> None:
    request = ChatRequest(
        model="m",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                ],
            }
        ],
    )
    body = request_to_openai(request, "gpt-4o", stream=False)
    assert body["messages"][0]["content"][1] == {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64,AAAA"},
    }


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("stop", "stop"),
        ("length", "length"),
        ("tool_calls", "tool_calls"),
        ("function_call", "tool_calls"),
        ("content_filter", "content_filter"),
        ("eos", "stop"),
    ],
)
def test_finish_reasons(raw: str, expected: str) -> None:
    data = {
        "id": "x",
        "created": 1,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "a"}, "finish_reason": raw}
        ],
    }
    assert response_from_openai(data, "m").finish_reason == expected


def test_response_usage_details() -> None:
    data = {
        "id": "chatcmpl-1",
        "created": 5,
        "model": "gpt-4o",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        }
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {
            "prompt_tokens": 100,
            "completion_tokens": 20,
            "total_tokens": 120,
            "prompt_tokens_details": {"cached_tokens": 64},
            "completion_tokens_details": {"reasoning_tokens": 12},
        },
    }
    response = response_from_openai(data, "mine")
    assert response.model == "mine"
    assert response.tool_calls[0].function.name == "f"
    usage = response.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (100, 20, 120)
    assert (usage.cached_tokens, usage.reasoning_tokens) == (64, 12)


def test_chunk_translation_and_usage_chunk() -> None:
    chunk = chunk_from_openai(
        {
            "id": "c",
            "created": 1,
            "choices": [{"index": 0, "delta": {"content": "Hel"}, "finish_reason": None}],
        },
        "mine",
    )
    assert chunk.choices[0].delta.content == "Hel"
    usage = chunk_from_openai(
        {
            "id": "c",
            "created": 1,
            "choices": [],
            "usage": {"prompt_tokens": 3, "completion_tokens": 4},
        },
        "mine",
    )
    assert usage.usage is not None and usage.usage.total_tokens == 7


def test_error_payload_in_stream_raises() -> None:
    with pytest.raises(errors.UpstreamUnavailableError, match="middle of the stream"):
        chunk_from_openai({"error": {"message": "overloaded", "type": "server_error"}}, "m")


@pytest.mark.parametrize(
    ("status", "body", "cls"),
    [
        (
            400,
            {
                "error": {
                    "message": "This model's maximum context length is 8192 tokens",
                    "type": "invalid_request_error",
                    "code": "context_length_exceeded",
                }
            },
            errors.ContextWindowExceededError,
        ),
        (
            400,
            {"error": {"message": "Invalid prompt: flagged", "code": "content_filter"}},
            errors.ContentFilteredError,
        ),
        (
            400,
            {"error": {"message": "bad", "type": "invalid_request_error"}},
            errors.BadRequestError,
        ),
        (401, {"error": {"message": "Incorrect API key"}}, errors.AuthenticationError),
        (403, {"error": {"message": "region"}}, errors.PermissionDeniedError),
        (404, {"error": {"message": "model not found"}}, errors.NotFoundError),
        (408, {"error": "timeout"}, errors.UpstreamTimeoutError),
        (422, "not json at all", errors.BadRequestError),
        (
            429,
            {"error": {"message": "Rate limit", "code": "rate_limit_exceeded"}},
            errors.RateLimitError,
        ),
        (500, {"error": {"message": "oops"}}, errors.UpstreamUnavailableError),
        (502, "<html>bad gateway</html>", errors.UpstreamUnavailableError),
    ],
)
def test_error_mapping(status: int, body: Any, cls: type[errors.APIError]) -> None:
    headers = httpx.Headers({"x-request-id": "req_1", "retry-after": "2"})
    error = error_from_openai(status, body, headers)
    assert type(error) is cls
    assert error.status_code == status
    assert error.request_id == "req_1"
    if isinstance(error, errors.RateLimitError):
        assert error.retry_after == 2.0
