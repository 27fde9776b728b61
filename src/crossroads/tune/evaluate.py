"""Before/after: one eval run with the base and the tuned model, and the paired verdict.

Both models run on the transformers backend from the same base weights (the base under
the name ``"<base> (base)"``, added to a copy of the configuration for this run only), so
the difference measured is the tuning and nothing else — not, for example, llama.cpp's
quantisation against transformers' dequantised weights. The statistics are the eval
runner's own (:func:`crossroads.evals.stats.summarize`): a paired bootstrap CI of the
per-item difference, and McNemar's exact test for pass/fail items.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..config import Config
    from ..evals.runner import ProgressEvent
    from .registry import TunedModel
    from .run import BaseRef

__all__ = ["base_label", "before_after"]


def base_label(base: BaseRef) -> str:
    """The name the base model carries in a before/after run."""
    return f"{base.name} (base)"


def _flip(pair: dict[str, Any]) -> dict[str, Any]:
    """A ``(base, tuned)`` pair summary as ``after − before``, with a verdict in words."""

    def neg(value: Any) -> Any:
        return -value if isinstance(value, int | float) else value

    diff, low, high = neg(pair.get("mean_diff")), neg(pair.get("ci_high")), neg(pair.get("ci_low"))
    p = pair.get("mcnemar_p")
    significant = bool(pair.get("significant"))
    if diff is None:
        verdict = "no items answered by both models"
    elif significant:
        verdict = f"the tuned model is {'better' if diff > 0 else 'worse'} than the base"
    else:
        verdict = "no significant difference"
        if low is not None and high is not None and (low > 0 or high < 0) and p is not None:
            verdict += (
                f": the mean score moved, but the pass/fail outcomes of too few items "
                f"changed (McNemar p = {p:.2g}) for both tests to agree"
            )
        elif pair.get("items_needed"):
            verdict += f"; about {pair['items_needed']} items would be needed to tell"
    return {
        "mean_diff": diff,
        "ci_low": low,
        "ci_high": high,
        "mcnemar_p": p,
        "improved_items": pair.get("mcnemar_c"),
        "worsened_items": pair.get("mcnemar_b"),
        "significant": significant,
        "verdict": verdict,
        "items_needed": pair.get("items_needed"),
    }


def before_after(
    config: Config,
    suite_path: str | Path,
    base: BaseRef,
    tuned: TunedModel,
    *,
    seed: int | None = None,
    progress: Callable[[ProgressEvent], None] | None = None,
) -> dict[str, Any]:
    """Run the suite on the base and the tuned model; the card's ``evaluation`` section."""
    from ..client import AsyncClient
    from ..config import ModelEntry
    from ..evals.results import load_run
    from ..evals.runner import Runner, RunOptions
    from ..evals.suite import load_suite
    from ..store import open_database

    suite = load_suite(str(suite_path))
    before = base_label(base)
    # Decode every item of a model in one batch: on a CPU the per-step cost barely grows
    # with the batch, so this is several times faster than the backend's default of 8.
    batch = max(8, min(len(suite.items), 64))
    after = tuned.deployment()
    entries = [
        ModelEntry(
            name=before,
            backend="transformers",
            model=tuned.resolved_base(),  # the very weights the adapter was trained on
            context_window=tuned.context_window,
            options={
                **{k: v for k, v in after.options.items() if k != "base_model"},
                "max_batch_size": batch,
            },
        ),
        ModelEntry(
            name=tuned.full_name,
            backend="transformers",
            model=after.model,
            context_window=tuned.context_window,
            options={**after.options, "max_batch_size": batch},
        ),
    ]
    cfg = config.model_copy(update={"models": [*config.models, *entries]})
    models = (before, tuned.full_name)
    options = RunOptions(
        models=models, concurrency=2 * batch, per_model_concurrency=batch, seed=seed
    )
    with open_database(config=cfg) as db:

        async def main() -> str:
            async with AsyncClient(cfg) as client:
                return await Runner(client, db, suite, options, progress=progress).run()

        run_id = asyncio.run(main())
        data = load_run(db, run_id)
    summary = data["summary"]

    def side(name: str) -> dict[str, Any]:
        s = summary["models"].get(name) or {}
        keys = ("mean", "ci_low", "ci_high", "pass_rate", "n_items", "errors")
        return {"model": name, **{k: s.get(k) for k in keys}}

    pair = summary["pairs"][0]  # pairs follow the models' order: a = before, b = after
    return {
        "suite": suite.name,
        "suite_source": str(suite_path),
        "items": len(suite.items),
        "run_id": run_id,
        "backend": "transformers",
        "before": side(before),
        "after": side(tuned.full_name),
        "difference": _flip(pair),
    }
