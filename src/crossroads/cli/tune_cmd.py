"""``crossroads tune``: fine-tune an open model on your data and register it as ``local/NAME``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from ..tune.run import TuneOptions, TuneOutcome

__all__ = ["tune"]


def _positive_lr(value: float | None) -> float | None:
    if value is not None and not value > 0:  # NaN too
        raise typer.BadParameter(
            f"must be greater than 0, not {value:g}; leave --lr out for the default "
            "(2e-3 LoRA, 5e-5 full)"
        )
    return value


def tune(
    ctx: typer.Context,
    base_model: Annotated[
        str,
        typer.Argument(
            help="The open model to start from: local/smollm2, a configured transformers or "
            "llamacpp model, a model folder, a .gguf file or a hub id."
        ),
    ],
    data: Annotated[
        Path,
        typer.Option(
            "--data", help="JSONL training data: {messages: [...]} or {prompt, completion}."
        ),
    ],
    out: Annotated[
        str, typer.Option("--out", help="Name of the tuned model: it becomes local/NAME.")
    ],
    eval_suite: Annotated[
        str | None,
        typer.Option(
            "--eval-suite", help="Run this suite on the base and the tuned model afterwards."
        ),
    ] = None,
    method: Annotated[str, typer.Option(help="lora (adapter) or full (all weights).")] = "lora",
    epochs: Annotated[int, typer.Option(min=1, help="Passes over the training data.")] = 2,
    lr: Annotated[
        float | None,
        typer.Option(
            "--lr", callback=_positive_lr, help="Learning rate (default: 2e-3 LoRA, 5e-5 full)."
        ),
    ] = None,
    rank: Annotated[int, typer.Option(min=1, help="LoRA rank.")] = 8,
    alpha: Annotated[int, typer.Option(min=1, help="LoRA alpha (scale = alpha/rank).")] = 16,
    batch_size: Annotated[int, typer.Option(min=1, help="Examples per micro-batch.")] = 4,
    grad_accum: Annotated[int, typer.Option(min=1, help="Micro-batches per optimiser step.")] = 1,
    max_length: Annotated[
        int | None,
        typer.Option(min=8, help="Longest example in tokens (default: min(context, 1024))."),
    ] = None,
    val_fraction: Annotated[
        float, typer.Option(min=0.0, max=0.9, help="Share of examples held out for validation.")
    ] = 0.1,
    seed: Annotated[int, typer.Option(help="Seed for the split, the order and dropout.")] = 0,
    patience: Annotated[
        int,
        typer.Option(min=0, help="Evaluations without validation gain before stopping (0: off)."),
    ] = 2,
    eval_every: Annotated[
        int | None, typer.Option(min=1, help="Steps between validation runs (default: epoch).")
    ] = None,
    save_every: Annotated[
        int | None, typer.Option(min=1, help="Steps between checkpoints (default: each eval).")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the unfinished job for --out.")
    ] = False,
    merge: Annotated[
        bool, typer.Option("--merge", help="Save merged weights instead of an adapter.")
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing local/NAME.")
    ] = False,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    threads: Annotated[
        int | None,
        typer.Option(min=1, help="CPU threads for torch (default: torch's, one per core)."),
    ] = None,
) -> None:
    """Fine-tune BASE_MODEL on --data (LoRA by default) and register it as local/NAME."""
    from ._common import config_path, run_guarded

    def body() -> None:
        from ..errors import ConfigError
        from ..tune.lora import LoraSettings
        from ..tune.run import TuneOptions
        from ..tune.trainer import TrainConfig

        if method not in ("lora", "full"):
            raise ConfigError(f"--method must be lora or full, not {method!r}.")
        if device not in ("auto", "cpu", "cuda") and not device.startswith("cuda:"):
            raise ConfigError(f"--device must be auto, cpu or cuda, not {device!r}.")
        options = TuneOptions(
            base=base_model,
            data=data,
            out=out,
            method="lora" if method == "lora" else "full",
            lora=LoraSettings(rank=rank, alpha=alpha),
            train=TrainConfig(
                epochs=epochs,
                batch_size=batch_size,
                grad_accum=grad_accum,
                seed=seed,
                patience=patience or None,
                eval_every=eval_every,
                checkpoint_every=save_every,
            ),
            learning_rate=lr,
            max_length=max_length,
            val_fraction=val_fraction,
            merge=merge,
            device=device,
            resume=resume,
            overwrite=overwrite,
            threads=threads,
        )
        _tune(config_path(ctx), options, eval_suite)

    run_guarded(body)


def _tune(config: Any, options: TuneOptions, eval_suite: str | None) -> None:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from ..config import load_config
    from ..evals.suite import load_suite
    from ..tune.run import run_tune
    from ..tune.trainer import StepEvent

    console = Console(stderr=True)
    cfg = load_config(config)
    _quiet_transformers()
    if eval_suite is not None:
        load_suite(eval_suite)  # a broken suite fails now, not after training
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}  val {task.fields[val]}  lr {task.fields[lr]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )
    bar: list[Any] = []
    curve: list[float] = []
    last_val = ["—"]

    def on_step(event: StepEvent) -> None:
        if not bar:
            bar.append(
                progress.add_task("training", total=event.total_steps, loss="—", val="—", lr="—")
            )
        curve.append(event.loss)
        if event.val_loss is not None:
            last_val[0] = f"{event.val_loss:.3f}"
        progress.update(
            bar[0],
            completed=event.step,
            description=f"epoch {event.epoch}",
            loss=f"{event.loss:.3f}",
            val=last_val[0],
            lr=f"{event.learning_rate:.1e}",
        )

    try:
        with progress:
            outcome = run_tune(
                options, cfg, on_step=on_step, on_phase=lambda text: console.print(text)
            )
    except KeyboardInterrupt:
        console.print(
            f"[yellow]Interrupted.[/] Continue from the last checkpoint with the same command "
            f"and --resume (local/{options.out} is not registered until training finishes)."
        )
        raise
    _print_training(outcome, curve, console)
    if eval_suite is not None:
        _before_after(cfg, eval_suite, outcome, options.train.seed, console)
    Console().print(
        f"Registered [bold]{outcome.model.full_name}[/] in {outcome.model.folder}\n"
        f'Try: crossroads chat {outcome.model.full_name} "..."'
    )


def _quiet_transformers() -> None:
    """Our progress bar replaces transformers' per-file ones (loading, converting, saving)."""
    import os

    os.environ.setdefault("TQDM_DISABLE", "1")  # GGUF conversion uses plain tqdm
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        return
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]


def sparkline(values: list[float], width: int = 40) -> str:
    """The loss curve as one line of block characters (resampled to ``width``)."""
    if not values:
        return ""
    if len(values) > width:
        step = len(values) / width
        values = [values[int(i * step)] for i in range(width)]
    low, high = min(values), max(values)
    blocks = "▁▂▃▄▅▆▇█"
    span = (high - low) or 1.0
    return "".join(blocks[int((v - low) / span * (len(blocks) - 1))] for v in values)


def _fmt(value: float | None, pattern: str = "{:.3f}") -> str:
    return "—" if value is None else pattern.format(value)


def _print_training(outcome: TuneOutcome, curve: list[float], console: Console) -> None:
    r = outcome.result
    console.print(
        f"Training loss {_fmt(r.first_loss)} → {_fmt(r.final_loss)}  {sparkline(curve)}",
        highlight=False,
    )
    console.print(
        f"Validation loss {_fmt(r.first_val_loss)} → {_fmt(r.best_val_loss)} (best, step "
        f"{r.best_step if r.best_step is not None else '—'})"
        + ("; stopped early" if r.stopped_early else ""),
        highlight=False,
    )
    console.print(
        f"{r.steps} steps, {r.train_tokens:,} tokens in {r.train_seconds:.0f} s "
        f"({_fmt(r.tokens_per_s, '{:,.0f}')} tokens/s) on {r.device}",
        highlight=False,
    )


def _before_after(cfg: Any, suite: str, outcome: TuneOutcome, seed: int, console: Console) -> None:
    from rich.console import Console
    from rich.table import Table

    from ..tune.card import write_card
    from ..tune.evaluate import before_after
    from ._progress import model_bars

    progress, on_progress = model_bars(console, width=32)
    console.print(f"Evaluating before/after on [bold]{suite}[/]")
    with progress:
        evaluation = before_after(
            cfg, suite, outcome.base, outcome.model, seed=seed, progress=on_progress
        )
    outcome.card["evaluation"] = evaluation
    write_card(outcome.model.folder, outcome.card)
    table = Table(title=f"{evaluation['suite']}: before and after tuning")
    for column in ("", "model", "score [95% CI]", "pass"):
        table.add_column(
            column, justify="right" if column in ("score [95% CI]", "pass") else "left"
        )
    for role in ("before", "after"):
        m = evaluation[role]
        mean = m.get("mean")
        ci = (
            f"{mean:.2f} [{_fmt(m.get('ci_low'), '{:.2f}')}–{_fmt(m.get('ci_high'), '{:.2f}')}]"
            if mean is not None
            else "—"
        )
        rate = m.get("pass_rate")
        table.add_row(role, m["model"], ci, "—" if rate is None else f"{rate:.0%}")
    out = Console()
    out.print(table)
    d = evaluation["difference"]
    verdict = "significant" if d["significant"] else "not significant"
    out.print(
        f"after − before: {_fmt(d['mean_diff'], '{:+.2f}')} (95% CI "
        f"{_fmt(d['ci_low'], '{:+.2f}')} to {_fmt(d['ci_high'], '{:+.2f}')}), {verdict}; "
        f"{d['verdict']}",
        highlight=False,
    )
    out.print(f"Run id: {evaluation['run_id']}; model card: {outcome.model.folder / 'README.md'}")
