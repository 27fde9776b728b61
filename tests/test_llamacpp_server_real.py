"""A real open-model server, not a fake: llama.cpp's OpenAI-compatible server
(``llama-cpp-python[server]``) on the embedded SmolLM2, on loopback, behind the
``llamacpp-server`` preset.

``crossroads chat``, ``crossroads eval`` and the gateway (a route to it) get the
server's own answers and usage — the same, token for token, as asking the server
directly — streamed or whole, and the server's errors land in the error tree.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from typer.testing import CliRunner

from crossroads import AsyncClient, Client
from crossroads.cli import app
from crossroads.errors import ContextWindowExceededError
from crossroads.types import ChatRequest, estimate_prompt_tokens

from .conftest import require
from .gateway_harness import MASTER, free_port, gateway_thread

require("llama_cpp", "pip install -e '.[dev]' (llama-cpp-python)")
require("sse_starlette", "pip install -e '.[dev]' (llama-cpp-python[server])")
require("starlette_context", "pip install -e '.[dev]' (llama-cpp-python[server])")

runner = CliRunner()
N_CTX = 512
QUESTION = "What is the capital of France?"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from crossroads.backends.embedded import DEFAULT_LOCAL_MODEL, embedded_model_path

    port = free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server",
             "--model", str(embedded_model_path(DEFAULT_LOCAL_MODEL)),
             "--model_alias", "smollm2", "--host", "127.0.0.1", "--port", str(port),
             "--n_ctx", str(N_CTX), "--n_threads", "1", "--seed", "0"],
            stdout=out, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(url + "/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, log.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, "llama.cpp server did not start"
            time.sleep(0.25)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _direct(url: str, **extra: object) -> dict[str, object]:
    body = {"model": "smollm2", "messages": [{"role": "user", "content": QUESTION}],
            "max_tokens": 12, "temperature": 0, **extra}
    response = httpx.post(url + "/chat/completions", json=body, timeout=120)
    assert response.status_code == 200, response.text
    data: dict[str, object] = response.json()
    return data


def _config(tmp_path: Path, url: str) -> Path:
    path = tmp_path / "crossroads.yaml"
    path.write_text(
        "models:\n"
        "  - name: smol-server\n"
        "    backend: llamacpp-server\n"
        "    model: smollm2\n"
        f"    base_url: {url}\n"
        "routes:\n"
        "  - name: chat\n"
        "    deployments: [{model: smol-server}]\n",
        encoding="utf-8",
    )
    return path


def test_chat_gets_the_servers_own_answer(server: str, tmp_path: Path) -> None:
    """``crossroads chat`` streams. llama-cpp-python's server sends no usage in streams
    (it ignores ``stream_options.include_usage``), so the figures are the documented
    estimate — the prompt's estimate and one token per streamed piece — never zero."""
    direct = _direct(server)
    config = _config(tmp_path, server)
    result = runner.invoke(app, ["-c", str(config), "chat", "smol-server", QUESTION,
                                 "--max-tokens", "12", "--temperature", "0", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    text = direct["choices"][0]["message"]["content"]  # type: ignore[index]
    assert data["choices"][0]["message"]["content"] == text
    request = ChatRequest(model="smol-server", messages=[{"role": "user", "content": QUESTION}])
    assert data["usage"]["prompt_tokens"] == estimate_prompt_tokens(request)
    assert data["usage"]["completion_tokens"] == 12  # one token per piece from llama.cpp


def test_whole_answers_carry_the_servers_usage(server: str, tmp_path: Path) -> None:
    direct = _direct(server)
    with Client(str(_config(tmp_path, server))) as client:
        answer = client.chat(
            "smol-server", [{"role": "user", "content": QUESTION}], max_tokens=12, temperature=0
        )
    assert answer.choices[0].message.content == direct["choices"][0]["message"]["content"]  # type: ignore[index]
    assert answer.usage.prompt_tokens == direct["usage"]["prompt_tokens"]  # type: ignore[index]
    assert answer.usage.completion_tokens == 12


async def test_streamed_answer_equals_the_whole_one(server: str, tmp_path: Path) -> None:
    direct = _direct(server)
    text = direct["choices"][0]["message"]["content"]  # type: ignore[index]
    async with AsyncClient(str(_config(tmp_path, server))) as client:
        pieces: list[str] = []
        usage = None
        async for chunk in client.stream_chat(
            "smol-server", [{"role": "user", "content": QUESTION}], max_tokens=12, temperature=0
        ):
            pieces += [c.delta.content for c in chunk.choices if c.delta.content]
            usage = chunk.usage or usage
    assert "".join(pieces) == text
    assert len(pieces) == 12, "one piece per token"
    assert usage is not None and usage.completion_tokens == 12


def test_the_servers_context_error_is_a_context_window_error(
    server: str, tmp_path: Path
) -> None:
    client = Client(config=str(_config(tmp_path, server)))
    with pytest.raises(ContextWindowExceededError) as caught:
        client.chat("smol-server", [{"role": "user", "content": "word " * 800}], max_tokens=12)
    assert str(N_CTX) in str(caught.value)
    client.close()


def test_eval_runs_a_suite_through_the_server(server: str, tmp_path: Path) -> None:
    suite = tmp_path / "capitals.yaml"
    suite.write_text(
        "name: capitals\n"
        "scorers: [{type: contains}]\n"
        "defaults: {max_tokens: 16, temperature: 0}\n"
        "items:\n"
        "  - {input: 'What is the capital of France? One word.', expected: Paris}\n"
        "  - {input: 'What is the capital of Italy? One word.', expected: Rome}\n"
        "  - {input: 'What is 2 + 2? Answer with a number.', expected: '4'}\n",
        encoding="utf-8",
    )
    out = tmp_path / "run"
    result = runner.invoke(app, ["-c", str(_config(tmp_path, server)), "eval", str(suite),
                                 "--models", "smol-server", "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads((out / "results.json").read_text())
    items = data["items"] if "items" in data else data["results"]
    assert len(items) == 3
    assert all(not i.get("error") for i in items), items


def test_gateway_route_to_the_server_streams_with_usage(
    server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    direct = _direct(server)
    monkeypatch.setenv("CROSSROADS_MASTER_KEY", MASTER)
    config = (
        "models:\n"
        "  - name: smol-server\n"
        "    backend: llamacpp-server\n"
        "    model: smollm2\n"
        f"    base_url: {server}\n"
        "    gpu_hour_usd: 0.5\n"
        "routes:\n"
        "  - name: chat\n"
        "    deployments: [{model: smol-server}]\n"
        "gateway:\n"
        "  master_key: ${CROSSROADS_MASTER_KEY}\n"
    )
    with gateway_thread(config) as gw:
        client = openai.OpenAI(base_url=gw.v1, api_key=MASTER, max_retries=0)
        stream = client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": QUESTION}],
            max_tokens=12, temperature=0, stream=True, stream_options={"include_usage": True},
        )
        text, usage = "", None
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                text += chunk.choices[0].delta.content
            usage = chunk.usage or usage
        assert text == direct["choices"][0]["message"]["content"]  # type: ignore[index]
        assert usage is not None and usage.completion_tokens == 12  # estimated, as above
        whole = client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": QUESTION}],
            max_tokens=12, temperature=0,
        )
        assert whole.choices[0].message.content == text
        assert whole.usage is not None
        assert whole.usage.prompt_tokens == direct["usage"]["prompt_tokens"]  # type: ignore[index]
        assert whole.usage.completion_tokens == 12
        too_long = httpx.post(
            gw.v1 + "/chat/completions",
            json={"model": "chat", "messages": [{"role": "user", "content": "word " * 800}],
                  "max_tokens": 12},
            headers={"Authorization": f"Bearer {MASTER}"}, timeout=60,
        )
        assert too_long.status_code == 400, too_long.text
        assert too_long.json()["error"]["code"] == "context_length_exceeded"
        client.close()


