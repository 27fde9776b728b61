"""Client CPU per request: httpx's default transport vs Crossroads' FastTransport.

    .venv/bin/python bench/http_client.py [--requests 2000] [--concurrency 32] [--repeat 3]

A raw ASGI upstream under uvicorn runs in its own process and answers at once: a small
JSON body for ``POST /json``, and for ``POST /sse`` five server-sent events written one
by one (the shape of a short OpenAI stream). The same ``httpx.AsyncClient`` code drives
it with each transport, one request after another and ``--concurrency`` at a time;
JSON answers are decoded, streams are read with ``aiter_lines`` as ``backends/_http.py``
does. Reported: client CPU (``time.process_time``) per request in µs and requests/s,
medians over ``--repeat`` interleaved rounds (the machine is shared: compare only rows
from the same run).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _loadgen import free_port  # noqa: E402
from crossroads.backends._fasthttp import FastTransport  # noqa: E402

SERVER = """
import uvicorn
CHUNK = (b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,'
         b'"model":"m","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}'
         b'\\n\\n')
JSON = (b'{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"m","choices":'
        b'[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],'
        b'"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}')

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    if scope["path"] == "/sse":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})
        for _ in range(4):
            await send({"type": "http.response.body", "body": CHUNK, "more_body": True})
        await send({"type": "http.response.body", "body": b"data: [DONE]\\n\\n"})
    else:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": JSON})

uvicorn.run(app, host="127.0.0.1", port=%d, log_level="warning", access_log=False)
"""

BODY = {"model": "m", "messages": [{"role": "user", "content": "Say hi"}], "stream": True}
LIMITS = httpx.Limits(max_connections=200, max_keepalive_connections=50)


def make_client(kind: str) -> httpx.AsyncClient:
    if kind == "httpx":
        return httpx.AsyncClient(timeout=60.0, limits=LIMITS)
    return httpx.AsyncClient(transport=FastTransport(limits=LIMITS), timeout=60.0)


async def post_json(client: httpx.AsyncClient, base: str) -> None:
    response = await client.post(base + "/json", json=BODY)
    response.json()


async def post_sse(client: httpx.AsyncClient, base: str) -> None:
    async with client.stream("POST", base + "/sse", json=BODY) as response:
        async for _ in response.aiter_lines():
            pass


async def measure(
    kind: str,
    call: Callable[[httpx.AsyncClient, str], Awaitable[None]],
    base: str,
    requests: int,
    concurrency: int,
) -> tuple[float, float]:
    """(client CPU µs per request, requests per second)."""
    async with make_client(kind) as client:
        for _ in range(50):  # warm-up: connections opened, code paths hot
            await call(client, base)
        remaining = iter(range(requests))

        async def worker() -> None:
            for _ in remaining:
                await call(client, base)

        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return cpu / requests * 1e6, requests / wall


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER % port])
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        calls = {"POST json": post_json, "POST + SSE": post_sse}
        rows: dict[tuple[str, str, int], list[tuple[float, float]]] = {}
        for _ in range(args.repeat):
            for name, call in calls.items():
                for concurrency in (1, args.concurrency):
                    for kind in ("httpx", "fast"):
                        result = asyncio.run(measure(kind, call, base, args.requests, concurrency))
                        rows.setdefault((name, kind, concurrency), []).append(result)
    finally:
        server.terminate()
        server.wait()
    print(
        f"{args.requests} requests per cell, median of {args.repeat} interleaved rounds "
        "(client process only)"
    )
    print(f"{'workload':<12} {'conc':>4} {'transport':<13} {'CPU µs/req':>11} {'req/s':>8}")
    for (name, kind, concurrency), results in rows.items():
        cpu = statistics.median(r[0] for r in results)
        rate = statistics.median(r[1] for r in results)
        label = "httpx" if kind == "httpx" else "FastTransport"
        print(f"{name:<12} {concurrency:>4} {label:<13} {cpu:>11.0f} {rate:>8.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
