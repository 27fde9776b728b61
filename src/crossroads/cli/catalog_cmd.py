"""``crossroads catalog update --prices FILE``: compare the catalog's list prices with a
community price map and, only when asked, record the newer ones (with source and date)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["catalog_app"]

catalog_app = typer.Typer(help="Keep the model catalog's prices current.", no_args_is_help=True)


@catalog_app.command("update")
def update(
    prices: Annotated[
        Path,
        typer.Option(
            "--prices",
            help="A price map in LiteLLM's model_prices_and_context_window.json format.",
        ),
    ],
    apply: Annotated[
        bool,
        typer.Option(
            "--apply", help="Record the changed prices (under CROSSROADS_HOME); else only show."
        ),
    ] = False,
    source: Annotated[
        str | None,
        typer.Option(help="Where FILE came from (an https URL), recorded with each price."),
    ] = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Date of the map (YYYY-MM-DD; default today).")
    ] = None,
) -> None:
    """Show every catalog price that the map gives differently; --apply records them."""
    from ._common import run_guarded

    run_guarded(lambda: _update(prices, apply, source, as_of))


def _update(path: Path, apply: bool, source: str | None, as_of_text: str | None) -> None:
    import re

    from rich.console import Console
    from rich.table import Table

    from ..catalog import load_catalog
    from ..catalog.prices import (
        LITELLM_SOURCE,
        overrides_path,
        price_changes,
        read_price_map,
        write_overrides,
    )
    from ..catalog.render import format_price
    from ..errors import ConfigError

    try:
        as_of = dt.date.fromisoformat(as_of_text) if as_of_text else dt.date.today()
    except ValueError:
        raise ConfigError(f"--as-of {as_of_text!r}: use a date such as 2026-12-05") from None
    where = source or LITELLM_SOURCE
    if not re.match(r"^https?://\S+$", where):
        raise ConfigError(f"--source {where!r}: give the http(s) URL the price map came from")
    changes = price_changes(load_catalog(), read_price_map(path))
    console = Console()
    if not changes:
        console.print(f"No price differs from the catalog ({path}).", highlight=False)
        return

    def show(p: tuple[float, float, float | None] | None) -> str:
        if p is None:
            return "—"
        cached = f" (cached {format_price(p[2])})" if p[2] is not None else ""
        return f"{format_price(p[0])}/{format_price(p[1])}{cached}"

    table = Table(title=f"Price changes in {path.name} ($ per 1M tokens, input/output)")
    for column in ("model", "matched", "catalog", "as of", "price map"):
        table.add_column(column, overflow="fold")
    for c in changes:
        table.add_row(c.id, c.key, show(c.old), c.old_as_of or "—", show(c.new))
    console.print(table)
    if not apply:
        console.print(
            f"Nothing changed. Run again with --apply to record these {len(changes)} price(s) "
            f"in {overrides_path()} (source {where}, as of {as_of.isoformat()}).",
            highlight=False,
            soft_wrap=True,
        )
        return
    written = write_overrides(changes, source=where, as_of=as_of)
    console.print(
        f"Recorded {len(changes)} price(s) in {written} (source {where}, as of "
        f"{as_of.isoformat()}); the shipped catalog is unchanged. Delete that file to go back.",
        highlight=False,
        soft_wrap=True,
    )
