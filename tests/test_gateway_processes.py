"""`crossroads serve` as real processes: kill -9, SIGTERM, two replicas sharing
PostgreSQL and Redis, and no raw key anywhere afterwards."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from crossroads.store import open_database, usage_ledger

from .fakes.openai_fake import OpenAIFake
from .fakes.server import Reply
from .gateway_harness import free_port, start_process

USER = [{"role": "user", "content": "hi"}]
# each kill-test worker stops after this many requests (50 are needed before the kill)
MAX_REQUESTS_PER_WORKER = 1000


@pytest.fixture
def upstream() -> Iterator[OpenAIFake]:
    with OpenAIFake(require_key=False) as fake:
        yield fake  # type: ignore[misc]


def _config(path: Path, upstream: OpenAIFake, extra: str = "") -> Path:
    path.write_text(
        "models:\n  - name: m\n    backend: openai\n    model: gpt-4o\n"
        f"    base_url: {upstream.url}/v1\n    max_retries: 0\n"
        "    prices: {input: 10.0, output: 30.0}\n"
        "gateway:\n  master_key: ${CROSSROADS_MASTER_KEY}\n" + extra,
        encoding="utf-8",
    )
    return path


def _scan_for(raw_keys: list[str], *paths: Path) -> list[str]:
    found = []
    for path in paths:
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        for file in files:
            data = file.read_bytes()
            found += [f"{file}" for k in raw_keys if k.encode() in data]
    return found


def test_kill_9_loses_no_completed_response(upstream: OpenAIFake, tmp_path: Path) -> None:
    upstream.responder = lambda _: Reply("ok", delay_s=0.01)
    config = _config(tmp_path / "gw.yaml", upstream)
    gw = start_process(config, tmp_path / "gw.log")
    completed: list[str] = []
    try:
        key = gw.create_key("load")

        async def load() -> None:
            async with httpx.AsyncClient(timeout=10) as client:
                async def worker() -> None:
                    # bounded: a gateway that never dies must not keep the test running forever
                    for _ in range(MAX_REQUESTS_PER_WORKER):
                        try:
                            r = await client.post(
                                gw.v1 + "/chat/completions",
                                json={"model": "m", "messages": USER},
                                headers={"Authorization": f"Bearer {key}"},
                            )
                        except httpx.HTTPError:
                            return
                        if r.status_code == 200 and r.json()["choices"]:
                            completed.append(r.headers["x-request-id"])

                workers = [asyncio.create_task(worker()) for _ in range(16)]
                deadline = time.monotonic() + 60
                while len(completed) < 50 and time.monotonic() < deadline:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)  # kill it while requests are in flight
                assert gw.process is not None
                os.kill(gw.process.pid, signal.SIGKILL)
                await asyncio.gather(*workers)

        asyncio.run(load())
        assert gw.process is not None
        gw.process.wait(10)
    finally:
        gw.stop()
    assert len(completed) >= 50
    with open_database() as db, db.engine.connect() as conn:
        recorded = set(conn.scalars(select(usage_ledger.c.request_id)))
    missing = [rid for rid in completed if rid not in recorded]
    assert missing == []
    # a restarted gateway serves on from the same ledger
    again = start_process(config, tmp_path / "gw2.log")
    try:
        r = httpx.post(again.v1 + "/chat/completions", json={"model": "m", "messages": USER},
                       headers={"Authorization": f"Bearer {key}"}, timeout=10)
        assert r.status_code == 200
    finally:
        again.stop()
    assert _scan_for([key], tmp_path, Path(os.environ["CROSSROADS_HOME"])) == []


def test_sigterm_drains_an_open_stream(upstream: OpenAIFake, tmp_path: Path) -> None:
    upstream.script(Reply("a b c d e f g h i j k l m n o p", delay_s=0.0))
    gw = start_process(_config(tmp_path / "gw.yaml", upstream), tmp_path / "gw.log")
    try:
        key = gw.create_key("k")
        with httpx.stream(
            "POST", gw.v1 + "/chat/completions",
            json={"model": "m", "messages": USER, "stream": True},
            headers={"Authorization": f"Bearer {key}"}, timeout=30,
        ) as response:
            request_id = response.headers["x-request-id"]
            lines = response.iter_lines()
            first = next(line for line in lines if line.startswith("data: "))
            assert gw.process is not None
            gw.process.send_signal(signal.SIGTERM)
            rest = [line for line in lines if line.startswith("data: ")]
        assert first and rest[-1] == "data: [DONE]"
        # uvicorn re-raises the signal after its graceful shutdown: -SIGTERM, not a crash
        assert gw.process.wait(30) in (0, -signal.SIGTERM)
    finally:
        gw.stop()
    assert "Finished server process" in (tmp_path / "gw.log").read_text()
    with open_database() as db, db.engine.connect() as conn:
        status = conn.scalar(
            select(usage_ledger.c.status).where(usage_ledger.c.request_id == request_id)
        )
    assert status == 200


def test_two_replicas_share_one_budget(
    upstream: OpenAIFake, tmp_path: Path, postgres_url: str, redis_url: str
) -> None:
    upstream.responder = lambda _: Reply("ok", prompt_tokens=11, completion_tokens=7, delay_s=0.02)
    extra = f"  redis_url: {redis_url}\n"
    config = _config(tmp_path / "gw.yaml", upstream, extra)
    config.write_text(config.read_text() + f"database_url: {postgres_url}\n")
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    a = start_process(config, logs[0])
    b = start_process(config, logs[1], port=free_port())
    budget = 0.01
    name = f"race-{uuid.uuid4().hex[:8]}"
    try:
        key = a.create_key(name, budget_usd=budget)

        async def burst() -> list[httpx.Response]:
            async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=200)) as c:
                return list(await asyncio.gather(*(
                    c.post((a if i % 2 else b).v1 + "/chat/completions",
                           json={"model": "m", "messages": USER, "max_tokens": 100},
                           headers={"Authorization": f"Bearer {key}"})
                    for i in range(200)
                )))

        responses = asyncio.run(burst())
    finally:
        a.stop()
        b.stop()
    ok = [r for r in responses if r.status_code == 200]
    quota = [r for r in responses if r.status_code == 429]
    assert ok and quota and len(ok) + len(quota) == 200
    assert all(r.json()["error"]["code"] == "insufficient_quota" for r in quota)
    # one request's maximum: ~4 prompt tokens × $10 + 100 × $30 per 1M
    max_cost = (10 * 10 + 100 * 30) / 1e6
    with open_database(postgres_url) as db, db.engine.connect() as conn:
        spent = sum(conn.scalars(
            select(usage_ledger.c.cost_usd).where(usage_ledger.c.key_name == name)
        ))
        stored = json.dumps([list(r) for r in conn.execute(select(usage_ledger))], default=str)
    assert spent <= budget + max_cost
    assert len(ok) * (11 * 10 + 7 * 30) / 1e6 == pytest.approx(spent)
    assert key not in stored
    assert _scan_for([key], *logs) == []


def test_startup_names_a_bad_config(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: []\nroutes:\n  - name: x\n    strategy: fastest\n")
    with pytest.raises(RuntimeError):
        start_process(bad, tmp_path / "bad.log")
    log = (tmp_path / "bad.log").read_text()
    assert "bad.yaml:4" in log and "strategy" in log
    time.sleep(0)
