"""The OpenAI backend against the loopback fake; the fake checked by the official SDK."""

from __future__ import annotations

import socket

import openai
import pytest

from crossroads import errors
from crossroads.backends.base import Deployment
from crossroads.backends.openai import OpenAIBackend
from crossroads.config import RoutingSettings
from crossroads.routing import Router
from crossroads.types import ChatRequest

from .fakes.openai_fake import OpenAIFake
from .fakes.server import DEFAULT_TEXT, Reply

REQUEST = ChatRequest(model="mine", messages=[{"role": "user", "content": "hi"}])


def sdk(fake: OpenAIFake) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake.url + "/v1", api_key="k", max_retries=0)


def backend(url: str, **kw: object) -> OpenAIBackend:
    return OpenAIBackend(
        Deployment(
            name="mine", backend="openai", model="gpt-4o", base_url=url, api_key="sk-test", **kw
        )
    )  # type: ignore[arg-type]


def test_sdk_reads_fake_plain_and_usage(openai_fake: OpenAIFake) -> None:
    with sdk(openai_fake) as client:
        result = client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
        )
    assert result.choices[0].message.content == DEFAULT_TEXT
    assert result.usage is not None and result.usage.total_tokens == 18


def test_sdk_reads_fake_streamed_tool_call(openai_fake: OpenAIFake) -> None:
    openai_fake.script(Reply.tool("get_weather", {"city": "Oslo"}))
    with (
        sdk(openai_fake) as client,
        client.chat.completions.stream(
            model="gpt-4o",
            messages=[{"role": "user", "content": "hi"}],
            tools=[
                {
                    "type": "function",
                    "function": {
                        "name": "get_weather",
                        "parameters": {
                            "type": "object",
                            "properties": {"city": {"type": "string"}},
                        },
                    },
                }
            ],
        ) as stream,
    ):
        final = stream.get_final_completion()
    call = final.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert call.function.arguments == '{"city": "Oslo"}'  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("status", "sdk_error"),
    [
        (400, openai.BadRequestError),
        (401, openai.AuthenticationError),
        (404, openai.NotFoundError),
        (429, openai.RateLimitError),
        (500, openai.InternalServerError),
    ],
)
def test_sdk_reads_fake_errors(
    openai_fake: OpenAIFake, status: int, sdk_error: type[openai.APIStatusError]
) -> None:
    openai_fake.script(Reply.error(status, "nope"))
    with sdk(openai_fake) as client, pytest.raises(sdk_error) as info:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert info.value.message == f"Error code: {status} - nope"
    assert isinstance(info.value.body, dict) and info.value.body["message"] == "nope"
    assert info.value.request_id == "req_fake123"


async def test_key_and_model_are_sent(openai_fake: OpenAIFake) -> None:
    b = backend(openai_fake.url + "/v1")
    await b.complete(REQUEST)
    await b.aclose()
    sent = openai_fake.requests[-1]
    assert sent.headers["authorization"] == "Bearer sk-test"
    assert sent.body["model"] == "gpt-4o"


async def test_retry_after_beyond_budget_fails_fast(openai_fake: OpenAIFake) -> None:
    openai_fake.script(Reply.error(429, "wait long", retry_after="120"))
    b = backend(openai_fake.url + "/v1")
    router = Router.over(REQUEST.model, [b], settings=RoutingSettings(retry_budget_s=5.0))
    with pytest.raises(errors.RateLimitError) as info:
        await router.complete(REQUEST)
    await b.aclose()
    assert info.value.retry_after == 120
    assert len(openai_fake.requests) == 1


async def test_x_should_retry_false_is_honoured(openai_fake: OpenAIFake) -> None:
    openai_fake.script(Reply.error(429, "quota", x_should_retry="false"), Reply())
    b = backend(openai_fake.url + "/v1")
    with pytest.raises(errors.RateLimitError) as info:
        await Router.over(REQUEST.model, [b]).complete(REQUEST)
    await b.aclose()
    assert info.value.should_retry is False
    assert len(openai_fake.requests) == 1


async def test_x_should_retry_true_retries_a_400(openai_fake: OpenAIFake) -> None:
    openai_fake.script(Reply.error(400, "try again", x_should_retry="true"), Reply())
    b = backend(openai_fake.url + "/v1")
    settings = RoutingSettings(backoff_initial_s=0.01)
    router = Router.over(REQUEST.model, [b], settings=settings)
    response, _, attempts = await router.complete(REQUEST)
    await b.aclose()
    assert response.text and attempts == 2
    assert len(openai_fake.requests) == 2


async def test_connection_refused_is_upstream_unavailable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    b = backend(f"http://127.0.0.1:{port}/v1")
    with pytest.raises(errors.UpstreamUnavailableError, match="cannot reach"):
        await b.complete(REQUEST)
    await b.aclose()


async def test_probe(openai_fake: OpenAIFake) -> None:
    b = backend(openai_fake.url + "/v1")
    assert await b.check() is True
    await b.aclose()
