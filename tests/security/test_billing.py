"""Money holds whatever the client does (issue 18, vulnerabilities 1 and 2).

1. A client that hangs up before the answer is charged what the upstream bills: the
   usage the upstream reports (read on after the client left, for keys with a budget),
   else the request's reservation — never less than the prompt.
2. Every byte the upstream receives counts toward the reservation and tokens per minute:
   tool definitions, tool calls' arguments, schemas, non-Latin text.

Each test drives a real gateway on loopback against a loopback fake upstream.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response

from crossroads.store import open_database, usage_ledger
from crossroads.types import ChatRequest, prompt_token_bound

from ..fakes.openai_fake import OpenAIFake
from ..fakes.server import Reply
from ..gateway_harness import RunningGateway, gateway_thread

#: The model's prices, US$ per 1M input / output tokens.
INPUT, OUTPUT = 10.0, 30.0


def _config(url: str, gateway: str = "") -> str:
    text = (
        "models:\n  - name: m\n    backend: openai\n    model: gpt-4o\n"
        f"    base_url: {url}/v1\n    timeout: 10\n    max_retries: 0\n"
        f"    prices: {{input: {INPUT}, output: {OUTPUT}}}\n"
    )
    return text + (f"gateway:\n{gateway}" if gateway else "")


def _cost(prompt: int, completion: int) -> float:
    return (prompt * INPUT + completion * OUTPUT) / 1e6


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _rows(key_name: str) -> list[dict[str, Any]]:
    with open_database() as db, db.engine.connect() as conn:
        query = select(usage_ledger).where(usage_ledger.c.key_name == key_name)
        return [dict(row._mapping) for row in conn.execute(query)]


def _wait_rows(key_name: str, count: int, timeout_s: float = 20.0) -> list[dict[str, Any]]:
    """The key's ledger rows, once there are ``count`` (or the time is up)."""
    deadline = time.monotonic() + timeout_s
    rows = _rows(key_name)
    while len(rows) < count and time.monotonic() < deadline:
        time.sleep(0.05)
        rows = _rows(key_name)
    return rows


def _spent(gw: RunningGateway, key_name: str) -> float:
    """What the running gateway holds against the key's budget."""
    gateway = gw.server.config.app.gateway  # type: ignore[union-attr]
    record = next(r for r in gateway.keys.list(True) if r.name == key_name)
    return float(asyncio.run(gateway.limiter.spent(record.id)))


def _tool(description: str) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": "lookup",
            "description": description,
            "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
        },
    }


class SlowStream(OpenAIFake):
    """An OpenAI-compatible upstream that streams one content chunk every
    ``interval_s`` and then, when ``usage`` is given, reports it."""

    def __init__(
        self, *, chunks: int, interval_s: float, usage: tuple[int, int] | None
    ) -> None:
        super().__init__(require_key=False)
        self.chunks, self.interval_s, self.usage = chunks, interval_s, usage

    async def chat(self, request: Request) -> Response:
        body = await self.record(request)
        return self.sse(self._events(body["model"]))

    async def _events(self, model: str) -> AsyncIterator[str]:
        def event(**fields: Any) -> str:
            data = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": model}
            return f"data: {json.dumps({**data, **fields})}\n\n"

        yield event(choices=[{"index": 0, "delta": {"role": "assistant", "content": ""}}])
        for i in range(self.chunks):
            yield event(choices=[{"index": 0, "delta": {"content": f"w{i} "}}])
            await asyncio.sleep(self.interval_s)
        yield event(choices=[{"index": 0, "delta": {}, "finish_reason": "stop"}])
        if self.usage is not None:
            p, c = self.usage
            usage = {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}
            yield event(choices=[], usage=usage)
        yield "data: [DONE]\n\n"


@pytest.fixture
def upstream() -> Iterator[OpenAIFake]:
    with OpenAIFake(require_key=False) as fake:
        yield fake  # type: ignore[misc]


# -- 1. hanging up is not free -----------------------------------------------------------


def test_whole_answer_cut_by_the_client_is_charged_the_upstreams_usage(
    upstream: OpenAIFake,
) -> None:
    """Three 30 KB prompts, each client gone before the answer: each ledger row keeps
    499 and carries the usage the upstream reported; the key's spend holds all three."""
    upstream.responder = lambda _: Reply(
        "ok", prompt_tokens=7_700, completion_tokens=50, delay_s=1.0
    )
    prompt = "lorem ipsum " * 2_560  # 30 KB
    with gateway_thread(_config(upstream.url)) as gw:
        key = gw.create_key("hangs-up", budget_usd=5.0)
        for _ in range(3):
            with pytest.raises(httpx.ReadTimeout):
                httpx.post(
                    gw.v1 + "/chat/completions",
                    json={"model": "m", "messages": [{"role": "user", "content": prompt}],
                          "max_tokens": 100},
                    headers=_auth(key), timeout=0.3,
                )
        rows = _wait_rows("hangs-up", 3)
        deadline = time.monotonic() + 5
        while _spent(gw, "hangs-up") < 3 * _cost(7_700, 50) and time.monotonic() < deadline:
            time.sleep(0.05)
        spent = _spent(gw, "hangs-up")
    assert len(upstream.requests) == 3
    assert len(rows) == 3
    for row in rows:
        assert row["status"] == 499 and row["error_class"] == "ClientGoneError"
        # the upstream's own figures, read after the client left
        assert (row["prompt_tokens"], row["completion_tokens"]) == (7_700, 50), row
        assert row["cost_usd"] == pytest.approx(_cost(7_700, 50))
        assert row["deployment"] == "m"
    assert spent == pytest.approx(3 * _cost(7_700, 50))


def test_stream_cut_after_the_first_chunk_is_charged_the_upstreams_usage() -> None:
    """A ~25k-token prompt (in its tools), the client gone after the first chunk: the
    upstream's reported usage is read on and charged, not 6 prompt / 1 completion."""
    with SlowStream(chunks=10, interval_s=0.1, usage=(25_000, 12)) as upstream, gateway_thread(
        _config(upstream.url)
    ) as gw:
        key = gw.create_key("cuts", budget_usd=5.0)
        body = {"model": "m", "stream": True, "max_tokens": 50,
                "messages": [{"role": "user", "content": "hi"}],
                "tools": [_tool("d" * 100_000)]}
        with httpx.stream("POST", gw.v1 + "/chat/completions", json=body,
                          headers=_auth(key), timeout=10) as response:
            assert response.status_code == 200
            assert next(line for line in response.iter_lines() if line.startswith("data: "))
        rows = _wait_rows("cuts", 1)
        spent = _spent(gw, "cuts")
    assert len(rows) == 1
    row = rows[0]
    assert row["status"] == 499
    assert (row["prompt_tokens"], row["completion_tokens"]) == (25_000, 12), row
    assert row["cost_usd"] == pytest.approx(_cost(25_000, 12))
    assert spent == pytest.approx(_cost(25_000, 12))


@pytest.mark.parametrize("budgeted", [True, False])
def test_stream_cut_without_usage_is_charged_at_least_the_prompt(budgeted: bool) -> None:
    """An upstream that never reports usage (or not in time): the cut stream is charged
    its reservation's prompt — every byte of it — plus what was streamed."""
    tools = [_tool("d" * 100_000)]
    with SlowStream(chunks=100, interval_s=0.1, usage=None) as upstream, gateway_thread(
        _config(upstream.url, "  disconnect_wait_s: 0.3\n")
    ) as gw:
        key = gw.create_key("no-usage", **({"budget_usd": 5.0} if budgeted else {}))
        body = {"model": "m", "stream": True, "max_tokens": 50,
                "messages": [{"role": "user", "content": "hi"}], "tools": tools}
        with httpx.stream("POST", gw.v1 + "/chat/completions", json=body,
                          headers=_auth(key), timeout=10) as response:
            assert next(line for line in response.iter_lines() if line.startswith("data: "))
        rows = _wait_rows("no-usage", 1)
        spent = _spent(gw, "no-usage") if budgeted else None
    assert len(rows) == 1
    row = rows[0]
    assert row["status"] == 499
    assert row["prompt_tokens"] >= len(json.dumps(tools)), row
    assert row["cost_usd"] >= _cost(row["prompt_tokens"], row["completion_tokens"]) - 1e-12
    if spent is not None:
        assert spent == pytest.approx(row["cost_usd"])


def test_hundred_disconnecting_clients_are_charged_at_least_the_upstreams_usage(
    upstream: OpenAIFake,
) -> None:
    """100 concurrent clients hang up before a slow answer; at most 40 are read on, the
    rest are charged their reservation: every request that reached the upstream is in
    the ledger at 499 with at least the usage the upstream reported, and so is the
    key's spend."""
    upstream.responder = lambda _: Reply(
        "ok", prompt_tokens=2_000, completion_tokens=40, delay_s=1.5
    )
    prompt = "lorem ipsum " * 700  # 8 KB
    with gateway_thread(_config(upstream.url, "  disconnect_max_waits: 40\n")) as gw:
        key = gw.create_key("crowd", budget_usd=1_000.0)

        async def crowd() -> list[BaseException | httpx.Response]:
            limits = httpx.Limits(max_connections=100, max_keepalive_connections=0)
            async with httpx.AsyncClient(timeout=0.5, limits=limits) as client:
                return list(await asyncio.gather(*(
                    client.post(
                        gw.v1 + "/chat/completions",
                        json={"model": "m", "max_tokens": 100,
                              "messages": [{"role": "user", "content": prompt}]},
                        headers=_auth(key),
                    )
                    for _ in range(100)
                ), return_exceptions=True))

        outcomes = asyncio.run(crowd())
        reached = len(upstream.requests)
        rows = _wait_rows("crowd", reached)
        time.sleep(0.2)  # every lingering read has ended (rows are written last)
        spent = _spent(gw, "crowd")
    assert all(isinstance(o, httpx.TimeoutException) for o in outcomes)
    assert reached >= 90  # the gateway had read the requests long before the timeout
    charged = [r for r in rows if r["status"] == 499]
    assert len(charged) >= reached, [r["status"] for r in rows]
    for row in charged:
        assert row["prompt_tokens"] >= 2_000 and row["completion_tokens"] >= 40, row
        assert row["cost_usd"] >= _cost(2_000, 40) - 1e-12
    assert spent >= reached * _cost(2_000, 40) - 1e-9
    assert spent == pytest.approx(sum(r["cost_usd"] for r in rows))


# -- 2. every byte the upstream receives counts ------------------------------------------


@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
def test_a_megabyte_of_tools_cannot_spend_past_a_cent(upstream: OpenAIFake, protocol: str) -> None:
    with gateway_thread(_config(upstream.url)) as gw:
        key = gw.create_key("cent", budget_usd=0.01)
        description = "x" * 1_000_000
        if protocol == "openai":
            response = httpx.post(
                gw.v1 + "/chat/completions",
                json={"model": "m", "max_tokens": 10, "tools": [_tool(description)],
                      "messages": [{"role": "user", "content": "hi"}]},
                headers=_auth(key), timeout=30,
            )
            assert response.json()["error"]["code"] == "insufficient_quota"
        else:
            response = httpx.post(
                gw.v1 + "/messages",
                json={"model": "m", "max_tokens": 10,
                      "tools": [{"name": "lookup", "description": description,
                                 "input_schema": {"type": "object"}}],
                      "messages": [{"role": "user", "content": "hi"}]},
                headers={"x-api-key": key, "anthropic-version": "2023-06-01"}, timeout=30,
            )
            assert "budget" in response.json()["error"]["message"]
    assert response.status_code == 429, response.text
    assert upstream.requests == []  # refused before any upstream call


_BIG_SCHEMA = {
    "type": "object", "properties": {f"field_{i}": {"type": "string"} for i in range(400)}
}


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param({"tools": [_tool("t" * 10_000)]}, id="tools"),
        pytest.param(
            {"messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": None, "tool_calls": [{
                    "id": "call_1", "type": "function",
                    "function": {"name": "lookup", "arguments": json.dumps({"q": "a" * 10_000})},
                }]},
                {"role": "tool", "tool_call_id": "call_1", "content": "ok"},
            ]},
            id="tool-call-arguments",
        ),
        pytest.param(
            {"response_format": {"type": "json_schema",
                                 "json_schema": {"name": "s", "schema": _BIG_SCHEMA}}},
            id="response-format-schema",
        ),
        pytest.param(
            {"messages": [{"role": "user", "content": "日本語の文章" * 400}]}, id="non-latin-text"
        ),
    ],
)
def test_a_2000_tpm_key_is_refused_a_larger_prompt(
    upstream: OpenAIFake, extra: dict[str, Any]
) -> None:
    with gateway_thread(_config(upstream.url)) as gw:
        key = gw.create_key("tpm", tpm=2_000)
        body = {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
        response = httpx.post(
            gw.v1 + "/chat/completions", json={**body, **extra}, headers=_auth(key), timeout=30
        )
    assert response.status_code == 429, response.text
    assert response.json()["error"]["code"] == "request_too_large"
    assert upstream.requests == []


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


_text = st.text(max_size=40)


@settings(max_examples=200, deadline=None)
@given(
    contents=st.lists(_text, min_size=1, max_size=4),
    tool_text=_text,
    arguments=_text,
    stop=st.lists(_text, max_size=2),
)
def test_the_bound_is_at_least_every_byte_sent(
    contents: list[str], tool_text: str, arguments: str, stop: list[str]
) -> None:
    """One token per UTF-8 byte of every string (any script, astral planes included)
    is the floor of the bound: no byte-level tokenizer makes more tokens than bytes."""
    body: dict[str, Any] = {
        "model": "m",
        "messages": [{"role": "user", "content": c} for c in contents]
        + [{"role": "assistant", "tool_calls": [{"id": "1", "type": "function",
            "function": {"name": "f", "arguments": arguments}}]}],
        "tools": [_tool(tool_text)],
        "stop": stop,
    }
    request = ChatRequest.model_validate(body)
    sent = sum(len(s.encode()) for s in _strings(request.model_dump(exclude_none=True)))
    assert prompt_token_bound(request) >= sent


def test_the_bound_survives_strings_that_are_not_utf8() -> None:
    request = ChatRequest.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": "x\ud800" * 100}]}
    )
    assert prompt_token_bound(request) >= 400
