"""Gateway overhead: direct-to-upstream vs Crossroads vs LiteLLM's proxy, in one run.

    .venv/bin/python bench/gateway.py [--latency-ms 50] [--requests 2000] [--rss-requests 30000]
                                      [--litellm .bench/litellm/bin/litellm]
                                      [--modes whole,stream] [--chunks 20] [--rounds 1]
                                      [--servers uvicorn] [--baseline-src ../main/src]

A fixed-latency Chat Completions upstream runs in its own process; `crossroads serve`
(one worker, SQLite ledger, a virtual key with a budget and RPM limit, so every control
is on the path) and, when installed, LiteLLM's proxy sit in front of it. A "bare proxy"
(a raw ASGI app on the same uvicorn that forwards the body with the gateway's HTTP
client, and nothing else) shows the floor any Python gateway starts from. The load comes
from a lean raw-socket HTTP/1.1 client. For concurrency 1, 16 and 64 it reports
requests/s and p50/p99 latency of each, and the latency Crossroads and LiteLLM add over
direct. Then RSS growth of the gateway over ``--rss-requests`` requests.

``--modes whole,stream`` adds streamed requests (``--chunks`` content deltas each, after
the same upstream latency; time to first token is the first body bytes). ``--servers
uvicorn,granian`` runs one gateway per HTTP server (``crossroads serve --server``);
``--baseline-src DIR`` runs one more gateway from another checkout's ``src`` (say, main
before a change), interleaved with the others in the same cells, so that before/after
ratios are measured under the same load on a shared machine. ``--rounds N`` repeats the
whole table N times (the p99 tails differ from run to run).

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


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and of its live descendants (LiteLLM and
    Granian run their workers as child processes), plus its reaped children."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int(_stat(int(entry.name))[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        for child, ppid in parents.items():
            if ppid == parent and child not in tree:
                tree.add(child)
                frontier.append(child)
    total = 0
    for member in tree:
        try:
            fields = _stat(member)
        except OSError:
            continue
        total += sum(int(f) for f in fields[11:13])  # utime, stime
        if member == pid:
            total += sum(int(f) for f in fields[13:15])  # reaped children
    return total / ticks


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


STREAM_BODY = json.dumps(
    {"model": "bench", "messages": [{"role": "user", "content": "Say hello"}], "max_tokens": 32,
     "stream": True, "stream_options": {"include_usage": True}}
).encode()


def measure(
    port: int, path: str, c: int, n: int, key: str | None, pid: int | None = None,
    body: bytes = BODY,
) -> tuple[LoadResult, float | None]:
    """Load result, and CPU ms per request of process ``pid`` during the run."""
    warm = max(c * 4, n // 10)
    asyncio.run(run_load("127.0.0.1", port, path, body, concurrency=c, requests=warm, key=key))
    before = cpu_s(pid) if pid else 0.0
    result = asyncio.run(
        run_load("127.0.0.1", port, path, body, concurrency=c, requests=n, key=key)
    )
    cpu = (cpu_s(pid) - before) * 1000 / n if pid else None
    return result, cpu


def start_gateway(
    work: Path, env: dict[str, str], config: Path, server: str, src: Path, label: str
) -> tuple[subprocess.Popen[bytes], int]:
    """``crossroads serve`` on a free port from the sources in ``src``."""
    port = free_port()
    cmd = [sys.executable, "-m", "crossroads", "serve", "--config", str(config),
           "--port", str(port), "--log-level", "warning"]
    if server != "default":
        cmd += ["--server", server]
    process = start(cmd, {**env, "PYTHONPATH": f"{src}:{ROOT / 'bench'}"},
                    work / f"gateway-{label}.log")
    wait_http(f"http://127.0.0.1:{port}/health", process)
    return process, port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rss-requests", type=int, default=30000)
    parser.add_argument("--concurrency", default="1,16,64")
    parser.add_argument("--modes", default="whole", help="whole, stream or whole,stream")
    parser.add_argument("--chunks", type=int, default=20, help="content deltas per stream")
    parser.add_argument("--rounds", type=int, default=1, help="repeat the whole table")
    parser.add_argument("--servers", default="default",
                        help="crossroads serve --server values, comma-separated")
    parser.add_argument("--baseline-src", default=None,
                        help="another checkout's src/ to run as 'crossroads (baseline)'")
    parser.add_argument("--litellm", default=str(ROOT / ".bench/litellm/bin/litellm"))
    parser.add_argument("--litellm-at", default="1,16,64",
                        help="concurrencies at which LiteLLM is measured")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="crossroads-bench-gw-"))
    env = {**os.environ, "CROSSROADS_HOME": str(work / "home"), "CROSSROADS_MASTER_KEY": MASTER,
           "BENCH_UPSTREAM_KEY": "sk-upstream", "PYTHONPATH": f"{ROOT / 'src'}:{ROOT / 'bench'}"}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        up_port = free_port()
        upstream = start(
            [sys.executable, "-c",
             "import uvicorn, _loadgen; uvicorn.run(_loadgen.upstream_app("
             f"{args.latency_ms / 1000}, {args.chunks}), host='127.0.0.1', port={up_port}, "
             "loop='uvloop', http='httptools', log_level='warning', access_log=False)"],
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
        # (label, process, port, key): every gateway shares one ledger home but has its key
        gateways: list[tuple[str, subprocess.Popen[bytes], int, str]] = []
        variants = [(f"crossroads{'' if srv == 'default' else ' ' + srv}", srv, ROOT / "src")
                    for srv in args.servers.split(",")]
        if args.baseline_src:
            variants.append(("crossroads (baseline)", "default",
                             Path(args.baseline_src).resolve()))
        for n, (label, server, src) in enumerate(variants):
            home = work / f"home{n}"
            process, port = start_gateway(
                work, {**env, "CROSSROADS_HOME": str(home)}, config, server, src, str(n)
            )
            procs.append(process)
            created = httpx.post(
                f"http://127.0.0.1:{port}/admin/keys",
                json={"name": "bench", "budget_usd": 1_000_000, "rpm": 10_000_000},
                headers={"Authorization": f"Bearer {MASTER}"},
            )
            created.raise_for_status()
            gateways.append((label, process, port, created.json()["key"]))

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
                {**env, "LITELLM_LOG": "ERROR", "LITELLM_LOCAL_MODEL_COST_MAP": "True"},
                work / "litellm.log",
            )
            procs.append(lite)
            try:
                wait_http(f"http://127.0.0.1:{lite_port}/health/liveliness", lite, timeout=180)
            except SystemExit as exc:
                print(f"(LiteLLM's proxy did not start: {exc}; its rows are skipped)")
                lite_port = None
        else:
            print(f"(LiteLLM not found at {args.litellm}: its column is skipped)")

        print(f"upstream latency {args.latency_ms:.0f} ms, {args.requests} requests per cell, "
              f"{args.chunks} chunks per stream\n")
        print("| round | mode | concurrency | target | req/s | p50 ms | p99 ms | added p50 ms "
              "| added p99 ms | throughput vs direct | TTFT p50 ms | added TTFT p50 ms "
              "| server CPU ms/request |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        lite_at = {int(x) for x in args.litellm_at.split(",") if x}
        path = "/v1/chat/completions"
        for rnd in range(1, args.rounds + 1):
            for mode in args.modes.split(","):
                body = STREAM_BODY if mode == "stream" else BODY
                for c in [int(x) for x in args.concurrency.split(",")]:
                    n = args.requests

                    def cell(port: int, key: str | None, pid: int | None,
                             c: int = c, n: int = n, body: bytes = body,
                             ) -> tuple[LoadResult, float | None]:
                        return measure(port, path, c, n, key, pid, body)

                    direct, _ = cell(up_port, None, None)
                    rows: list[tuple[str, LoadResult, float | None]] = [("direct", direct, None)]
                    rows.append(("bare proxy", *cell(bare_port, None, bare.pid)))
                    for label, process, port, key in gateways:
                        rows.append((label, *cell(port, key, process.pid)))
                    if lite_port and lite is not None and c in lite_at:
                        rows.append(("litellm", *cell(lite_port, LITELLM_KEY, lite.pid)))
                    for name, r, cpu in rows:
                        if name == "direct":
                            added = " | | "
                            ttft_added = ""
                        else:
                            added = (
                                f"{r.p50 - direct.p50:.2f} | "
                                f"{r.pct(0.99) - direct.pct(0.99):.2f} | "
                                f"{r.rps / direct.rps:.0%}"
                            )
                            ttft_added = f"{r.ttft_p50 - direct.ttft_p50:.2f}"
                        errors = f" ({r.errors} errors)" if r.errors else ""
                        cpu_text = f"{cpu:.2f}" if cpu is not None else ""
                        print(f"| {rnd} | {mode} | {c} | {name}{errors} | {r.rps:.0f} | "
                              f"{r.p50:.2f} | {r.pct(0.99):.2f} | {added} | "
                              f"{r.ttft_p50:.2f} | {ttft_added} | {cpu_text} |", flush=True)

        if args.rss_requests:
            _, process, port, key = gateways[0]
            asyncio.run(run_load("127.0.0.1", port, path, BODY,
                                 concurrency=16, requests=2000, key=key))
            before = rss_mb(process.pid)
            result = asyncio.run(run_load("127.0.0.1", port, path, BODY,
                                          concurrency=16, requests=args.rss_requests, key=key))
            after = rss_mb(process.pid)
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
