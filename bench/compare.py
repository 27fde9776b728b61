"""Where `crossroads compare` spends its time, and report rendering at scale.

1. The offline default run, split into model load, generation, scoring and report
   (building + rendering), measured phase by phase on the embedded SmolLM2.
2. For 10 models × 1,000 items: the statistics summary (computed once per run, when the
   run is loaded) and the report rendering (dimensions, advice, flip points,
   HTML/Markdown/JSON), target ≤ 1 s for the rendering.

Run: .venv/bin/python bench/compare.py
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from crossroads.backends.embedded import DEFAULT_LOCAL_MODEL
from crossroads.catalog import find_model
from crossroads.client import AsyncClient
from crossroads.config import parse_config
from crossroads.decide.compare import REFERENCE_MODELS, build_report, default_profile
from crossroads.evals.results import load_evidence, load_run
from crossroads.evals.runner import Runner, RunOptions
from crossroads.evals.scoring import Answer, ScoringContext
from crossroads.evals.stats import summarize
from crossroads.evals.suite import load_suite
from crossroads.evidence import RunEvidence, RunSummary
from crossroads.report import write_report
from crossroads.store import open_database


def offline_phases() -> dict[str, float]:
    times: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        config = parse_config(f"database_url: sqlite:///{tmp}/db.sqlite\n")
        suite = load_suite("quick")
        with open_database(config=config) as db:

            async def run() -> str:
                async with AsyncClient(config) as client:
                    backend: Any = client.backend(DEFAULT_LOCAL_MODEL)
                    start = time.perf_counter()
                    await backend.load()
                    times["model load"] = time.perf_counter() - start
                    start = time.perf_counter()
                    options = RunOptions(models=(DEFAULT_LOCAL_MODEL,), use_cache=False)
                    run_id = await Runner(client, db, suite, options).run()
                    times["generation + scoring"] = time.perf_counter() - start
                    return run_id

            run_id = asyncio.run(run())
            data = load_run(db, run_id)
            evidence = load_evidence(db, run_id)

        async def rescore() -> None:
            ctx = ScoringContext()
            items = {i.id: i for i in suite.items}
            for row in data["results"]:
                item = items[row["item_id"]]
                for scorer in suite.scorers:
                    await scorer.score(
                        Answer(text=row["output"], model="m"), item.expected, item.vars, ctx
                    )

        start = time.perf_counter()
        asyncio.run(rescore())
        times["scoring"] = time.perf_counter() - start
        times["generation"] = times.pop("generation + scoring") - times["scoring"]
        names = [DEFAULT_LOCAL_MODEL, *REFERENCE_MODELS]
        entries = {n: find_model(n) for n in names}
        start = time.perf_counter()
        report, _ = build_report(
            names=names,
            entries=entries,  # type: ignore[arg-type]
            notes={},
            run=evidence,
            profile=default_profile(),
            suite_name="quick",
        )
        write_report(report, Path(tmp) / "report")
        times["report"] = time.perf_counter() - start
    return times


def rendering_at_scale(models: int = 10, items: int = 1000) -> tuple[float, float]:
    names = [DEFAULT_LOCAL_MODEL, *REFERENCE_MODELS, "openai/gpt-4.1", "anthropic/claude-opus-4-5"]
    names = names[:models]
    rng = random.Random(0)
    rows = [
        {
            "item_id": f"q{i}",
            "model": m,
            "repeat": 0,
            "score": float(rng.random() < 0.7),
            "passed": rng.random() < 0.7,
            "format_error": False,
            "tags": [f"t{i % 7}"],
            "latency_s": rng.uniform(0.2, 2),
            "ttft_s": 0.1,
            "tokens_per_s": 50.0,
            "cost_usd": 0.0001,
            "cached": False,
            "error": None,
        }
        for m in names
        for i in range(items)
    ]
    entries = {n: find_model(n) for n in names}
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        summary = summarize(rows, names)
        stats_s = time.perf_counter() - start
        start = time.perf_counter()
        report, _ = build_report(
            names=names,
            entries=entries,  # type: ignore[arg-type]
            notes={},
            run=RunEvidence(
                run_id="bench", suite="bench", summary=RunSummary.model_validate(summary)
            ),
            profile=default_profile(),
            suite_name="bench",
        )
        write_report(report, Path(tmp))
        return stats_s, time.perf_counter() - start


def main() -> int:
    phases = offline_phases()
    total = sum(phases.values())
    print("crossroads compare, offline defaults (quick suite on local/smollm2):")
    for name, seconds in phases.items():
        print(f"  {name:<12} {seconds:7.2f} s  ({seconds / total:5.1%})")
    stats_s, render_s = rendering_at_scale()
    print("10 models x 1,000 items:")
    print(f"  statistics (bootstrap CIs, 45 pairs, McNemar): {stats_s:.2f} s")
    print(
        f"  report rendering (dimensions, advice, HTML/MD/JSON): {render_s:.2f} s (target <= 1 s)"
    )
    return 0 if render_s <= 1.0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
