"""``crossroads models``: the catalog of open and closed models, with sources."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["models"]


def models(
    open_only: Annotated[bool, typer.Option("--open", help="Only open-weight models.")] = False,
    closed_only: Annotated[bool, typer.Option("--closed", help="Only closed API models.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """List the model catalog: licence, size, context window, prices, sources."""
    import json

    from ..catalog import load_catalog
    from ..catalog.render import entries_as_json, render_table
    from .app import run_guarded

    if open_only and closed_only:
        typer.echo("error: --open and --closed exclude each other; give one.", err=True)
        raise typer.Exit(2)
    entries = run_guarded(load_catalog)
    if open_only:
        entries = [e for e in entries if e.kind == "open"]
    elif closed_only:
        entries = [e for e in entries if e.kind == "closed"]
    if as_json:
        typer.echo(json.dumps(entries_as_json(entries), indent=2, ensure_ascii=False))
        return
    from rich.console import Console

    render_table(entries, Console())
