"""Catalog output for people (a rich table) and machines (JSON-ready dicts)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from . import CatalogEntry

__all__ = [
    "entries_as_json",
    "format_context",
    "format_params",
    "format_price",
    "price_date",
    "render_table",
    "status_text",
]

_WIDE = 110  # console columns from which the status gets its own column


def entries_as_json(entries: Iterable[CatalogEntry]) -> list[dict[str, Any]]:
    """Every field of every entry, with dates as ISO strings (``json.dumps``-ready)."""
    return [entry.model_dump(mode="json") for entry in entries]


def format_params(parameters_b: float | None) -> str:
    """``6.74`` -> ``6.7B``, ``0.135`` -> ``135M``, ``None`` (undisclosed) -> ``—``."""
    if parameters_b is None:
        return "—"
    if parameters_b < 1:
        return f"{parameters_b * 1000:.0f}M"
    if parameters_b < 10:
        return f"{parameters_b:.1f}B"
    return f"{parameters_b:.0f}B"


def format_context(tokens: int) -> str:
    """``131072`` -> ``131K``, ``1047576`` -> ``1.0M``, ``10000000`` -> ``10M``."""
    if tokens >= 10_000_000:
        return f"{tokens / 1_000_000:.0f}M"
    if tokens >= 1_000_000:
        return f"{tokens / 1_000_000:.1f}M"
    if tokens >= 1_000:
        return f"{tokens / 1_000:.0f}K"
    return str(tokens)


def format_price(value: float) -> str:
    """``30.0`` -> ``$30``, ``2.5`` -> ``$2.50``, ``0.075`` -> ``$0.075`` (no precision lost)."""
    if value == int(value):
        return f"${int(value)}"
    return f"${value:.2f}" if round(value, 2) == value else f"${value:g}"


def status_text(entry: CatalogEntry) -> str:
    """``active``, ``legacy → gpt-4o``, ``retired → gemini-2.5-flash``.

    The successor is shown by the part of its id after the slash, which is unique in the
    catalog and accepted everywhere a model name is (``crossroads chat gemini-2.5-flash``).
    """
    if entry.status != "active" and entry.successor:
        return f"{entry.status} → {entry.successor.split('/', 1)[-1]}"
    return entry.status


def _prices_text(entry: CatalogEntry) -> str:
    if entry.prices is not None:
        return f"{format_price(entry.prices.input)}/{format_price(entry.prices.output)}"
    return "self-host" if entry.kind == "open" else "—"


def price_date(entry: CatalogEntry) -> str:
    """The date of the row's list price (``—`` without one)."""
    return entry.prices.as_of.isoformat() if entry.prices is not None else "—"


def render_table(entries: Iterable[CatalogEntry], console: Console) -> None:
    """Print one row per model: id, kind, status, licence category, size, context, prices.

    On consoles narrower than 110 columns the status goes under the id (only for legacy and
    retired rows), so the table still fits 80 columns without truncating ids or prices.
    """
    rows = list(entries)
    wide = console.width >= _WIDE
    table = Table(
        title=f"Model catalog ({len(rows)} models)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
    )
    table.add_column("id", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    if wide:
        table.add_column("status", no_wrap=True)
    table.add_column("licence", no_wrap=True)
    table.add_column("params", justify="right", no_wrap=True)
    table.add_column("context", justify="right", no_wrap=True)
    table.add_column("$/1M in/out", justify="right", no_wrap=True)
    if wide:
        table.add_column("price as of", no_wrap=True)
    styles = {"active": "", "legacy": "yellow", "retired": "dim"}
    for entry in rows:
        first: Text | str = entry.id
        if not wide and entry.status != "active":
            first = Text(entry.id)
            first.append(f"\n {status_text(entry)}", style="italic")
        cells = [first, entry.kind]
        if wide:
            cells.append(status_text(entry))
        price: Text | str = _prices_text(entry)
        if not wide and entry.prices is not None:
            price = Text(f"{price}\n{price_date(entry)}")
        cells += [
            entry.licence.category,
            format_params(entry.parameters_b),
            format_context(entry.context_window),
            price,
        ]
        if wide:
            cells.append(price_date(entry))
        table.add_row(*cells, style=styles[entry.status] or None)
    console.print(table)
    console.print(
        "USD list prices as of the date shown with each price (re-check before relying on "
        "them; `crossroads catalog update --prices FILE` compares a newer price map); "
        "params — = undisclosed; MoE models are sized by total parameters. "
        "`crossroads models --json` has every field and source.",
        style="dim",
    )
