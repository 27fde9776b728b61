"""Pure translation between the canonical types and the Gemini API (no network)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from crossroads.backends.google import (
    GeminiStreamState,
    error_from_gemini,
    finish_from_gemini,
    request_to_gemini,
    response_from_gemini,
    usage_from_gemini,
)
from crossroads.errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ContextWindowExceededError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from crossroads.types import ChatRequest


def req(*messages: dict[str, Any], **kw: Any) -> ChatRequest:
    return ChatRequest.model_validate({"model": "gemini", "messages": list(messages), **kw})


def call(id: str, name: str, args: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "id": id,
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(args)},
        **extra,
    }


USER = {"role": "user", "content": "hi"}

# --- request -------------------------------------------------------------------------


def test_plain_user_message() -> None:
    assert request_to_gemini(req(USER)) == {
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}]
    }


def test_system_and_developer_become_system_instruction() -> None:
    body = request_to_gemini(
        req(
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Use French."}]},
            USER,
        )
    )
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief.\n\nUse French."}]}
    assert [c["role"] for c in body["contents"]] == ["user"]


def test_roles_map_and_consecutive_turns_merge() -> None:
    body = request_to_gemini(
        req(
            {"role": "user", "content": "a"},
            {"role": "user", "content": "b"},
            {"role": "assistant", "content": "c"},
            {"role": "assistant", "content": "d"},
            {"role": "user", "content": "e"},
        )
    )
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "a"}, {"text": "b"}]},
        {"role": "model", "parts": [{"text": "c"}, {"text": "d"}]},
        {"role": "user", "parts": [{"text": "e"}]},
    ]


def test_function_call_and_response_round_trip() -> None:
    body = request_to_gemini(
        req(
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    call(
                        "call_a",
                        "get_weather",
                        {"city": "Paris"},
                        extra_content={"google": {"thought_signature": "sig=="}},
                    ),
                    call("call_b", "get_time", {"city": "Rome"}),
                ],
            },
            {"role": "tool", "tool_call_id": "call_b", "content": "12:00"},
            {"role": "tool", "tool_call_id": "call_a", "content": '{"temp": 21}'},
            {"role": "tool", "tool_call_id": "call_a", "content": "[1, 2]"},
            {"role": "user", "content": "thanks"},
        )
    )
    user, model, results = body["contents"]
    assert user["role"] == "user"
    assert model == {
        "role": "model",
        "parts": [
            {
                "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                "thoughtSignature": "sig==",
            },
            {"functionCall": {"name": "get_time", "args": {"city": "Rome"}}},
        ],
    }
    assert results == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "get_time", "response": {"result": "12:00"}}},
            {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}},
            {"functionResponse": {"name": "get_weather", "response": {"result": [1, 2]}}},
            {"text": "thanks"},
        ],
    }


def test_tool_result_without_its_call_is_a_bad_request() -> None:
    with pytest.raises(BadRequestError, match="call_zzz"):
        request_to_gemini(req(USER, {"role": "tool", "tool_call_id": "call_zzz", "content": "x"}))


@pytest.mark.parametrize("arguments", ["not json", "[1]"])
def test_tool_call_arguments_must_be_an_object(arguments: str) -> None:
    bad = call("c", "f", {})
    bad["function"]["arguments"] = arguments
    with pytest.raises(BadRequestError):
        request_to_gemini(req(USER, {"role": "assistant", "tool_calls": [bad]}))


def test_empty_arguments_are_an_empty_object() -> None:
    empty = call("c", "f", {})
    empty["function"]["arguments"] = ""
    body = request_to_gemini(req(USER, {"role": "assistant", "tool_calls": [empty]}))
    assert body["contents"][1]["parts"] == [{"functionCall": {"name": "f", "args": {}}}]


@pytest.mark.parametrize(
    ("url", "part"),
    [
        (
            "data:image/png;base64,iVBORw0KGgo=",
            {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
        ),
        (
            "data:text/plain,hi%20there",
            {"inlineData": {"mimeType": "text/plain", "data": "aGkgdGhlcmU="}},
        ),
        (
            "https://example.com/cat.png?size=2",
            {
                "fileData": {
                    "fileUri": "https://example.com/cat.png?size=2",
                    "mimeType": "image/png",
                }
            },
        ),
        (
            "https://example.com/picture",
            {"fileData": {"fileUri": "https://example.com/picture", "mimeType": "image/jpeg"}},
        ),
    ],
)
def test_image_parts(url: str, part: dict[str, Any]) -> None:
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": url}},
    ]
    body = request_to_gemini(req({"role": "user", "content": content}))
    assert body["contents"][0]["parts"] == [{"text": "What is this?"}, part]


@pytest.mark.parametrize(
    ("options", "config"),
    [
        ({}, None),
        ({"temperature": 0.2, "top_p": 0.9}, {"temperature": 0.2, "topP": 0.9}),
        ({"max_tokens": 50}, {"maxOutputTokens": 50}),
        ({"max_completion_tokens": 60}, {"maxOutputTokens": 60}),
        ({"stop": "END"}, {"stopSequences": ["END"]}),
        ({"stop": ["a", "b"]}, {"stopSequences": ["a", "b"]}),
        ({"seed": 7, "n": 2}, {"seed": 7, "candidateCount": 2}),
        (
            {"presence_penalty": 0.5, "frequency_penalty": -0.5},
            {"presencePenalty": 0.5, "frequencyPenalty": -0.5},
        ),
        ({"logprobs": True}, {"responseLogprobs": True}),
        ({"logprobs": True, "top_logprobs": 3}, {"responseLogprobs": True, "logprobs": 3}),
        ({"logprobs": False, "top_logprobs": 3}, None),
        ({"response_format": {"type": "text"}}, None),
        ({"response_format": {"type": "json_object"}}, {"responseMimeType": "application/json"}),
        (
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {
                        "name": "person",
                        "schema": {"type": "object", "properties": {"age": {"type": "integer"}}},
                        "strict": True,
                    },
                }
            },
            {
                "responseMimeType": "application/json",
                "responseJsonSchema": {
                    "type": "object",
                    "properties": {"age": {"type": "integer"}},
                },
            },
        ),
    ],
)
def test_generation_config(options: dict[str, Any], config: dict[str, Any] | None) -> None:
    body = request_to_gemini(req(USER, **options))
    assert body.get("generationConfig") == config


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}


def test_tools_become_function_declarations() -> None:
    bare = {"type": "function", "function": {"name": "now"}}
    body = request_to_gemini(req(USER, tools=[WEATHER, bare]))
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Weather for a city",
                    "parametersJsonSchema": WEATHER["function"]["parameters"],  # type: ignore[index]
                },
                {"name": "now"},
            ]
        }
    ]
    assert "toolConfig" not in body


@pytest.mark.parametrize(
    ("choice", "config"),
    [
        ("auto", {"mode": "AUTO"}),
        ("required", {"mode": "ANY"}),
        ("none", {"mode": "NONE"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            {"mode": "ANY", "allowedFunctionNames": ["get_weather"]},
        ),
    ],
)
def test_tool_choice_modes(choice: Any, config: dict[str, Any]) -> None:
    body = request_to_gemini(req(USER, tools=[WEATHER], tool_choice=choice))
    assert body["toolConfig"] == {"functionCallingConfig": config}


# --- response ------------------------------------------------------------------------


def candidate(*parts: dict[str, Any], finish: str | None = "STOP", **kw: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"content": {"role": "model", "parts": list(parts)}, "index": 0, **kw}
    if finish:
        data["finishReason"] = finish
    return data


USAGE = {
    "promptTokenCount": 10,
    "candidatesTokenCount": 5,
    "thoughtsTokenCount": 20,
    "cachedContentTokenCount": 4,
    "totalTokenCount": 35,
}


def test_text_response_skips_thoughts_and_maps_usage() -> None:
    data = {
        "candidates": [
            candidate(
                {"text": "thinking...", "thought": True}, {"text": "Hello "}, {"text": "world"}
            )
        ],
        "usageMetadata": USAGE,
        "modelVersion": "gemini-2.5-flash-001",
        "responseId": "resp-1",
    }
    response = response_from_gemini(data, "gemini")
    assert response.id == "resp-1"
    assert response.model == "gemini"
    assert response.text == "Hello world"
    assert response.finish_reason == "stop"
    assert response.tool_calls == []
    usage = response.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (10, 25, 35)
    assert (usage.cached_tokens, usage.reasoning_tokens) == (4, 20)


def test_usage_without_total_adds_up_and_counts_tool_use_prompt() -> None:
    usage = usage_from_gemini(
        {"promptTokenCount": 3, "toolUsePromptTokenCount": 2, "candidatesTokenCount": 4}
    )
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (5, 4, 9)
    assert usage_from_gemini(None).total_tokens == 0


def test_function_calls_become_tool_calls() -> None:
    data = {
        "candidates": [
            candidate(
                {
                    "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                    "thoughtSignature": "sig",
                },
                {"functionCall": {"id": "given-id", "name": "now", "args": {}}},
            )
        ]
    }
    response = response_from_gemini(data, "gemini")
    assert response.finish_reason == "tool_calls"
    assert response.choices[0].message.content is None
    first, second = response.tool_calls
    assert (first.id, first.function.name, json.loads(first.function.arguments)) == (
        "call_0",
        "get_weather",
        {"city": "Paris"},
    )
    assert first.model_extra == {"extra_content": {"google": {"thought_signature": "sig"}}}
    assert (second.id, second.function.arguments) == ("given-id", "{}")
    assert response.id  # generated when responseId is absent


def test_tool_call_signature_survives_a_round_trip() -> None:
    data = {
        "candidates": [
            candidate({"functionCall": {"name": "f", "args": {"x": 1}}, "thoughtSignature": "s1"})
        ]
    }
    assistant = (
        response_from_gemini(data, "gemini").choices[0].message.model_dump(exclude_none=True)
    )
    body = request_to_gemini(
        req(USER, assistant, {"role": "tool", "tool_call_id": "call_0", "content": "ok"})
    )
    assert body["contents"][1]["parts"] == [
        {"functionCall": {"name": "f", "args": {"x": 1}}, "thoughtSignature": "s1"}
    ]
    assert body["contents"][2]["parts"][0]["functionResponse"]["name"] == "f"


@pytest.mark.parametrize(
    ("gemini", "openai"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
        ("IMAGE_SAFETY", "content_filter"),
        ("MALFORMED_FUNCTION_CALL", "error"),
        ("OTHER", "error"),
        ("SOMETHING_NEW", "stop"),
        (None, None),
    ],
)
def test_finish_reasons(gemini: str | None, openai: str | None) -> None:
    assert finish_from_gemini(gemini) == openai


def test_safety_finish_is_content_filter_with_empty_content() -> None:
    data = {
        "candidates": [
            {
                "finishReason": "SAFETY",
                "index": 0,
                "safetyRatings": [
                    {
                        "category": "HARM_CATEGORY_DANGEROUS_CONTENT",
                        "probability": "HIGH",
                        "blocked": True,
                    }
                ],
            }
        ],
        "usageMetadata": {"promptTokenCount": 8, "totalTokenCount": 8},
    }
    response = response_from_gemini(data, "gemini")
    assert response.finish_reason == "content_filter"
    assert response.text == ""
    assert response.usage.prompt_tokens == 8


def test_blocked_prompt_is_an_empty_content_filter_answer() -> None:
    data = {
        "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
        "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9},
    }
    response = response_from_gemini(data, "gemini")
    assert len(response.choices) == 1
    assert response.finish_reason == "content_filter"
    assert response.choices[0].message.content == ""
    assert response.usage.prompt_tokens == 9


def test_several_candidates_become_several_choices() -> None:
    data = {
        "candidates": [
            candidate({"text": "one"}),
            {**candidate({"text": "two"}, finish="MAX_TOKENS"), "index": 1},
        ]
    }
    response = response_from_gemini(data, "gemini")
    assert [(c.index, c.message.content, c.finish_reason) for c in response.choices] == [
        (0, "one", "stop"),
        (1, "two", "length"),
    ]


def test_logprobs_result_maps_to_openai_logprobs() -> None:
    data = {
        "candidates": [
            candidate(
                {"text": "Hi"},
                logprobsResult={
                    "topCandidates": [
                        {
                            "candidates": [
                                {"token": "Hi", "logProbability": -0.1},
                                {"token": "Yo", "logProbability": -2.0},
                            ]
                        }
                    ],
                    "chosenCandidates": [{"token": "Hi", "logProbability": -0.1}],
                },
            )
        ]
    }
    logprobs = response_from_gemini(data, "gemini").choices[0].logprobs
    assert logprobs == {
        "content": [
            {
                "token": "Hi",
                "logprob": -0.1,
                "top_logprobs": [
                    {"token": "Hi", "logprob": -0.1},
                    {"token": "Yo", "logprob": -2.0},
                ],
            }
        ]
    }


# --- stream --------------------------------------------------------------------------


def test_stream_of_text_then_usage() -> None:
    state = GeminiStreamState("gemini")
    chunks = state.feed(
        {
            "candidates": [candidate({"text": "Hel"}, finish=None)],
            "responseId": "r1",
            "usageMetadata": {"promptTokenCount": 3},
        }
    )
    chunks += state.feed({"candidates": [candidate({"text": "lo"})], "usageMetadata": {**USAGE}})
    last = state.finish()
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Hello"
    assert [c.choices[0].finish_reason for c in chunks] == [None, None, "stop"]
    assert {c.id for c in [*chunks, last]} == {"r1"}
    assert last.choices == []
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (10, 25)


def test_stream_with_function_calls() -> None:
    state = GeminiStreamState("gemini")
    chunks = state.feed({"candidates": [candidate({"text": "Let me check."}, finish=None)]})
    chunks += state.feed(
        {
            "candidates": [
                candidate(
                    {
                        "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                        "thoughtSignature": "s",
                    },
                    {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}},
                )
            ]
        }
    )
    usage = state.finish()
    deltas = [d for c in chunks for d in (c.choices[0].delta.tool_calls or [])]
    assert [(d.index, d.id, d.function.name if d.function else None) for d in deltas] == [
        (0, "call_0", "get_weather"),
        (1, "call_1", "get_weather"),
    ]
    assert deltas[0].function is not None
    assert json.loads(deltas[0].function.arguments or "") == {"city": "Paris"}
    assert deltas[0].model_extra == {"extra_content": {"google": {"thought_signature": "s"}}}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert usage.usage is not None


def test_stream_without_finish_reason_raises_on_finish() -> None:
    state = GeminiStreamState("gemini")
    state.feed({"candidates": [candidate({"text": "partial"}, finish=None)]})
    with pytest.raises(UpstreamUnavailableError, match="before the answer was finished"):
        state.finish()


def test_empty_stream_raises_on_finish() -> None:
    with pytest.raises(UpstreamUnavailableError):
        GeminiStreamState("gemini").finish()


def test_stream_blocked_prompt_finishes_with_content_filter() -> None:
    state = GeminiStreamState("gemini")
    chunks = state.feed({"promptFeedback": {"blockReason": "SAFETY"}})
    assert chunks[-1].choices[0].finish_reason == "content_filter"
    assert state.finish().usage is not None


def test_stream_error_payload_raises_mapped_error() -> None:
    state = GeminiStreamState("gemini")
    state.feed({"candidates": [candidate({"text": "a"}, finish=None)]})
    with pytest.raises(UpstreamUnavailableError, match="middle of the stream"):
        state.feed(
            {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}
        )
    with pytest.raises(RateLimitError):
        state.feed({"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}})


# --- errors --------------------------------------------------------------------------


def gerror(code: int, status: str, message: str = "boom", **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status, **extra}}


@pytest.mark.parametrize(
    ("status", "body", "cls"),
    [
        (400, gerror(400, "INVALID_ARGUMENT"), BadRequestError),
        (
            400,
            gerror(400, "FAILED_PRECONDITION", "User location is not supported."),
            BadRequestError,
        ),
        (
            400,
            gerror(
                400,
                "INVALID_ARGUMENT",
                "The input token count (2000000) exceeds the maximum number of tokens "
                "allowed (1048576).",
            ),
            ContextWindowExceededError,
        ),
        (
            400,
            gerror(
                400,
                "INVALID_ARGUMENT",
                "API key not valid. Please pass a valid API key.",
                details=[
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "API_KEY_INVALID",
                    }
                ],
            ),
            AuthenticationError,
        ),
        (401, gerror(401, "UNAUTHENTICATED"), AuthenticationError),
        (403, gerror(403, "PERMISSION_DENIED"), PermissionDeniedError),
        (404, gerror(404, "NOT_FOUND", "models/nope is not found"), NotFoundError),
        (429, gerror(429, "RESOURCE_EXHAUSTED"), RateLimitError),
        (500, gerror(500, "INTERNAL"), UpstreamUnavailableError),
        (503, gerror(503, "UNAVAILABLE", "The model is overloaded."), UpstreamUnavailableError),
        (504, gerror(504, "DEADLINE_EXCEEDED"), UpstreamUnavailableError),
        (502, "<html>Bad Gateway</html>", UpstreamUnavailableError),
        (400, [gerror(400, "INVALID_ARGUMENT")], BadRequestError),
    ],
)
def test_error_mapping(status: int, body: Any, cls: type[APIError]) -> None:
    error = error_from_gemini(status, body, httpx.Headers())
    assert type(error) is cls
    assert error.status_code == status
    assert error.vendor == "google"


def test_error_keeps_status_and_reason_as_code() -> None:
    plain = error_from_gemini(403, gerror(403, "PERMISSION_DENIED"), httpx.Headers())
    assert plain.code == "PERMISSION_DENIED"
    details = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}]
    keyed = error_from_gemini(
        400, gerror(400, "INVALID_ARGUMENT", details=details), httpx.Headers()
    )
    assert keyed.code == "API_KEY_INVALID"
    assert isinstance(keyed, AuthenticationError)


@pytest.mark.parametrize(
    ("headers", "delay", "expected"),
    [
        ({}, "7s", 7.0),
        ({}, "0.250s", 0.25),
        ({"retry-after": "3"}, "7s", 3.0),
        ({}, None, None),
    ],
)
def test_rate_limit_retry_after(
    headers: dict[str, str], delay: str | None, expected: float | None
) -> None:
    details: list[dict[str, Any]] = [
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []}
    ]
    if delay is not None:
        details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay})
    error = error_from_gemini(
        429, gerror(429, "RESOURCE_EXHAUSTED", details=details), httpx.Headers(headers)
    )
    assert isinstance(error, RateLimitError)
    assert error.retry_after == expected


def test_timeout_status_maps_to_timeout() -> None:
    assert isinstance(
        error_from_gemini(408, gerror(408, "DEADLINE_EXCEEDED"), httpx.Headers()),
        UpstreamTimeoutError,
    )
