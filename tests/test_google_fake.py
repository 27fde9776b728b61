"""The Gemini fake speaks the real format (checked with google-genai), then GoogleBackend."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from google import genai
from google.genai import errors as genai_errors

from crossroads.backends.base import Deployment, load_backend
from crossroads.backends.google import GoogleBackend
from crossroads.errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    UpstreamUnavailableError,
)
from crossroads.routing import Router
from crossroads.types import ChatChunk, ChatRequest

from .fakes.google_fake import INVALID_KEY, THOUGHT_SIGNATURE, GoogleFake
from .fakes.server import DEFAULT_TEXT, Reply

MODEL = "gemini-2.5-flash"


@pytest.fixture(scope="module")
def google_fake() -> Iterator[GoogleFake]:
    fake = GoogleFake()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture(autouse=True)
def _fresh(google_fake: GoogleFake) -> Iterator[None]:
    google_fake.replies.clear()
    google_fake.requests.clear()
    yield
    google_fake.replies.clear()


# --- the fake, checked with the official SDK -----------------------------------------


@pytest.fixture
def sdk(google_fake: GoogleFake) -> genai.Client:
    return genai.Client(api_key="k", http_options=genai.types.HttpOptions(base_url=google_fake.url))


def test_sdk_reads_text_and_usage(sdk: genai.Client, google_fake: GoogleFake) -> None:
    google_fake.script(Reply(text="Bonjour", prompt_tokens=5, completion_tokens=2, cached_tokens=1))
    response = sdk.models.generate_content(model=MODEL, contents="hi")
    assert response.text == "Bonjour"
    assert response.candidates is not None
    assert response.candidates[0].finish_reason == genai.types.FinishReason.STOP
    usage = response.usage_metadata
    assert usage is not None
    assert (usage.prompt_token_count, usage.candidates_token_count) == (5, 2)
    assert (usage.total_token_count, usage.cached_content_token_count) == (7, 1)
    assert response.response_id == GoogleFake.response_id
    recorded = google_fake.requests[0]
    assert recorded.path == f"/v1/models/{MODEL}:generateContent"  # the SDK's default version
    assert recorded.headers["x-goog-api-key"] == "k"
    assert recorded.body["contents"] == [{"role": "user", "parts": [{"text": "hi"}]}]


def test_sdk_reads_function_call(sdk: genai.Client, google_fake: GoogleFake) -> None:
    google_fake.script(Reply.tool("get_weather", {"city": "Paris"}))
    response = sdk.models.generate_content(model=MODEL, contents="Weather in Paris?")
    assert response.function_calls is not None
    (call,) = response.function_calls
    assert (call.name, call.args) == ("get_weather", {"city": "Paris"})
    assert response.candidates is not None
    content = response.candidates[0].content
    assert content is not None and content.parts is not None
    assert content.parts[0].thought_signature is not None


def test_sdk_streams_text(sdk: genai.Client, google_fake: GoogleFake) -> None:
    pieces = [c.text for c in sdk.models.generate_content_stream(model=MODEL, contents="hi")]
    assert len(pieces) > 1
    assert "".join(p or "" for p in pieces) == DEFAULT_TEXT
    assert google_fake.requests[0].query == {"alt": "sse"}


def test_sdk_on_v1beta_sees_safety_block(google_fake: GoogleFake) -> None:
    options = genai.types.HttpOptions(base_url=google_fake.url, api_version="v1beta")
    client = genai.Client(api_key="k", http_options=options)
    google_fake.script(Reply(text="", finish="content_filter"))
    response = client.models.generate_content(model=MODEL, contents="something bad")
    assert response.candidates is not None
    candidate = response.candidates[0]
    assert candidate.finish_reason == genai.types.FinishReason.SAFETY
    assert candidate.safety_ratings is not None
    assert any(r.probability == genai.types.HarmProbability.HIGH for r in candidate.safety_ratings)
    assert response.text is None
    assert google_fake.requests[0].path.startswith("/v1beta/")


@pytest.mark.parametrize(
    ("status", "cls", "google_status"),
    [
        (400, genai_errors.ClientError, "INVALID_ARGUMENT"),
        (403, genai_errors.ClientError, "PERMISSION_DENIED"),
        (404, genai_errors.ClientError, "NOT_FOUND"),
        (429, genai_errors.ClientError, "RESOURCE_EXHAUSTED"),
        (500, genai_errors.ServerError, "INTERNAL"),
        (503, genai_errors.ServerError, "UNAVAILABLE"),
    ],
)
def test_sdk_raises_error_status(
    sdk: genai.Client,
    google_fake: GoogleFake,
    status: int,
    cls: type[genai_errors.APIError],
    google_status: str,
) -> None:
    google_fake.script(Reply.error(status, "nope"))
    with pytest.raises(cls) as info:
        sdk.models.generate_content(model=MODEL, contents="hi")
    assert (info.value.code, info.value.status, info.value.message) == (
        status,
        google_status,
        "nope",
    )


def test_sdk_sees_mid_stream_error(sdk: genai.Client, google_fake: GoogleFake) -> None:
    google_fake.script(Reply(fail_after_chunks=2))
    seen: list[str] = []
    with pytest.raises(genai_errors.ServerError) as info:
        for chunk in sdk.models.generate_content_stream(model=MODEL, contents="hi"):
            seen.append(chunk.text or "")
    assert info.value.code == 500
    assert len(seen) == 2


def test_fake_answers_like_the_api_without_a_key(google_fake: GoogleFake) -> None:
    url = f"{google_fake.url}/v1beta/models/{MODEL}:generateContent"
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    missing = httpx.post(url, json=body)
    assert missing.status_code == 403
    assert missing.json()["error"]["status"] == "PERMISSION_DENIED"
    invalid = httpx.post(url, json=body, headers={"x-goog-api-key": INVALID_KEY})
    assert invalid.status_code == 400
    assert invalid.json()["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    by_query = httpx.post(url, json=body, params={"key": "k"})
    assert by_query.status_code == 200


def test_fake_streams_a_json_array_without_alt_sse(google_fake: GoogleFake) -> None:
    url = f"{google_fake.url}/v1beta/models/{MODEL}:streamGenerateContent"
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    payloads = httpx.post(url, json=body, headers={"x-goog-api-key": "k"}).json()
    assert isinstance(payloads, list)
    assert payloads[-1]["candidates"][0]["finishReason"] == "STOP"


# --- GoogleBackend against the fake --------------------------------------------------


def deployment(fake: GoogleFake, **kw: Any) -> Deployment:
    options: dict[str, Any] = {
        "name": "gemini",
        "backend": "google",
        "model": MODEL,
        "base_url": fake.url,
        "api_key": "test-key",
        "max_retries": 2,
        **kw,
    }
    return Deployment(**options)


@pytest.fixture
async def backend(google_fake: GoogleFake) -> AsyncIterator[GoogleBackend]:
    instance = GoogleBackend(deployment(google_fake))
    yield instance
    await instance.aclose()


def ask(text: str = "hi", **kw: Any) -> ChatRequest:
    return ChatRequest.model_validate(
        {"model": "gemini", "messages": [{"role": "user", "content": text}], **kw}
    )


async def collect(
    backend: GoogleBackend, request: ChatRequest, into: list[ChatChunk] | None = None
) -> list[ChatChunk]:
    chunks = into if into is not None else []
    async for chunk in backend.stream(request):
        chunks.append(chunk)
    return chunks


def test_backend_is_registered_with_its_settings() -> None:
    assert load_backend("google") is GoogleBackend
    assert GoogleBackend.api_key_env == "GEMINI_API_KEY"
    assert GoogleBackend.api_key_env_fallbacks == ("GOOGLE_API_KEY",)
    assert GoogleBackend.base_url_env == "GOOGLE_GEMINI_BASE_URL"
    assert GoogleBackend.default_base_url == "https://generativelanguage.googleapis.com"


async def test_capabilities(backend: GoogleBackend) -> None:
    caps = backend.capabilities
    assert (caps.streaming, caps.tools, caps.json_schema, caps.vision, caps.logprobs) == (
        True,
        True,
        True,
        True,
        True,
    )


async def test_plain_completion(backend: GoogleBackend, google_fake: GoogleFake) -> None:
    google_fake.script(Reply(text="Hello there", prompt_tokens=12, completion_tokens=3))
    response = await backend.complete(ask(temperature=0.3, max_tokens=40))
    assert response.text == "Hello there"
    assert response.model == "gemini"
    assert response.id == GoogleFake.response_id
    assert response.finish_reason == "stop"
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (12, 3)
    assert response.usage.total_tokens == 15
    recorded = google_fake.requests[0]
    assert recorded.path == f"/v1beta/models/{MODEL}:generateContent"
    assert recorded.body == {
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
        "generationConfig": {"temperature": 0.3, "maxOutputTokens": 40},
    }


async def test_key_goes_in_the_header_never_the_url(
    backend: GoogleBackend, google_fake: GoogleFake
) -> None:
    await backend.complete(ask())
    await collect(backend, ask())
    for recorded in google_fake.requests:
        assert recorded.headers["x-goog-api-key"] == "test-key"
        assert "key" not in recorded.query
        assert "test-key" not in recorded.path
        assert "authorization" not in recorded.headers


async def test_streamed_text(backend: GoogleBackend, google_fake: GoogleFake) -> None:
    google_fake.script(Reply(text="Streaming works fine", cached_tokens=2))
    chunks = await collect(backend, ask())
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Streaming works fine"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop" and finishes.count("stop") == 1
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (11, 7)
    assert last.usage.cached_tokens == 2
    assert google_fake.requests[0].path == f"/v1beta/models/{MODEL}:streamGenerateContent"
    assert google_fake.requests[0].query == {"alt": "sse"}


async def test_tool_call_completion_and_round_trip(
    backend: GoogleBackend, google_fake: GoogleFake
) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    google_fake.script(Reply.tool("get_weather", {"city": "Paris"}))
    response = await backend.complete(ask("Weather?", tools=tools, tool_choice="required"))
    assert response.finish_reason == "tool_calls"
    (call,) = response.tool_calls
    assert (call.id, call.function.name) == ("call_0", "get_weather")
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    sent = google_fake.requests[0].body
    assert sent["tools"][0]["functionDeclarations"][0]["name"] == "get_weather"
    assert sent["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}

    follow_up = ChatRequest.model_validate(
        {
            "model": "gemini",
            "tools": tools,
            "messages": [
                {"role": "user", "content": "Weather?"},
                response.choices[0].message.model_dump(exclude_none=True),
                {"role": "tool", "tool_call_id": call.id, "content": '{"temp": 20}'},
            ],
        }
    )
    await backend.complete(follow_up)
    contents = google_fake.requests[1].body["contents"]
    assert contents[1] == {
        "role": "model",
        "parts": [
            {
                "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                "thoughtSignature": THOUGHT_SIGNATURE,
            }
        ],
    }
    assert contents[2] == {
        "role": "user",
        "parts": [{"functionResponse": {"name": "get_weather", "response": {"temp": 20}}}],
    }


async def test_streamed_tool_call(backend: GoogleBackend, google_fake: GoogleFake) -> None:
    google_fake.script(
        Reply(text="", tool_calls=[("a", {"x": 1}), ("b", {"y": [2]})], finish="tool_calls")
    )
    chunks = await collect(backend, ask())
    deltas = [d for c in chunks if c.choices for d in c.choices[0].delta.tool_calls or []]
    assert [(d.index, d.id, d.type) for d in deltas] == [
        (0, "call_0", "function"),
        (1, "call_1", "function"),
    ]
    assert [(d.function.name, d.function.arguments) for d in deltas if d.function] == [
        ("a", '{"x": 1}'),
        ("b", '{"y": [2]}'),
    ]
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    assert chunks[-1].usage is not None


async def test_json_schema(backend: GoogleBackend, google_fake: GoogleFake) -> None:
    schema = {"type": "object", "properties": {"age": {"type": "integer"}}, "required": ["age"]}
    google_fake.script(Reply(text='{"age": 42}'))
    response = await backend.complete(
        ask(response_format={"type": "json_schema", "json_schema": {"name": "p", "schema": schema}})
    )
    assert json.loads(response.text) == {"age": 42}
    config = google_fake.requests[0].body["generationConfig"]
    assert config == {"responseMimeType": "application/json", "responseJsonSchema": schema}


async def test_safety_block(backend: GoogleBackend, google_fake: GoogleFake) -> None:
    google_fake.script(Reply(text="", finish="content_filter"), Reply(finish="content_filter"))
    response = await backend.complete(ask())
    assert response.finish_reason == "content_filter"
    assert response.text == ""
    chunks = await collect(backend, ask())
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "content_filter"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == ""


async def test_length_finish(backend: GoogleBackend, google_fake: GoogleFake) -> None:
    google_fake.script(Reply(text="cut", finish="length"))
    assert (await backend.complete(ask())).finish_reason == "length"


@pytest.mark.parametrize(
    ("reply", "cls"),
    [
        (Reply.error(400, "Invalid value at 'contents'"), BadRequestError),
        (
            Reply.error(400, "User location is not supported", type="FAILED_PRECONDITION"),
            BadRequestError,
        ),
        (Reply.error(403, "The caller does not have permission"), PermissionDeniedError),
        (Reply.error(404, "models/nope is not found for API version v1beta"), NotFoundError),
        (Reply.error(429, "Resource has been exhausted"), RateLimitError),
        (Reply.error(500, "An internal error has occurred"), UpstreamUnavailableError),
        (Reply.error(503, "The model is overloaded"), UpstreamUnavailableError),
    ],
)
async def test_error_statuses_map(
    google_fake: GoogleFake, reply: Reply, cls: type[APIError]
) -> None:
    google_fake.script(reply)
    backend = GoogleBackend(deployment(google_fake, max_retries=0))
    try:
        with pytest.raises(cls) as info:
            await backend.complete(ask())
    finally:
        await backend.aclose()
    assert type(info.value) is cls
    assert info.value.status_code == reply.status
    assert info.value.vendor == "google"
    assert reply.error_message in info.value.message


async def test_invalid_key_is_an_authentication_error(google_fake: GoogleFake) -> None:
    backend = GoogleBackend(deployment(google_fake, api_key=INVALID_KEY))
    try:
        with pytest.raises(AuthenticationError) as info:
            await backend.complete(ask())
    finally:
        await backend.aclose()
    assert info.value.code == "API_KEY_INVALID"
    assert len(google_fake.requests) == 1  # 400: never retried


async def test_missing_key_is_permission_denied(google_fake: GoogleFake) -> None:
    backend = GoogleBackend(deployment(google_fake, api_key=None))
    try:
        with pytest.raises(PermissionDeniedError):
            await backend.complete(ask())
    finally:
        await backend.aclose()


async def test_rate_limit_carries_retry_after(google_fake: GoogleFake) -> None:
    google_fake.script(Reply.error(429, "Resource has been exhausted", retry_after="5"))
    backend = GoogleBackend(deployment(google_fake, max_retries=0))
    try:
        with pytest.raises(RateLimitError) as info:
            await backend.complete(ask())
    finally:
        await backend.aclose()
    assert info.value.retry_after == 5.0


async def test_router_retries_429_then_success(
    backend: GoogleBackend, google_fake: GoogleFake
) -> None:
    google_fake.script(Reply.error(429, "slow down", retry_after="0"), Reply(text="made it"))
    response, _, _ = await Router.over(ask().model, [backend]).complete(ask())
    assert response.text == "made it"
    assert len(google_fake.requests) == 2


async def test_router_no_retry_on_400(backend: GoogleBackend, google_fake: GoogleFake) -> None:
    google_fake.script(Reply.error(400, "bad"), Reply(text="never sent"))
    with pytest.raises(BadRequestError):
        await Router.over(ask().model, [backend]).complete(ask())
    assert len(google_fake.requests) == 1


async def test_mid_stream_error_after_earlier_chunks(
    backend: GoogleBackend, google_fake: GoogleFake
) -> None:
    google_fake.script(Reply(text="abcdefghijklmnop", fail_after_chunks=2))
    chunks: list[ChatChunk] = []
    with pytest.raises(UpstreamUnavailableError, match="middle of the stream"):
        await collect(backend, ask(), into=chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "abcdefgh"
    assert len(google_fake.requests) == 1  # a started stream is never retried


async def test_truncated_stream_raises(backend: GoogleBackend, google_fake: GoogleFake) -> None:
    google_fake.script(Reply(text="abcdefghijklmnop", truncate_after_chunks=2))
    chunks: list[ChatChunk] = []
    with pytest.raises(UpstreamUnavailableError, match="before the answer was finished"):
        await collect(backend, ask(), into=chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "abcdefgh"
    assert all(c.choices[0].finish_reason is None for c in chunks)


async def test_base_url_with_version_and_model_prefix(google_fake: GoogleFake) -> None:
    backend = GoogleBackend(
        deployment(google_fake, base_url=f"{google_fake.url}/v1beta/", model=f"models/{MODEL}")
    )
    try:
        assert (await backend.complete(ask())).text == DEFAULT_TEXT
    finally:
        await backend.aclose()
    assert google_fake.requests[0].path == f"/v1beta/models/{MODEL}:generateContent"


async def test_check_probes_models_list(backend: GoogleBackend, google_fake: GoogleFake) -> None:
    assert await backend.check() is True
    recorded = google_fake.requests[0]
    assert (recorded.path, recorded.query) == ("/v1beta/models", {"pageSize": "1"})
    assert recorded.headers["x-goog-api-key"] == "test-key"
    bad = GoogleBackend(deployment(google_fake, api_key=INVALID_KEY))
    try:
        with pytest.raises(AuthenticationError):
            await bad.check()
    finally:
        await bad.aclose()
