"""``crossroads models``: the catalog of open and closed models, with sources."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from ..catalog.local import LocalModel

__all__ = ["models"]


def models(
    ctx: typer.Context,
    open_only: Annotated[bool, typer.Option("--open", help="Only open-weight models.")] = False,
    closed_only: Annotated[bool, typer.Option("--closed", help="Only closed API models.")] = False,
    local: Annotated[
        bool,
        typer.Option("--local", help="Open models on this machine: embedded, configured, tuned."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """List the model catalog: licence, size, context window, prices, sources."""
    import json

    from ._common import config_path, run_guarded

    if sum((open_only, closed_only, local)) > 1:
        typer.echo("error: --open, --closed and --local exclude each other; give one.", err=True)
        raise typer.Exit(2)
    if local:
        from ..catalog.local import find_local_models
        from ..config import load_config

        found = run_guarded(lambda: find_local_models(load_config(config_path(ctx))))
        if as_json:
            typer.echo(json.dumps([m.as_json() for m in found], indent=2))
        else:
            _local_table(found)
        return

    from ..catalog import load_catalog
    from ..catalog.render import entries_as_json, render_table

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


def _local_table(found: list[LocalModel]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(
        title="Local open models",
        caption="Add more under `models:` with "
        "backend llamacpp (a GGUF file) or transformers (a folder or hub id).",
    )
    for column in ("name", "backend", "size", "arch", "quant", "licence"):
        table.add_column(column, no_wrap=True)
    table.add_column("path", overflow="fold")
    for m in found:
        size = f"{m.size_bytes / 1e6:,.0f} MB" if m.size_bytes else "—"
        path = escape(m.path) if m.present else f"[red]{escape(m.problem or 'missing')}[/]"
        table.add_row(
            m.name,
            m.backend,
            size,
            m.architecture or "—",
            m.quantisation or "—",
            m.licence or "—",
            path,
        )
    Console().print(table)
