"""``crossroads serve --workers 2``: two processes behind one port.

Limits and reservations are shared through Redis, ``/metrics`` adds up both workers'
counters (Prometheus multiprocess mode), both write the same SQLite ledger, and SIGTERM
lets the streams in flight on both finish.
"""

from __future__ import annotations

import asyncio
import re
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from crossroads.store import open_database, usage_ledger

from .fakes.openai_fake import OpenAIFake
from .fakes.server import Reply
from .gateway_harness import MASTER, RunningGateway, start_process

USER = [{"role": "user", "content": "hi"}]
WORKERS = ("--workers", "2")


@pytest.fixture
def upstream() -> Iterator[OpenAIFake]:
    with OpenAIFake(require_key=False) as fake:
        yield fake


def _config(path: Path, upstream: OpenAIFake, extra: str = "") -> Path:
    path.write_text(
        "models:\n  - name: m\n    backend: openai\n    model: gpt-4o\n"
        f"    base_url: {upstream.url}/v1\n    max_retries: 0\n"
        "    prices: {input: 10.0, output: 30.0}\n"
        "gateway:\n  master_key: ${CROSSROADS_MASTER_KEY}\n" + extra,
        encoding="utf-8",
    )
    return path


def _requests_counted(gw: RunningGateway, key_name: str) -> float:
    scrape = httpx.get(gw.url + "/metrics", headers={"Authorization": f"Bearer {MASTER}"},
                       timeout=10)
    assert scrape.status_code == 200, scrape.text
    pattern = re.compile(
        r'^crossroads_requests_total\{[^}]*key="' + re.escape(key_name) + r'"[^}]*\} (\S+)$',
        re.M,
    )
    return sum(float(v) for v in pattern.findall(scrape.text))


async def _burst(url: str, key: str, n: int, **body: object) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=0)  # new connections
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        return list(await asyncio.gather(*(
            client.post(url + "/chat/completions",
                        json={"model": "m", "messages": USER, **body},
                        headers={"Authorization": f"Bearer {key}"})
            for _ in range(n)
        )))


def test_metrics_count_each_request_once_across_workers(
    upstream: OpenAIFake, tmp_path: Path
) -> None:
    upstream.responder = lambda _: Reply("ok", delay_s=0.02)
    gw = start_process(_config(tmp_path / "gw.yaml", upstream), tmp_path / "gw.log",
                       args=WORKERS)
    try:
        key = gw.create_key("counted")
        responses = asyncio.run(_burst(gw.v1, key, 60))
        assert [r.status_code for r in responses] == [200] * 60
        # every scrape, whichever worker answers it, sees all 60 exactly once
        for _ in range(6):
            assert _requests_counted(gw, "counted") == 60
    finally:
        gw.stop()
    log = (tmp_path / "gw.log").read_text()
    assert log.count("Started server process") == 2, log[-2000:]
    # both workers wrote the one SQLite ledger: every request once
    with open_database() as db, db.engine.connect() as conn:
        rows = conn.scalar(
            select(func.count())
            .select_from(usage_ledger)
            .where(usage_ledger.c.key_name == "counted")
        )
    assert rows == 60


def test_a_budget_holds_across_two_workers(
    upstream: OpenAIFake, tmp_path: Path, redis_url: str
) -> None:
    upstream.responder = lambda _: Reply("ok", prompt_tokens=11, completion_tokens=7, delay_s=0.02)
    # a generous Redis deadline: 200 requests at once on a 2-core CI machine
    config = _config(
        tmp_path / "gw.yaml", upstream, f"  redis_url: {redis_url}\n  redis_timeout_s: 10\n"
    )
    gw = start_process(config, tmp_path / "gw.log", args=WORKERS)
    budget = 0.01
    name = f"race-{uuid.uuid4().hex[:8]}"
    try:
        key = gw.create_key(name, budget_usd=budget)
        responses = asyncio.run(_burst(gw.v1, key, 200, max_tokens=100))
    finally:
        gw.stop()
    ok = [r for r in responses if r.status_code == 200]
    quota = [r for r in responses if r.status_code == 429]
    assert ok and quota and len(ok) + len(quota) == 200
    assert all(r.json()["error"]["code"] == "insufficient_quota" for r in quota)
    with open_database() as db, db.engine.connect() as conn:
        spent = sum(conn.scalars(
            select(usage_ledger.c.cost_usd).where(usage_ledger.c.key_name == name)
        ))
    # one request's most: its prompt's upper bound (a few bytes) and 100 output tokens
    one_request_max = (100 * 10 + 100 * 30) / 1e6
    assert spent <= budget + one_request_max
    assert spent == pytest.approx(len(ok) * (11 * 10 + 7 * 30) / 1e6)


def test_sigterm_lets_streams_on_both_workers_finish(
    upstream: OpenAIFake, tmp_path: Path
) -> None:
    words = " ".join(f"w{i}" for i in range(20))
    upstream.responder = lambda _: Reply(words, chunk_delay_s=0.1)  # a 2-second stream
    gw = start_process(_config(tmp_path / "gw.yaml", upstream), tmp_path / "gw.log",
                       args=WORKERS)
    key = gw.create_key("drain")

    async def streams() -> list[tuple[str, list[str]]]:
        started = asyncio.Event()
        opened = 0

        async def one(client: httpx.AsyncClient) -> tuple[str, list[str]]:
            nonlocal opened
            async with client.stream(
                "POST", gw.v1 + "/chat/completions",
                json={"model": "m", "messages": USER, "stream": True},
                headers={"Authorization": f"Bearer {key}"},
            ) as response:
                lines: list[str] = []
                async for line in response.aiter_lines():
                    if line.startswith("data: "):
                        lines.append(line)
                        if len(lines) == 2:
                            opened += 1
                            if opened == 8:
                                started.set()
                return response.headers["x-request-id"], lines

        limits = httpx.Limits(max_connections=8, max_keepalive_connections=0)
        async with httpx.AsyncClient(timeout=60, limits=limits) as client:
            tasks = [asyncio.create_task(one(client)) for _ in range(8)]
            await asyncio.wait_for(started.wait(), 30)
            assert gw.process is not None
            gw.process.send_signal(signal.SIGTERM)  # to the supervisor, as systemd would
            return list(await asyncio.gather(*tasks))

    try:
        finished = asyncio.run(streams())
        assert gw.process is not None
        assert gw.process.wait(60) in (0, -signal.SIGTERM)
    finally:
        gw.stop()
    for _, lines in finished:
        assert lines[-1] == "data: [DONE]"
        content = "".join(re.findall(r'"content": ?"([^"]*)"', "".join(lines)))
        assert content.split() == words.split()
    with open_database() as db, db.engine.connect() as conn:
        statuses = {
            r.request_id: r.status
            for r in conn.execute(select(usage_ledger.c.request_id, usage_ledger.c.status)
                                  .where(usage_ledger.c.key_name == "drain"))
        }
    assert statuses == {request_id: 200 for request_id, _ in finished}
    log = (tmp_path / "gw.log").read_text()
    assert log.count("Finished server process") == 2, log[-2000:]
