"""The playground's overhead: gateway time per model call through the console's
``POST /ui/api/chat`` vs the same call through ``POST /v1/chat/completions``, in one run.

    PYTHONPATH=src .venv/bin/python bench/console.py [--calls 2000] [--rounds 3]

Both calls run in this process against one app (the gateway with its console mounted),
driven straight through ASGI (no sockets, so only server time is measured), streaming,
with the same virtual key (budget and RPM on, SQLite ledger) and an upstream that
answers at once in process. Calls alternate A B, B A, … so machine noise (and the
ledger's background work left by the call before) falls on both alike. The report is
the median and the 5 %-trimmed mean per call of each and their difference (target: the
console adds ≤ 2 ms). ``--profile`` prints where the console path's time goes instead.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes.instant import InstantBackend  # noqa: E402

from crossroads.config import parse_config  # noqa: E402
from crossroads.console import create_app  # noqa: E402

MASTER = "sk-bench-master-0000"
MESSAGES = [{"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Say hello"}]


async def asgi(
    app: Any, method: str, path: str, headers: dict[str, str], body: bytes = b""
) -> tuple[int, dict[str, str], bytes]:
    """One request straight through the ASGI app: status, headers (last wins), body."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
        "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
        "query_string": b"", "root_path": "", "server": ("127.0.0.1", 4000),
        "client": ("127.0.0.1", 50000),
        "headers": [(k.lower().encode(), v.encode()) for k, v in
                    {**headers, "content-length": str(len(body)), "host": "127.0.0.1"}.items()],
    }
    sent = False
    done = asyncio.Event()
    status, out_headers, chunks = 0, {}, []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            for k, v in message.get("headers", []):
                name = k.decode().lower()
                if name == "set-cookie" and name in out_headers:
                    out_headers[name] += "\n" + v.decode()
                else:
                    out_headers[name] = v.decode()
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                done.set()

    await app(scope, receive, send)
    done.set()
    return status, out_headers, b"".join(chunks)


def trimmed(times: list[float], cut: float = 0.05) -> float:
    """The mean without the fastest and slowest ``cut`` of the calls (a shared machine's
    pauses land on whichever call is running)."""
    ordered = sorted(times)
    drop = int(len(ordered) * cut)
    return statistics.fmean(ordered[drop : len(ordered) - drop])


def cookie_of(headers: dict[str, str], name: str) -> str:
    for line in headers.get("set-cookie", "").split("\n"):
        if line.startswith(name + "="):
            return line.split(";")[0].split("=", 1)[1]
    raise KeyError(name)


async def run(calls: int, rounds: int, profile: bool = False) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["CROSSROADS_HOME"] = tmp
        os.environ["CROSSROADS_MASTER_KEY"] = MASTER
        config = parse_config(
            f"database_url: sqlite:///{tmp}/bench.db\n"
            "models:\n  - name: bench\n    backend: vllm\n    model: x\n"
            "    base_url: http://127.0.0.1:9/v1\n    prices: {input: 1, output: 2}\n"
        )
        app = create_app(config)
        async with app.router.lifespan_context(app):
            target = app.gateway.router.first("bench")
            target.backend = InstantBackend(target.deployment)
            raw, _ = app.gateway.keys.create("bench", budget_usd=1000.0, rpm=10**9)
            # Log in through the console's own form, as a browser would.
            _, h, page = await asgi(app, "GET", "/ui/login", {})
            token = cookie_of(h, "crossroads_login")
            form = urlencode({"key": raw, "csrf_token": token}).encode()
            status, h, _ = await asgi(app, "POST", "/ui/login", {
                "content-type": "application/x-www-form-urlencoded",
                "cookie": f"crossroads_login={token}"}, form)
            assert status == 303, status
            session = cookie_of(h, "crossroads_session")
            _, _, page = await asgi(app, "GET", "/ui/logs", {"cookie":
                                    f"crossroads_session={session}"})
            csrf = page.decode().split('name="csrf-token" content="')[1].split('"')[0]

            direct_body = json.dumps({"model": "bench", "messages": MESSAGES, "stream": True,
                                      "stream_options": {"include_usage": True},
                                      "max_tokens": 16}).encode()
            direct_headers = {"authorization": f"Bearer {raw}",
                              "content-type": "application/json"}
            console_body = json.dumps({"model": "bench", "system": "Be brief.",
                                       "user": "Say hello", "max_tokens": 16}).encode()
            console_headers = {"cookie": f"crossroads_session={session}",
                               "x-csrf-token": csrf, "content-type": "application/json"}

            async def one(path: str, headers: dict[str, str], body: bytes) -> float:
                start = time.perf_counter()
                status, _, out = await asgi(app, "POST", path, headers, body)
                elapsed = time.perf_counter() - start
                assert status == 200 and b"The answer is 42." in out, (status, out[:300])
                return elapsed

            if profile:
                import cProfile
                import pstats

                profiler = cProfile.Profile()
                profiler.enable()
                for _ in range(calls):
                    await one("/ui/api/chat", console_headers, console_body)
                profiler.disable()
                pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)
                return
            for _ in range(200):  # warm up both paths
                await one("/v1/chat/completions", direct_headers, direct_body)
                await one("/ui/api/chat", console_headers, console_body)
            print(f"{calls} calls each, alternating; times in µs per call (server side)")
            print("round | /v1/chat/completions p50 / trimmed mean | /ui/api/chat p50 / "
                  "trimmed mean | added p50 / trimmed mean")
            for number in range(1, rounds + 1):
                direct: list[float] = []
                console: list[float] = []
                for i in range(calls):  # A B, then B A: neither always goes second
                    if i % 2:
                        console.append(await one("/ui/api/chat", console_headers,
                                                 console_body))
                    direct.append(await one("/v1/chat/completions", direct_headers,
                                            direct_body))
                    if not i % 2:
                        console.append(await one("/ui/api/chat", console_headers,
                                                 console_body))
                d50, c50 = statistics.median(direct) * 1e6, statistics.median(console) * 1e6
                dt, ct = trimmed(direct) * 1e6, trimmed(console) * 1e6
                print(f"{number} | {d50:.0f} / {dt:.0f} | {c50:.0f} / {ct:.0f} "
                      f"| {c50 - d50:+.0f} / {ct - dt:+.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    asyncio.run(run(args.calls, args.rounds, args.profile))


if __name__ == "__main__":
    main()
