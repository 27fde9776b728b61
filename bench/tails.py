"""Where the gateway's p99 goes: garbage-collector pauses and ledger commits, with the
start-up heap frozen (the default) or not, and with collection thresholds raised.

    .venv/bin/python bench/tails.py [--requests 3000] [--concurrency 16] [--mode stream]

Each variant runs ``crossroads serve`` in a process that records every collection
(``gc.callbacks``) and every ``Ledger.record`` wait after a warm-up, against the
fixed-latency upstream of bench/gateway.py; it prints collections per generation during
the load, what one full collection costs afterwards, the ledger wait (and how many rows
went through the writer thread) and the latency tail the load generator saw.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _loadgen import free_port, run_load
from gateway import BODY, MASTER, ROOT, STREAM_BODY, start, stop, wait_http

WRAPPER = """
import gc, json, os, sys, time
pauses, commits, t0 = [], [], [0.0]
def on_gc(phase, info):
    if phase == "start":
        t0[0] = time.perf_counter()
    else:
        pauses.append((info["generation"], time.perf_counter() - t0[0]))
gc.callbacks.append(on_gc)
variant = os.environ["TAILS_VARIANT"]
if variant == "no-freeze":
    gc.freeze = lambda: None
if variant == "freeze+threshold":
    gc.set_threshold(10_000, 20, 20)
from crossroads.gateway import ledger
original = ledger.Ledger.record
async def record(self, rec):
    start = time.perf_counter()
    await original(self, rec)
    commits.append(time.perf_counter() - start)
ledger.Ledger.record = record
inline = ledger.Ledger._write_inline
queued = []
def write_inline(self, rec):
    done = inline(self, rec)
    if not done:
        queued.append(rec.request_id)
    return done
ledger.Ledger._write_inline = write_inline
def dump():
    start = time.perf_counter()
    gc.collect()
    full = time.perf_counter() - start
    with open(os.environ["TAILS_OUT"], "w") as f:
        json.dump({"gc": pauses, "commits": commits, "queued": len(queued), "full": full,
                   "frozen": gc.get_freeze_count()}, f)
import signal
signal.signal(signal.SIGUSR1, lambda *_: dump())
def reset(*_):
    del pauses[:], commits[:], queued[:]
signal.signal(signal.SIGUSR2, reset)  # after the warm-up: count only the measured load
from crossroads.cli import main
sys.argv = ["crossroads", *sys.argv[1:]]
main()
"""


def pct(data: list[float], q: float) -> float:
    data = sorted(data)
    return data[min(len(data) - 1, int(q * len(data)))] if data else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--mode", default="stream")
    parser.add_argument("--variants", default="no-freeze,freeze,freeze+threshold")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="crossroads-bench-tails-"))
    env = {**os.environ, "CROSSROADS_MASTER_KEY": MASTER, "BENCH_UPSTREAM_KEY": "sk-upstream",
           "PYTHONPATH": f"{ROOT / 'src'}:{ROOT / 'bench'}"}
    body = STREAM_BODY if args.mode == "stream" else BODY
    procs = []
    try:
        up_port = free_port()
        upstream = start(
            [sys.executable, "-c",
             "import uvicorn, _loadgen; uvicorn.run(_loadgen.upstream_app("
             f"{args.latency_ms / 1000}, 20), host='127.0.0.1', port={up_port}, "
             "loop='uvloop', http='httptools', log_level='warning', access_log=False)"],
            env, work / "upstream.log",
        )
        procs.append(upstream)
        wait_http(f"http://127.0.0.1:{up_port}/", upstream)
        config = work / "gateway.yaml"
        config.write_text(
            "models:\n  - name: bench\n    backend: openai\n    model: bench-model\n"
            f"    base_url: http://127.0.0.1:{up_port}/v1\n    api_key: ${{BENCH_UPSTREAM_KEY}}\n"
            "    prices: {input: 1.0, output: 2.0}\n"
            "gateway:\n  master_key: ${CROSSROADS_MASTER_KEY}\n"
        )
        print(f"{args.mode}, concurrency {args.concurrency}, {args.requests} requests\n")
        print("| variant | frozen objects | gen0/1/2 collections | all GC ms | one full "
              "collection ms | ledger wait p50/p99/max ms | rows via the writer thread "
              "| p50 / p99 ms |")
        print("|---|---|---|---|---|---|---|---|")
        for variant in args.variants.split(","):
            out = work / f"{variant}.json"
            port = free_port()
            gw = start(
                [sys.executable, "-c", WRAPPER, "serve", "--config", str(config),
                 "--port", str(port), "--log-level", "warning"],
                {**env, "CROSSROADS_HOME": str(work / variant), "TAILS_VARIANT": variant,
                 "TAILS_OUT": str(out)}, work / f"{variant}.log",
            )
            wait_http(f"http://127.0.0.1:{port}/health", gw)
            key = httpx.post(
                f"http://127.0.0.1:{port}/admin/keys",
                json={"name": "bench", "budget_usd": 1_000_000, "rpm": 10_000_000},
                headers={"Authorization": f"Bearer {MASTER}"},
            ).json()["key"]
            asyncio.run(run_load("127.0.0.1", port, "/v1/chat/completions", body,
                                 concurrency=args.concurrency, requests=500, key=key))
            os.kill(gw.pid, signal.SIGUSR2)
            time.sleep(0.2)
            result = asyncio.run(run_load("127.0.0.1", port, "/v1/chat/completions", body,
                                          concurrency=args.concurrency,
                                          requests=args.requests, key=key))
            os.kill(gw.pid, signal.SIGUSR1)
            for _ in range(50):
                if out.exists():
                    break
                time.sleep(0.1)
            time.sleep(0.2)
            stop(gw)
            data = json.loads(out.read_text())
            gens = [[d for g, d in data["gc"] if g == n] for n in range(3)]
            commits = [c * 1000 for c in data["commits"]]
            total = sum(d for _, d in data["gc"]) * 1000
            print(f"| {variant} | {data['frozen']} | "
                  f"{'/'.join(str(len(g)) for g in gens)} | "
                  f"{total:.2f} | {data['full'] * 1000:.2f} | "
                  f"{pct(commits, 0.5):.3f} / {pct(commits, 0.99):.3f} / "
                  f"{max(commits, default=0):.2f} | {data['queued']} | "
                  f"{result.p50:.1f} / {result.pct(0.99):.1f} |", flush=True)
    finally:
        for p in reversed(procs):
            stop(p)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
