"""Gateway overhead: direct-to-upstream vs Crossroads vs LiteLLM's proxy, in one run.

    .venv/bin/python bench/gateway.py [--latency-ms 50] [--requests 2000] [--rss-requests 30000]
                                      [--litellm .bench/litellm/bin/litellm]

A fixed-latency Chat Completions upstream runs in its own process; `crossroads serve`
(one worker, SQLite ledger, a virtual key with a budget and RPM limit, so every control
is on the path) and, when installed, LiteLLM's proxy sit in front of it. A "bare proxy"
(a raw ASGI app on the same uvicorn that forwards the body with the gateway's HTTP
client, and nothing else) shows the floor any Python gateway starts from. The load comes
from a lean raw-socket HTTP/1.1 client. For concurrency 1, 16 and 64 it reports
requests/s and p50/p99 latency of each, and the latency Crossroads and LiteLLM add over
direct. Then RSS growth of the gateway over ``--rss-requests`` requests.

LiteLLM is installed in its own virtualenv so its pins never touch ours:
    python3 -m venv .bench/litellm && .bench/litellm/bin/pip install 'litellm[proxy]==1.80.0'
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _loadgen import LoadResult, free_port, run_load

ROOT = Path(__file__).resolve().parent.parent
MASTER = "sk-bench-master-0000"
#: LiteLLM refuses to start without a master key; with no database it checks only that.
LITELLM_KEY = "sk-" + "0123456789abcdef" * 4
BODY = json.dumps(
    {"model": "bench", "messages": [{"role": "user", "content": "Say hello"}], "max_tokens": 16}
).encode()


def wait_http(url: str, process: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{url}: process exited with {process.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and its children (LiteLLM forks workers)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return sum(int(f) for f in fields[11:15]) / ticks


def start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        cmd, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=ROOT,
        start_new_session=True,
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def measure(
    port: int, path: str, c: int, n: int, key: str | None, pid: int | None = None
) -> tuple[LoadResult, float | None]:
    """Load result, and CPU ms per request of process ``pid`` during the run."""
    warm = max(c * 4, n // 10)
    asyncio.run(run_load("127.0.0.1", port, path, BODY, concurrency=c, requests=warm, key=key))
    before = cpu_s(pid) if pid else 0.0
    result = asyncio.run(
        run_load("127.0.0.1", port, path, BODY, concurrency=c, requests=n, key=key)
    )
    cpu = (cpu_s(pid) - before) * 1000 / n if pid else None
    return result, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rss-requests", type=int, default=30000)
    parser.add_argument("--concurrency", default="1,16,64")
    parser.add_argument("--litellm", default=str(ROOT / ".bench/litellm/bin/litellm"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="crossroads-bench-gw-"))
    env = {**os.environ, "CROSSROADS_HOME": str(work / "home"), "CROSSROADS_MASTER_KEY": MASTER,
           "BENCH_UPSTREAM_KEY": "sk-upstream", "PYTHONPATH": str(ROOT / "bench")}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        up_port = free_port()
        upstream = start(
            [sys.executable, "-c",
             "import uvicorn, _loadgen; uvicorn.run(_loadgen.upstream_app("
             f"{args.latency_ms / 1000}), host='127.0.0.1', port={up_port}, loop='uvloop', "
             "http='httptools', log_level='warning', access_log=False)"],
            env, work / "upstream.log",
        )
        procs.append(upstream)
        wait_http(f"http://127.0.0.1:{up_port}/", upstream)

        bare_port = free_port()
        bare = start(
            [sys.executable, "-c",
             "import uvicorn, _loadgen; uvicorn.run(_loadgen.bare_proxy_app("
             f"'http://127.0.0.1:{up_port}/v1/chat/completions'), host='127.0.0.1', "
             f"port={bare_port}, loop='uvloop', http='httptools', log_level='warning', "
             "access_log=False)"],
            env, work / "bare.log",
        )
        procs.append(bare)
        wait_http(f"http://127.0.0.1:{bare_port}/", bare)

        config = work / "gateway.yaml"
        config.write_text(
            "models:\n"
            "  - name: bench\n    backend: openai\n    model: bench-model\n"
            f"    base_url: http://127.0.0.1:{up_port}/v1\n"
            "    api_key: ${BENCH_UPSTREAM_KEY}\n"
            "    prices: {input: 1.0, output: 2.0}\n"
            "gateway:\n  master_key: ${CROSSROADS_MASTER_KEY}\n"
        )
        gw_port = free_port()
        gateway = start(
            [str(ROOT / ".venv/bin/crossroads"), "serve", "--config", str(config),
             "--port", str(gw_port), "--log-level", "warning"],
            env, work / "gateway.log",
        )
        procs.append(gateway)
        wait_http(f"http://127.0.0.1:{gw_port}/health", gateway)
        created = httpx.post(
            f"http://127.0.0.1:{gw_port}/admin/keys",
            json={"name": "bench", "budget_usd": 1_000_000, "rpm": 10_000_000},
            headers={"Authorization": f"Bearer {MASTER}"},
        )
        created.raise_for_status()
        key = created.json()["key"]

        lite_port = None
        lite = None
        if Path(args.litellm).exists():
            lite_port = free_port()
            lite_cfg = work / "litellm.yaml"
            lite_cfg.write_text(
                "model_list:\n  - model_name: bench\n    litellm_params:\n"
                "      model: openai/bench-model\n"
                f"      api_base: http://127.0.0.1:{up_port}/v1\n      api_key: sk-upstream\n"
                "litellm_settings:\n  telemetry: false\n  drop_params: true\n"
                f"general_settings:\n  master_key: {LITELLM_KEY}\n"
            )
            lite = start(
                [args.litellm, "--config", str(lite_cfg), "--port", str(lite_port),
                 "--num_workers", "1"],
                {**env, "LITELLM_LOG": "ERROR"}, work / "litellm.log",
            )
            procs.append(lite)
            wait_http(f"http://127.0.0.1:{lite_port}/health/liveliness", lite, timeout=180)
        else:
            print(f"(LiteLLM not found at {args.litellm}: its column is skipped)")

        print(f"upstream latency {args.latency_ms:.0f} ms, {args.requests} requests per cell\n")
        print("| concurrency | target | req/s | p50 ms | p99 ms | added p50 ms | added p99 ms "
              "| throughput vs direct | server CPU ms/request |")
        print("|---|---|---|---|---|---|---|---|---|")
        for c in [int(x) for x in args.concurrency.split(",")]:
            direct, _ = measure(up_port, "/v1/chat/completions", c, args.requests, None)
            rows: list[tuple[str, LoadResult, float | None]] = [("direct", direct, None)]
            rows.append(("bare proxy", *measure(bare_port, "/v1/chat/completions", c,
                                                args.requests, None, bare.pid)))
            rows.append(("crossroads", *measure(gw_port, "/v1/chat/completions", c,
                                                args.requests, key, gateway.pid)))
            if lite_port:
                rows.append(("litellm", *measure(lite_port, "/v1/chat/completions", c,
                                                 args.requests, LITELLM_KEY, lite.pid)))
            for name, r, cpu in rows:
                added = "" if name == "direct" else (
                    f"{r.p50 - direct.p50:.2f} | {r.pct(0.99) - direct.pct(0.99):.2f} | "
                    f"{r.rps / direct.rps:.0%}"
                )
                if name == "direct":
                    added = " | | "
                errors = f" ({r.errors} errors)" if r.errors else ""
                cpu_text = f"{cpu:.2f}" if cpu is not None else ""
                print(f"| {c} | {name}{errors} | {r.rps:.0f} | {r.p50:.2f} | "
                      f"{r.pct(0.99):.2f} | {added} | {cpu_text} |")

        if args.rss_requests:
            asyncio.run(run_load("127.0.0.1", gw_port, "/v1/chat/completions", BODY,
                                 concurrency=16, requests=2000, key=key))
            before = rss_mb(gateway.pid)
            result = asyncio.run(run_load("127.0.0.1", gw_port, "/v1/chat/completions", BODY,
                                          concurrency=16, requests=args.rss_requests, key=key))
            after = rss_mb(gateway.pid)
            print(f"\nRSS of the gateway: {before:.1f} MB after warm-up, {after:.1f} MB after "
                  f"{args.rss_requests:,} more requests: growth {after - before:+.1f} MB "
                  f"({result.errors} errors)")
    finally:
        for p in reversed(procs):
            stop(p)
        if os.environ.get("BENCH_KEEP"):
            print(f"(logs kept in {work})")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
