"""The per-model progress bars shared by ``eval``, ``compare`` and ``tune --eval``."""

from __future__ import annotations

import io

from rich.console import Console

from crossroads.cli._progress import model_bars
from crossroads.evals.runner import ProgressEvent


def event(model: str, done: int, passed: bool | None = True) -> ProgressEvent:
    return ProgressEvent(model=model, done=done, total=3, passed=passed, error=False)


def test_one_bar_per_model_with_pass_counts() -> None:
    console = Console(file=io.StringIO(), width=100)
    progress, on_progress = model_bars(console, passed=True)
    with progress:
        for e in (event("a", 1), event("b", 1, False), event("a", 2, False), event("a", 3)):
            on_progress(e)
    tasks = {t.description: t for t in progress.tasks}
    assert sorted(tasks) == ["a", "b"]
    assert tasks["a"].completed == 3 and tasks["a"].total == 3
    assert tasks["a"].fields["state"] == "2 passed" and tasks["b"].fields["state"] == "0 passed"
    assert len(progress.columns) == 5


def test_plain_bars_have_no_pass_column() -> None:
    progress, on_progress = model_bars(Console(file=io.StringIO()), width=32)
    on_progress(event("m", 2))
    (task,) = progress.tasks
    assert task.completed == 2 and len(progress.columns) == 3
