"""One rich progress bar per model for the commands that run eval suites (``eval``,
``compare``, ``tune --eval``). Import it inside a command: rich loads only then."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

    from ..evals.runner import ProgressEvent

__all__ = ["model_bars"]


def model_bars(
    console: Console, *, width: int = 28, passed: bool = False
) -> tuple[Progress, Callable[[ProgressEvent], None]]:
    """A :class:`~rich.progress.Progress` (use it as a context manager) and the
    ``progress`` callback that keeps one bar per model on it. ``passed`` adds how many
    items passed so far and the time elapsed."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.progress import Progress as _Progress

    columns: list[ProgressColumn] = [
        TextColumn(f"{{task.description:<{width}}}"),
        BarColumn(),
        MofNCompleteColumn(),
    ]
    if passed:
        columns += [TextColumn("{task.fields[state]}"), TimeElapsedColumn()]
    progress = _Progress(*columns, console=console)
    bars: dict[str, Any] = {}
    passes: dict[str, int] = {}

    def on_progress(event: ProgressEvent) -> None:
        if event.model not in bars:
            bars[event.model] = progress.add_task(event.model, total=event.total, state="")
        if not passed:
            progress.update(bars[event.model], completed=event.done)
            return
        passes[event.model] = passes.get(event.model, 0) + bool(event.passed)
        progress.update(
            bars[event.model], completed=event.done, state=f"{passes[event.model]} passed"
        )

    return progress, on_progress
