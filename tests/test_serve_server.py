"""``crossroads serve --server``: uvicorn by default, Granian on request (a stream relayed
through it end to end), and a clear refusal for anything else or a missing Granian."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from typer.testing import CliRunner

from crossroads.cli.app import app

from .conftest import require
from .fakes.openai_fake import OpenAIFake
from .fakes.server import Reply
from .gateway_harness import MASTER, RunningGateway, _wait_ready, free_port

runner = CliRunner()
CONFIG = """\
models:
  - name: m
    backend: openai
    model: gpt-4o
    base_url: {url}/v1
    max_retries: 0
    prices: {{input: 1.0, output: 2.0}}
"""


@pytest.fixture
def uvicorn_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app_path, **kw: calls.append(kw))
    return calls


def _config(tmp_path: Path, url: str = "http://127.0.0.1:9") -> Path:
    path = tmp_path / "crossroads.yaml"
    path.write_text(CONFIG.format(url=url), encoding="utf-8")
    return path


def test_uvicorn_is_the_default(uvicorn_calls: list[dict[str, Any]], tmp_path: Path) -> None:
    result = runner.invoke(app, ["serve", "--config", str(_config(tmp_path))])
    assert result.exit_code == 0, result.output
    assert len(uvicorn_calls) == 1 and uvicorn_calls[0]["loop"] == "uvloop"


def test_an_unknown_server_is_refused_naming_the_choices(
    uvicorn_calls: list[dict[str, Any]],
) -> None:
    result = runner.invoke(app, ["serve", "--server", "nginx"])
    assert result.exit_code == 2, result.output
    assert "nginx" in result.stderr and "uvicorn, granian" in result.stderr
    assert uvicorn_calls == []


def test_a_missing_granian_says_how_to_install_it(
    uvicorn_calls: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "granian" else real(name, *a)
    )
    result = runner.invoke(app, ["serve", "--server", "granian"])
    assert result.exit_code == 2, result.output
    assert "pip install 'crossroads[granian]'" in " ".join(result.stderr.split())
    assert "Traceback" not in result.output and uvicorn_calls == []


@pytest.fixture
def upstream() -> Iterator[OpenAIFake]:
    with OpenAIFake(require_key=False) as fake:
        yield fake  # type: ignore[misc]


def test_granian_serves_a_stream_and_records_it(upstream: OpenAIFake, tmp_path: Path) -> None:
    require("granian", "pip install 'crossroads[granian]'")
    port = free_port()
    log = (tmp_path / "gateway.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "crossroads", "serve", "--config",
         str(_config(tmp_path, upstream.url)), "--port", str(port), "--server", "granian"],
        stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "CROSSROADS_MASTER_KEY": MASTER,
             "CROSSROADS_HOME": str(tmp_path / "home")},
    )
    gw = RunningGateway(f"http://127.0.0.1:{port}", process=process)
    try:
        _wait_ready(gw.url, process=process)
        key = gw.create_key("g", budget_usd=1)
        upstream.script(Reply("Hello through Granian.", prompt_tokens=8, completion_tokens=5))
        with httpx.stream(
            "POST", gw.v1 + "/chat/completions", timeout=30,
            json={"model": "m", "messages": [{"role": "user", "content": "hi"}],
                  "stream": True, "stream_options": {"include_usage": True}},
            headers={"Authorization": f"Bearer {key}"},
        ) as response:
            assert response.status_code == 200
            assert response.headers["server"] == "granian"
            events = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
        assert events[-1] == "[DONE]"
        chunks = [json.loads(e) for e in events[:-1]]
        text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks
                       if c["choices"])
        assert text == "Hello through Granian."
        assert chunks[-1]["usage"]["prompt_tokens"] == 8
        usage = httpx.get(gw.url + "/admin/usage", headers={"Authorization": f"Bearer {MASTER}"},
                          timeout=10)
        assert usage.status_code == 200, usage.text
        (row,) = [r for r in usage.json()["data"] if r["key"] == "g"]
        assert (row["requests"], row["prompt_tokens"], row["completion_tokens"]) == (1, 8, 5)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
