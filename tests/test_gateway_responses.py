"""The Responses API (``/v1/responses``) and ``/v1/messages/count_tokens`` through the
official SDKs and the OpenAI Agents SDK, on the vendor fakes (OpenAI- and
Anthropic-backed models) and on the embedded model."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine, Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest
from pydantic import BaseModel
from sqlalchemy import select

from crossroads.store import open_database, usage_ledger

from .conftest import require
from .fakes.server import FakeServer, Reply
from .gateway_harness import MASTER, RunningGateway, gateway_thread
from .vendors import _VENDOR_MODEL, base_url

UPSTREAMS = ["openai", "anthropic"]
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
LOCAL = "local/smollm2"


def _config(fakes: dict[str, FakeServer]) -> str:
    lines = ["models:"]
    for vendor in UPSTREAMS:
        lines += [
            f"  - name: up-{vendor}",
            f"    backend: {vendor}",
            f"    model: {_VENDOR_MODEL[vendor]}",
            f"    base_url: {base_url(vendor, fakes[vendor])}",
            "    api_key: ${TEST_VENDOR_KEY}",
            "    timeout: 10",
        ]
    lines += [
        "gateway:",
        "  master_key: ${CROSSROADS_MASTER_KEY}",
        "  serve_unconfigured: true",  # local/smollm2 as well
        "routing:",
        "  cooldown_s: 0",
    ]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def gw(
    _fakes: dict[str, FakeServer], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningGateway]:
    mp = pytest.MonkeyPatch()
    home = tmp_path_factory.mktemp("responses-home")
    mp.setenv("CROSSROADS_HOME", str(home))
    mp.setenv("TEST_VENDOR_KEY", "test-key")
    mp.setenv("CROSSROADS_MASTER_KEY", MASTER)
    with gateway_thread(_config(_fakes)) as running:
        running.database_url = f"sqlite:///{home / 'crossroads.db'}"
        running.create_key("team")
        running.create_key("other")
        running.create_key("narrow", models=["up-openai"])
        running.create_key("chat-budget", budget_usd=5.0)
        running.create_key("resp-budget", budget_usd=5.0)
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
    client = openai.OpenAI(base_url=gw.v1, api_key=gw.keys[key], max_retries=0, timeout=60)
    _OPEN.append(client)
    return client


def ant(gw: RunningGateway, key: str = "team") -> anthropic.Anthropic:
    raw = gw.keys.get(key, key)
    client = anthropic.Anthropic(base_url=gw.url, api_key=raw, max_retries=0, timeout=60)
    _OPEN.append(client)
    return client


async def _run_closing(client: openai.AsyncOpenAI, work: Coroutine[Any, Any, Any]) -> Any:
    """The Agents SDK's run, its client closed in the same event loop."""
    async with client:
        return await work


def _ledger(gw: RunningGateway, request_id: str) -> Any:
    assert gw.database_url is not None
    with open_database(gw.database_url) as db, db.engine.connect() as conn:
        return conn.execute(
            select(usage_ledger).where(usage_ledger.c.request_id == request_id)
        ).one()


def _sent_messages(fake: FakeServer) -> list[dict[str, Any]]:
    """The messages the upstream received last (system prompt first for Anthropic)."""
    body = fake.requests[-1].body
    messages = list(body["messages"])
    if "system" in body:
        system = body["system"]
        text = system if isinstance(system, str) else "".join(b["text"] for b in system)
        messages.insert(0, {"role": "system", "content": text})
    return messages


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content if isinstance(p, dict))


# -- vendor fakes ------------------------------------------------------------------------


@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_create_text_with_instructions_usage_and_ledger(
    gw: RunningGateway, _fakes: dict[str, FakeServer], upstream: str
) -> None:
    _fakes[upstream].script(Reply("Paris is the capital."))
    raw = oai(gw).responses.with_raw_response.create(
        model=f"up-{upstream}", input="Capital of France?", instructions="Be brief.",
        max_output_tokens=50, temperature=0.2,
    )
    response = raw.parse()
    assert response.output_text == "Paris is the capital."
    assert response.status == "completed" and response.model == f"up-{upstream}"
    assert response.id.startswith("resp_") and response.instructions == "Be brief."
    assert response.output[0].type == "message" and response.output[0].role == "assistant"
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (11, 7)
    assert response.usage.total_tokens == 18
    sent = _sent_messages(_fakes[upstream])
    assert sent[0]["role"] == "system" and _text(sent[0]["content"]) == "Be brief."
    assert _text(sent[-1]["content"]) == "Capital of France?"
    row = _ledger(gw, raw.headers["x-request-id"])
    assert (row.endpoint, row.status, row.key_name) == ("/v1/responses", 200, "team")
    assert (row.prompt_tokens, row.completion_tokens) == (11, 7) and row.cost_usd > 0


@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_stream_text_events_in_the_sdk_order(
    gw: RunningGateway, _fakes: dict[str, FakeServer], upstream: str
) -> None:
    _fakes[upstream].script(Reply("Paris, again and again."))
    with oai(gw).responses.stream(model=f"up-{upstream}", input="Again?") as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    for kind in ("response.output_item.added", "response.content_part.added",
                 "response.output_text.done", "response.output_item.done"):
        assert kind in kinds
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == "Paris, again and again." == final.output_text
    assert final.usage is not None and final.usage.output_tokens == 7
    assert final.id == events[0].response.id  # type: ignore[union-attr]


@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_tool_call_and_its_output_round_trip(
    gw: RunningGateway, _fakes: dict[str, FakeServer], upstream: str
) -> None:
    fake = _fakes[upstream]
    fake.script(Reply.tool("get_weather", {"city": "Paris"}), Reply("Sunny in Paris."))
    client = oai(gw)
    first = client.responses.create(
        model=f"up-{upstream}", input="Weather in Paris?", tools=[WEATHER]  # type: ignore[list-item]
    )
    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather"
    assert json.loads(calls[0].arguments) == {"city": "Paris"}
    call = calls[0]
    second = client.responses.create(
        model=f"up-{upstream}",
        tools=[WEATHER],  # type: ignore[list-item]
        input=[
            {"role": "user", "content": "Weather in Paris?"},
            {"type": "function_call", "call_id": call.call_id, "name": call.name,
             "arguments": call.arguments},
            {"type": "function_call_output", "call_id": call.call_id, "output": "22C, sunny"},
        ],
    )
    assert second.output_text == "Sunny in Paris."
    sent = json.dumps(fake.requests[-1].body)
    assert "22C, sunny" in sent and call.call_id in sent


@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_stream_tool_call_arguments(
    gw: RunningGateway, _fakes: dict[str, FakeServer], upstream: str
) -> None:
    _fakes[upstream].script(Reply.tool("get_weather", {"city": "Oslo"}))
    with oai(gw).responses.stream(
        model=f"up-{upstream}", input="Weather in Oslo?", tools=[WEATHER]  # type: ignore[list-item]
    ) as stream:
        events = list(stream)
        final = stream.get_final_response()
    arguments = "".join(
        e.delta for e in events if e.type == "response.function_call_arguments.delta"
    )
    assert json.loads(arguments) == {"city": "Oslo"}
    done = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert len(done) == 1 and json.loads(done[0].arguments) == {"city": "Oslo"}
    calls = [item for item in final.output if item.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather" and calls[0].call_id


class City(BaseModel):
    city: str
    country: str


@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_json_schema_output_parsed_by_the_sdk(
    gw: RunningGateway, _fakes: dict[str, FakeServer], upstream: str
) -> None:
    answer = '{"city": "Paris", "country": "France"}'
    fake = _fakes[upstream]
    fake.script(Reply(answer), Reply(answer))
    client = oai(gw)
    parsed = client.responses.parse(model=f"up-{upstream}", input="Where?", text_format=City)
    assert parsed.output_parsed == City(city="Paris", country="France")
    if upstream == "openai":
        sent = fake.requests[-1].body["response_format"]
        assert sent["type"] == "json_schema" and sent["json_schema"]["name"] == "City"
    with client.responses.stream(
        model=f"up-{upstream}", input="Where?", text_format=City
    ) as stream:
        final = stream.get_final_response()
    assert final.output_parsed == City(city="Paris", country="France")


def test_store_previous_response_id_get_delete_and_other_keys(
    gw: RunningGateway, _fakes: dict[str, FakeServer]
) -> None:
    fake = _fakes["openai"]
    fake.script(Reply("I am Ada."), Reply("Your name is Bob."), Reply("Still Bob."))
    client = oai(gw)
    first = client.responses.create(
        model="up-openai", input="My name is Bob.", instructions="Be kind.", store=True
    )
    assert first.store is True
    second = client.responses.create(
        model="up-openai", input="What is my name?", previous_response_id=first.id,
        instructions="Be terse.",
    )
    assert second.output_text == "Your name is Bob."
    sent = _sent_messages(fake)
    assert [(m["role"], _text(m["content"])) for m in sent] == [
        ("system", "Be terse."),  # instructions are not carried over
        ("user", "My name is Bob."),
        ("assistant", "I am Ada."),
        ("user", "What is my name?"),
    ]
    # Not stored (stateless by default): it cannot be continued.
    with pytest.raises(openai.NotFoundError) as missing:
        client.responses.create(model="up-openai", input="?", previous_response_id=second.id)
    assert missing.value.body["code"] == "previous_response_not_found"  # type: ignore[index]
    assert client.responses.retrieve(first.id).output_text == "I am Ada."
    # Another key can neither read nor continue nor delete it: the same 404 as unknown.
    other = oai(gw, "other")
    for attempt in (
        lambda: other.responses.retrieve(first.id),
        lambda: other.responses.delete(first.id),
        lambda: other.responses.create(
            model="up-openai", input="And mine?", previous_response_id=first.id
        ),
    ):
        with pytest.raises(openai.NotFoundError) as refused:
            attempt()
        assert "not found" in refused.value.message
    assert len(fake.requests) == 2  # the refused continuation never reached the upstream
    client.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(first.id)


def test_a_stored_stream_can_be_continued(
    gw: RunningGateway, _fakes: dict[str, FakeServer]
) -> None:
    fake = _fakes["anthropic"]
    fake.script(Reply("Noted: 42."), Reply("It was 42."))
    client = oai(gw)
    with client.responses.stream(
        model="up-anthropic", input="Remember 42.", store=True
    ) as stream:
        first = stream.get_final_response()
    assert client.responses.retrieve(first.id).output_text == "Noted: 42."
    second = client.responses.create(
        model="up-anthropic", input="What number?", previous_response_id=first.id
    )
    assert second.output_text == "It was 42."
    assert [_text(m["content"]) for m in _sent_messages(fake)] == [
        "Remember 42.", "Noted: 42.", "What number?"
    ]


def test_a_failure_mid_stream_is_response_failed_then_an_sdk_error(
    gw: RunningGateway, _fakes: dict[str, FakeServer]
) -> None:
    _fakes["openai"].script(Reply("one two three four five six", fail_after_chunks=2))
    seen: list[str] = []
    with (
        pytest.raises(openai.APIError),
        oai(gw).responses.stream(model="up-openai", input="Count") as stream,
    ):
        for event in stream:
            seen.append(event.type)
    assert "response.failed" in seen and "response.completed" not in seen


def test_errors_in_the_openai_shape(gw: RunningGateway) -> None:
    client = oai(gw, "narrow")
    with pytest.raises(openai.PermissionDeniedError):
        client.responses.create(model="up-anthropic", input="hi")
    with pytest.raises(openai.BadRequestError) as bad:
        client.responses.create(model="up-openai", input="hi", tools=[{"type": "web_search"}])
    assert bad.value.body["param"] == "tools[0].type"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as bad:
        client.responses.create(model="up-openai", input="hi", max_output_tokens=0)
    assert bad.value.body["param"] == "max_output_tokens"  # type: ignore[index]
    anonymous = httpx.post(gw.v1 + "/responses", json={"model": "up-openai", "input": "hi"})
    assert anonymous.status_code == 401 and "error" in anonymous.json()


def test_a_budgeted_key_is_charged_as_for_chat(
    gw: RunningGateway, _fakes: dict[str, FakeServer]
) -> None:
    _fakes["openai"].script(Reply("Same answer."), Reply("Same answer."))
    chat = oai(gw, "chat-budget").chat.completions.with_raw_response.create(
        model="up-openai", messages=[{"role": "user", "content": "Hello there"}]
    )
    resp = oai(gw, "resp-budget").responses.with_raw_response.create(
        model="up-openai", input="Hello there"
    )
    chat_row = _ledger(gw, chat.headers["x-request-id"])
    resp_row = _ledger(gw, resp.headers["x-request-id"])
    assert resp_row.cost_usd == chat_row.cost_usd > 0
    usage = httpx.get(
        gw.url + "/admin/usage", params={"by": "key"},
        headers={"Authorization": f"Bearer {MASTER}"},
    ).json()
    spent = {row["key"]: row["cost_usd"] for row in usage["data"]}
    assert spent["resp-budget"] == spent["chat-budget"] == chat_row.cost_usd


def test_agents_sdk_default_model_gets_an_answer_and_uses_a_tool(
    gw: RunningGateway, _fakes: dict[str, FakeServer]
) -> None:
    agents = require("agents", "pip install openai-agents")
    from agents import Agent, OpenAIResponsesModel, Runner, function_tool, set_tracing_disabled

    set_tracing_disabled(True)
    _fakes["openai"].script(Reply.tool("get_weather", {"city": "Rome"}), Reply("Rome: hot."))
    calls: list[str] = []

    @function_tool
    def get_weather(city: str) -> str:
        """Weather in a city."""
        calls.append(city)
        return "35C"

    client = openai.AsyncOpenAI(base_url=gw.v1, api_key=gw.keys["team"], max_retries=0)
    agent = Agent(
        name="weather",
        instructions="Answer briefly.",
        model=OpenAIResponsesModel(model="up-openai", openai_client=client),
        tools=[get_weather],
    )
    result = asyncio.run(_run_closing(client, Runner.run(agent, "Weather in Rome?")))
    assert result.final_output == "Rome: hot." and calls == ["Rome"]
    assert "35C" in json.dumps(_fakes["openai"].requests[-1].body)
    assert agents is not None

    # The streamed run (Runner.run_streamed) reads the same answer from the events.
    _fakes["openai"].script(Reply.tool("get_weather", {"city": "Oslo"}), Reply("Oslo: cold."))
    streamed_client = openai.AsyncOpenAI(base_url=gw.v1, api_key=gw.keys["team"], max_retries=0)
    agent = agent.clone(model=OpenAIResponsesModel(model="up-openai",
                                                   openai_client=streamed_client))

    async def streamed() -> Any:
        run = Runner.run_streamed(agent, "Weather in Oslo?")
        kinds = [event.type async for event in run.stream_events()]
        assert "raw_response_event" in kinds
        return run

    run = asyncio.run(_run_closing(streamed_client, streamed()))
    assert run.final_output == "Oslo: cold." and calls == ["Rome", "Oslo"]


# -- count_tokens ------------------------------------------------------------------------


def test_count_tokens_is_an_upper_bound_for_a_vendor_model(gw: RunningGateway) -> None:
    client = ant(gw)
    text = "Bonjour, comment ça va aujourd'hui ?"
    counted = client.messages.count_tokens(
        model="up-anthropic", system="Be brief.", messages=[{"role": "user", "content": text}]
    )
    assert counted.input_tokens >= len((text + "Be brief.").encode())
    narrow = ant(gw, "narrow")
    with pytest.raises(anthropic.PermissionDeniedError):
        narrow.messages.count_tokens(model="up-anthropic", messages=[{"role": "user",
                                                                       "content": "hi"}])
    with pytest.raises(anthropic.AuthenticationError):
        ant(gw, "sk-cr-wrong").messages.count_tokens(
            model="up-anthropic", messages=[{"role": "user", "content": "hi"}]
        )
    with pytest.raises(anthropic.BadRequestError):
        client.messages.count_tokens(model="up-anthropic", messages=[])


# -- the embedded model --------------------------------------------------------------------


@pytest.fixture(scope="module")
def _local_model() -> None:
    from crossroads.backends.embedded import embedded_model_path


    require("llama_cpp", "pip install 'crossroads[local]'")
    embedded_model_path(LOCAL)


@pytest.mark.usefixtures("_local_model")
def test_embedded_model_create_stream_schema_and_count(gw: RunningGateway) -> None:
    client = oai(gw)
    text = client.responses.create(
        model=LOCAL, input="Say hello.", max_output_tokens=8, temperature=0
    )
    assert text.output_text.strip() and text.usage is not None
    assert 0 < text.usage.output_tokens <= 8
    assert text.status in ("completed", "incomplete")

    with client.responses.stream(
        model=LOCAL, input="Say hello.", max_output_tokens=8, temperature=0
    ) as stream:
        events = list(stream)
    kinds = [e.type for e in events]
    assert kinds[0] == "response.created" and kinds[-1] in (
        "response.completed", "response.incomplete"
    )
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == text.output_text  # greedy: the same answer streamed

    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}},
              "required": ["ok"], "additionalProperties": False}
    shaped = client.responses.create(
        model=LOCAL, input="Is water wet? Answer in JSON.", max_output_tokens=24, temperature=0,
        text={"format": {"type": "json_schema", "name": "answer", "schema": schema}},
    )
    assert isinstance(json.loads(shaped.output_text)["ok"], bool)
    assert shaped.status == "completed"  # the grammar closed the object in time

    class Answer(BaseModel):
        ok: bool

    with client.responses.stream(
        model=LOCAL, input="Is water wet? Answer in JSON.", max_output_tokens=24,
        temperature=0, text_format=Answer,
    ) as structured:
        parsed = structured.get_final_response().output_parsed
    assert isinstance(parsed, Answer) and parsed.ok == json.loads(shaped.output_text)["ok"]

    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model=LOCAL, input="Weather?", tools=[WEATHER])  # type: ignore[list-item]
    assert "tools" in refused.value.message

    # count_tokens: the model's own tokenizer, the count a completion is billed for.
    messages = [{"role": "user", "content": "Say hello."}]
    claude = ant(gw)
    counted = claude.messages.count_tokens(model=LOCAL, messages=messages)  # type: ignore[arg-type]
    answered = claude.messages.create(model=LOCAL, max_tokens=4, messages=messages)  # type: ignore[arg-type]
    assert counted.input_tokens == answered.usage.input_tokens > 0


@pytest.mark.usefixtures("_local_model")
def test_agents_sdk_on_the_embedded_model(gw: RunningGateway) -> None:
    require("agents", "pip install openai-agents")
    from agents import Agent, ModelSettings, OpenAIResponsesModel, Runner, set_tracing_disabled

    set_tracing_disabled(True)
    client = openai.AsyncOpenAI(base_url=gw.v1, api_key=gw.keys["team"], max_retries=0)
    agent = Agent(
        name="local",
        instructions="Answer in one word.",
        model=OpenAIResponsesModel(model=LOCAL, openai_client=client),
        model_settings=ModelSettings(max_tokens=48, temperature=0),  # it ends at 29
    )
    result = asyncio.run(_run_closing(client, Runner.run(agent, "Say hello.")))
    assert isinstance(result.final_output, str) and result.final_output.strip()


def test_a_continued_conversation_is_held_to_max_messages(tmp_path: Any) -> None:
    from crossroads.gateway.call import Call
    from crossroads.gateway.errors import ProtocolError
    from crossroads.gateway.responses_api import ResponsesExchange
    from crossroads.gateway.responses_store import ResponseStore

    async def scenario() -> None:
        with open_database(f"sqlite:///{tmp_path / 'r.db'}") as db:
            store = ResponseStore(db)
            turns = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
            await store.put("master", {"id": "resp_1", "model": "m"}, turns)
            call = Call(protocol="openai", endpoint="/v1/responses", admin=True)
            body = {"model": "m", "input": "c", "previous_response_id": "resp_1"}
            roomy = ResponsesExchange(store, max_messages=3)
            request = await roomy.prepare(call, roomy.parse(body))
            assert [m.content for m in request.messages] == ["a", "b", "c"]
            tight = ResponsesExchange(store, max_messages=2)
            with pytest.raises(ProtocolError) as refused:
                await tight.prepare(call, tight.parse(body))
            assert refused.value.param == "previous_response_id"
            assert "gateway.max_messages" in refused.value.message

    asyncio.run(scenario())
