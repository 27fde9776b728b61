"""One route, one router, every caller: the Python Client, `crossroads chat`, the eval
runner (`crossroads eval`) and the gateway fall back alike.

Two loopback fakes back the route ``chat`` (fallback: ``a`` then ``b``). The first fails
with a 429, then a 500; the route ``chat-refused`` puts a closed port first (connection
refused). Each caller must end up with ``b``'s answer after exactly two attempts, ``a``
first; and a 400/401/403/404/422 from ``a`` is never retried nor sent on to ``b``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from crossroads import Client, errors
from crossroads.cli import app

from .fakes.openai_fake import OpenAIFake
from .fakes.server import Reply
from .gateway_harness import free_port, gateway_thread

ANSWER_B = "Paris, said b."


@dataclass
class Upstreams:
    a: OpenAIFake
    b: OpenAIFake
    config_text: str
    config_path: Path
    #: Which deployment got each request, in order ("a" or "b").
    order: list[str]


@pytest.fixture
def upstreams(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Upstreams]:
    monkeypatch.setenv("CROSSROADS_HOME", str(tmp_path / "home"))
    dead = f"http://127.0.0.1:{free_port()}/v1"
    with OpenAIFake(require_key=False) as a, OpenAIFake(require_key=False) as b:
        order: list[str] = []

        def answer_b(_: object) -> Reply:
            order.append("b")
            return Reply(ANSWER_B)

        b.responder = answer_b
        text = (
            "models:\n"
            f"  - {{name: a, backend: openai, model: gpt-4o-mini, base_url: {a.url}/v1}}\n"
            f"  - {{name: b, backend: openai, model: gpt-4o-mini, base_url: {b.url}/v1}}\n"
            f"  - {{name: dead, backend: openai, model: gpt-4o-mini, base_url: {dead}}}\n"
            "routes:\n"
            "  - {name: chat, strategy: fallback, deployments: [{model: a}, {model: b}]}\n"
            "  - {name: chat-refused, strategy: fallback,"
            " deployments: [{model: dead}, {model: b}]}\n"
            # No rest after a failure, so `a` stays first for every scenario.
            "routing: {cooldown_s: 0, max_attempts: 3}\n"
            "gateway: {unpriced_models: flag}\n"
        )
        path = tmp_path / "crossroads.yaml"
        path.write_text(text, encoding="utf-8")
        yield Upstreams(a, b, text, path, order)


def _fail_a_with(up: Upstreams, status: int) -> None:
    def fail(_: object) -> Reply:
        up.order.append("a")
        return Reply.error(status, f"scripted {status}")

    up.a.responder = fail


# Each caller asks `route` once and returns the answer text, or raises/returns a failure.
Caller = Callable[[Upstreams, str], str | None]


def via_client(up: Upstreams, route: str) -> str | None:
    with Client(up.config_path) as client:
        try:
            return client.chat(route, "What is the capital of France?").text
        except errors.APIError:
            return None


def via_cli(up: Upstreams, route: str) -> str | None:
    result = CliRunner().invoke(
        app, ["-c", str(up.config_path), "chat", route, "What is the capital of France?"]
    )
    return result.stdout.strip() if result.exit_code == 0 else None


def via_eval(up: Upstreams, route: str) -> str | None:
    suite = up.config_path.parent / "suite.yaml"
    suite.write_text(
        "name: one\nprompt: '{{ q }}'\nscorers: [{type: contains}]\n"
        "items: [{id: capital, q: 'What is the capital of France?', expected: Paris}]\n",
        encoding="utf-8",
    )
    out = up.config_path.parent / "run"
    args = ["-c", str(up.config_path), "eval", str(suite), "--models", route, "--no-cache"]
    result = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads((out / "results.json").read_text(encoding="utf-8"))
    (item,) = [r for r in data["results"] if r["item_id"] == "capital"]
    return None if item.get("error") else str(item["output"])


def via_gateway(up: Upstreams, route: str) -> str | None:
    with gateway_thread(up.config_text) as gw:
        key = gw.create_key("caller")
        response = httpx.post(
            gw.v1 + "/chat/completions",
            json={"model": route, "messages": [{"role": "user", "content": "Capital?"}]},
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )
    if response.status_code != 200:
        return None
    return str(response.json()["choices"][0]["message"]["content"])


CALLERS = [via_client, via_cli, via_eval, via_gateway]


@pytest.mark.parametrize("caller", CALLERS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("status", [429, 500])
def test_first_deployment_fails_then_the_route_falls_back(
    upstreams: Upstreams, caller: Caller, status: int
) -> None:
    _fail_a_with(upstreams, status)
    assert caller(upstreams, "chat") == ANSWER_B
    assert upstreams.order == ["a", "b"], "a first, then b: two attempts"
    assert len(upstreams.a.requests) == 1 and len(upstreams.b.requests) == 1


@pytest.mark.parametrize("caller", CALLERS, ids=lambda c: c.__name__)
def test_connection_refused_falls_back(upstreams: Upstreams, caller: Caller) -> None:
    assert caller(upstreams, "chat-refused") == ANSWER_B
    assert upstreams.order == ["b"]
    assert len(upstreams.b.requests) == 1


@pytest.mark.parametrize("caller", CALLERS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_errors_are_not_retried(upstreams: Upstreams, caller: Caller, status: int) -> None:
    _fail_a_with(upstreams, status)
    assert caller(upstreams, "chat") is None
    assert upstreams.order == ["a"], "one attempt, no fallback"
    assert len(upstreams.b.requests) == 0
