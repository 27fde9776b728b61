"""The Decision page: time to re-rank after a slider move, in Chromium, for 20 models.

Starts the gateway with its console on a loopback port (empty configuration, a throwaway
database), logs in with the master key, opens ``/ui/decision?models=<20 catalog ids>`` and
moves sliders: each of the ten weight sliders and the volume slider, in turn, to random
positions. Each move is one ``input`` event; the page times its own work with
``performance.now()`` (re-ranking, exclusions, the 20 weight and 2 volume flip-point
searches, the table, the flip list, the chart and the export links) and writes it to
``#decide-results[data-rerank-ms]``. As a baseline in the same run, the advisor port
alone (``CrossroadsDecide.advise``, no DOM) is timed on the same profiles.

Target: re-ranking after a slider move <= 50 ms (median and p95 reported).

Run: PYTHONPATH=src .venv/bin/python bench/console_decide.py [--moves 200]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from crossroads.config import parse_config
from crossroads.console import create_app

MASTER = "sk-bench-master-0123456789"
MODELS_20 = [
    "openai/gpt-4o-mini",
    "openai/gpt-4o",
    "anthropic/claude-haiku-4-5",
    "anthropic/claude-sonnet-4-5",
    "google/gemini-2.5-flash",
    "meta/llama-3.1-8b",
    "meta/llama-3.3-70b",
    "anthropic/claude-3-opus",
    "google/palm-2",
    "openai/gpt-oss-20b",
    "openai/gpt-5-nano",
    "meta/llama-2-7b",
    "openai/gpt-4.1",
    "openai/gpt-4.1-mini",
    "openai/o4-mini",
    "openai/gpt-5",
    "openai/gpt-oss-120b",
    "anthropic/claude-opus-4-5",
    "google/gemini-2.5-pro",
    "meta/llama-2-13b",
]
DIMENSIONS = [
    "cost",
    "customization",
    "transparency",
    "performance",
    "ease_of_use",
    "scalability",
    "support",
    "ecosystem",
    "control",
    "ethics_bias",
]


def _port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main(moves: int) -> None:
    from playwright.sync_api import sync_playwright

    home = Path(tempfile.mkdtemp())
    os.environ["CROSSROADS_HOME"] = str(home)
    os.environ["CROSSROADS_MASTER_KEY"] = MASTER
    config = parse_config(f"database_url: sqlite:///{home}/db.sqlite\n", "bench.yaml")
    port = _port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(config), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            httpx.get(base + "/ui/login")
            break
        except httpx.TransportError:
            time.sleep(0.1)
    rng = random.Random(20)
    page_ms: list[float] = []
    port_ms: list[float] = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=os.environ.get("CROSSROADS_CHROMIUM", "/usr/bin/chromium"),
                args=["--headless", "--no-sandbox", "--disable-gpu"],
            )
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(base + "/ui/login")
            page.get_by_label("Key").fill(MASTER)
            page.get_by_role("button", name="Log in").click()
            page.wait_for_url("**/ui/playground")
            page.goto(base + "/ui/decision?models=" + ",".join(MODELS_20))
            page.wait_for_selector("#ranking tbody tr")
            n = page.evaluate("() => window.CrossroadsDecidePage.advice.ranking.length")
            n_all = n + page.evaluate("() => window.CrossroadsDecidePage.advice.excluded.length")
            for i in range(moves):
                slider = "#volume" if i % 11 == 10 else f"#w-{DIMENSIONS[i % 11]}"
                value = rng.uniform(5.5, 11.5) if slider == "#volume" else rng.uniform(0, 5)
                page.eval_on_selector(
                    slider,
                    "(el, v) => { el.value = String(v); "
                    "el.dispatchEvent(new Event('input', {bubbles: true})); }",
                    value,
                )
                took = page.get_attribute("#decide-results", "data-rerank-ms")
                page_ms.append(float(took or "nan"))
                # Baseline, same profile: the advisor port alone.
                port_ms.append(
                    page.evaluate(
                        "() => { const s = window.CrossroadsDecidePage;"
                        " const t = performance.now(); window.CrossroadsDecide.advise("
                        "JSON.parse(document.getElementById('decision-data')"
                        ".getAttribute('data-json')).model,"
                        " s.profile); return performance.now() - t; }"
                    )
                )
            browser.close()
    finally:
        server.should_exit = True
        thread.join(10)
    print(f"Decision page, {n_all} models ({moves} slider moves, Chromium, headless):")
    for name, values in (("page update (re-rank + draw)", page_ms), ("advise() alone", port_ms)):
        print(
            f"  {name:30s} median {statistics.median(values):6.1f} ms   "
            f"p95 {_pct(values, 0.95):6.1f} ms   max {max(values):6.1f} ms"
        )
    ok = _pct(page_ms, 0.95) <= 50
    print(f"  target: p95 <= 50 ms -> {'met' if ok else 'MISSED'}")


def _args() -> Any:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=200)
    return parser.parse_args()


if __name__ == "__main__":
    main(_args().moves)
