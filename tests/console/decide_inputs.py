"""Decision inputs for the console tests: catalog models (nothing measured: no keys in tests)
plus a run that measured two of them, so that latency limits and measured scores are in play."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from crossroads.config import Config, load_config
from crossroads.console.decision_model import DecisionInputs, decision_inputs
from crossroads.decide.advisor import Profile, load_profile
from crossroads.decide.compare import REFERENCE_MODELS, default_profile
from crossroads.evidence import Estimate, ModelRunSummary, RunEvidence, RunSummary

__all__ = [
    "MODELS",
    "MODELS_20",
    "PROFILES",
    "fake_run",
    "in_thread",
    "inputs_for",
    "profiles",
]

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[2]
PROFILES = sorted((ROOT / "examples" / "profiles").glob("*.yaml"))

#: The reference set plus a retired model, one without a list price, more open weights.
MODELS = [
    *REFERENCE_MODELS,
    "anthropic/claude-3-opus",
    "google/palm-2",
    "openai/gpt-oss-20b",
    "openai/gpt-5-nano",
    "meta/llama-2-7b",
]
#: Twenty models (the benchmark's size).
MODELS_20 = [
    *MODELS,
    "openai/gpt-4.1",
    "openai/gpt-4.1-mini",
    "openai/o4-mini",
    "openai/gpt-5",
    "openai/gpt-oss-120b",
    "anthropic/claude-opus-4-5",
    "google/gemini-2.5-pro",
    "meta/llama-2-13b",
]


def fake_run() -> RunEvidence:
    """A finished run measuring two models (quality, latency, throughput)."""

    def measured(mean: float, p95: float) -> ModelRunSummary:
        return ModelRunSummary(
            n_items=40,
            n_results=40,
            mean=mean,
            ci_low=mean - 0.08,
            ci_high=mean + 0.07,
            pass_rate=mean,
            latency_p50=Estimate(estimate=p95 / 2),
            latency_p95=Estimate(estimate=p95),
            tokens_per_s_median=55.0,
        )

    summary = RunSummary(
        models={
            "openai/gpt-4o-mini": measured(0.81, 1.9),
            "meta/llama-3.1-8b": measured(0.62, 0.7),
        }
    )
    return RunEvidence(run_id="run-fake", suite="quick", summary=summary, input_share=0.7)


def in_thread(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(coro)`` in a thread of its own (Playwright's sync API holds this
    thread's event loop)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def inputs_for(
    models: list[str] | None, *, run: RunEvidence | None = None, config: Config | None = None
) -> DecisionInputs:
    return in_thread(decision_inputs(config or load_config(None), models, run=run))


def profiles() -> list[Profile]:
    return [default_profile(), *(load_profile(p) for p in PROFILES)]
