"""tune: the before/after verdict's signs, `--method full`, early stopping with the
default patience, and gradient accumulation — on tiny models, on CPU."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from crossroads.config import Config
from crossroads.evals.stats import paired_bootstrap_diff_ci, summarize
from crossroads.tune.evaluate import _flip

from .conftest import require

# -- the verdict: after − before ---------------------------------------------------------


def _pair(before_pass: set[int], after_pass: set[int], n: int = 60) -> dict[str, Any]:
    rows = [
        {"model": model, "item_id": f"q{i}", "score": float(i in passed), "passed": i in passed}
        for model, passed in (("base", before_pass), ("tuned", after_pass))
        for i in range(n)
    ]
    summary = summarize(rows, ["base", "tuned"])  # the order before_after uses
    return summary["pairs"][0]


def test_a_known_improvement_reads_as_after_minus_before() -> None:
    before = set(range(30))  # 30 of 60 pass
    after = (before - {0, 1, 2}) | set(range(30, 55))  # 3 worsened, 25 improved: 52 pass
    flipped = _flip(_pair(before, after))
    assert flipped["mean_diff"] == pytest.approx(22 / 60)
    assert (flipped["improved_items"], flipped["worsened_items"]) == (25, 3)
    # The CI of after − before, computed directly, is the flipped one (ends swapped).
    b = [float(i in before) for i in range(60)]
    a = [float(i in after) for i in range(60)]
    direct = paired_bootstrap_diff_ci(a, b)
    assert flipped["ci_low"] == pytest.approx(direct.low, abs=1e-9)
    assert flipped["ci_high"] == pytest.approx(direct.high, abs=1e-9)
    assert 0 < flipped["ci_low"] < flipped["mean_diff"] < flipped["ci_high"]
    assert (
        flipped["significant"] and flipped["verdict"] == "the tuned model is better than the base"
    )


def test_a_known_regression_reads_as_worse() -> None:
    before = set(range(52))
    after = (before - set(range(27, 52))) | {52, 53, 54}  # 25 worsened, 3 improved
    flipped = _flip(_pair(before, after))
    assert flipped["mean_diff"] == pytest.approx(-22 / 60)
    assert (flipped["improved_items"], flipped["worsened_items"]) == (3, 25)
    assert flipped["ci_low"] < flipped["mean_diff"] < flipped["ci_high"] < 0
    assert flipped["significant"] and flipped["verdict"] == "the tuned model is worse than the base"


# -- training on a tiny model ------------------------------------------------------------

require("torch", "pip install torch==2.13.0 && pip install -e '.[dev]'")

from crossroads.tune.registry import tuned_model  # noqa: E402
from crossroads.tune.run import run_tune  # noqa: E402
from crossroads.tune.trainer import StepEvent  # noqa: E402

from .local_models import TinyModels, tiny_models  # noqa: E402, F401
from .test_tune import mean_loss, options, toy_data  # noqa: E402


def test_full_fine_tuning_trains_every_weight_and_saves_a_plain_model(
    tiny_models: TinyModels,  # noqa: F811
    tmp_path: Path,
) -> None:
    from crossroads.backends.hf import TransformersOptions, load_weights
    from crossroads.routing import resolve

    data = toy_data(tmp_path)
    opts = replace(options(tiny_models["llama"], data, "tiny-full"), method="full")
    opts = replace(opts, learning_rate=1e-3)
    outcome = run_tune(opts, Config())
    assert outcome.result.steps == 24
    tuned = tuned_model("local/tiny-full")
    assert tuned is not None and tuned.method == "full" and tuned.merged
    assert (tuned.weights_path / "config.json").is_file()
    assert not (tuned.weights_path / "adapter_config.json").exists()
    card = json.loads((tuned.folder / "card.json").read_text(encoding="utf-8"))
    assert card["hyperparameters"]["method"] == "full"
    cpu = {"device": "cpu", "dtype": "float32"}
    base = load_weights(str(tiny_models["llama"]), TransformersOptions(**cpu), "cpu")  # type: ignore[arg-type]
    deployment = resolve("local/tiny-full", Config())
    reloaded = load_weights(deployment.model, TransformersOptions(**cpu), "cpu")  # type: ignore[arg-type]
    assert mean_loss(reloaded, tiny_models["llama"], data) < 0.5 * mean_loss(
        base, tiny_models["llama"], data
    )


def test_early_stopping_with_the_default_patience(
    tiny_models: TinyModels,  # noqa: F811
    tmp_path: Path,
) -> None:
    """A learning rate far too high makes the validation loss worse: training stops after
    two validations without improvement (the default patience), keeps the best weights."""
    data = toy_data(tmp_path)
    opts = options(tiny_models["llama"], data, "tiny-early", epochs=30)
    opts = replace(opts, train=replace(opts.train, patience=2), val_fraction=0.25)
    opts = replace(opts, learning_rate=0.5)
    events: list[StepEvent] = []
    result = run_tune(opts, Config(), on_step=events.append).result
    vals = [e.val_loss for e in events if e.val_loss is not None]
    assert result.stopped_early
    assert result.steps < 30 * 2  # 6 training examples / batch 4 = 2 steps an epoch
    best = min(vals)
    assert result.best_val_loss == pytest.approx(best)
    assert len(vals) - 1 - vals.index(best) == 2  # exactly `patience` evaluations after it
    assert vals[-1] > best

    # The saved model is the best one, not the last: its validation loss is the best.
    from crossroads.backends.hf import TransformersOptions, load_weights
    from crossroads.routing import resolve
    from crossroads.tune.data import load_examples, split_examples

    _, val = split_examples(load_examples(data)[0], 0.25, 0)
    val_file = tmp_path / "val.jsonl"
    val_file.write_text(
        "".join(json.dumps({"messages": e.as_dicts()}) + "\n" for e in val), encoding="utf-8"
    )
    deployment = resolve("local/tiny-early", Config())
    saved = load_weights(
        deployment.model,
        TransformersOptions(
            device="cpu",
            dtype="float32",
            base_model=str(tiny_models["llama"]),  # type: ignore[arg-type]
        ),
        "cpu",
    )
    assert mean_loss(saved, tiny_models["llama"], val_file) == pytest.approx(best, rel=1e-4)


def test_gradient_accumulation_equals_the_larger_batch(
    tiny_models: TinyModels,  # noqa: F811
    tmp_path: Path,
) -> None:
    """batch 2 x grad_accum 2 takes the same optimiser steps as batch 4: same examples per
    step, loss normalised over the step's tokens, so the same losses."""
    data = toy_data(tmp_path)
    runs: dict[str, list[StepEvent]] = {"big": [], "accum": []}
    for name, train in (("big", {"batch_size": 4}), ("accum", {"batch_size": 2, "grad_accum": 2})):
        opts = options(tiny_models["llama"], data, f"tiny-{name}", epochs=3, **train)
        run_tune(opts, Config(), on_step=runs[name].append)
    big, accum = runs["big"], runs["accum"]
    assert len(big) == len(accum) == 6  # 8 examples / 4 per step x 3 epochs
    assert [e.loss for e in accum] == pytest.approx([e.loss for e in big], rel=1e-4)
    assert accum[-1].loss < accum[0].loss
