"""The Anthropic fake speaks the real wire format (checked with the official SDK), and
AnthropicBackend works against it: plain, streamed, tools, JSON schema, errors, retries."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Iterator

import anthropic
import pytest

from crossroads.backends.anthropic import AnthropicBackend
from crossroads.backends.base import Deployment, load_backend
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

from .fakes.anthropic_fake import INVALID_KEY, AnthropicFake
from .fakes.server import DEFAULT_TEXT, Reply
from .vendors import WEATHER_TOOL

#: For calls through the SDK, which warns (an error here) about models it deems deprecated.
SDK_MODEL = "claude-sonnet-4-6"


@pytest.fixture(scope="module")
def _anthropic_server() -> Iterator[AnthropicFake]:
    fake = AnthropicFake()
    with fake:
        yield fake


@pytest.fixture
def anthropic_fake(_anthropic_server: AnthropicFake) -> Iterator[AnthropicFake]:
    _anthropic_server.replies.clear()
    _anthropic_server.requests.clear()
    yield _anthropic_server
    _anthropic_server.replies.clear()


@pytest.fixture
def sdk(anthropic_fake: AnthropicFake) -> Iterator[anthropic.Anthropic]:
    client = anthropic.Anthropic(base_url=anthropic_fake.url, api_key="k", max_retries=0)
    yield client
    client.close()


def deployment(fake: AnthropicFake, **changes: object) -> Deployment:
    base = Deployment(
        name="claude",
        backend="anthropic",
        model="claude-sonnet-4-5",
        base_url=fake.url,
        api_key="test-key",
        max_retries=2,
    )
    return dataclasses.replace(base, **changes)


@pytest.fixture
async def backend(anthropic_fake: AnthropicFake) -> AsyncIterator[AnthropicBackend]:
    b = AnthropicBackend(deployment(anthropic_fake))
    yield b
    await b.aclose()


def chat(content: str = "Hi", **fields: object) -> ChatRequest:
    return ChatRequest.model_validate(
        {"model": "claude", "messages": [{"role": "user", "content": content}], **fields}
    )


async def collect(backend: AnthropicBackend, request: ChatRequest) -> list[ChatChunk]:
    return [chunk async for chunk in backend.stream(request)]


def text_of(chunks: list[ChatChunk]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


# --- the fake against the official SDK --------------------------------------------------


def test_sdk_plain(sdk: anthropic.Anthropic, anthropic_fake: AnthropicFake) -> None:
    anthropic_fake.script(Reply(text="Hi there", prompt_tokens=30, cached_tokens=10))
    message = sdk.messages.create(
        model=SDK_MODEL, max_tokens=100, messages=[{"role": "user", "content": "Hi"}]
    )
    assert message.id.startswith("msg_")
    assert message.type == "message" and message.role == "assistant"
    assert message.content[0].type == "text" and message.content[0].text == "Hi there"
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == 20
    assert message.usage.cache_read_input_tokens == 10
    assert message.usage.output_tokens == 7
    assert message._request_id == AnthropicFake.request_id
    recorded = anthropic_fake.requests[0]
    assert recorded.path == "/v1/messages"
    assert recorded.headers["anthropic-version"]  # the SDK pins its own version


def test_sdk_tool_use(sdk: anthropic.Anthropic, anthropic_fake: AnthropicFake) -> None:
    anthropic_fake.script(Reply.tool("get_weather", {"city": "Paris"}))
    message = sdk.messages.create(
        model=SDK_MODEL,
        max_tokens=100,
        messages=[{"role": "user", "content": "Weather?"}],
        tools=[{"name": "get_weather", "input_schema": {"type": "object"}}],
    )
    assert message.stop_reason == "tool_use"
    [block] = message.content
    assert block.type == "tool_use"
    assert block.id.startswith("toolu_")
    assert (block.name, block.input) == ("get_weather", {"city": "Paris"})


def test_sdk_stream(sdk: anthropic.Anthropic, anthropic_fake: AnthropicFake) -> None:
    anthropic_fake.script(Reply(text="Streaming works fine.", completion_tokens=5))
    with sdk.messages.stream(
        model=SDK_MODEL, max_tokens=100, messages=[{"role": "user", "content": "Hi"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Streaming works fine."
    assert final.content[0].type == "text" and final.content[0].text == text
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 5


def test_sdk_stream_tool_use(sdk: anthropic.Anthropic, anthropic_fake: AnthropicFake) -> None:
    anthropic_fake.script(Reply.tool("get_weather", {"city": "Paris", "unit": "celsius"}))
    with sdk.messages.stream(
        model=SDK_MODEL,
        max_tokens=100,
        messages=[{"role": "user", "content": "Weather?"}],
        tools=[{"name": "get_weather", "input_schema": {"type": "object"}}],
    ) as stream:
        final = stream.get_final_message()
    [block] = final.content
    assert block.type == "tool_use"
    assert block.input == {"city": "Paris", "unit": "celsius"}
    assert final.stop_reason == "tool_use"


def test_sdk_mid_stream_error(sdk: anthropic.Anthropic, anthropic_fake: AnthropicFake) -> None:
    anthropic_fake.script(Reply(text="a fairly long answer", fail_after_chunks=2))
    with (
        pytest.raises(anthropic.APIStatusError, match="overloaded_error"),
        sdk.messages.stream(
            model=SDK_MODEL, max_tokens=100, messages=[{"role": "user", "content": "Hi"}]
        ) as stream,
    ):
        stream.get_final_message()


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, anthropic.BadRequestError),
        (401, anthropic.AuthenticationError),
        (403, anthropic.PermissionDeniedError),
        (404, anthropic.NotFoundError),
        (429, anthropic.RateLimitError),
        (500, anthropic.InternalServerError),
        (529, anthropic.InternalServerError),
    ],
)
def test_sdk_errors(
    sdk: anthropic.Anthropic, anthropic_fake: AnthropicFake, status: int, cls: type[Exception]
) -> None:
    anthropic_fake.script(Reply.error(status, "scripted failure", retry_after="3"))
    with pytest.raises(cls) as info:
        sdk.messages.create(
            model=SDK_MODEL, max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )
    error = info.value
    assert isinstance(error, anthropic.APIStatusError)
    assert error.status_code == status
    assert error.request_id == AnthropicFake.request_id
    assert isinstance(error.body, dict) and error.body["type"] == "error"
    assert error.body["error"]["message"] == "scripted failure"
    assert error.response.headers["retry-after"] == "3"


def test_sdk_overloaded_error_type(sdk: anthropic.Anthropic, anthropic_fake: AnthropicFake) -> None:
    anthropic_fake.script(Reply.error(529, "Overloaded"))
    with pytest.raises(anthropic.InternalServerError) as info:
        sdk.messages.create(
            model=SDK_MODEL, max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )
    assert isinstance(info.value.body, dict)
    assert info.value.body["error"]["type"] == "overloaded_error"


def test_missing_key_is_401(anthropic_fake: AnthropicFake) -> None:
    client = anthropic.Anthropic(base_url=anthropic_fake.url, api_key="k", max_retries=0)
    with client, pytest.raises(anthropic.AuthenticationError):
        client.messages.create(
            model=SDK_MODEL,
            max_tokens=10,
            messages=[{"role": "user", "content": "x"}],
            extra_headers={"authorization": anthropic.Omit(), "x-api-key": anthropic.Omit()},
        )


def test_fake_rejects_requests_the_api_rejects(
    sdk: anthropic.Anthropic, anthropic_fake: AnthropicFake
) -> None:
    with pytest.raises(anthropic.BadRequestError, match="alternate"):
        sdk.messages.create(
            model=SDK_MODEL,
            max_tokens=10,
            messages=[{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
        )


def test_sdk_models_list(sdk: anthropic.Anthropic, anthropic_fake: AnthropicFake) -> None:
    page = sdk.models.list(limit=1)
    assert [m.id for m in page.data] == ["claude-sonnet-4-5-20250929"]
    assert page.data[0].type == "model"


# --- AnthropicBackend against the fake ---------------------------------------------------


async def test_check_probes_models_list(
    backend: AnthropicBackend, anthropic_fake: AnthropicFake
) -> None:
    assert await backend.check() is True
    recorded = anthropic_fake.requests[0]
    assert (recorded.path, recorded.query) == ("/v1/models", {"limit": "1"})
    assert recorded.headers["x-api-key"] == "test-key"
    bad = AnthropicBackend(deployment(anthropic_fake, api_key=INVALID_KEY))
    try:
        with pytest.raises(AuthenticationError):
            await bad.check()
    finally:
        await bad.aclose()


def test_registered_as_entry_point() -> None:
    assert load_backend("anthropic") is AnthropicBackend


async def test_backend_plain(backend: AnthropicBackend, anthropic_fake: AnthropicFake) -> None:
    anthropic_fake.script(Reply(text="Bonjour", prompt_tokens=40, cached_tokens=30))
    request = ChatRequest.model_validate(
        {
            "model": "claude",
            "messages": [
                {"role": "system", "content": "Answer in French."},
                {"role": "user", "content": "Hello"},
            ],
            "temperature": 0.2,
        }
    )
    response = await backend.complete(request)
    assert response.text == "Bonjour"
    assert response.model == "claude"
    assert response.finish_reason == "stop"
    assert response.usage.prompt_tokens == 40
    assert response.usage.cached_tokens == 30
    assert response.usage.completion_tokens == 7
    [recorded] = anthropic_fake.requests
    assert recorded.headers["x-api-key"] == "test-key"
    assert recorded.headers["anthropic-version"] == "2023-06-01"
    assert recorded.headers["content-type"] == "application/json"
    assert "authorization" not in recorded.headers
    assert recorded.body["model"] == "claude-sonnet-4-5"
    assert recorded.body["system"] == "Answer in French."
    assert recorded.body["max_tokens"] == 4096
    assert recorded.body["temperature"] == 0.2


async def test_backend_default_max_tokens_from_deployment(anthropic_fake: AnthropicFake) -> None:
    backend = AnthropicBackend(deployment(anthropic_fake, max_output_tokens=777))
    try:
        await backend.complete(chat())
    finally:
        await backend.aclose()
    assert anthropic_fake.requests[0].body["max_tokens"] == 777


async def test_backend_base_url_with_v1(anthropic_fake: AnthropicFake) -> None:
    backend = AnthropicBackend(deployment(anthropic_fake, base_url=anthropic_fake.url + "/v1/"))
    try:
        response = await backend.complete(chat())
    finally:
        await backend.aclose()
    assert response.text == DEFAULT_TEXT


async def test_backend_stream(backend: AnthropicBackend, anthropic_fake: AnthropicFake) -> None:
    anthropic_fake.script(Reply(text="Counting: one, two, three.", completion_tokens=9))
    chunks = await collect(backend, chat())
    assert text_of(chunks) == "Counting: one, two, three."
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 9
    assert chunks[-1].usage.prompt_tokens == 11
    assert anthropic_fake.requests[0].body["stream"] is True


async def test_backend_tool_call(backend: AnthropicBackend, anthropic_fake: AnthropicFake) -> None:
    anthropic_fake.script(Reply.tool("get_weather", {"city": "Paris"}))
    response = await backend.complete(chat("Weather in Paris?", tools=[WEATHER_TOOL]))
    assert response.finish_reason == "tool_calls"
    [call] = response.tool_calls
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    assert anthropic_fake.requests[0].body["tools"][0]["input_schema"]["required"] == ["city"]


async def test_backend_streamed_tool_call(
    backend: AnthropicBackend, anthropic_fake: AnthropicFake
) -> None:
    args = {"city": "Paris", "days": 3, "units": "metric"}
    anthropic_fake.script(Reply.tool("get_weather", args))
    chunks = await collect(backend, chat("Weather?", tools=[WEATHER_TOOL]))
    calls = [t for c in chunks if c.choices for t in c.choices[0].delta.tool_calls or []]
    assert calls[0].id == "toolu_00Fake"
    assert calls[0].function is not None and calls[0].function.name == "get_weather"
    assert len(calls) > 3  # the arguments came in pieces
    assert json.loads("".join(t.function.arguments or "" for t in calls if t.function)) == args
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"


async def test_backend_tool_round_trip(
    backend: AnthropicBackend, anthropic_fake: AnthropicFake
) -> None:
    request = ChatRequest.model_validate(
        {
            "model": "claude",
            "tools": [WEATHER_TOOL],
            "messages": [
                {"role": "user", "content": "Weather in Paris?"},
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": "toolu_00Fake",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "toolu_00Fake", "content": "18C and sunny"},
            ],
        }
    )
    response = await backend.complete(request)  # the fake would reject broken alternation
    assert response.text == DEFAULT_TEXT
    sent = anthropic_fake.requests[0].body["messages"]
    assert sent[2]["content"][0] == {
        "type": "tool_result",
        "tool_use_id": "toolu_00Fake",
        "content": "18C and sunny",
    }


SCHEMA_FORMAT = {
    "type": "json_schema",
    "json_schema": {
        "name": "weather",
        "schema": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


async def test_backend_json_schema_native(
    backend: AnthropicBackend, anthropic_fake: AnthropicFake
) -> None:
    anthropic_fake.script(Reply(text='{"city": "Oslo"}'))
    response = await backend.complete(chat(response_format=SCHEMA_FORMAT))
    assert json.loads(response.text) == {"city": "Oslo"}
    sent = anthropic_fake.requests[0].body
    assert sent["output_config"]["format"]["type"] == "json_schema"
    assert sent["output_config"]["format"]["schema"]["additionalProperties"] is False


@pytest.mark.parametrize("stream", [False, True])
async def test_backend_json_schema_tool_mode(anthropic_fake: AnthropicFake, stream: bool) -> None:
    anthropic_fake.script(Reply(text="", tool_calls=[("weather", {"city": "Oslo"})]))
    anthropic_fake.replies[0].finish = "tool_calls"
    backend = AnthropicBackend(deployment(anthropic_fake, model="claude-3-5-haiku-latest"))
    try:
        if stream:
            chunks = await collect(backend, chat(response_format=SCHEMA_FORMAT))
            text = text_of(chunks)
            finish = [c.choices[0].finish_reason for c in chunks if c.choices][-1]
        else:
            response = await backend.complete(chat(response_format=SCHEMA_FORMAT))
            text, finish = response.text, response.finish_reason
    finally:
        await backend.aclose()
    assert json.loads(text) == {"city": "Oslo"}
    assert finish == "stop"
    sent = anthropic_fake.requests[0].body
    assert sent["tool_choice"] == {"type": "tool", "name": "weather"}
    assert "output_config" not in sent


async def test_json_schema_mode_option_overrides_the_guess(anthropic_fake: AnthropicFake) -> None:
    backend = AnthropicBackend(deployment(anthropic_fake, options={"json_schema_mode": "tool"}))
    assert backend.structured_outputs is False
    await backend.aclose()


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (413, BadRequestError),
        (429, RateLimitError),
        (500, UpstreamUnavailableError),
        (529, UpstreamUnavailableError),
    ],
)
async def test_backend_errors(
    anthropic_fake: AnthropicFake, status: int, cls: type[APIError]
) -> None:
    anthropic_fake.script(Reply.error(status, "scripted failure", retry_after="12"))
    backend = AnthropicBackend(deployment(anthropic_fake, max_retries=0))
    try:
        with pytest.raises(cls) as info:
            await backend.complete(chat())
    finally:
        await backend.aclose()
    error = info.value
    assert type(error) is cls
    assert error.status_code == status
    assert error.vendor == "anthropic"
    assert error.request_id == AnthropicFake.request_id
    assert "scripted failure" in str(error)
    if isinstance(error, RateLimitError):
        assert error.retry_after == 12.0


async def test_backend_missing_key(anthropic_fake: AnthropicFake) -> None:
    backend = AnthropicBackend(deployment(anthropic_fake, api_key=None))
    try:
        with pytest.raises(AuthenticationError):
            await backend.complete(chat())
    finally:
        await backend.aclose()


async def test_backend_makes_one_attempt(
    backend: AnthropicBackend, anthropic_fake: AnthropicFake
) -> None:
    anthropic_fake.script(Reply.error(429, "slow down", retry_after="0"), Reply(text="ok"))
    with pytest.raises(RateLimitError) as info:
        await backend.complete(chat())
    assert info.value.retry_after == 0
    assert len(anthropic_fake.requests) == 1, "retries are the router's"


async def test_router_retries_429(backend: AnthropicBackend, anthropic_fake: AnthropicFake) -> None:
    anthropic_fake.script(Reply.error(429, "slow down", retry_after="0"), Reply(text="ok"))
    response, _, attempts = await Router.over(chat().model, [backend]).complete(chat())
    assert response.text == "ok"
    assert attempts == 2
    assert len(anthropic_fake.requests) == 2


async def test_router_retries_529_stream(
    backend: AnthropicBackend, anthropic_fake: AnthropicFake
) -> None:
    anthropic_fake.script(Reply.error(529, "Overloaded", retry_after="0"), Reply(text="ok"))
    opened = await Router.over(chat().model, [backend]).open_stream(chat())
    chunks = [opened.first, *[c async for c in opened.rest]]
    assert text_of(chunks) == "ok"
    assert len(anthropic_fake.requests) == 2


async def test_router_no_retry_on_400(
    backend: AnthropicBackend, anthropic_fake: AnthropicFake
) -> None:
    anthropic_fake.script(Reply.error(400, "bad"), Reply(text="never"))
    with pytest.raises(BadRequestError):
        await Router.over(chat().model, [backend]).complete(chat())
    assert len(anthropic_fake.requests) == 1


async def test_backend_mid_stream_error(
    backend: AnthropicBackend, anthropic_fake: AnthropicFake
) -> None:
    anthropic_fake.script(Reply(text="This answer will break.", fail_after_chunks=2))
    received: list[ChatChunk] = []
    with pytest.raises(UpstreamUnavailableError, match="Overloaded") as info:
        async for chunk in backend.stream(chat()):
            received.append(chunk)
    assert text_of(received) == "This ans"  # two 4-character pieces arrived first
    assert info.value.code == "overloaded_error"
    assert len(anthropic_fake.requests) == 1  # a started stream is never retried


async def test_backend_truncated_stream(
    backend: AnthropicBackend, anthropic_fake: AnthropicFake
) -> None:
    anthropic_fake.script(Reply(text="This answer will be cut.", truncate_after_chunks=3))
    received: list[ChatChunk] = []
    with pytest.raises(UpstreamUnavailableError, match="message_stop"):
        async for chunk in backend.stream(chat()):
            received.append(chunk)
    assert text_of(received) == "This answer "
    assert not any(c.usage for c in received)
