"""What tracing costs: gateway CPU per request with OpenTelemetry on vs off.

Two ``crossroads serve`` processes on the same fake upstream (``_loadgen.upstream_app``):
one without ``telemetry:`` (off, the default), one with ``telemetry: {otlp_endpoint:
<loopback collector>, sample: 1.0}`` so every request's span is batched and exported
over OTLP/HTTP to a loopback receiver that answers 200. Rounds alternate off/on
(interleaved, so machine load hits both alike); each round warms up, then sends
``--requests`` whole chat requests at ``--concurrency`` and reads the gateway
process's CPU time (user + system, /proc) around it. Reported: median CPU ms per
request of each, and on/off. Target: on ≤ 1.10 × off.

Run: .venv/bin/python bench/telemetry.py [--rounds 4 --requests 2000 --concurrency 16]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gateway as bench_gateway
from _loadgen import free_port

COLLECTOR = """
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    spans = 0
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", "0")))
        self.send_response(200); self.send_header("content-length", "0"); self.end_headers()
    def do_GET(self):
        self.send_response(200); self.send_header("content-length", "0"); self.end_headers()
    def log_message(self, *a): pass
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency-ms", type=float, default=5.0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="crossroads-bench-otel-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env |= {"CROSSROADS_MASTER_KEY": bench_gateway.MASTER, "BENCH_UPSTREAM_KEY": "sk-up"}
    procs = []
    try:
        up_port, col_port = free_port(), free_port()
        upstream = bench_gateway.start(
            [sys.executable, "-c",
             "import uvicorn, _loadgen; uvicorn.run(_loadgen.upstream_app("
             f"{args.latency_ms / 1000}), host='127.0.0.1', port={up_port}, "
             "loop='uvloop', http='httptools', log_level='warning', access_log=False)"],
            {**env, "PYTHONPATH": str(bench_gateway.ROOT / "bench")}, work / "upstream.log",
        )
        procs.append(upstream)
        bench_gateway.wait_http(f"http://127.0.0.1:{up_port}/", upstream)
        collector = bench_gateway.start(
            [sys.executable, "-c", COLLECTOR, str(col_port)], env, work / "collector.log"
        )
        procs.append(collector)
        bench_gateway.wait_http(f"http://127.0.0.1:{col_port}/", collector)
        base = (
            "models:\n  - name: bench\n    backend: openai\n    model: bench-model\n"
            f"    base_url: http://127.0.0.1:{up_port}/v1\n    api_key: ${{BENCH_UPSTREAM_KEY}}\n"
            "    prices: {input: 1.0, output: 2.0}\n"
            "gateway:\n  master_key: ${CROSSROADS_MASTER_KEY}\n"
        )
        gateways = {}
        for label, extra in (
            ("off", ""),
            ("on", f"telemetry:\n  otlp_endpoint: http://127.0.0.1:{col_port}\n  sample: 1.0\n"),
        ):
            config = work / f"{label}.yaml"
            config.write_text(base + extra)
            process, port = bench_gateway.start_gateway(
                work, {**env, "CROSSROADS_HOME": str(work / label)}, config, "default",
                bench_gateway.ROOT / "src", label,
            )
            procs.append(process)
            gateways[label] = (process.pid, port)
        cpu: dict[str, list[float]] = {"off": [], "on": []}
        rps: dict[str, list[float]] = {"off": [], "on": []}
        for n in range(args.rounds):
            for label in ("off", "on") if n % 2 == 0 else ("on", "off"):
                pid, port = gateways[label]
                result, ms = bench_gateway.measure(
                    port, "/v1/chat/completions", args.concurrency, args.requests,
                    bench_gateway.MASTER, pid,
                )
                assert ms is not None and result.errors == 0, f"{label}: {result.errors} errors"
                cpu[label].append(ms)
                rps[label].append(result.rps)
                print(f"round {n + 1} {label:>3}: {ms:.3f} ms CPU/request, "
                      f"{result.rps:.0f} req/s", flush=True)
        off, on = statistics.median(cpu["off"]), statistics.median(cpu["on"])
        print(f"\nmedian CPU ms/request: off {off:.3f}, on {on:.3f}, on/off {on / off:.3f} "
              f"(target <= 1.10); req/s off {statistics.median(rps['off']):.0f}, "
              f"on {statistics.median(rps['on']):.0f}")
    finally:
        for process in reversed(procs):
            bench_gateway.stop(process)


if __name__ == "__main__":
    main()
