"""``crossroads serve --log-format json``: one JSON line per request with the key's name
and never the key or a body, and every other log record as JSON too."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from crossroads.gateway.json_log import JsonFormatter

from .fakes.openai_fake import OpenAIFake
from .fakes.server import Reply
from .gateway_harness import MASTER, RunningGateway, _wait_ready, free_port

BODY_MARKER = "zebra-7731-confidential"
WRONG_KEY = "sk-cr-" + "W" * 40


def _serve(config: Path, log: Path, home: Path) -> RunningGateway:
    port = free_port()
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "crossroads", "serve", "--config", str(config),
             "--port", str(port), "--log-format", "json", "--access-log"],
            stdout=out, stderr=subprocess.STDOUT,
            env={**os.environ, "CROSSROADS_MASTER_KEY": MASTER, "CROSSROADS_HOME": str(home)},
        )
    running = RunningGateway(f"http://127.0.0.1:{port}", process=process, log_path=log)
    try:
        _wait_ready(running.url, process=process)
    except BaseException:
        running.stop()
        raise
    return running


def test_json_request_lines_without_keys_or_bodies(tmp_path: Path) -> None:
    with OpenAIFake(require_key=False) as fake:
        config = tmp_path / "crossroads.yaml"
        config.write_text(
            "models:\n  - name: m\n    backend: openai\n    model: gpt-4o\n"
            f"    base_url: {fake.url}/v1\n    max_retries: 0\n"
            "gateway:\n  master_key: ${CROSSROADS_MASTER_KEY}\n"
        )
        log = tmp_path / "gateway.log"
        gw = _serve(config, log, tmp_path)
        try:
            key = gw.create_key("team")
            fake.script(Reply("fine"), Reply("fine again"))
            auth = {"Authorization": f"Bearer {key}", "x-api-key": key}
            chat = httpx.post(gw.v1 + "/chat/completions", headers=auth, timeout=30, json={
                "model": "m", "messages": [{"role": "user", "content": BODY_MARKER}]})
            responses = httpx.post(gw.v1 + "/responses", headers=auth, timeout=30, json={
                "model": "m", "input": BODY_MARKER, "instructions": key})
            refused = httpx.post(gw.v1 + "/responses", timeout=30,
                                 headers={"Authorization": f"Bearer {WRONG_KEY}"},
                                 json={"model": "m", "input": BODY_MARKER})
            leaky = httpx.get(gw.v1 + f"/models?api_key={key}", headers=auth, timeout=30)
        finally:
            gw.stop()
    assert (chat.status_code, responses.status_code, refused.status_code) == (200, 200, 401)
    assert leaky.status_code == 200
    text = log.read_text()
    for secret in (key, key[8:], MASTER, WRONG_KEY, BODY_MARKER):
        assert secret not in text
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert lines and all({"ts", "level", "logger", "message"} <= set(r) for r in lines)
    assert not [line for line in text.splitlines() if line.strip() and not line.startswith("{")
                and not line.startswith("Crossroads gateway on")]
    requests = {r["request_id"]: r for r in lines if r["logger"] == "crossroads.gateway.requests"}
    row = requests[chat.headers["x-request-id"]]
    assert (row["key"], row["model"], row["route"], row["status"]) == (
        "team", "m", "/v1/chat/completions", 200)
    assert row["latency_ms"] > 0 and row["cost_usd"] > 0 and row["deployment"] == "m"
    row = requests[responses.headers["x-request-id"]]
    assert (row["key"], row["route"], row["status"]) == ("team", "/v1/responses", 200)
    row = requests[refused.headers["x-request-id"]]
    assert (row["key"], row["status"], row["error"]) == ("-", 401, "AuthenticationError")
    access = [r for r in lines if r["logger"] == "uvicorn.access"]
    assert any("/v1/models?api_key=[redacted]" in r["message"] for r in access)


def test_the_formatter_takes_any_record_and_masks_keys() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("crossroads.test.json")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        logger.info("upstream %s failed with Bearer %s", "dep-a", "sk-abcdefghijklmnop1234",
                    extra={"attempt": 2, "deployment": "dep-a", "body": BODY_MARKER,
                           "note": "key sk-cr-ABCDEFGHIJKLMNOPQRSTUV"})
        try:
            raise ValueError("bad sk-live-0123456789abcdef")
        except ValueError:
            logger.exception("crashed")
    finally:
        logger.removeHandler(handler)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["level"] == "info" and first["logger"] == "crossroads.test.json"
    assert first["attempt"] == 2 and first["deployment"] == "dep-a"
    assert "sk-abcdefghijklmnop1234" not in first["message"] and "dep-a" in first["message"]
    assert "body" not in first and "ABCDEFGHIJKLMNOPQRSTUV" not in first["note"]
    assert second["level"] == "error" and "ValueError" in second["exc"]
    assert "0123456789abcdef" not in second["exc"]


def test_serve_refuses_an_unknown_log_format() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "crossroads", "serve", "--log-format", "yaml"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode != 0 and "text or json" in result.stderr


@pytest.fixture(autouse=True)
def _no_leftover_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CROSSROADS_LOG_FORMAT", raising=False)
