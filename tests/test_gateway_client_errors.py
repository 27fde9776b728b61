"""Errors real clients can use (issue 15, item 9), tried with the clients themselves.

* A prompt over the context window raises LangChain's and LiteLLM's context-overflow
  classes, through both protocols.
* No error body or metric label holds a file path, a host or a class name.
* ``max_tokens`` above the model's limits is a 400 naming the limit, before any budget.
* A tiny budget's 429 shows its amounts with significant digits.
* Upstream failures, retries, fallbacks and stream cuts each leave one info log line,
  with no key and no prompt in it.

The local model's default output cap is tested in ``test_local_output_cap.py``.
"""

from __future__ import annotations

import gc
import logging
import os
import re
import warnings
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from crossroads.backends.embedded import embedded_model_path
from crossroads.gateway.error_labels import CODES

from .conftest import require
from .fakes.openai_fake import OpenAIFake
from .fakes.server import Reply
from .gateway_harness import MASTER, RunningGateway, gateway_thread

LOCAL = "local/smollm2"
#: 18,031 tokens for SmolLM2's tokenizer, over its 8,192-token window.
LONG = "hello world " * 9000
WINDOW = 8192
PROMPT_TOKENS = 18031
#: An absolute or home-relative path of two segments or more.
PATH = re.compile(r"(?:^|[\s\"'(=:])(?:~|[A-Za-z]:)?[/\\][\w.@+~-]+[/\\][\w.@+~-]+")
#: The kinds of error the gateway labels metrics with, besides the codes.
KINDS = {
    "invalid_request", "authentication", "permission", "not_found", "conflict", "too_large",
    "unprocessable", "rate_limit", "quota", "server", "upstream", "unavailable",
    "overloaded", "timeout", "client_closed_request",
}
UPSTREAM_KEY = "sk-upstream-secret-0123456789abcdef"


def _model(name: str, url: str, extra: str = "") -> str:
    return (
        f"  - name: {name}\n    backend: openai\n    model: gpt-4o-mini\n"
        f"    base_url: {url}/v1\n    api_key: ${{TEST_UPSTREAM_KEY}}\n"
        "    timeout: 10\n    max_retries: 0\n"
        "    prices: {input: 10.0, output: 30.0}\n" + extra
    )


@pytest.fixture(scope="module")
def upstream() -> Iterator[OpenAIFake]:
    with OpenAIFake(require_key=False) as fake:
        yield fake  # type: ignore[misc]


@pytest.fixture(scope="module")
def gw(upstream: OpenAIFake, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    require("llama_cpp", "pip install 'crossroads[llamacpp]'")
    mp = pytest.MonkeyPatch()
    mp.setenv("CROSSROADS_HOME", str(tmp_path_factory.mktemp("gateway-home")))
    mp.setenv("CROSSROADS_MASTER_KEY", MASTER)
    mp.setenv("TEST_UPSTREAM_KEY", UPSTREAM_KEY)
    config = (
        "models:\n" + _model("m", upstream.url, "    max_output_tokens: 1000\n")
        + "gateway:\n  master_key: ${CROSSROADS_MASTER_KEY}\n  serve_unconfigured: true\n"
    )
    with gateway_thread(config) as running:
        running.create_key("team")
        running.create_key("tiny", budget_usd=0.00005)
        yield running
    mp.undo()


@pytest.fixture(autouse=True)
def _clean(upstream: OpenAIFake, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TEST_UPSTREAM_KEY", UPSTREAM_KEY)
    upstream.replies.clear()
    upstream.requests.clear()
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no download
    yield
    upstream.replies.clear()


def _openai(gw: RunningGateway, body: dict[str, Any], key: str | None = None) -> httpx.Response:
    return httpx.post(
        gw.v1 + "/chat/completions", json=body,
        headers={"Authorization": f"Bearer {key or gw.keys['team']}"}, timeout=120,
    )


def _anthropic(gw: RunningGateway, body: dict[str, Any], key: str | None = None) -> httpx.Response:
    return httpx.post(
        gw.v1 + "/messages", json=body,
        headers={"x-api-key": key or gw.keys["team"], "anthropic-version": "2023-06-01"},
        timeout=120,
    )


# -- a prompt over the context window --------------------------------------------------


def test_over_long_prompt_reads_as_each_vendor_words_it(gw: RunningGateway) -> None:
    user = [{"role": "user", "content": LONG}]
    oa = _openai(gw, {"model": LOCAL, "messages": user})
    an = _anthropic(gw, {"model": LOCAL, "max_tokens": 10, "messages": user})
    assert oa.status_code == an.status_code == 400
    assert oa.json()["error"] == {
        "message": f"Input tokens exceed the configured limit of {WINDOW} tokens: this "
        f"model's maximum context length is {WINDOW} tokens, and your messages resulted in "
        f"{PROMPT_TOKENS} tokens. Please reduce the length of the messages.",
        "type": "invalid_request_error",
        "param": "messages",
        "code": "context_length_exceeded",
    }
    assert an.json() == {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": f"prompt is too long: {PROMPT_TOKENS} tokens > {WINDOW} maximum",
        },
    }


def test_langchain_raises_its_context_overflow_classes(gw: RunningGateway) -> None:
    from langchain_anthropic import ChatAnthropic
    from langchain_anthropic.chat_models import AnthropicContextOverflowError
    from langchain_core.exceptions import ContextOverflowError
    from langchain_openai import ChatOpenAI
    from langchain_openai.chat_models.base import OpenAIContextOverflowError

    key = gw.keys["team"]
    openai_chat = ChatOpenAI(model=LOCAL, base_url=gw.v1, api_key=key, max_retries=0)  # type: ignore[arg-type]
    with pytest.raises(OpenAIContextOverflowError) as oa:
        openai_chat.invoke(LONG)
    anthropic_chat = ChatAnthropic(  # type: ignore[call-arg]
        model=LOCAL, base_url=gw.url, api_key=key, max_retries=0  # type: ignore[arg-type]
    )
    with pytest.raises(AnthropicContextOverflowError) as an:
        anthropic_chat.invoke(LONG)
    assert isinstance(oa.value, ContextOverflowError) and isinstance(an.value, ContextOverflowError)


@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
def test_litellm_raises_its_context_window_error(gw: RunningGateway, protocol: str) -> None:
    import litellm

    base = gw.v1 if protocol == "openai" else gw.url
    with pytest.raises(litellm.ContextWindowExceededError) as info:
        litellm.completion(
            model=f"{protocol}/{LOCAL}", api_base=base, api_key=gw.keys["team"],
            messages=[{"role": "user", "content": LONG}], max_tokens=10, num_retries=0,
        )
    assert str(PROMPT_TOKENS) in str(info.value)
    # LiteLLM leaves an event loop's socket pair unclosed; collect it here, where it is
    # known to be LiteLLM's, rather than fail whichever test the collector runs in next
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


# -- no file path, host or class name ---------------------------------------------------


def test_no_error_body_or_metric_label_holds_a_path(
    gw: RunningGateway, upstream: OpenAIFake
) -> None:
    weights = str(embedded_model_path(LOCAL))
    user = [{"role": "user", "content": LONG}]
    upstream.script(
        Reply.error(400, f"could not open {weights} on gpu-7.internal (ModelLoaderError)"),
        Reply.error(400, "prompt too long, see /srv/app/config/limits.yaml", type="x"),
    )
    bodies = [
        _openai(gw, {"model": LOCAL, "messages": user}).text,
        _anthropic(gw, {"model": LOCAL, "max_tokens": 10, "messages": user}).text,
        _openai(gw, {"model": "m", "messages": [{"role": "user", "content": "hi"}]}).text,
        _openai(gw, {"model": "m", "messages": [{"role": "user", "content": "hi"}]}).text,
        _openai(gw, {"model": LOCAL, "max_tokens": 10**6, "messages": user}, MASTER).text,
    ]
    for body in bodies:
        assert weights not in body and "gpu-7.internal" not in body
        assert not PATH.search(body), body
    assert "[server path]" in bodies[2] and "[server path]" in bodies[3]
    metrics = httpx.get(gw.url + "/metrics", headers={"Authorization": f"Bearer {MASTER}"})
    labels = re.findall(r'^crossroads_errors_total\{error="([^"]*)"', metrics.text, re.M)
    assert "context_length_exceeded" in labels
    assert set(labels) <= CODES | KINDS, labels
    assert not PATH.search(metrics.text)
    assert "Error" not in " ".join(labels)  # no class name (ContextWindowExceededError, ...)


# -- max_tokens above the model's limits -----------------------------------------------


def test_max_tokens_over_the_output_limit_is_a_400_before_the_budget(
    gw: RunningGateway, upstream: OpenAIFake
) -> None:
    user = [{"role": "user", "content": "hi"}]
    # "tiny" has $0.00005: 1,001 output tokens at $30/M would be refused by its budget
    for response in (
        _openai(gw, {"model": "m", "max_tokens": 1001, "messages": user}, gw.keys["tiny"]),
        _anthropic(gw, {"model": "m", "max_tokens": 1001, "messages": user}, gw.keys["tiny"]),
    ):
        assert response.status_code == 400, response.text
        assert "supports at most 1000 completion tokens" in response.text
    assert response.json()["error"]["type"] == "invalid_request_error"
    master = _openai(gw, {"model": LOCAL, "max_tokens": 8193, "messages": user}, MASTER)
    assert master.status_code == 400
    assert master.json()["error"]["param"] == "max_tokens"
    assert f"context window of {WINDOW} tokens" in master.json()["error"]["message"]
    assert upstream.requests == []


def test_tiny_budget_refusal_shows_significant_digits(gw: RunningGateway) -> None:
    response = _openai(
        gw, {"model": "m", "max_tokens": 1000, "messages": [{"role": "user", "content": "hi"}]},
        gw.keys["tiny"],
    )
    assert response.status_code == 429
    message = response.json()["error"]["message"]
    assert "of its $0.00005 budget" in message and "$0.0000 " not in message
    # the worst case: 1,000 output tokens at $30/M and the prompt's bound at $10/M
    cost = re.search(r"could cost up to \$(0\.0\d+)", message)
    assert cost is not None and 0.03 < float(cost.group(1)) < 0.031


# -- one log line per upstream failure --------------------------------------------------


def test_failures_retries_fallbacks_and_cuts_leave_one_info_line(
    caplog: pytest.LogCaptureFixture, tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CROSSROADS_HOME", str(tmp_path_factory.mktemp("log-home")))
    monkeypatch.setenv("TEST_UPSTREAM_KEY", UPSTREAM_KEY)
    with OpenAIFake(require_key=False) as a, OpenAIFake(require_key=False) as b:
        config = (
            "models:\n" + _model("a", a.url) + _model("b", b.url)  # type: ignore[attr-defined]
            + "routing:\n  cooldown_s: 0\n  backoff_initial_s: 0\n  backoff_max_s: 0\n"
            "routes:\n  - name: r\n    strategy: fallback\n"
            "    deployments: [{model: a}, {model: b}]\n"
        )
        secret_prompt = "my secret prompt 4111"
        user = [{"role": "user", "content": secret_prompt}]
        with gateway_thread(config) as gw:
            key = gw.create_key("logs")
            caplog.set_level(logging.INFO, "crossroads.routing")
            a.script(Reply.error(503, "down"))  # type: ignore[attr-defined]
            fell_back = _openai(gw, {"model": "r", "messages": user}, key)
            failures = [r for r in caplog.records if r.name == "crossroads.routing"]
            caplog.clear()
            a.script(Reply.error(400, "bad"))  # type: ignore[attr-defined]
            refused = _openai(gw, {"model": "r", "messages": user}, key)
            not_retried = [r for r in caplog.records if r.name == "crossroads.routing"]
            caplog.clear()
            a.script(Reply("one two three four five six", truncate_after_chunks=2))  # type: ignore[attr-defined]
            with httpx.stream(
                "POST", gw.v1 + "/chat/completions",
                json={"model": "r", "messages": user, "stream": True},
                headers={"Authorization": f"Bearer {key}"}, timeout=30,
            ) as stream:
                list(stream.iter_lines())
            cuts = [r for r in caplog.records if r.name == "crossroads.routing"]
    assert fell_back.status_code == 200 and refused.status_code == 400
    request_id = fell_back.headers["x-request-id"]
    assert [(r.levelno, r.getMessage()) for r in failures] == [
        (logging.INFO, f"upstream failure: request={request_id} deployment=a status=503 "
         "error=UpstreamUnavailableError attempt=1/3; falling back to b"),
        (logging.INFO, f"upstream fallback served: request={request_id} deployment=b "
         "status=200 attempt=2"),
    ]
    assert [r.getMessage() for r in not_retried] == [
        f"upstream failure: request={refused.headers['x-request-id']} deployment=a "
        "status=400 error=BadRequestError attempt=1/3; not retried"
    ]
    assert len(cuts) == 1 and cuts[0].levelno == logging.INFO
    assert cuts[0].getMessage().startswith("upstream stream cut: request=")
    assert "deployment=a" in cuts[0].getMessage()
    for record in [*failures, *not_retried, *cuts]:
        text = record.getMessage()
        assert key not in text and UPSTREAM_KEY not in text and secret_prompt not in text
