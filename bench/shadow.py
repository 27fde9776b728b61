"""Shadow evaluation's cost on the production path: a gateway with a shadow rule at
``sample: 1.0`` against the same gateway with no rule, in the same run.

    PYTHONPATH=src .venv/bin/python bench/shadow.py [--latency-ms 20] [--requests 1000]
                                                    [--concurrency 16] [--rounds 3]

1. **In-path CPU** of the hook, in process: what a finished request pays before its
   answer goes back (rule lookup, the sampling hash, the exchange and its ``put_nowait``)
   — :meth:`GatewayShadow.offer` timed over many calls, for a model no rule matches and
   for a sampled one; and the stream tap per chunk.
2. **Live**: two ``crossroads serve`` processes (SQLite ledger, a virtual key with a
   budget and an RPM limit) in front of one fixed-latency upstream; the shadowed one
   copies every request to a candidate on a second upstream (scorer ``exact``, so the
   background work is the candidate call, the scoring and the run-store writes). For
   ``--rounds`` interleaved rounds: client p50/p99 and the gateway process's CPU per
   request (which includes the background copy: a second upstream call per request).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _loadgen import free_port, run_load
from gateway import BODY, MASTER, cpu_s, start, stop, wait_http

ROOT = Path(__file__).resolve().parent.parent


def in_path_us(iterations: int) -> dict[str, float]:
    """Microseconds per call of the hook, in process (no I/O)."""
    from crossroads.config import parse_config
    from crossroads.gateway.call import Call
    from crossroads.gateway.ledger import UsageRecord
    from crossroads.gateway.shadowing import GatewayShadow
    from crossroads.store import open_database
    from crossroads.types import ChatChunk, ChatRequest, ChatResponse

    work = Path(tempfile.mkdtemp(prefix="crossroads-bench-shadow-"))
    config = parse_config(
        "shadow:\n  - {name: b, match: bench, candidates: [cand], sample: 1.0, "
        f"max_queue: {iterations + 10}, scorers: [{{type: exact}}]}}\n"
    )

    class _Gateway:  # what GatewayShadow reads off the gateway
        def __init__(self) -> None:
            from crossroads.gateway.metrics import Metrics

            self.config = config
            self.db = open_database(url=f"sqlite:///{work / 'db.sqlite'}")
            self.metrics = Metrics()

    request = ChatRequest.model_validate(
        {"model": "bench", "messages": [{"role": "user", "content": "Say hello"}]}
    )
    response = ChatResponse.model_validate(
        {"model": "bench", "choices": [{"index": 0, "message": {"role": "assistant",
         "content": "Hello there"}, "finish_reason": "stop"}],
         "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}}
    )  # fmt: skip
    results: dict[str, float] = {}

    async def run() -> None:
        shadow = GatewayShadow(_Gateway())  # type: ignore[arg-type]
        for model in ("other", "bench"):
            calls = [
                Call(protocol="openai", endpoint="/v1/chat/completions", model=model,
                     request=request)
                for _ in range(iterations)
            ]  # fmt: skip
            record = UsageRecord(request_id="r", model=model, endpoint="x", status=200)
            started = time.perf_counter()
            for call in calls:
                shadow.offer(call, record, response)
            results[f"offer, {'no rule matches' if model == 'other' else 'sampled'}"] = (
                (time.perf_counter() - started) / iterations * 1e6
            )
        chunks = [
            ChatChunk.model_validate(
                {"id": "c", "model": "bench",
                 "choices": [{"index": 0, "delta": {"content": "tok "}}]}
            )
            for _ in range(iterations)
        ]  # fmt: skip

        async def source():  # type: ignore[no-untyped-def]
            for chunk in chunks:
                yield chunk

        started = time.perf_counter()
        async for _ in source():
            pass
        bare = time.perf_counter() - started
        call = Call(protocol="openai", endpoint="/v1/chat/completions", model="bench")
        started = time.perf_counter()
        async for _ in shadow.tap(call, source()):
            pass
        results["stream tap, per chunk"] = (time.perf_counter() - started - bare) / iterations * 1e6
        await shadow.dispatcher.aclose()

    asyncio.run(run())
    shutil.rmtree(work, ignore_errors=True)
    return results


def _gateway(work: Path, name: str, up_port: int, cand_port: int, shadow: bool,
             env: dict[str, str]) -> tuple[object, int, str]:
    config = work / f"{name}.yaml"
    text = (
        "models:\n"
        "  - name: bench\n    backend: openai\n    model: bench-model\n"
        f"    base_url: http://127.0.0.1:{up_port}/v1\n    api_key: ${{BENCH_UPSTREAM_KEY}}\n"
        "    prices: {input: 1.0, output: 2.0}\n"
        "  - name: cand\n    backend: openai\n    model: cand-model\n"
        f"    base_url: http://127.0.0.1:{cand_port}/v1\n    api_key: ${{BENCH_UPSTREAM_KEY}}\n"
        "    prices: {input: 0.1, output: 0.1}\n"
        "gateway:\n  master_key: ${CROSSROADS_MASTER_KEY}\n"
    )
    if shadow:
        text += (
            "shadow:\n  - {name: bench, match: bench, candidates: [cand], sample: 1.0, "
            "max_concurrency: 4, scorers: [{type: exact}]}\n"
        )
    config.write_text(text)
    port = free_port()
    home_env = {**env, "CROSSROADS_HOME": str(work / name)}
    process = start(
        [sys.executable, "-m", "crossroads", "serve", "--config", str(config), "--port",
         str(port), "--log-level", "warning"],
        home_env, work / f"{name}.log",
    )  # fmt: skip
    wait_http(f"http://127.0.0.1:{port}/health", process)
    created = httpx.post(
        f"http://127.0.0.1:{port}/admin/keys",
        json={"name": "bench", "budget_usd": 1_000_000, "rpm": 10_000_000},
        headers={"Authorization": f"Bearer {MASTER}"},
    )
    created.raise_for_status()
    return process, port, created.json()["key"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=50_000)
    args = parser.parse_args()

    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n\nIn-path hook (in process):\n")
    for what, us in in_path_us(args.iterations).items():
        print(f"  {what}: {us:.2f} µs")

    work = Path(tempfile.mkdtemp(prefix="crossroads-bench-shadow-"))
    env = {**os.environ, "CROSSROADS_MASTER_KEY": MASTER, "BENCH_UPSTREAM_KEY": "sk-upstream",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "bench"), str(ROOT / "src"),
                                          os.environ.get("PYTHONPATH", "")])}
    procs: list = []  # type: ignore[type-arg]
    try:
        ports = []
        for _ in range(2):
            port = free_port()
            upstream = start(
                [sys.executable, "-c",
                 "import uvicorn, _loadgen; uvicorn.run(_loadgen.upstream_app("
                 f"{args.latency_ms / 1000}), host='127.0.0.1', port={port}, loop='uvloop', "
                 "http='httptools', log_level='warning', access_log=False)"],
                env, work / f"upstream{port}.log",
            )  # fmt: skip
            procs.append(upstream)
            wait_http(f"http://127.0.0.1:{port}/", upstream)
            ports.append(port)
        plain = _gateway(work, "plain", ports[0], ports[1], False, env)
        shadowed = _gateway(work, "shadowed", ports[0], ports[1], True, env)
        procs += [plain[0], shadowed[0]]
        c, n = args.concurrency, args.requests
        print(f"\nLive: upstream latency {args.latency_ms:.0f} ms, concurrency {c}, "
              f"{n} requests per cell\n")
        print("| round | gateway | req/s | p50 ms | p99 ms | gateway CPU ms/request |")
        print("|---|---|---|---|---|---|")
        for round_ in range(1, args.rounds + 1):
            order = [("no rule", plain), ("rule, sample 1.0", shadowed)]
            if round_ % 2 == 0:
                order.reverse()
            for name, (process, port, key) in order:
                pid = process.pid  # type: ignore[attr-defined]
                asyncio.run(run_load("127.0.0.1", port, "/v1/chat/completions", BODY,
                                     concurrency=c, requests=max(c * 4, n // 10), key=key))
                time.sleep(2.0)  # the warm-up's copies finish before the CPU window
                before = cpu_s(pid)
                result = asyncio.run(run_load("127.0.0.1", port, "/v1/chat/completions", BODY,
                                              concurrency=c, requests=n, key=key))
                time.sleep(2.0)  # the copies finish inside it (both gateways wait alike)
                cpu = (cpu_s(pid) - before) * 1000 / n
                errors = f" ({result.errors} errors)" if result.errors else ""
                print(f"| {round_} | {name}{errors} | {result.rps:.0f} | {result.p50:.2f} | "
                      f"{result.pct(0.99):.2f} | {cpu:.2f} |")
    finally:
        for p in reversed(procs):
            stop(p)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
