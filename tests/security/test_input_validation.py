"""Issue 18, client input: strings that reach labels, logs and the ledger are checked;
malformed bodies are 400s, never 500s; an exhausted key is refused before its body is
parsed; message count and nesting are bounded; no leak through model suggestions or
the access log. Against a real gateway on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from crossroads.gateway.keys import KeyRecord
from crossroads.gateway.limits import (
    BudgetExceededError,
    Limiter,
    MemoryLimiter,
    RateLimitedError,
    RedisLimiter,
)
from crossroads.store import open_database, usage_ledger

from ..fakes.openai_fake import OpenAIFake
from ..fakes.server import Reply
from ..gateway_harness import MASTER, RunningGateway, _wait_ready, free_port, gateway_in_home

CONFIG = """
models:
  - name: m
    backend: openai
    model: gpt-4o
    base_url: {url}/v1
    max_retries: 0
    prices: {{input: 1.0, output: 2.0}}
  - name: premium
    backend: openai
    model: gpt-4o
    base_url: {url}/v1
    max_retries: 0
    prices: {{input: 10.0, output: 20.0}}
"""

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def upstream() -> Iterator[OpenAIFake]:
    with OpenAIFake(require_key=False) as fake:
        yield fake  # type: ignore[misc]


@pytest.fixture(scope="module")
def gw(upstream: OpenAIFake, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    home = tmp_path_factory.mktemp("input-home")
    with gateway_in_home(CONFIG.format(url=upstream.url), home) as running:
        running.create_key("budgeted", budget_usd=10)
        running.create_key("open")
        running.create_key("only-m", models=["m*"])
        yield running


def _post(
    gw: RunningGateway, key: str, body: bytes | dict[str, Any], path: str = "/chat/completions"
) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(
        gw.v1 + path,
        content=content,
        headers={"Authorization": f"Bearer {gw.keys[key]}", "content-type": "application/json"},
        timeout=30,
    )


def _row(gw: RunningGateway, request_id: str) -> dict[str, Any]:
    assert gw.database_url is not None
    with open_database(gw.database_url) as db, db.engine.connect() as conn:
        row = conn.execute(
            select(usage_ledger).where(usage_ledger.c.request_id == request_id)
        ).one()
    return dict(row._mapping)


def _scrape(gw: RunningGateway) -> httpx.Response:
    """GET /metrics as Prometheus would (the master key is its token)."""
    return httpx.get(
        gw.url + "/metrics", headers={"Authorization": f"Bearer {MASTER}"}, timeout=10
    )


# -- vulnerability 3: one request broke /metrics and the ledger until restart ------------


def test_a_lone_surrogate_in_the_model_is_a_400_and_monitoring_keeps_working(
    gw: RunningGateway, upstream: OpenAIFake
) -> None:
    before = len(upstream.requests)
    body = b'{"model": "x\\ud800", "messages": [{"role": "user", "content": "hi"}]}'
    refused = _post(gw, "budgeted", body)
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert error["param"] == "model" and "lone surrogate" in error["message"]
    assert len(upstream.requests) == before  # refused before admission
    # Monitoring and the ledger still work: the refusal is recorded, nothing charged.
    assert _scrape(gw).status_code == 200
    row = _row(gw, refused.headers["x-request-id"])
    assert row["status"] == 400 and row["cost_usd"] == 0
    ok = _post(gw, "budgeted", {"model": "m", "messages": HI})
    assert ok.status_code == 200, ok.text
    assert _row(gw, ok.headers["x-request-id"])["status"] == 200
    assert _scrape(gw).status_code == 200


NAMES = [
    pytest.param({"model": "m\u0000x"}, "model", "control character U+0000", id="model-nul"),
    pytest.param({"model": "m\r\nx"}, "model", "control character U+000D", id="model-crlf"),
    pytest.param({"model": "m" * 257}, "model", "the limit is 256", id="model-long"),
    pytest.param({"user": "u\u0007"}, "user", "control character U+0007", id="user-bel"),
    pytest.param({"user": "u" * 5000}, "user", "the limit is 256", id="user-long"),
]


@pytest.mark.parametrize(("extra", "param", "why"), NAMES)
def test_names_that_become_labels_are_checked_before_admission(
    gw: RunningGateway, upstream: OpenAIFake, extra: dict[str, Any], param: str, why: str
) -> None:
    before = len(upstream.requests)
    response = _post(gw, "budgeted", {"model": "m", "messages": HI, **extra})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param and why in error["message"]
    assert len(upstream.requests) == before
    assert _scrape(gw).status_code == 200


def test_anthropic_user_id_and_admin_key_names_are_checked(gw: RunningGateway) -> None:
    response = httpx.post(
        gw.v1 + "/messages",
        content=b'{"model": "m", "max_tokens": 5, "metadata": {"user_id": "a\\udc00"}, '
        b'"messages": [{"role": "user", "content": "hi"}]}',
        headers={"x-api-key": gw.keys["budgeted"], "content-type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["message"].startswith("Invalid value for 'metadata.user_id'")
    for spec in ({"name": "team\nfake log line"}, {"name": "ok-name", "models": ["m\u0000"]}):
        created = httpx.post(
            gw.url + "/admin/keys",
            json=spec,
            headers={"Authorization": f"Bearer {MASTER}"},
            timeout=10,
        )
        assert created.status_code == 400, created.text
        assert "control character" in created.json()["error"]["message"]


# -- 500s with tracebacks: all 400s before admission --------------------------------------

MALFORMED = [
    pytest.param(
        b'{"model": "m", "max_tokens": ' + b"9" * 400 + b', "messages": '
        b'[{"role": "user", "content": "hi"}]}',
        "digits",
        id="max-tokens-400-digits",
    ),
    pytest.param(
        b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 1e400}',
        "too large",
        id="float-overflow",
    ),
    pytest.param(
        b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "x": '
        + b"[" * 100_000
        + b"]" * 100_000
        + b"}",
        "deep",
        id="nested-100000",
    ),
    pytest.param(
        b'{"model": "m", "messages": [{"role": "user", "content": "hi \\ud800 there"}]}',
        "lone surrogate",
        id="content-surrogate",
    ),
    pytest.param(
        b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "tools": [{"type": '
        b'"function", "function": {"name": "f", "parameters": {"\\udfff": 1}}}]}',
        "lone surrogate",
        id="key-surrogate",
    ),
    pytest.param(
        b'{"model": "m", "messages": [{"role": "user", "content": "hi \xed\xa0\x80"}]}',
        "UTF-8",
        id="encoded-surrogate",
    ),
]


@pytest.mark.parametrize(("body", "why"), MALFORMED)
def test_malformed_bodies_are_400s_before_admission(
    gw: RunningGateway, upstream: OpenAIFake, body: bytes, why: str
) -> None:
    before = len(upstream.requests)
    response = _post(gw, "budgeted", body)
    assert response.status_code == 400, response.text
    assert why in response.json()["error"]["message"]
    assert len(upstream.requests) == before


_STRING_FIELDS = [
    ("openai", '{"model": @, "messages": [{"role": "user", "content": "hi"}]}'),
    ("openai", '{"model": "m", "messages": [{"role": "user", "content": @}]}'),
    ("openai", '{"model": "m", "messages": [{"role": "user", "name": @, "content": "hi"}]}'),
    ("openai", '{"model": "m", "messages": [{"role": "system", "content": @}, '
     '{"role": "user", "content": "hi"}]}'),
    ("openai", '{"model": "m", "messages": [{"role": "user", "content": '
     '[{"type": "text", "text": @}]}]}'),
    ("openai", '{"model": "m", "messages": [{"role": "user", "content": "hi"}], "user": @}'),
    ("openai", '{"model": "m", "messages": [{"role": "user", "content": "hi"}], "stop": [@]}'),
    ("openai", '{"model": "m", "messages": [{"role": "user", "content": "hi"}], '
     '"metadata": {"k": @}}'),
    ("openai", '{"model": "m", "messages": [{"role": "user", "content": "hi"}], "tools": '
     '[{"type": "function", "function": {"name": "f", "description": @}}]}'),
    ("openai", '{"model": "m", "messages": [{"role": "user", "content": "hi"}, {"role": '
     '"assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", '
     '"arguments": @}}]}, {"role": "tool", "tool_call_id": "c", "content": "x"}]}'),
    ("anthropic", '{"model": "m", "max_tokens": 5, "system": @, '
     '"messages": [{"role": "user", "content": "hi"}]}'),
    ("anthropic", '{"model": "m", "max_tokens": 5, "metadata": {"user_id": @}, '
     '"messages": [{"role": "user", "content": "hi"}]}'),
    ("anthropic", '{"model": "m", "max_tokens": 5, "stop_sequences": [@], '
     '"messages": [{"role": "user", "content": [{"type": "text", "text": @}]}]}'),
]


def _escaped(points: list[int]) -> bytes:
    """A JSON string of ``\\uXXXX`` escapes (lone surrogates and controls included) and
    raw characters above the BMP."""
    out = "".join(f"\\u{p:04x}" if p < 0x10000 else chr(p) for p in points)
    return f'"{out}"'.encode()


_VALUES = st.one_of(
    st.binary(max_size=64).map(lambda raw: b'"' + raw + b'"'),  # any bytes, even not UTF-8
    st.lists(st.integers(0, 0x10FFFF), max_size=16).map(_escaped),
    st.text(max_size=64).map(lambda text: json.dumps(text, ensure_ascii=False).encode()),
    st.sampled_from([b'"m"', b'"\\ud800"', b'"\\udc00\\ud800"', b'"\\u0000"', b'"m\\n"']),
)


@given(field=st.sampled_from(_STRING_FIELDS), value=_VALUES)
@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_byte_sequence_in_a_string_field_gives_a_500(
    gw: RunningGateway, field: tuple[str, str], value: bytes
) -> None:
    protocol, template = field
    body = template.encode().replace(b"@", value)
    path = "/chat/completions" if protocol == "openai" else "/messages"
    response = _post(gw, "open", body, path)
    assert response.status_code < 500, (body, response.status_code, response.text)


def test_monitoring_answers_after_the_fuzzing(gw: RunningGateway) -> None:
    assert _scrape(gw).status_code == 200


# -- work before the gate --------------------------------------------------------------

NOT_JSON = b"{" + b"x" * (3 * 1024 * 1024)  # 3 MB that no parser accepts


def test_a_key_over_its_rpm_is_refused_before_its_body_is_parsed(
    gw: RunningGateway, upstream: OpenAIFake
) -> None:
    gw.create_key("one-a-minute", rpm=1)
    assert _post(gw, "one-a-minute", {"model": "m", "messages": HI}).status_code == 200
    before = len(upstream.requests)
    # Not JSON at all: a 429 (not a 400) shows the body was never parsed.
    refused = _post(gw, "one-a-minute", NOT_JSON)
    assert refused.status_code == 429, refused.text[:300]
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert int(refused.headers["retry-after"]) >= 1
    assert len(upstream.requests) == before


def test_a_key_whose_budget_is_spent_is_refused_before_its_body_is_parsed(
    gw: RunningGateway, upstream: OpenAIFake
) -> None:
    gw.create_key("tiny", budget_usd=0.001)
    # The upstream reports far more usage than the reservation: the budget is spent.
    upstream.script(Reply("ok", prompt_tokens=5_000, completion_tokens=1))
    spent = _post(gw, "tiny", {"model": "m", "messages": HI, "max_tokens": 10})
    assert spent.status_code == 200, spent.text
    before = len(upstream.requests)
    refused = _post(gw, "tiny", NOT_JSON)
    assert refused.status_code == 429, refused.text[:300]
    assert refused.json()["error"]["code"] == "insufficient_quota"
    assert refused.headers["x-should-retry"] == "false"
    assert len(upstream.requests) == before


def _nested(depth: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(depth):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


def test_message_count_and_nesting_are_bounded(gw: RunningGateway, upstream: OpenAIFake) -> None:
    before = len(upstream.requests)
    many = [{"role": "user", "content": "x"}] * 2049
    refused = _post(gw, "budgeted", {"model": "m", "messages": many})
    assert refused.status_code == 413, refused.text
    error = refused.json()["error"]
    assert error["param"] == "messages" and "gateway.max_messages" in error["message"]
    parts = [{"type": "text", "text": "x"}] * 2049
    one = [{"role": "user", "content": parts}]
    refused = _post(gw, "budgeted", {"model": "m", "messages": one})
    assert refused.status_code == 413, refused.text
    assert refused.json()["error"]["param"] == "messages[0].content"
    tools = [{"type": "function", "function": {"name": "f", "parameters": _nested(40)}}]
    deep = _post(gw, "budgeted", {"model": "m", "messages": HI, "tools": tools})
    assert deep.status_code == 400, deep.text
    assert "gateway.max_json_depth" in deep.json()["error"]["message"]
    assert len(upstream.requests) == before
    # Within the bounds: served.
    tools = [{"type": "function", "function": {"name": "f", "parameters": _nested(25)}}]
    ok = _post(gw, "budgeted", {"model": "m", "messages": many[:2048], "tools": tools})
    assert ok.status_code == 200, ok.text


def test_the_bounds_are_settings(upstream: OpenAIFake, tmp_path: Path) -> None:
    config = CONFIG.format(url=upstream.url) + "gateway:\n  max_messages: 4\n  max_json_depth: 8\n"
    with gateway_in_home(config, tmp_path) as running:
        running.create_key("k")
        refused = _post(running, "k", {"model": "m", "messages": HI * 5})
        assert refused.status_code == 413 and "limit is 4" in refused.json()["error"]["message"]
        nested = {"model": "m", "messages": HI, "response_format": {"type": "json_schema",
                  "json_schema": {"name": "x", "schema": _nested(4)}}}
        refused = _post(running, "k", nested)
        assert refused.status_code == 400, refused.text
        assert _post(running, "k", {"model": "m", "messages": HI * 4}).status_code == 200


def _key(**limits: Any) -> KeyRecord:
    import uuid
    from datetime import UTC, datetime

    return KeyRecord(
        id="key_" + uuid.uuid4().hex[:16], name="t", prefix="sk-cr-x", models=(),
        expires_at=None, revoked_at=None, created_at=datetime.now(UTC),
        **{"budget_usd": None, "rpm": None, "tpm": None, **limits},
    )


@pytest.mark.parametrize("store", ["memory", "redis"])
async def test_precheck_refuses_exactly_what_every_request_would_be_refused(
    store: str, request: pytest.FixtureRequest
) -> None:
    limiter: Limiter = (
        RedisLimiter(request.getfixturevalue("redis_url"), timeout_s=2.0)
        if store == "redis"
        else MemoryLimiter()
    )
    try:
        rpm, budget, tpm = _key(rpm=1), _key(budget_usd=1.0), _key(tpm=10)
        await limiter.precheck(rpm)
        admission = await limiter.admit(rpm, tokens=1, max_cost_usd=0)
        with pytest.raises(RateLimitedError):
            await limiter.precheck(rpm)
        await limiter.settle(admission, tokens=1, cost_usd=0)
        # A budget with something left: the request's size decides, after parsing.
        admission = await limiter.admit(budget, tokens=1, max_cost_usd=0.5)
        await limiter.settle(admission, tokens=1, cost_usd=0.5)
        await limiter.precheck(budget)
        admission = await limiter.admit(budget, tokens=1, max_cost_usd=0.5)
        await limiter.settle(admission, tokens=1, cost_usd=0.5)
        with pytest.raises(BudgetExceededError):
            await limiter.precheck(budget)
        # A full TPM window may free up when settles correct it: never refused early.
        admission = await limiter.admit(tpm, tokens=10, max_cost_usd=0)
        await limiter.precheck(tpm)
    finally:
        await limiter.aclose()


# -- small leaks -----------------------------------------------------------------------


def test_a_404_suggests_only_models_the_key_may_use(gw: RunningGateway) -> None:
    # "mremium" matches the key's pattern m*, is unknown, and looks like "premium".
    open_key = _post(gw, "open", {"model": "mremium", "messages": HI})
    assert open_key.status_code == 404 and "premium" in open_key.json()["error"]["message"]
    restricted = _post(gw, "only-m", {"model": "mremium", "messages": HI})
    assert restricted.status_code == 404, restricted.text
    assert "premium" not in restricted.text


def test_query_strings_are_redacted_in_the_access_log(
    upstream: OpenAIFake, tmp_path: Path
) -> None:
    config = tmp_path / "crossroads.yaml"
    config.write_text(CONFIG.format(url=upstream.url))
    log_path = tmp_path / "serve.log"
    port = free_port()
    secret = "sk-cr-QUERYSECRET0123456789abcdef"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "crossroads", "serve", "--config", str(config),
             "--port", str(port), "--access-log"],
            stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "CROSSROADS_MASTER_KEY": MASTER,
                 "CROSSROADS_HOME": str(tmp_path)},
        )
    running = RunningGateway(f"http://127.0.0.1:{port}", process=process, log_path=log_path)
    try:
        _wait_ready(running.url, process=process)
        got = httpx.get(f"{running.url}/v1/models?api_key={secret}&x=1", timeout=10)
        assert got.status_code == 401
        deadline = time.monotonic() + 10
        while "/v1/models" not in log_path.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        running.stop()
    text = log_path.read_text()
    assert "/v1/models?api_key=[redacted]&x=[redacted]" in text, text
    assert secret not in text
