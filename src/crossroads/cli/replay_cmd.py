"""``crossroads replay``: stored production requests as a suite, run on candidate models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["replay"]


def replay(
    ctx: typer.Context,
    models: Annotated[str, typer.Option(help="Comma-separated candidate models to run.")],
    since: Annotated[str, typer.Option(help="How far back: 7d, 12h, 30m, 2w.")] = "7d",
    match: Annotated[
        str | None,
        typer.Option(help="Only requests for this route or model (globs allowed)."),
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many requests.")] = None,
    scorers: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated scorer types (default: the scorers of the shadow rule "
            "matching --match, else semantic)."
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Write results.json and results.html here.")
    ] = None,
    suite_out: Annotated[
        Path | None,
        typer.Option(help="Also write the suite as YAML (+ JSONL items) for `crossroads eval`."),
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, help="Calls in flight.")] = 8,
) -> None:
    """Replay stored production requests (gateway.store_bodies: true) on candidate models,
    scored against the production answers; the run is listed by `crossroads runs`."""
    from ._common import config_path, run_guarded

    names = tuple(m.strip() for m in models.split(",") if m.strip())
    run_guarded(
        lambda: _replay(
            config_path(ctx), names, since, match, limit, scorers, out, suite_out, concurrency
        )
    )


def _scorers(config: Any, match: str | None, given: str | None) -> list[dict[str, Any]]:
    import fnmatch

    if given:
        return [{"type": t.strip()} for t in given.split(",") if t.strip()]
    for rule in config.shadow:
        if match is not None and (match == rule.match or fnmatch.fnmatchcase(match, rule.match)):
            return [dict(s) for s in rule.scorers]
    return [{"type": "semantic"}]


def _replay(
    config_file: Any,
    models: tuple[str, ...],
    since: str,
    match: str | None,
    limit: int | None,
    scorer_types: str | None,
    out: Path | None,
    suite_out: Path | None,
    concurrency: int,
) -> None:
    import asyncio

    from rich.console import Console

    from ..client import AsyncClient
    from ..config import load_config
    from ..errors import ConfigError
    from ..evals.results import load_run, write_outputs
    from ..evals.runner import Runner, RunOptions
    from ..shadow.replay import parse_since, replay_items, replay_suite, write_suite
    from ..store import open_database
    from ._progress import model_bars
    from .eval_cmd import print_summary

    if not models:
        raise ConfigError("Give the candidate models to replay on: --models a,b.")
    console = Console(stderr=True)
    cfg = load_config(config_file)
    window = parse_since(since)
    specs = _scorers(cfg, match, scorer_types)
    name = f"replay:{match or '*'}"
    with open_database(config=cfg) as db:
        items = replay_items(
            db, since=window, match=match, limit=limit, store_bodies=cfg.gateway.store_bodies
        )
        suite = replay_suite(name, specs, items)
        if suite_out is not None:
            yaml_path, jsonl_path = write_suite(suite_out, name, specs, items)
            console.print(f"Wrote {yaml_path} and {jsonl_path}")
        console.print(
            f"Replaying {len(items)} production requests ({items[0].created_at:%Y-%m-%d} to "
            f"{items[-1].created_at:%Y-%m-%d}) on {', '.join(models)}"
        )
        options = RunOptions(models=models, concurrency=concurrency, per_model_concurrency=4)
        progress, on_progress = model_bars(console, passed=True)

        async def main() -> str:
            async with AsyncClient(cfg) as client:
                return await Runner(client, db, suite, options, progress=on_progress).run()

        with progress:
            run_id = asyncio.run(main())
        data = load_run(db, run_id)
    print_summary(data, Console())
    folder = out or Path("runs") / f"replay-{run_id}"
    json_path, html_path = write_outputs(data, folder)
    console.print(f"Wrote {json_path} and {html_path}")
    console.print(f"Run id: {run_id}")
