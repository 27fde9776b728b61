"""Upstream error text reaches clients without the gateway's credentials or upstream hosts.

The probe got an upstream 400 back verbatim: ``Incorrect API key provided:
fk-UPSTREAM-SECRET-7f3a9c1d``, with the upstream URL and model id. Here a fake upstream
echoes, in every error, the key it was sent, the URL it was called on and its host —
as a whole 400 and in the middle of a stream — for both client protocols.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from crossroads.gateway.sanitize import scrub

from ..fakes.server import FakeServer
from ..gateway_harness import MASTER, RunningGateway, gateway_thread

SHAPED_KEY = "fk-UPSTREAM-SECRET-7f3a9c1d"
#: A credential of no recognisable shape: only the gateway knows it is one.
PLAIN_KEY = "ZebraOrchidTuesdayLantern"


class EchoingUpstream(FakeServer):
    """An OpenAI- and Anthropic-shaped upstream whose errors echo the request's
    credentials, URL and host."""

    def routes(self) -> list[Route]:
        return [
            Route("/v1/chat/completions", self.openai, methods=["POST"]),
            Route("/v1/messages", self.anthropic, methods=["POST"]),
        ]

    @staticmethod
    def _echo(request: Request, key: str, model: str) -> str:
        return (
            f"Incorrect API key provided: {key}. Request to {request.url} for model "
            f"{model} failed on host {request.url.netloc}; retry with "
            f"Authorization: Bearer {key}."
        )

    async def openai(self, request: Request) -> Response:
        body = await self.record(request)
        key = request.headers.get("authorization", "").removeprefix("Bearer ")
        error = {"message": self._echo(request, key, body["model"]),
                 "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}
        return self.json({"error": error}, 400)

    async def anthropic(self, request: Request) -> Response:
        body = await self.record(request)
        error = {"type": "invalid_request_error",
                 "message": self._echo(request, request.headers.get("x-api-key", ""),
                                       body["model"])}
        if not body.get("stream"):
            return self.json({"type": "error", "error": error}, 400)

        async def events() -> AsyncIterator[str]:
            def event(name: str, data: dict[str, object]) -> str:
                return f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n"

            usage = {"input_tokens": 5, "output_tokens": 1}
            yield event("message_start", {"message": {
                "id": "msg_echo", "type": "message", "role": "assistant", "content": [],
                "model": body["model"], "stop_reason": None, "stop_sequence": None,
                "usage": usage}})
            yield event("content_block_start",
                        {"index": 0, "content_block": {"type": "text", "text": ""}})
            yield event("content_block_delta",
                        {"index": 0, "delta": {"type": "text_delta", "text": "Hi"}})
            yield event("error", {"error": error})

        return self.sse(events())


@pytest.fixture
def upstream() -> Iterator[EchoingUpstream]:
    with EchoingUpstream() as fake:
        yield fake


@pytest.fixture
def gw(upstream: EchoingUpstream, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningGateway]:
    monkeypatch.setenv("CROSSROADS_MASTER_KEY", MASTER)
    monkeypatch.setenv("SEC_ECHO_KEY", SHAPED_KEY)
    monkeypatch.setenv("SEC_ECHO_PLAIN_KEY", PLAIN_KEY)
    config = "models:\n"
    for name, backend, model, url, key in (
        ("echo-openai", "openai", "gpt-4o", f"{upstream.url}/v1", "SEC_ECHO_KEY"),
        ("echo-plain", "openai", "gpt-4o", f"{upstream.url}/v1", "SEC_ECHO_PLAIN_KEY"),
        ("echo-anthropic", "anthropic", "claude-sonnet-4-5", upstream.url, "SEC_ECHO_KEY"),
    ):
        config += (
            f"  - name: {name}\n    backend: {backend}\n    model: {model}\n"
            f"    base_url: {url}\n    api_key: ${{{key}}}\n    max_retries: 0\n"
        )
    config += "gateway:\n  master_key: ${CROSSROADS_MASTER_KEY}\n"
    with gateway_thread(config) as running:
        running.create_key("probe", budget_usd=5)
        yield running


def _assert_clean(text: str, upstream: EchoingUpstream) -> None:
    for leak in (SHAPED_KEY, "UPSTREAM-SECRET", "7f3a9c1d", PLAIN_KEY, upstream.url,
                 f"127.0.0.1:{upstream.port}", "/v1/chat/completions", "/v1/messages"):
        assert leak not in text, (leak, text)


def _call(gw: RunningGateway, protocol: str, model: str, stream: bool) -> httpx.Response:
    messages = [{"role": "user", "content": "hi"}]
    if protocol == "openai":
        return httpx.post(
            gw.v1 + "/chat/completions",
            json={"model": model, "messages": messages, "max_tokens": 5, "stream": stream},
            headers={"Authorization": f"Bearer {gw.keys['probe']}"},
            timeout=30,
        )
    return httpx.post(
        gw.url + "/v1/messages",
        json={"model": model, "messages": messages, "max_tokens": 5, "stream": stream},
        headers={"x-api-key": gw.keys["probe"], "anthropic-version": "2023-06-01"},
        timeout=30,
    )


@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("model", ["echo-openai", "echo-plain", "echo-anthropic"])
def test_an_upstream_400_reaches_the_client_without_credentials_or_urls(
    gw: RunningGateway, upstream: EchoingUpstream, protocol: str, stream: bool, model: str
) -> None:
    response = _call(gw, protocol, model, stream)
    assert upstream.requests, "the upstream was called"
    if model == "echo-anthropic" and stream:  # the error comes after the first chunk
        assert response.status_code == 200
        assert "error" in response.text
    else:
        assert response.status_code == 400, response.text
        assert "Incorrect API key provided" in response.text  # the useful part stays
    _assert_clean(response.text, upstream)


@pytest.mark.parametrize(
    "text",
    [
        "Incorrect API key provided: sk-proj-AbCdEf0123456789AbCdEf0123456789.",
        "header was Authorization: Bearer abcdefghijklmnopqrstuvwxyz",
        "got x-api-key: 'opaque-credential-value-here'",
        "token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9",
        "key AIzaSyA1234567890abcdefghijklmnopqrstuv is invalid",
        "the key Q29uZ3JhdHVsYXRpb25zMTIzNDU2Nzg5MA was refused",
        "called https://internal-llm.corp.example.com:8443/v1/chat/completions?key=abc",
        "upstream 10.20.30.40:8000 and localhost:11434 and api.internal failed",
    ],
)
def test_credential_and_host_shapes_are_masked(text: str) -> None:
    cleaned = scrub(text)
    for secret in ("AbCdEf0123456789", "abcdefghijklmnop", "opaque-credential", "eyJhbGci",
                   "AIzaSyA123", "Q29uZ3JhdHVs", "internal-llm", "8443", "10.20.30.40",
                   "11434", "api.internal"):
        assert secret not in cleaned, (secret, cleaned)


def test_ordinary_error_text_is_kept() -> None:
    for text in (
        "This model's maximum context length is 8192 tokens. However, you requested 9000.",
        "max_tokens is too large: 50000. This model supports at most 16384 completion tokens.",
        "The model `Meta-Llama-3.1-70B-Instruct` does not exist (try gpt-4o-mini-2024-07-18).",
        "messages[0].content: Input should be a valid string",
        "Invalid value for 'response_format.json_schema.name': must match ^[a-zA-Z0-9_-]+$",
    ):
        assert scrub(text) == text
