"""The official OpenAI and Anthropic SDKs, unchanged, against the real gateway.

Every client protocol against every backend (OpenAI, Anthropic and Gemini fakes on
loopback): plain answers, streams, tool calls in streams, JSON schema, model listing,
and each error status raising the SDK's own exception class.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from crossroads.catalog import find_model
from crossroads.gateway.ledger import usage_report
from crossroads.store import open_database

from .conftest import require
from .fakes.server import FakeServer, Reply
from .gateway_harness import MASTER, RunningGateway, gateway_thread
from .vendors import _VENDOR_MODEL, VENDORS, WEATHER_TOOL, base_url


def _config(fakes: dict[str, FakeServer], extra: str = "") -> str:
    lines = ["models:"]
    for vendor in VENDORS:
        lines += [
            f"  - name: up-{vendor}",
            f"    backend: {vendor}",
            f"    model: {_VENDOR_MODEL[vendor]}",
            f"    base_url: {base_url(vendor, fakes[vendor])}",
            "    api_key: ${TEST_VENDOR_KEY}",
            "    timeout: 10",
        ]
    lines += [
        "  - name: free-model",
        "    backend: openai",
        "    model: my-unpriced-model",
        f"    base_url: {base_url('openai', fakes['openai'])}",
        "    api_key: ${TEST_VENDOR_KEY}",
        "gateway:",
        "  master_key: ${CROSSROADS_MASTER_KEY}",
        "  max_request_bytes: 200000",
        "  serve_unconfigured: true",  # local/smollm2 and local/all-minilm-l6-v2 as well
        "routing:",
        "  cooldown_s: 0",
    ]
    return "\n".join(lines) + "\n" + extra


@pytest.fixture(scope="module")
def gw(
    _fakes: dict[str, FakeServer], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningGateway]:
    mp = pytest.MonkeyPatch()
    home = tmp_path_factory.mktemp("gateway-home")
    mp.setenv("CROSSROADS_HOME", str(home))
    mp.setenv("TEST_VENDOR_KEY", "test-key")
    mp.setenv("CROSSROADS_MASTER_KEY", MASTER)
    with gateway_thread(_config(_fakes)) as running:
        running.database_url = f"sqlite:///{home / 'crossroads.db'}"
        running.create_key("team")
        running.create_key("narrow", models=["up-openai"])
        yield running
    mp.undo()


@pytest.fixture(autouse=True)
def _clean(_fakes: dict[str, FakeServer], monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TEST_VENDOR_KEY", "test-key")
    for fake in _fakes.values():
        fake.replies.clear()
        fake.requests.clear()
    yield
    for fake in _fakes.values():
        fake.replies.clear()
    while _OPEN:
        _OPEN.pop().close()


_OPEN: list[openai.OpenAI | anthropic.Anthropic] = []


def oai(gw: RunningGateway, key: str = "team") -> openai.OpenAI:
    client = openai.OpenAI(base_url=gw.v1, api_key=gw.keys[key], max_retries=0, timeout=30)
    _OPEN.append(client)
    return client


def ant(gw: RunningGateway, key: str = "team") -> anthropic.Anthropic:
    client = anthropic.Anthropic(
        base_url=gw.url, api_key=gw.keys[key], max_retries=0, timeout=30
    )
    _OPEN.append(client)
    return client


@pytest.mark.parametrize("upstream", VENDORS)
def test_openai_sdk_chat_and_stream_on_every_backend(
    gw: RunningGateway, _fakes: dict[str, FakeServer], upstream: str
) -> None:
    _fakes[upstream].script(Reply("Paris is the capital."), Reply("Paris, again."))
    client = oai(gw)
    reply = client.chat.completions.create(
        model=f"up-{upstream}", messages=[{"role": "user", "content": "Capital of France?"}]
    )
    assert reply.choices[0].message.content == "Paris is the capital."
    assert reply.model == f"up-{upstream}"
    assert reply.usage is not None and reply.usage.prompt_tokens == 11

    chunks = list(
        client.chat.completions.create(
            model=f"up-{upstream}",
            messages=[{"role": "user", "content": "Again?"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Paris, again."
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 7


@pytest.mark.parametrize("upstream", VENDORS)
def test_anthropic_sdk_messages_and_stream_on_every_backend(
    gw: RunningGateway, _fakes: dict[str, FakeServer], upstream: str
) -> None:
    _fakes[upstream].script(Reply("Bonjour."), Reply("Bonjour encore."))
    client = ant(gw)
    message = client.messages.create(
        model=f"up-{upstream}",
        max_tokens=100,
        system="Be brief.",
        messages=[{"role": "user", "content": "Say hello in French"}],
    )
    assert message.content[0].type == "text" and message.content[0].text == "Bonjour."
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == 11 and message.usage.output_tokens == 7

    with client.messages.stream(
        model=f"up-{upstream}", max_tokens=100, messages=[{"role": "user", "content": "Again"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Bonjour encore."
    assert final.usage.output_tokens == 7


@pytest.mark.parametrize("upstream", VENDORS)
def test_tool_calls_stream_through_both_protocols(
    gw: RunningGateway, _fakes: dict[str, FakeServer], upstream: str
) -> None:
    args = {"city": "Lagos"}
    _fakes[upstream].script(Reply.tool("get_weather", args), Reply.tool("get_weather", args))
    chunks = list(
        oai(gw).chat.completions.create(
            model=f"up-{upstream}",
            messages=[{"role": "user", "content": "Weather in Lagos?"}],
            tools=[WEATHER_TOOL],  # type: ignore[list-item]
            stream=True,
        )
    )
    name = "".join(
        (tc.function.name or "") for c in chunks if c.choices
        for tc in (c.choices[0].delta.tool_calls or []) if tc.function
    )
    arguments = "".join(
        (tc.function.arguments or "") for c in chunks if c.choices
        for tc in (c.choices[0].delta.tool_calls or []) if tc.function
    )
    assert name == "get_weather" and json.loads(arguments) == args
    assert any(c.choices and c.choices[0].finish_reason == "tool_calls" for c in chunks)

    with ant(gw).messages.stream(
        model=f"up-{upstream}",
        max_tokens=100,
        tools=[{"name": "get_weather", "description": "Weather",
                "input_schema": WEATHER_TOOL["function"]["parameters"]}],  # type: ignore[index]
        messages=[{"role": "user", "content": "Weather in Lagos?"}],
    ) as stream:
        final = stream.get_final_message()
    tool_use = [b for b in final.content if b.type == "tool_use"]
    assert len(tool_use) == 1 and tool_use[0].name == "get_weather"
    assert tool_use[0].input == args
    assert final.stop_reason == "tool_use"


def test_json_schema_request_reaches_the_upstream(
    gw: RunningGateway, _fakes: dict[str, FakeServer]
) -> None:
    _fakes["openai"].script(Reply('{"city": "Lima"}'))
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    reply = oai(gw).chat.completions.create(
        model="up-openai",
        messages=[{"role": "user", "content": "A city in Peru as JSON"}],
        response_format={"type": "json_schema", "json_schema": {"name": "c", "schema": schema}},
    )
    assert json.loads(reply.choices[0].message.content or "") == {"city": "Lima"}
    sent = _fakes["openai"].requests[-1].body
    assert sent["response_format"]["json_schema"]["schema"] == schema


def test_models_lists_what_the_key_may_use(gw: RunningGateway) -> None:
    everything = {m.id for m in oai(gw).models.list()}
    assert {"up-openai", "up-anthropic", "up-google", "local/smollm2"} <= everything
    assert {m.id for m in oai(gw, "narrow").models.list()} == {"up-openai"}


def test_errors_raise_the_sdk_classes(gw: RunningGateway, _fakes: dict[str, FakeServer]) -> None:
    messages = [{"role": "user", "content": "hi"}]
    bad = openai.OpenAI(base_url=gw.v1, api_key="sk-cr-not-a-real-key", max_retries=0)
    _OPEN.append(bad)
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model="up-openai", messages=messages)  # type: ignore[arg-type]
    with pytest.raises(openai.NotFoundError) as not_found:
        oai(gw).chat.completions.create(model="gpt-5-typo", messages=messages)  # type: ignore[arg-type]
    assert "does not exist" in str(not_found.value)
    with pytest.raises(openai.PermissionDeniedError):
        oai(gw, "narrow").chat.completions.create(model="up-google", messages=messages)  # type: ignore[arg-type]
    with pytest.raises(openai.PermissionDeniedError) as unpriced:
        oai(gw).chat.completions.create(model="free-model", messages=messages)  # type: ignore[arg-type]
    assert "no known price" in str(unpriced.value)
    with pytest.raises(openai.BadRequestError):
        oai(gw).chat.completions.create(model="up-openai", messages=[])
    with pytest.raises(openai.APIStatusError) as too_big:
        oai(gw).chat.completions.create(
            model="up-openai", messages=[{"role": "user", "content": "x" * 300_000}]
        )
    assert too_big.value.status_code == 413

    # upstream errors: a 400 is passed on (not retried), a 429 is a RateLimitError
    _fakes["openai"].script(Reply.error(400, "bad thing"))
    with pytest.raises(openai.BadRequestError):
        oai(gw).chat.completions.create(model="up-openai", messages=messages)  # type: ignore[arg-type]
    assert len(_fakes["openai"].requests) == 1
    _fakes["openai"].script(*[Reply.error(429, "slow down")] * 3)  # retried, then passed on
    with pytest.raises(openai.RateLimitError):
        oai(gw).chat.completions.create(model="up-openai", messages=messages)  # type: ignore[arg-type]
    _fakes["openai"].script(*[Reply.error(503, "down")] * 3)
    with pytest.raises(openai.InternalServerError):
        oai(gw).chat.completions.create(model="up-openai", messages=messages)  # type: ignore[arg-type]

    # the same through the Anthropic SDK
    bad_ant = anthropic.Anthropic(base_url=gw.url, api_key="nope", max_retries=0)
    _OPEN.append(bad_ant)
    with pytest.raises(anthropic.AuthenticationError):
        bad_ant.messages.create(model="up-openai", max_tokens=5, messages=messages)  # type: ignore[arg-type]
    with pytest.raises(anthropic.NotFoundError):
        ant(gw).messages.create(model="nope", max_tokens=5, messages=messages)  # type: ignore[arg-type]
    with pytest.raises(anthropic.PermissionDeniedError):
        ant(gw, "narrow").messages.create(model="up-google", max_tokens=5, messages=messages)  # type: ignore[arg-type]
    _fakes["anthropic"].script(*[Reply.error(429, "slow down")] * 3)
    with pytest.raises(anthropic.RateLimitError):
        ant(gw).messages.create(model="up-anthropic", max_tokens=5, messages=messages)  # type: ignore[arg-type]


def test_every_response_has_a_request_id(gw: RunningGateway) -> None:
    for response in (
        httpx.get(gw.url + "/health"),
        httpx.get(gw.url + "/nowhere"),
        httpx.post(gw.v1 + "/chat/completions", content=b"{not json"),
        httpx.post(
            gw.v1 + "/chat/completions",
            content=b"{not json",
            headers={"Authorization": f"Bearer {gw.keys['team']}"},
        ),
    ):
        assert response.headers["x-request-id"].startswith("req_")
    body = response.json()
    assert response.status_code == 400 and set(body["error"]) >= {"message", "type"}


def test_ledger_and_metrics_record_each_request(
    gw: RunningGateway, _fakes: dict[str, FakeServer]
) -> None:
    def team() -> dict[str, Any]:
        with open_database(gw.database_url) as db:
            rows = {r["key"]: r for r in usage_report(db, "key", None)}
        return rows.get("team", {"requests": 0, "prompt_tokens": 0, "completion_tokens": 0,
                                 "cost_usd": 0.0})

    before = team()
    _fakes["openai"].script(Reply("one", prompt_tokens=1000, completion_tokens=500))
    oai(gw).chat.completions.create(model="up-openai", messages=[{"role": "user", "content": "a"}])
    after = team()
    assert after["requests"] - before["requests"] == 1
    assert after["prompt_tokens"] - before["prompt_tokens"] == 1000
    assert after["completion_tokens"] - before["completion_tokens"] == 500
    # gpt-4o at the catalog's list prices: $2.50 and $10 per 1M tokens
    prices = find_model("openai/gpt-4o").prices  # type: ignore[union-attr]
    assert (prices.input, prices.output) == (2.5, 10.0)
    assert after["cost_usd"] - before["cost_usd"] == pytest.approx(0.0075, abs=1e-12)
    metrics = httpx.get(gw.url + "/metrics", headers={"Authorization": f"Bearer {MASTER}"}).text
    assert 'crossroads_requests_total{key="team",model="up-openai",status="200"}' in metrics
    assert "crossroads_request_latency_seconds_bucket" in metrics
    assert gw.keys["team"] not in metrics


def test_admin_api_needs_the_master_key(gw: RunningGateway) -> None:
    response = httpx.post(
        gw.url + "/admin/keys", json={"name": "x"},
        headers={"Authorization": f"Bearer {gw.keys['team']}"},
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "admin_only"
    listed = httpx.get(gw.url + "/admin/keys", headers={"Authorization": f"Bearer {MASTER}"})
    names = {k["name"] for k in listed.json()["data"]}
    assert {"team", "narrow"} <= names
    assert gw.keys["team"] not in listed.text


def test_revoked_key_stops_working(gw: RunningGateway, _fakes: dict[str, FakeServer]) -> None:
    raw = gw.create_key("short-lived")
    client = openai.OpenAI(base_url=gw.v1, api_key=raw, max_retries=0)
    _OPEN.append(client)
    client.chat.completions.create(model="up-openai", messages=[{"role": "user", "content": "a"}])
    revoked = httpx.delete(
        gw.url + "/admin/keys/short-lived", headers={"Authorization": f"Bearer {MASTER}"}
    )
    assert revoked.status_code == 200
    import time

    deadline = time.monotonic() + 10  # keys are cached for a few seconds per process
    while time.monotonic() < deadline:
        try:
            client.chat.completions.create(
                model="up-openai", messages=[{"role": "user", "content": "a"}]
            )
        except openai.AuthenticationError as exc:
            assert "revoked" in str(exc)
            return
        time.sleep(0.2)
    pytest.fail("a revoked key was still accepted after 10 s")


def test_embeddings_local_and_upstream(gw: RunningGateway, _fakes: dict[str, FakeServer]) -> None:
    require("torch", "local embeddings need crossroads[transformers]: pip install -e '.[dev]'")
    client = oai(gw)
    local = client.embeddings.create(
        model="local/all-minilm-l6-v2", input=["The cat sat.", "A cat was sitting.", "Tax law"]
    )
    vectors = [d.embedding for d in local.data]
    assert [len(v) for v in vectors] == [384, 384, 384]

    def cos(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True))

    assert cos(vectors[0], vectors[1]) > cos(vectors[0], vectors[2])
    upstream = client.embeddings.create(model="up-openai", input="hello", encoding_format="float")
    assert upstream.data[0].embedding == [5.0, 0.5, -0.25]
    assert upstream.model == "up-openai"
    assert _fakes["openai"].requests[-1].body["model"] == "gpt-4o"
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model="up-anthropic", input="hello")


def test_error_bodies_never_echo_a_key(gw: RunningGateway) -> None:
    wrong = "sk-cr-LEAKCHECK" + "x" * 30
    for key, model in ((wrong, "up-openai"), (gw.keys["team"], "no-such-model")):
        for url, extra in ((gw.v1 + "/chat/completions", {}), (gw.url + "/v1/messages",
                                                                {"max_tokens": 5})):
            response = httpx.post(
                url,
                json={"model": model, "messages": [{"role": "user", "content": "hi"}], **extra},
                headers={"Authorization": f"Bearer {key}", "x-api-key": key},
            )
            assert response.status_code in (401, 404)
            assert key not in response.text
            assert key[:20] not in response.text
