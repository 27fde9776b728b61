"""Evaluation runner throughput and memory.

1. 1,000 items × 3 models against a loopback OpenAI fake (own process) answering after
   50 ms, at concurrency 32: wall time vs the ideal (items × models × 50 ms / 32),
   target ≤ 1.2×; runner CPU per item, target ≤ 1 ms.
2. Peak RSS of a 100,000-item run on an instant in-process backend (no network), to
   show memory stays bounded (results stream to the store, nothing accumulates).

Run: .venv/bin/python bench/eval_runner.py [--items 1000] [--big 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from tests.fakes.instant import InstantBackend  # noqa: E402

from _loadgen import free_port  # noqa: E402
from crossroads.client import AsyncClient  # noqa: E402
from crossroads.config import parse_config  # noqa: E402
from crossroads.evals.runner import Runner, RunOptions  # noqa: E402
from crossroads.evals.suite import load_suite  # noqa: E402
from crossroads.store import open_database  # noqa: E402

LATENCY_S = 0.05
CONCURRENCY = 32

FAKE_SERVER = """
import sys, uvicorn
sys.path.insert(0, {root!r})
from starlette.applications import Starlette
from tests.fakes.openai_fake import OpenAIFake
from tests.fakes.server import Reply
fake = OpenAIFake(require_key=False)
fake.requests = type("NoLog", (list,), {{"append": lambda self, x: None}})()
# Not fake.responder: it only runs once a request is recorded, which NoLog prevents.
fake.next_reply = lambda: Reply(text="42", delay_s={latency})
uvicorn.run(Starlette(routes=fake.routes()), host="127.0.0.1", port={port},
            log_level="warning", access_log=False)
"""


def write_suite(folder: Path, n: int) -> Path:
    with (folder / "items.jsonl").open("w") as handle:
        for i in range(n):
            handle.write(json.dumps({"id": f"q{i}", "n": i, "expected": "42"}) + "\n")
    path = folder / "bench.yaml"
    path.write_text(
        "name: bench\ndefaults: {temperature: 0.5, max_tokens: 16}\n"
        "prompt: 'Question {{ n }}: what is six times seven?'\n"
        "scorers: [{type: contains}]\nitems_file: items.jsonl\n"
    )
    return path


def throughput(items: int) -> tuple[float, float, float]:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", FAKE_SERVER.format(root=str(ROOT), port=port, latency=LATENCY_S)]
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            suite = load_suite(str(write_suite(folder, items)))
            config = parse_config(
                f"database_url: sqlite:///{folder / 'db.sqlite'}\nmodels:\n"
                + "".join(
                    f"  - name: m{i}\n    backend: vllm\n    model: m{i}\n"
                    f"    base_url: http://127.0.0.1:{port}/v1\n"
                    for i in range(3)
                )
            )
            db = open_database(config=config)

            async def main() -> None:
                async with AsyncClient(config) as client:
                    options = RunOptions(
                        models=("m0", "m1", "m2"),
                        concurrency=CONCURRENCY,
                        per_model_concurrency=CONCURRENCY,
                        use_cache=False,
                    )
                    await Runner(client, db, suite, options).run()

            cpu0, wall0 = time.process_time(), time.perf_counter()
            asyncio.run(main())
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
            from sqlalchemy import func, select

            from crossroads.store import results

            with db.engine.connect() as conn:
                failed = conn.execute(
                    select(func.count()).select_from(results).where(results.c.error.is_not(None))
                ).scalar_one()
            if failed:
                raise SystemExit(f"{failed} calls failed: the benchmark measured errors")
    finally:
        server.terminate()
        server.wait()
    ideal = items * 3 * LATENCY_S / CONCURRENCY
    return wall, ideal, cpu / (items * 3)


def peak_rss(items: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        suite = load_suite(str(write_suite(folder, items)))
        config = parse_config(
            f"database_url: sqlite:///{folder / 'db.sqlite'}\n"
            "models:\n  - name: fast\n    backend: vllm\n    model: x\n"
        )
        db = open_database(config=config)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        async def main() -> None:
            async with AsyncClient(config) as client:
                deployment = client.deployment("fast")
                client.router.first("fast").backend = InstantBackend(deployment)
                await Runner(
                    client, db, suite, RunOptions(models=("fast",), concurrency=32, use_cache=False)
                ).run()

        start = time.perf_counter()
        asyncio.run(main())
        elapsed = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return after - before, elapsed


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--big", type=int, default=100_000)
    args = parser.parse_args()
    wall, ideal, cpu_per_item = throughput(args.items)
    print(
        f"{args.items} items x 3 models, {LATENCY_S * 1000:.0f} ms upstream, "
        f"concurrency {CONCURRENCY}"
    )
    print(f"  wall {wall:.2f} s vs ideal {ideal:.2f} s: {wall / ideal:.2f}x (target <= 1.2x)")
    print(f"  runner CPU per item: {cpu_per_item * 1000:.2f} ms (target <= 1 ms)")
    growth, elapsed = peak_rss(args.big)
    print(
        f"{args.big:,}-item run on an instant backend: {elapsed:.1f} s, "
        f"peak RSS growth {growth:.0f} MB"
    )
    ok = wall / ideal <= 1.2 and cpu_per_item <= 0.001
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.setdefault("CROSSROADS_HOME", tempfile.mkdtemp())
    raise SystemExit(main())
