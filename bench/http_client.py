"""Which transport under HTTPTransport: FastTransport vs httpx-aiohttp vs plain httpx.

    .venv/bin/python bench/http_client.py [--requests 2000] [--eval-requests 1000] [--repeat 3]

Every backend call goes through ``HTTPTransport`` (``backends/_http.py``), which hands
each POST to its client's transport (``_send_direct``). This runs the same
``HTTPTransport.post_json`` / ``stream_sse`` calls over three transports:

- ``httpx``: httpx's own ``AsyncHTTPTransport`` (httpcore, anyio, h11): the baseline;
- ``httpx-aiohttp``: ``httpx_aiohttp.AiohttpTransport`` (PyPI ``httpx-aiohttp``, an
  httpx transport on aiohttp's connection pool and C parser);
- ``FastTransport``: Crossroads' own (asyncio protocols + httptools), the default.

A raw ASGI upstream under uvicorn (uvloop, httptools) runs in its own process. Workloads:

- gateway JSON / gateway SSE: what ``crossroads serve`` does under load, on uvloop as the
  gateway runs: ``--concurrency`` (64) concurrent small Chat Completions POSTs answered
  at once, as JSON or as a stream of 20 SSE chunks plus ``[DONE]``;
- eval: what ``bench/eval_runner.py`` drives, on the default asyncio loop: JSON POSTs
  at concurrency 32 to an upstream that answers after 50 ms.

Reported per cell: client CPU (``time.process_time``, this process only) per request and
requests/s, medians of ``--repeat`` interleaved rounds, and both as ratios to httpx in
the same round (the machine is shared: compare only figures from one run).
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
import uvloop

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _loadgen import UPSTREAM_BODY, free_port  # noqa: E402
from crossroads.backends._fasthttp import FastTransport  # noqa: E402
from crossroads.backends._http import HTTPTransport  # noqa: E402
from crossroads.errors import APIError  # noqa: E402

SERVER = """
import asyncio, uvicorn
JSON = %r
CHUNK = (b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,'
         b'"model":"m","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}'
         b'\\n\\n')

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    if scope["path"].startswith("/slow"):
        await asyncio.sleep(0.05)
    if scope["path"].endswith("/sse"):
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})
        for _ in range(20):
            await send({"type": "http.response.body", "body": CHUNK, "more_body": True})
        await send({"type": "http.response.body", "body": b"data: [DONE]\\n\\n"})
    else:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": JSON})

uvicorn.run(app, host="127.0.0.1", port=%d, loop="uvloop", http="httptools",
            log_level="warning", access_log=False)
"""

BODY = {"model": "m", "messages": [{"role": "user", "content": "Say hi"}], "max_tokens": 16}
LIMITS = httpx.Limits(max_connections=200, max_keepalive_connections=50)
TRANSPORTS = ("httpx", "httpx-aiohttp", "FastTransport")
Call = Callable[[HTTPTransport], Awaitable[None]]


def make_transport(kind: str) -> httpx.AsyncBaseTransport:
    if kind == "FastTransport":
        return FastTransport(limits=LIMITS)
    if kind == "httpx-aiohttp":
        from httpx_aiohttp import AiohttpTransport

        return AiohttpTransport(limits=LIMITS)
    return httpx.AsyncHTTPTransport(limits=LIMITS)


async def post_json(http: HTTPTransport) -> None:
    await http.post_json("/json", BODY)


async def post_slow_json(http: HTTPTransport) -> None:
    await http.post_json("/slow/json", BODY)


async def stream(http: HTTPTransport) -> None:
    events = 0
    async for _ in http.stream_sse("/sse", {**BODY, "stream": True}):
        events += 1
    if events != 21:
        raise RuntimeError(f"{events} events")


async def measure(
    kind: str, call: Call, base: str, requests: int, concurrency: int
) -> tuple[float, float]:
    """(client CPU µs per request, requests per second) for one transport."""
    client = httpx.AsyncClient(transport=make_transport(kind))
    http = HTTPTransport(
        vendor="bench",
        base_url=base,
        headers={"authorization": "Bearer sk-bench"},
        error_mapper=lambda status, body, headers: APIError(f"{status}: {body}"),
        client=client,
    )
    try:
        for _ in range(2):  # warm-up: the pool's connections open, code paths hot
            await asyncio.gather(*(call(http) for _ in range(concurrency)))
        remaining = iter(range(requests))

        async def worker() -> None:
            for _ in remaining:
                await call(http)

        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    finally:
        await client.aclose()
    return cpu / requests * 1e6, requests / wall


def wait_for(port: int) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--eval-requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER % (UPSTREAM_BODY, port)])
    base = f"http://127.0.0.1:{port}"
    # (name, call, requests, concurrency, loop)
    workloads: list[tuple[str, Call, int, int, Callable[[], asyncio.AbstractEventLoop]]] = [
        ("gateway JSON", post_json, args.requests, args.concurrency, uvloop.new_event_loop),
        ("gateway SSE", stream, args.requests, args.concurrency, uvloop.new_event_loop),
        ("eval (50 ms)", post_slow_json, args.eval_requests, 32, asyncio.new_event_loop),
    ]
    rows: dict[tuple[str, str], list[tuple[float, float, float, float]]] = {}
    try:
        wait_for(port)
        for _ in range(args.repeat):
            for name, call, requests, concurrency, loop in workloads:
                results: dict[str, tuple[float, float]] = {}
                for kind in TRANSPORTS:
                    with asyncio.Runner(loop_factory=loop) as runner:
                        results[kind] = runner.run(measure(kind, call, base, requests, concurrency))
                cpu_base, rate_base = results["httpx"]
                for kind, (cpu, rate) in results.items():
                    rows.setdefault((name, kind), []).append(
                        (cpu, rate, cpu / cpu_base, rate / rate_base)
                    )
    finally:
        server.terminate()
        server.wait()
    print(
        f"{args.requests} requests per gateway cell (concurrency {args.concurrency}), "
        f"{args.eval_requests} per eval cell (concurrency 32); medians of {args.repeat} "
        "interleaved rounds; ratios to httpx in the same round"
    )
    print(
        f"{'workload':<13} {'transport':<14} {'CPU µs/req':>10} {'req/s':>7} "
        f"{'CPU ratio':>9} {'req/s ratio':>11}"
    )
    for (name, kind), results in rows.items():
        cpu, rate, cpu_ratio, rate_ratio = (
            statistics.median(r[i] for r in results) for i in range(4)
        )
        print(
            f"{name:<13} {kind:<14} {cpu:>10.0f} {rate:>7.0f} {cpu_ratio:>9.2f} {rate_ratio:>11.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
