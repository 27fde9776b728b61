"""A lean HTTP/1.1 load generator and a fixed-latency upstream, for gateway benchmarks.

The load generator keeps one keep-alive connection per concurrent client on raw asyncio
streams (no HTTP library), so that on a 2-core machine it costs far less CPU than the
servers it measures. The upstream answers Chat Completions after a fixed delay.
"""

from __future__ import annotations

import asyncio
import json
import socket
import statistics
import time
from dataclasses import dataclass, field

UPSTREAM_BODY = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "bench-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello from the upstream."},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 6, "total_tokens": 18},
    }
).encode()


def free_port() -> int:
    """A loopback TCP port that was free a moment ago (for the benchmarks' servers)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stream_events(chunks: int) -> list[bytes]:
    """The server-sent events of a streamed answer of ``chunks`` content deltas, as
    OpenAI sends them (compact JSON, a usage chunk, ``[DONE]``)."""

    def event(choices: list[dict[str, object]], **extra: object) -> bytes:
        data = {
            "id": "chatcmpl-bench",
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": "bench-model",
            "choices": choices,
            **extra,
        }
        return b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"

    def delta(content: str, finish: str | None = None) -> list[dict[str, object]]:
        return [{"index": 0, "delta": {"content": content}, "logprobs": None,
                 "finish_reason": finish}]

    events = [event([{"index": 0, "delta": {"role": "assistant", "content": ""},
                      "logprobs": None, "finish_reason": None}])]
    events += [event(delta(f" word{i}")) for i in range(chunks)]
    events.append(event(delta("", "stop")))
    usage = {"prompt_tokens": 12, "completion_tokens": chunks, "total_tokens": 12 + chunks}
    events.append(event([], usage=usage))
    events.append(b"data: [DONE]\n\n")
    return events


def upstream_app(latency_s: float, chunks: int = 20, gap_s: float = 0.0):  # type: ignore[no-untyped-def]
    """A raw ASGI Chat Completions upstream that waits ``latency_s`` per request; a
    streamed request (``"stream": true`` in the body) gets ``chunks`` content deltas
    after that wait, each its own write, ``gap_s`` apart."""
    events = stream_events(chunks)

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        more = True
        body = b""
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        await asyncio.sleep(latency_s)
        if b'"stream":true' in body.replace(b" ", b""):
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"text/event-stream")]})
            for data in events:
                await send({"type": "http.response.body", "body": data, "more_body": True})
                await asyncio.sleep(gap_s)
            await send({"type": "http.response.body", "body": b""})
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": UPSTREAM_BODY})

    return app


def bare_proxy_app(upstream: str):  # type: ignore[no-untyped-def]
    """The floor for any Python gateway: a raw ASGI app that forwards the body to
    ``upstream`` with the gateway's own HTTP client and returns the answer; no parsing,
    keys, limits, ledger or metrics. It shows what uvicorn plus one upstream call cost
    on this machine, measured in the same run as the gateway."""
    import httpx

    from crossroads.backends._fasthttp import FastTransport

    client = httpx.AsyncClient(transport=FastTransport(), timeout=30)
    headers = {"content-type": "application/json", "authorization": "Bearer sk-upstream"}

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if b'"stream":true' in body.replace(b" ", b""):  # relayed as it arrives
            async with client.stream("POST", upstream, content=body, headers=headers) as answer:
                await send({"type": "http.response.start", "status": answer.status_code,
                            "headers": [(b"content-type", b"text/event-stream")]})
                async for part in answer.aiter_raw():
                    await send({"type": "http.response.body", "body": part, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            return
        answer = await client.post(upstream, content=body, headers=headers)
        await send(
            {
                "type": "http.response.start",
                "status": answer.status_code,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": answer.content})

    return app


@dataclass
class LoadResult:
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]
    #: Time to the first body bytes of each answer (the first event of a stream).
    ttft_ms: list[float] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def pct(self, q: float) -> float:
        data = sorted(self.latencies_ms)
        if not data:
            return float("nan")
        return data[min(len(data) - 1, int(q * len(data)))]

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies_ms) if self.latencies_ms else float("nan")

    @property
    def ttft_p50(self) -> float:
        return statistics.median(self.ttft_ms) if self.ttft_ms else float("nan")


def _request_bytes(host: str, port: int, path: str, body: bytes, key: str | None) -> bytes:
    auth = f"Authorization: Bearer {key}\r\n" if key else ""
    return (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"{auth}Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def _read_response(
    reader: asyncio.StreamReader, first: list[float] | None = None
) -> int:
    """The status of one answer, read to its end; with ``first``, the time its first
    body bytes arrived is appended to it."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    chunked = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        lname = name.strip().lower()
        if lname == b"content-length":
            length = int(value)
        elif lname == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            if first is not None and size and not first:
                first.append(time.perf_counter())
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        if first is not None:
            first.append(time.perf_counter())
        await reader.readexactly(length)
    return status


REQUEST_TIMEOUT_S = 30.0


async def run_load(
    host: str,
    port: int,
    path: str,
    body: bytes,
    *,
    concurrency: int,
    requests: int,
    key: str | None = None,
    request_timeout_s: float = REQUEST_TIMEOUT_S,
) -> LoadResult:
    """``requests`` POSTs from ``concurrency`` keep-alive connections.

    Each request (and each connect) is bounded by ``request_timeout_s``: a request that
    runs past it counts as an error and its connection, left mid-answer, is replaced.
    """
    payload = _request_bytes(host, port, path, body, key)
    latencies: list[float] = []
    ttfts: list[float] = []
    errors = 0
    remaining = requests

    async def connect() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        async with asyncio.timeout(request_timeout_s):
            return await asyncio.open_connection(host, port)

    async def client() -> None:
        nonlocal remaining, errors
        reader, writer = await connect()
        try:
            while remaining > 0:
                remaining -= 1
                start = time.perf_counter()
                first: list[float] = []
                try:
                    async with asyncio.timeout(request_timeout_s):
                        writer.write(payload)
                        status = await _read_response(reader, first)
                except TimeoutError:
                    errors += 1
                    writer.close()
                    reader, writer = await connect()
                    continue
                latencies.append((time.perf_counter() - start) * 1000)
                if first:
                    ttfts.append((first[0] - start) * 1000)
                if status != 200:
                    errors += 1
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return LoadResult(requests, errors, time.perf_counter() - start, latencies, ttfts)
