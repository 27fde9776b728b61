"""``crossroads compare``: the decision report, offline on the embedded defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["compare"]


def compare(
    ctx: typer.Context,
    suite: Annotated[str, typer.Option(help="Evaluation suite (built-in name or YAML file).")] = (
        "quick"
    ),
    models: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated models (default: local/smollm2, configured models "
            "and a reference set of closed and open models)."
        ),
    ] = None,
    profile: Annotated[
        Path | None, typer.Option(help="Advisor profile YAML (see examples/profiles/).")
    ] = None,
    volume: Annotated[
        str | None, typer.Option(help="Monthly tokens, e.g. 50M (default: the profile's).")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Report folder (default reports/DATE).")] = None,
    seed: Annotated[int | None, typer.Option(help="Sampling seed for measured models.")] = None,
    open_: Annotated[bool, typer.Option("--open", help="Open the report in a browser.")] = False,
    evidence: Annotated[
        str | None,
        typer.Option(
            help="RUN_ID[,RUN_ID…]: use these runs (e.g. shadow runs of production traffic, "
            "`crossroads runs`) for Performance instead of running --suite."
        ),
    ] = None,
) -> None:
    """Measure, cost and score open and closed models; write report.html, .md and .json."""
    from ._common import config_path, run_guarded

    run_ids = [r.strip() for r in (evidence or "").split(",") if r.strip()]
    run_guarded(
        lambda: _compare(
            config_path(ctx), suite, models, profile, volume, out, seed, open_, run_ids
        )
    )


def _compare(
    config_file: Any,
    suite_name: str,
    models: str | None,
    profile_path: Path | None,
    volume: str | None,
    out: Path | None,
    seed: int | None,
    open_: bool,
    run_ids: list[str] | None = None,
) -> None:
    from datetime import datetime

    from rich.console import Console

    from ..config import load_config
    from ..decide.advisor import load_profile, with_overrides
    from ..decide.compare import default_models, default_profile
    from ..decide.tco import format_tokens, parse_volume
    from ..errors import ConfigError
    from ..evals.suite import load_suite
    from ..report import write_report
    from ..report.compare import compare_from_evidence, run_compare
    from ..store import open_database
    from ._progress import model_bars

    console = Console(stderr=True)
    config = load_config(config_file)
    try:
        tokens = parse_volume(volume) if volume else None
    except ValueError as exc:
        raise ConfigError(f"--volume: {exc}") from exc
    chosen = load_profile(profile_path) if profile_path else default_profile()
    if tokens is not None:
        chosen = with_overrides(chosen, volume_tokens_per_month=tokens)
    names = (
        [m.strip() for m in models.split(",") if m.strip()] if models else default_models(config)
    )
    if run_ids:
        given = [m.strip() for m in models.split(",") if m.strip()] if models else None
        console.print(
            f"Deciding from run(s) {', '.join(run_ids)} at "
            f"{format_tokens(chosen.constraints.volume_tokens_per_month)} tokens/month "
            f"(profile {chosen.name})."
        )
        with open_database(config=config) as db:
            result = compare_from_evidence(config, db, run_ids, chosen, given)
    else:
        suite = load_suite(suite_name)
        progress, on_progress = model_bars(console)
        console.print(
            f"Comparing {len(names)} models on suite [bold]{suite.name}[/] at "
            f"{format_tokens(chosen.constraints.volume_tokens_per_month)} tokens/month "
            f"(profile {chosen.name})."
        )
        with open_database(config=config) as db, progress:
            result = run_compare(config, db, suite, names, chosen, progress=on_progress, seed=seed)
    folder = out or Path("reports") / datetime.now().strftime("%Y%m%d-%H%M%S")
    paths = write_report(result.report, folder)
    out_console = Console()
    rec = result.report.recommendation
    out_console.print(f"[bold]Recommendation:[/] {rec.summary}")
    out_console.print(f"[bold]What would change it:[/] {rec.flip_summary}")
    if result.report.quality.measured_on:
        out_console.print(f"Performance {result.report.quality.measured_on}.")
    for row in result.report.advice.ranking[:5]:
        out_console.print(f"  {row.score:.1f}  {row.model}")
    for m in result.report.models:
        if m.note:
            out_console.print(f"  [dim]{m.name}: {m.note}[/]")
    console.print(f"Wrote {paths['html']}, {paths['markdown']} and {paths['json']}")
    if open_:
        import webbrowser

        webbrowser.open(paths["html"].resolve().as_uri())
