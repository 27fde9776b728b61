"""Streams relayed as the upstream sent them (OpenAI client, OpenAI upstream, no guard):
the client gets the upstream's events byte for byte, in order (only ``model`` says the
name it asked for), the ledger gets the upstream's usage, and an upstream that fails or
cuts the stream midway still ends the client's stream with an error event and a row.
The guarded (rewriting) path is covered by tests/test_gateway_guard.py, which masks a
card number split at every position."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from sqlalchemy import select

from crossroads.backends._sse import SSEFramer, SSEParser
from crossroads.backends.openai import RawEvent
from crossroads.gateway.call import Call
from crossroads.gateway.passthrough import _Reader
from crossroads.store import open_database, usage_ledger

from .fakes.openai_fake import OpenAIFake
from .fakes.server import Reply
from .gateway_harness import RunningGateway, gateway_in_home

CONFIG = """
models:
  - name: gpt-4o
    backend: openai
    model: gpt-4o
    base_url: {url}/v1
    max_retries: 0
    prices: {{input: 1.0, output: 2.0}}
  - name: alias
    backend: openai
    model: gpt-4o
    base_url: {url}/v1
    max_retries: 0
    prices: {{input: 1.0, output: 2.0}}
"""
TEXT = "Streams pass through: «naïve» café, 東京, and a \"quoted\" model word."
USER = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def upstream() -> Iterator[OpenAIFake]:
    with OpenAIFake(require_key=False) as fake:
        yield fake  # type: ignore[misc]


@pytest.fixture(scope="module")
def gw(upstream: OpenAIFake, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    home = tmp_path_factory.mktemp("passthrough-home")
    with gateway_in_home(CONFIG.format(url=upstream.url), home) as running:
        running.create_key("relay", budget_usd=10)
        yield running


def _post_stream(url: str, body: dict[str, Any], key: str | None = None) -> tuple[bytes, str]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with httpx.stream("POST", url, json=body, headers=headers, timeout=30) as response:
        assert response.status_code == 200
        return b"".join(response.iter_raw()), response.headers.get("x-request-id", "")


def _upstream_bytes(upstream: OpenAIFake, reply: Reply) -> bytes:
    upstream.script(reply)
    body = {"model": "gpt-4o", "messages": USER, "stream": True,
            "stream_options": {"include_usage": True}}
    return _post_stream(upstream.url + "/v1/chat/completions", body)[0]


def _gateway_bytes(
    gw: RunningGateway, upstream: OpenAIFake, reply: Reply, model: str, include_usage: bool
) -> tuple[bytes, str]:
    upstream.script(reply)
    body: dict[str, Any] = {"model": model, "messages": USER, "stream": True}
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    return _post_stream(gw.v1 + "/chat/completions", body, gw.keys["relay"])


def _row(gw: RunningGateway, request_id: str) -> dict[str, Any]:
    assert gw.database_url is not None
    with open_database(gw.database_url) as db, db.engine.connect() as conn:
        row = conn.execute(
            select(usage_ledger).where(usage_ledger.c.request_id == request_id)
        ).one()
    return dict(row._mapping)


def test_a_stream_arrives_byte_for_byte_as_the_upstream_sent_it(
    gw: RunningGateway, upstream: OpenAIFake
) -> None:
    reply = Reply(TEXT, prompt_tokens=23, completion_tokens=9)
    direct = _upstream_bytes(upstream, reply)
    relayed, request_id = _gateway_bytes(gw, upstream, reply, "gpt-4o", include_usage=True)
    assert direct.count(b"data: ") > 15  # many events, in their order, each untouched
    assert relayed == direct
    row = _row(gw, request_id)
    assert (row["status"], row["stream"]) == (200, True)
    assert (row["prompt_tokens"], row["completion_tokens"]) == (23, 9)
    assert row["cost_usd"] == pytest.approx((23 * 1.0 + 9 * 2.0) / 1e6)


def test_only_the_model_name_and_the_unasked_usage_differ(
    gw: RunningGateway, upstream: OpenAIFake
) -> None:
    reply = Reply(TEXT, prompt_tokens=31, completion_tokens=12)
    direct = _upstream_bytes(upstream, reply)
    relayed, request_id = _gateway_bytes(gw, upstream, reply, "alias", include_usage=True)
    assert relayed == direct.replace(b'"model": "gpt-4o"', b'"model": "alias"')
    # Without stream_options.include_usage the client does not get the usage chunk
    # (the gateway still asks the upstream for it, for the ledger).
    plain, plain_id = _gateway_bytes(gw, upstream, reply, "alias", include_usage=False)
    events = relayed.split(b"\n\n")
    usage_event = next(e for e in events if b'"usage"' in e)
    assert plain == relayed.replace(usage_event + b"\n\n", b"")
    for rid in (request_id, plain_id):
        row = _row(gw, rid)
        assert (row["prompt_tokens"], row["completion_tokens"]) == (31, 12)


def test_the_openai_sdk_reads_a_relayed_stream(gw: RunningGateway, upstream: OpenAIFake) -> None:
    upstream.script(Reply(TEXT, prompt_tokens=5, completion_tokens=4))
    with openai.OpenAI(base_url=gw.v1, api_key=gw.keys["relay"], max_retries=0) as client:
        chunks = list(client.chat.completions.create(
            model="alias", messages=USER, stream=True,  # type: ignore[arg-type]
            stream_options={"include_usage": True},
        ))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == TEXT
    assert {c.model for c in chunks} == {"alias"}
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == 5


@pytest.mark.parametrize("how", ["error_event", "cut"])
def test_an_upstream_failing_midway_ends_the_client_stream_with_an_error(
    gw: RunningGateway, upstream: OpenAIFake, how: str
) -> None:
    reply = (
        Reply(TEXT, fail_after_chunks=3) if how == "error_event"
        else Reply(TEXT, truncate_after_chunks=3)
    )
    relayed, request_id = _gateway_bytes(gw, upstream, reply, "alias", include_usage=True)
    events = [e for e in relayed.split(b"\n\n") if e]
    assert b"[DONE]" not in relayed  # never a fake end
    last = json.loads(events[-1][6:])
    assert "error" in last and "choices" not in last
    content = "".join(
        (c["delta"].get("content") or "")
        for e in events[:-1] for c in json.loads(e[6:])["choices"]
    )
    assert content == "".join(Reply(TEXT).pieces()[:3])  # what came before the failure
    row = _row(gw, request_id)
    assert row["status"] >= 500 and row["error_class"]
    # Charged its prompt's upper bound plus what was streamed (no upstream usage came).
    assert row["completion_tokens"] == 3 and row["prompt_tokens"] > 0
    assert row["cost_usd"] > 0


def test_the_model_substitution_never_touches_text() -> None:
    call = Call(protocol="openai", endpoint="/v1/chat/completions", model="alias")
    payload = {"id": "x", "model": "up", "choices": [
        {"index": 0, "delta": {"content": 'say "model": "up", {"model":"up"}'}}]}
    raw = b"data: " + json.dumps(payload).encode() + b"\n\n"
    out = _Reader(call).read([RawEvent(raw, payload)])
    sent = json.loads(out[6:])
    assert sent["model"] == "alias"
    assert sent["choices"] == payload["choices"]


STREAM = (
    b'\xef\xbb\xbfdata: {"a": 1}\r\n\r\n: keep-alive\n\nevent: error\ndata: {"b":\ndata: 2}\n\n'
    b'data: {"c": "\xc3\xa9"}\r\rdata: [DONE]'
)


def test_the_framer_finds_the_parsers_events_wherever_the_bytes_are_cut() -> None:
    whole = SSEParser()
    expected = whole.feed(STREAM) + whole.close()
    for cut in range(len(STREAM) + 1):
        bytewise = [STREAM[i : i + 1] for i in range(len(STREAM))]
        for pieces in ([STREAM[:cut], STREAM[cut:]], bytewise):
            framer = SSEFramer()
            framed = [f for p in pieces for f in framer.feed(p)] + framer.close()
            assert [e for _, e in framed] == expected, cut
            # Each event's bytes are a complete event on their own.
            for raw, event in framed:
                assert raw.endswith(b"\n\n")
                again = SSEParser()
                assert again.feed(raw) + again.close() == [event]
