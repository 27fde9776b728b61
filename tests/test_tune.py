"""``crossroads tune`` on the tiny random models of all five seed architectures.

Real torch, transformers and PEFT on seeded random weights built offline (see
:mod:`tests.local_models`): LoRA lowers the training loss on a memorisable toy set, the
adapter is saved, registered as ``local/NAME``, reloaded through the transformers
backend and generates; resuming continues at the same step with the same losses; bad
data fails with ``file:line`` and leaves nothing registered.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from .conftest import require

_hint = "needs torch, transformers and peft: pip install torch==2.13.0 && pip install -e '.[dev]'"
require("torch", _hint)
require("peft", _hint)

from typer.testing import CliRunner

from crossroads.backends.base import Deployment
from crossroads.backends.hf import TransformersBackend, TransformersOptions, load_weights
from crossroads.cli.app import app
from crossroads.config import Config
from crossroads.errors import ConfigError
from crossroads.routing import resolve
from crossroads.tune.data import load_examples, tokenize_examples
from crossroads.tune.lora import LoraSettings, apply_lora
from crossroads.tune.registry import find_partial, list_tuned, models_dir, tuned_model
from crossroads.tune.run import TuneOptions, run_tune
from crossroads.tune.trainer import StepEvent, TrainConfig, Trainer
from crossroads.types import ChatRequest

from .local_models import ARCHITECTURES, TinyModels, tiny_models  # noqa: F401

ARCHS = list(ARCHITECTURES)
WORDS = ["amber", "basil", "cedar", "delta", "ember", "fjord", "grove", "haven"]
CPU: dict[str, object] = {"device": "cpu", "dtype": "float32"}


def toy_data(folder: Path) -> Path:
    """Eight prompt/completion pairs a small model can memorise."""
    path = folder / "toy.jsonl"
    rows = [
        {"prompt": f"Code word {i}?", "completion": f"The code is {w}."}
        for i, w in enumerate(WORDS)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def options(base: Path, data: Path, out: str, **train: Any) -> TuneOptions:
    settings: dict[str, Any] = {"epochs": 12, "batch_size": 4, "patience": None, "seed": 0}
    return TuneOptions(
        base=str(base),
        data=data,
        out=out,
        lora=LoraSettings(rank=8, alpha=16, dropout=0.0),
        train=TrainConfig(**(settings | train)),
        learning_rate=1e-2,
        val_fraction=0.0,
        device="cpu",
    )


def mean_loss(model: Any, folder: Path, data: Path) -> float:
    """Mean loss per learned token of ``model`` on ``data`` (no dropout, no gradients)."""
    import torch

    from crossroads.backends.hf import load_tokenizer

    tokenizer = load_tokenizer(str(folder), TransformersOptions(**CPU))  # type: ignore[arg-type]
    examples, _ = load_examples(data)
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for t in tokenize_examples(examples, tokenizer, 512):
            ids = torch.tensor([t.input_ids])
            labels = torch.tensor([t.labels])
            logits = model(input_ids=ids).logits[:, :-1, :]
            total += float(
                torch.nn.functional.cross_entropy(
                    logits.reshape(-1, logits.size(-1)),
                    labels[:, 1:].reshape(-1),
                    ignore_index=-100,
                    reduction="sum",
                )
            )
            count += int((labels[:, 1:] != -100).sum())
    return total / count


@pytest.mark.parametrize("arch", ARCHS)
async def test_lora_learns_saves_reloads_and_generates(
    tiny_models: TinyModels,  # noqa: F811
    tmp_path: Path,
    arch: str,
) -> None:
    data = toy_data(tmp_path)
    steps: list[StepEvent] = []
    outcome = run_tune(
        options(tiny_models[arch], data, f"tiny-{arch}"), Config(), on_step=steps.append
    )

    result = outcome.result
    assert result.steps == len(steps) == 24  # 8 examples / batch 4 x 12 epochs
    assert result.final_loss is not None and result.first_loss is not None
    assert result.final_loss < 0.5 * result.first_loss, (result.first_loss, result.final_loss)

    tuned = tuned_model(f"local/tiny-{arch}")
    assert tuned is not None and not tuned.merged and tuned.method == "lora"
    assert (tuned.weights_path / "adapter_config.json").is_file()
    assert (tuned.folder / "README.md").is_file() and (tuned.folder / "card.json").is_file()
    assert not (tuned.folder / "checkpoints").exists()

    # Reloaded from disk (base + adapter), the model is the trained one, not the base.
    deployment = resolve(f"local/tiny-{arch}", Config())
    assert deployment.backend == "transformers"
    assert deployment.options["base_model"] == str(tiny_models[arch].resolve())
    base = load_weights(str(tiny_models[arch]), TransformersOptions(**CPU), "cpu")  # type: ignore[arg-type]
    reloaded = load_weights(
        deployment.model,
        TransformersOptions(
            **CPU,
            base_model=str(  # type: ignore[arg-type]
                tiny_models[arch]
            ),
        ),
        "cpu",
    )
    tuned_loss = mean_loss(reloaded, tiny_models[arch], data)
    assert tuned_loss < 0.5 * mean_loss(base, tiny_models[arch], data)

    backend = TransformersBackend(
        Deployment(
            name=deployment.name,
            backend="transformers",
            model=deployment.model,
            options={**deployment.options, **CPU},
        )
    )
    reply = await backend.complete(
        ChatRequest(
            model=deployment.name,
            messages=[{"role": "user", "content": "Code word 3?"}],
            max_tokens=8,
            temperature=0,
        )
    )
    assert reply.text and reply.usage.completion_tokens > 0


def test_merged_weights_are_a_plain_model(tiny_models: TinyModels, tmp_path: Path) -> None:  # noqa: F811
    data = toy_data(tmp_path)
    opts = options(tiny_models["gpt_neox"], data, "tiny-merged", epochs=2)
    outcome = run_tune(replace(opts, merge=True), Config())
    assert outcome.model.merged
    assert (outcome.model.weights_path / "config.json").is_file()
    assert not (outcome.model.weights_path / "adapter_config.json").exists()
    deployment = resolve("local/tiny-merged", Config())
    assert "base_model" not in deployment.options
    model = load_weights(deployment.model, TransformersOptions(**CPU), "cpu")  # type: ignore[arg-type]
    assert mean_loss(model, tiny_models["gpt_neox"], data) > 0


def test_a_gguf_base_is_converted_once_and_served_from_the_conversion(
    tiny_models: TinyModels,  # noqa: F811
    tmp_path: Path,
) -> None:
    data = toy_data(tmp_path)
    first = run_tune(options(tiny_models.gguf, data, "tiny-gguf", epochs=2), Config())
    converted = Path(first.model.base_model)
    assert converted.parent == models_dir() / ".bases" and (converted / "config.json").is_file()
    assert first.model.base_original == str(tiny_models.gguf.resolve())
    assert resolve("local/tiny-gguf", Config()).options["base_model"] == str(converted)
    stamp = (converted / "config.json").stat().st_mtime_ns
    again = run_tune(options(tiny_models.gguf, data, "tiny-gguf-2", epochs=1), Config())
    assert again.model.base_model == str(converted)
    assert (converted / "config.json").stat().st_mtime_ns == stamp  # reused, not redone
    # Without the conversion the tuned model still loads, from the original file.
    import shutil

    shutil.rmtree(converted)
    assert resolve("local/tiny-gguf", Config()).options["base_model"] == first.model.base_original


def _trainer(folder: Path, data: Path, out: Path, **config: Any) -> Trainer:
    import torch

    from crossroads.backends.hf import load_tokenizer

    tokenizer = load_tokenizer(str(folder), TransformersOptions(**CPU))  # type: ignore[arg-type]
    examples, _ = load_examples(data)
    tokenized = tokenize_examples(examples, tokenizer, 512)
    torch.manual_seed(123)
    model = apply_lora(
        load_weights(str(folder), TransformersOptions(**CPU), "cpu"),  # type: ignore[arg-type]
        LoraSettings(dropout=0.2),  # dropout draws random numbers: the RNG state must resume
    )
    settings: dict[str, Any] = {
        "epochs": 3,
        "batch_size": 2,
        "learning_rate": 5e-3,
        "checkpoint_every": 1,
        "eval_every": 2,
        "patience": None,
    }
    return Trainer(
        model,
        tokenized[:6],
        tokenized[6:],
        TrainConfig(**(settings | config)),
        output_dir=out,
        pad_token_id=int(tokenizer.pad_token_id or 0),
    )


def losses(history: list[dict[str, float]]) -> list[float]:
    return [h["loss"] for h in history if "loss" in h]


def test_resume_continues_at_the_same_step_with_the_same_loss(
    tiny_models: TinyModels,  # noqa: F811
    tmp_path: Path,
) -> None:
    data = toy_data(tmp_path)
    folder = tiny_models["llama"]
    straight = _trainer(folder, data, tmp_path / "a").train()
    assert straight.steps == 9

    first = _trainer(folder, data, tmp_path / "b", max_steps=4).train()
    assert first.steps == 4
    assert losses(first.history) == pytest.approx(losses(straight.history)[:4], rel=1e-6)

    resumed_trainer = _trainer(folder, data, tmp_path / "b")
    resumed = resumed_trainer.train(resume=True)
    assert resumed.resumed_from == 4
    assert resumed.steps == 9
    assert losses(resumed.history) == pytest.approx(losses(straight.history), rel=1e-5)
    assert len(resumed_trainer.checkpoints()) == 2  # older ones pruned


def test_a_different_setting_refuses_to_resume(tiny_models: TinyModels, tmp_path: Path) -> None:  # noqa: F811
    data = toy_data(tmp_path)
    _trainer(tiny_models["llama"], data, tmp_path / "c", max_steps=2).train()
    other = _trainer(tiny_models["llama"], data, tmp_path / "c", learning_rate=1e-3)
    with pytest.raises(ConfigError, match="other settings"):
        other.train(resume=True)


def test_an_interrupted_job_is_not_registered_and_resumes(
    tiny_models: TinyModels,  # noqa: F811
    tmp_path: Path,
) -> None:
    data = toy_data(tmp_path)
    opts = options(tiny_models["bloom"], data, "tiny-resume", epochs=3, checkpoint_every=1)

    def interrupt(event: StepEvent) -> None:
        if event.step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_tune(opts, Config(), on_step=interrupt)
    assert tuned_model("local/tiny-resume") is None
    assert [m.name for m in list_tuned()].count("tiny-resume") == 0
    with pytest.raises(ConfigError, match="Unknown model"):
        resolve("local/tiny-resume", Config())
    partial = find_partial("tiny-resume")
    assert partial is not None and partial.name.startswith("tiny-resume.partial-")

    outcome = run_tune(replace(opts, resume=True), Config())
    assert outcome.result.resumed_from == 3 and outcome.result.steps == 6
    assert tuned_model("local/tiny-resume") is not None
    assert find_partial("tiny-resume") is None


def test_model_card_records_base_data_and_hyperparameters(
    tiny_models: TinyModels,  # noqa: F811
    tmp_path: Path,
) -> None:
    import hashlib

    data = toy_data(tmp_path)
    opts = options(tiny_models["falcon"], data, "tiny-card", epochs=2)
    run_tune(replace(opts, val_fraction=0.25), Config())
    folder = models_dir() / "tiny-card"
    card = json.loads((folder / "card.json").read_text(encoding="utf-8"))
    assert card["base"]["source"] == str(tiny_models["falcon"].resolve())
    assert card["data"]["sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    assert card["data"]["examples"] == 8 and card["data"]["val_examples"] == 2
    assert card["hyperparameters"]["lora_rank"] == 8
    assert card["hyperparameters"]["learning_rate"] == 1e-2
    assert card["training"]["first_val_loss"] is not None
    text = (folder / "README.md").read_text(encoding="utf-8")
    for needle in (card["data"]["sha256"], "lora_rank", "Licence", "Validation loss"):
        assert needle in text


# --- the command line ------------------------------------------------------------------------

runner = CliRunner()


def _no_trace(name: str) -> None:
    root = models_dir()
    assert not list(root.glob(f"{name}*")) if root.exists() else True


@pytest.mark.parametrize(
    ("lines", "line", "words"),
    [
        (['{"prompt": "a", "completion": "b"}', "{oops"], 2, "invalid JSON"),
        (['{"prompt": "a", "completion": "b"}', '{"question": "a"}'], 2, "missing fields"),
        ([], None, "no examples"),
        (
            [
                '{"prompt": "a", "completion": "b"}',
                json.dumps({"prompt": "w " * 300, "completion": "b"}),
            ],
            2,
            "longer than the context",
        ),
    ],
)
def test_bad_data_fails_with_file_and_line_and_registers_nothing(
    tiny_models: TinyModels,  # noqa: F811
    tmp_path: Path,
    lines: list[str],
    line: int | None,
    words: str,
) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text("".join(x + "\n" for x in lines), encoding="utf-8")
    args = ["tune", str(tiny_models["gptj"]), "--data", str(data), "--out", "tiny-bad"]
    result = runner.invoke(app, [*args, "--device", "cpu", "--max-length", "64"])
    assert result.exit_code == 2, result.output
    where = f"{data}:{line}:" if line else f"{data}:"
    assert where in result.stderr and words in result.stderr
    _no_trace("tiny-bad")


def toy_suite(folder: Path) -> Path:
    suite = folder / "suite.yaml"
    items = "".join(
        f"  - {{id: i{i}, q: 'Code word {i}?', expected: {w}}}\n" for i, w in enumerate(WORDS[:3])
    )
    suite.write_text(
        "name: toy\ndefaults: {temperature: 0, max_tokens: 4}\nprompt: '{{ q }}'\n"
        "scorers: [{type: contains}]\nitems:\n" + items,
        encoding="utf-8",
    )
    return suite


def test_cli_trains_evaluates_registers_and_chat_answers(
    tiny_models: TinyModels,  # noqa: F811
    tmp_path: Path,
) -> None:
    data = toy_data(tmp_path)
    args = ["tune", str(tiny_models["llama"]), "--data", str(data), "--out", "tiny-cli"]
    options = ["--epochs", "2", "--device", "cpu", "--threads", "1"]
    suite = ["--eval-suite", str(toy_suite(tmp_path))]
    result = runner.invoke(app, [*args, *options, *suite])
    assert result.exit_code == 0, result.output
    assert "Registered local/tiny-cli" in result.stdout
    assert "before and after tuning" in result.stdout and "after − before" in result.stdout
    assert "Training loss" in result.stderr and "Validation loss" in result.stderr
    card = (models_dir() / "tiny-cli" / "README.md").read_text(encoding="utf-8")
    assert "## Evaluation before and after" in card and "McNemar" in card

    again = runner.invoke(app, [*args, "--epochs", "1", "--device", "cpu"])
    assert again.exit_code == 2 and "already exists" in again.stderr

    chat = runner.invoke(app, ["chat", "local/tiny-cli", "Code word 1?", "--max-tokens", "4"])
    assert chat.exit_code == 0, chat.output
    assert chat.stdout.strip()


def test_cli_refuses_bad_options_and_closed_bases(tiny_models: TinyModels, tmp_path: Path) -> None:  # noqa: F811
    data = toy_data(tmp_path)
    base = ["tune", str(tiny_models["llama"]), "--data", str(data), "--out", "x1"]
    assert "must be lora or full" in runner.invoke(app, [*base, "--method", "qlora"]).stderr
    assert "--out" in runner.invoke(app, [*base[:-1], "Bad Name!"]).stderr
    assert "embedded model" in runner.invoke(app, [*base[:-1], "smollm2"]).stderr
    closed = runner.invoke(app, ["tune", "openai/gpt-4o-mini", "--data", str(data), "--out", "x2"])
    assert closed.exit_code in (1, 2)
    _no_trace("x1")
    _no_trace("x2")


def test_before_after_eval_reports_the_paired_difference(
    tiny_models: TinyModels,  # noqa: F811
    tmp_path: Path,
) -> None:
    from crossroads.tune.evaluate import before_after

    data = toy_data(tmp_path)
    outcome = run_tune(options(tiny_models["llama"], data, "tiny-eval", epochs=2), Config())
    suite = toy_suite(tmp_path)
    evaluation = before_after(Config(), suite, outcome.base, outcome.model, seed=0)
    assert evaluation["before"]["model"] == f"{tiny_models['llama']} (base)"
    assert evaluation["after"]["model"] == "local/tiny-eval"
    assert evaluation["before"]["n_items"] == evaluation["after"]["n_items"] == 3
    diff = evaluation["difference"]
    assert set(diff) >= {"mean_diff", "ci_low", "ci_high", "significant", "verdict"}
    assert diff["significant"] is False  # 3 items are never enough


def _no_base_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make resolving or preparing the base model fail the test: the check under test must
    refuse the job before either happens."""
    import crossroads.tune.run as run_module

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the base model was resolved or loaded before the check")

    monkeypatch.setattr(run_module, "resolve_base", fail)
    monkeypatch.setattr(run_module, "prepare_base", fail)


@pytest.mark.parametrize("lr", [0.0, -1e-3, float("nan")])
def test_cli_refuses_a_learning_rate_that_is_not_positive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lr: float
) -> None:
    import crossroads.tune.run as run_module

    def no_training(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("run_tune was called with a learning rate that is not > 0")

    monkeypatch.setattr(run_module, "run_tune", no_training)
    data = toy_data(tmp_path)
    args = ["tune", "some-base", "--data", str(data), "--out", "x-lr", "--lr", str(lr)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "'--lr'" in result.stderr and "must be greater than 0" in result.stderr
    assert "leave --lr out for the default" in result.stderr
    _no_trace("x-lr")


def test_an_explicit_learning_rate_of_zero_is_refused_not_defaulted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_base_loading(monkeypatch)
    opts = replace(options(tmp_path / "base", toy_data(tmp_path), "x-lr0"), learning_rate=0.0)
    with pytest.raises(ConfigError, match=r"--lr must be greater than 0, not 0; leave --lr out"):
        run_tune(opts, Config())
    _no_trace("x-lr0")


def test_nothing_to_resume_fails_before_the_base_is_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_base_loading(monkeypatch)
    opts = replace(options(tmp_path / "base", toy_data(tmp_path), "x-resume"), resume=True)
    with pytest.raises(ConfigError, match=r"Nothing to resume for local/x-resume"):
        run_tune(opts, Config())
    _no_trace("x-resume")
