"""``crossroads eval``, ``runs``, ``show`` and ``suites``: evidence from your own tasks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["eval_", "runs", "show", "suites"]


def _models(value: str) -> tuple[str, ...]:
    models = tuple(m.strip() for m in value.split(",") if m.strip())
    if not models:
        raise typer.BadParameter(
            "give at least one model, e.g. --models local/smollm2,openai/gpt-4o"
        )
    return models


def eval_(
    ctx: typer.Context,
    suite: Annotated[
        str, typer.Argument(help="A built-in suite (`crossroads suites`) or a YAML file.")
    ],
    models: Annotated[str, typer.Option("--models", "-m", help="Comma-separated model names.")] = (
        "local/smollm2"
    ),
    concurrency: Annotated[int, typer.Option(min=1, help="Calls in flight overall.")] = 8,
    per_model: Annotated[int, typer.Option(min=1, help="Calls in flight per model.")] = 4,
    repeat: Annotated[int, typer.Option(min=1, help="Answers per item (stochastic models).")] = 1,
    seed: Annotated[int | None, typer.Option(help="Sampling seed sent to every model.")] = None,
    out: Annotated[Path | None, typer.Option(help="Write results.json and results.html here.")] = (
        None
    ),
    resume: Annotated[str | None, typer.Option(help="Finish an interrupted run.")] = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Call models even for cached temperature-0 requests.")
    ] = False,
) -> None:
    """Run SUITE on each model and say, with statistics, which differences are real."""
    from ._common import config_path, run_guarded

    run_guarded(
        lambda: _eval(
            config_path(ctx),
            suite,
            _models(models),
            concurrency,
            per_model,
            repeat,
            seed,
            out,
            resume,
            no_cache,
        )
    )


def _eval(
    config: Any,
    suite_name: str,
    models: tuple[str, ...],
    concurrency: int,
    per_model: int,
    repeat: int,
    seed: int | None,
    out: Path | None,
    resume: str | None,
    no_cache: bool,
) -> None:
    import asyncio

    from rich.console import Console

    from ..client import AsyncClient
    from ..config import load_config
    from ..evals.results import load_run, write_outputs
    from ..evals.runner import Runner, RunOptions
    from ..evals.suite import load_suite
    from ..store import open_database
    from ._progress import model_bars

    console = Console(stderr=True)
    cfg = load_config(config)
    suite = load_suite(suite_name)
    options = RunOptions(
        models=models,
        repeat=repeat,
        concurrency=concurrency,
        per_model_concurrency=per_model,
        use_cache=not no_cache,
        seed=seed,
    )
    progress, on_progress = model_bars(console, passed=True)
    console.print(
        f"Suite [bold]{suite.name}[/]: {len(suite.items)} items × {len(models)} model(s) × {repeat}"
    )
    with open_database(config=cfg) as db:

        async def main() -> str:
            async with AsyncClient(cfg) as client:
                runner = Runner(client, db, suite, options, progress=on_progress)
                return await runner.run(resume=resume)

        try:
            with progress:
                run_id = asyncio.run(main())
        except KeyboardInterrupt:
            console.print(
                "[yellow]Interrupted.[/] Finish it with `crossroads eval "
                f"{suite_name} --resume <RUN_ID>` (see `crossroads runs`)."
            )
            raise
        data = load_run(db, run_id)
    print_summary(data, Console())
    if out is not None:
        json_path, html_path = write_outputs(data, out)
        console.print(f"Wrote {json_path} and {html_path}")
    console.print(f"Run id: {run_id}")


def _fmt(value: Any, pattern: str = "{:.2f}") -> str:
    return "—" if value is None else pattern.format(value)


def print_summary(data: dict[str, Any], console: Console) -> None:
    """The scores table and the pairwise verdicts of one run."""
    from rich.table import Table

    summary = data["summary"]
    run = data["run"]
    table = Table(title=f"{run['suite']} — run {run['id']} ({run['status']})")
    table.add_column("model", no_wrap=True)
    for column in ("score [95% CI]", "pass", "p50", "p95", "tok/s", "cost", "errors"):
        table.add_column(column, justify="right", no_wrap=True)
    for model in run["models"]:
        s = summary["models"].get(model) or {}
        mean = s.get("mean")
        ci = (
            f"{mean:.2f} [{_fmt(s.get('ci_low'))}–{_fmt(s.get('ci_high'))}]"
            if mean is not None
            else "—"
        )
        p50 = (s.get("latency_p50") or {}).get("estimate")
        p95 = (s.get("latency_p95") or {}).get("estimate")
        errors = f"{s.get('errors', 0)}" + (
            f" (+{s['format_errors']} format)" if s.get("format_errors") else ""
        )
        table.add_row(
            model,
            ci,
            _fmt(s.get("pass_rate"), "{:.0%}"),
            _fmt(p50, "{:.2f}s"),
            _fmt(p95, "{:.2f}s"),
            _fmt(s.get("tokens_per_s_median"), "{:.0f}"),
            _fmt(s.get("cost_usd_total"), "${:.4f}"),
            errors,
        )
    console.print(table)
    for pair in summary.get("pairs", []):
        console.print(f"  {pair['a']} vs {pair['b']}: {pair['verdict']}")


def runs(
    ctx: typer.Context,
    json_: Annotated[
        bool,
        typer.Option(
            "--json", help="One JSON list (id, suite, models, items, results, state, created)."
        ),
    ] = False,
    limit: Annotated[int, typer.Option(min=1, help="How many of the latest runs.")] = 50,
) -> None:
    """List past evaluation runs (shadow runs are suites named shadow:RULE)."""
    from ._common import config_path, run_guarded

    def body() -> None:
        from rich.console import Console
        from rich.table import Table

        from ..config import load_config
        from ..evals.results import list_runs
        from ..store import open_database

        with open_database(config=load_config(config_path(ctx))) as db:
            found = list_runs(db, limit)
        if json_:
            typer.echo(json.dumps([_run_json(r) for r in found], indent=1))
            return
        if not found:
            Console().print("No runs yet. Try: crossroads eval quick --models local/smollm2")
            return
        table = Table(title="Evaluation runs")
        for column in ("run id", "suite", "models", "items", "results", "status", "created"):
            table.add_column(column)
        for r in found:
            table.add_row(
                r["id"],
                r["suite"],
                ", ".join(r["models"]),
                str(r["items"]),
                str(r["n"]),
                r["status"],
                r["created_at"].strftime("%Y-%m-%d %H:%M"),
            )
        Console().print(table)

    run_guarded(body)


def _run_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "suite": row["suite"],
        "models": list(row["models"]),
        "items": row["items"],
        "results": row["n"],
        "state": row["status"],
        "created": row["created_at"].isoformat(),
    }


def show(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="A run id from `crossroads runs`.")],
    out: Annotated[Path | None, typer.Option(help="Write results.json and results.html here.")] = (
        None
    ),
) -> None:
    """Re-render a past run (and optionally write its files again)."""
    from ._common import config_path, run_guarded

    def body() -> None:
        from rich.console import Console

        from ..config import load_config
        from ..evals.results import load_run, write_outputs
        from ..store import open_database

        with open_database(config=load_config(config_path(ctx))) as db:
            data = load_run(db, run_id)
        print_summary(data, Console())
        if out is not None:
            json_path, html_path = write_outputs(data, out)
            Console(stderr=True).print(f"Wrote {json_path} and {html_path}")

    run_guarded(body)


def suites() -> None:
    """List the built-in evaluation suites."""
    from rich.console import Console
    from rich.table import Table

    from ..evals.suite import builtin_suites, load_suite
    from ._common import run_guarded

    def body() -> None:
        table = Table(title="Built-in suites", caption="Run one: crossroads eval NAME --models a,b")
        for column in ("suite", "items", "description"):
            table.add_column(column)
        for name, description in builtin_suites().items():
            table.add_row(name, str(len(load_suite(name).items)), description)
        Console().print(table)

    run_guarded(body)
