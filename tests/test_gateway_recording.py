"""What the gateway records when a request ends badly: an answer refused by the output
guard is still charged for what the upstream spent, stored bodies are JSON objects, and
an oversized body sent without a length (chunked) is refused with 413."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select

from crossroads.store import open_database, usage_ledger

from .fakes.openai_fake import OpenAIFake
from .fakes.server import Reply
from .gateway_harness import RunningGateway, gateway_in_home

FAKE_KEY = "sk-proj-" + "T3BlbkFJq8Zr2Lx9Wm4Nc7Vb1Hd6Ks0Pe5Gy" * 2

CONFIG = """
models:
  - name: m
    backend: openai
    model: gpt-4o
    base_url: {url}/v1
    max_retries: 0
    prices: {{input: 1.0, output: 2.0}}
gateway:
  store_bodies: true
  max_request_bytes: 4096
guardrails:
  audit: false
  policies:
    - name: default
      output:
        - {{check: secrets, action: block}}
"""


@pytest.fixture(scope="module")
def upstream() -> Iterator[OpenAIFake]:
    with OpenAIFake(require_key=False) as fake:
        yield fake  # type: ignore[misc]


@pytest.fixture(scope="module")
def gw(upstream: OpenAIFake, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    home = tmp_path_factory.mktemp("recording-home")
    with gateway_in_home(CONFIG.format(url=upstream.url), home) as running:
        running.create_key("rec", budget_usd=10)
        yield running


def _row(gw: RunningGateway, request_id: str) -> dict[str, object]:
    assert gw.database_url is not None
    with open_database(gw.database_url) as db, db.engine.connect() as conn:
        row = conn.execute(
            select(usage_ledger).where(usage_ledger.c.request_id == request_id)
        ).one()
    return dict(row._mapping)


def test_an_answer_refused_by_the_output_guard_is_still_charged(
    gw: RunningGateway, upstream: OpenAIFake
) -> None:
    upstream.script(Reply(f"Here is the key: {FAKE_KEY}", prompt_tokens=40, completion_tokens=25))
    response = httpx.post(
        gw.v1 + "/chat/completions",
        json={"model": "m", "messages": [{"role": "user", "content": "the key?"}]},
        headers={"Authorization": f"Bearer {gw.keys['rec']}"},
        timeout=30,
    )
    assert response.status_code == 400, response.text
    assert FAKE_KEY not in response.text
    row = _row(gw, response.headers["x-request-id"])
    assert row["status"] == 400 and row["error_class"] == "GuardBlockedError"
    assert row["prompt_tokens"] == 40 and row["completion_tokens"] == 25
    assert row["cost_usd"] == pytest.approx((40 * 1.0 + 25 * 2.0) / 1e6)
    # Bodies are stored as JSON objects, not as JSON text inside a JSON string.
    assert isinstance(row["request_body"], dict)
    assert row["request_body"]["messages"][0]["content"] == "the key?"


def test_stored_response_body_is_a_json_object(gw: RunningGateway, upstream: OpenAIFake) -> None:
    upstream.script(Reply("All good."))
    response = httpx.post(
        gw.v1 + "/chat/completions",
        json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {gw.keys['rec']}"},
        timeout=30,
    )
    assert response.status_code == 200
    row = _row(gw, response.headers["x-request-id"])
    body = row["response_body"]
    assert isinstance(body, dict) and body["choices"][0]["message"]["content"] == "All good."


def test_oversized_chunked_body_is_refused(gw: RunningGateway, upstream: OpenAIFake) -> None:
    before = len(upstream.requests)

    def chunks() -> Iterator[bytes]:  # no content-length: sent chunked
        yield b'{"model": "m", "messages": [{"role": "user", "content": "'
        for _ in range(20):
            yield b"x" * 1024
        yield b'"}]}'

    response = httpx.post(
        gw.v1 + "/chat/completions",
        content=chunks(),
        headers={"Authorization": f"Bearer {gw.keys['rec']}", "content-type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"
    assert len(upstream.requests) == before


def test_upstream_embeddings_are_limited_and_recorded(
    gw: RunningGateway, upstream: OpenAIFake
) -> None:
    key = gw.create_key("emb", rpm=1)
    headers = {"Authorization": f"Bearer {key}"}
    body = {"model": "m", "input": ["one text", "another"]}
    first = httpx.post(gw.v1 + "/embeddings", json=body, headers=headers, timeout=30)
    assert first.status_code == 200, first.text
    row = _row(gw, first.headers["x-request-id"])
    assert row["endpoint"] == "/v1/embeddings" and row["status"] == 200
    assert row["key_name"] == "emb" and row["deployment"] is not None
    assert row["prompt_tokens"] == 6  # the fake's usage: 3 per input
    assert row["cost_usd"] == pytest.approx(6 * 1.0 / 1e6)
    calls = len(upstream.requests)
    second = httpx.post(gw.v1 + "/embeddings", json=body, headers=headers, timeout=30)
    assert second.status_code == 429 and "retry-after" in second.headers
    assert len(upstream.requests) == calls  # refused before the upstream
    refused = _row(gw, second.headers["x-request-id"])
    assert refused["status"] == 429 and refused["cost_usd"] == 0
