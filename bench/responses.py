"""The Responses API and JSON logs against Chat Completions, in one run, interleaved.

    .venv/bin/python bench/responses.py [--requests 1000] [--concurrency 16] [--rounds 3]

One fixed-latency upstream (0 ms by default: the gateway's own CPU is what is compared)
and two `crossroads serve` processes in front of it (one worker, SQLite ledger, a key
with a budget): one with the default text logs, one with ``--log-format json`` (one JSON
line per request). Each round measures, in turn: ``/v1/chat/completions`` on the text
gateway, ``/v1/responses`` on the text gateway (the same prompt as a Responses body),
and ``/v1/chat/completions`` on the JSON-log gateway. It prints requests/s and the
gateway's CPU ms per request of each cell, and the medians over the rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _loadgen import free_port, run_load
from gateway import MASTER, cpu_s, start, stop, wait_http

ROOT = Path(__file__).resolve().parent.parent
CHAT = json.dumps({"model": "bench", "max_tokens": 16,
                   "messages": [{"role": "user", "content": "Say hello"}]}).encode()
RESPONSES = json.dumps({"model": "bench", "max_output_tokens": 16, "input": "Say hello"}).encode()


def _gateway(config: Path, env: dict[str, str], log: Path, *extra: str) -> tuple[Any, int]:
    port = free_port()
    process = start([sys.executable, "-m", "crossroads", "serve", "--config", str(config),
                     "--port", str(port), "--log-level", "info", *extra], env, log)
    wait_http(f"http://127.0.0.1:{port}/health", process)
    return process, port


def _key(port: int) -> str:
    created = httpx.post(
        f"http://127.0.0.1:{port}/admin/keys",
        json={"name": "bench", "budget_usd": 1_000_000, "rpm": 10_000_000},
        headers={"Authorization": f"Bearer {MASTER}"},
    )
    created.raise_for_status()
    return str(created.json()["key"])


def _cell(port: int, path: str, body: bytes, key: str, pid: int, c: int, n: int
          ) -> tuple[float, float]:
    asyncio.run(run_load("127.0.0.1", port, path, body, concurrency=c, requests=n // 5, key=key))
    before = cpu_s(pid)
    result = asyncio.run(run_load("127.0.0.1", port, path, body, concurrency=c, requests=n,
                                  key=key))
    if result.errors:
        raise SystemExit(f"{path}: {result.errors} errors")
    return result.rps, (cpu_s(pid) - before) * 1000 / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="crossroads-bench-responses-"))
    env = {**os.environ, "CROSSROADS_MASTER_KEY": MASTER, "BENCH_UPSTREAM_KEY": "sk-upstream",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "bench"), str(ROOT / "src")])}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        up_port = free_port()
        procs.append(start(
            [sys.executable, "-c",
             "import uvicorn, _loadgen; uvicorn.run(_loadgen.upstream_app("
             f"{args.latency_ms / 1000}), host='127.0.0.1', port={up_port}, loop='uvloop', "
             "http='httptools', log_level='warning', access_log=False)"],
            env, work / "upstream.log"))
        wait_http(f"http://127.0.0.1:{up_port}/", procs[-1])
        config = work / "gateway.yaml"
        config.write_text(
            "models:\n  - name: bench\n    backend: openai\n    model: bench-model\n"
            f"    base_url: http://127.0.0.1:{up_port}/v1\n    api_key: ${{BENCH_UPSTREAM_KEY}}\n"
            "    prices: {input: 1.0, output: 2.0}\n"
            "gateway:\n  master_key: ${CROSSROADS_MASTER_KEY}\n"
        )
        text_gw, text_port = _gateway(config, {**env, "CROSSROADS_HOME": str(work / "a")},
                                      work / "text.log")
        procs.append(text_gw)
        json_gw, json_port = _gateway(config, {**env, "CROSSROADS_HOME": str(work / "b")},
                                      work / "json.log", "--log-format", "json")
        procs.append(json_gw)
        text_key, json_key = _key(text_port), _key(json_port)
        cells = {
            "chat, text logs": (text_port, "/v1/chat/completions", CHAT, text_key, text_gw.pid),
            "responses, text logs": (text_port, "/v1/responses", RESPONSES, text_key,
                                     text_gw.pid),
            "chat, json logs": (json_port, "/v1/chat/completions", CHAT, json_key, json_gw.pid),
        }
        seen: dict[str, list[tuple[float, float]]] = {name: [] for name in cells}
        c, n = args.concurrency, args.requests
        print(f"upstream {args.latency_ms:.0f} ms, concurrency {c}, {n} requests per cell\n")
        print("| round | cell | req/s | gateway CPU ms/request |\n|---|---|---|---|")
        for r in range(1, args.rounds + 1):
            for name, (port, path, body, key, pid) in cells.items():
                rps, cpu = _cell(port, path, body, key, pid, c, n)
                seen[name].append((rps, cpu))
                print(f"| {r} | {name} | {rps:.0f} | {cpu:.2f} |")
        base_rps = statistics.median(x[0] for x in seen["chat, text logs"])
        base_cpu = statistics.median(x[1] for x in seen["chat, text logs"])
        print("\n| cell | median req/s | median CPU ms/request | CPU vs chat |\n|---|---|---|---|")
        for name, values in seen.items():
            rps = statistics.median(v[0] for v in values)
            cpu = statistics.median(v[1] for v in values)
            print(f"| {name} | {rps:.0f} ({rps / base_rps:.2f}x) | {cpu:.2f} | "
                  f"{cpu / base_cpu:.2f}x |")
        lines = (work / "json.log").read_text().count('"crossroads.gateway.requests"')
        print(f"\nJSON request lines written: {lines}")
    finally:
        for process in reversed(procs):
            stop(process)


if __name__ == "__main__":
    main()
