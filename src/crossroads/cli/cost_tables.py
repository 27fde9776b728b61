"""The tables `crossroads cost` prints: wide (one row per model) when the terminal has room,
stacked (one block per model) and transposed (models as rows) when it has not, so every
model name and every "how" stays readable at 80 columns."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from ..catalog import CatalogEntry
    from ..decide.tco import MonthlyCost, Volume

__all__ = ["WIDE_COLUMNS", "print_tables", "usd"]

#: Below this many terminal columns the stacked layout is used.
WIDE_COLUMNS = 120


def usd(value: float | None) -> str:
    if value is None:
        return "-"
    if value == 0:
        return "$0"
    if value >= 100:
        return f"${value:,.0f}"
    return f"${value:,.2f}" if value >= 0.1 else f"${value:.4f}"


def print_tables(
    entries: list[CatalogEntry],
    hows: list[str],
    at_volume: list[MonthlyCost],
    curves: list[list[MonthlyCost]],
    curve_volumes: Sequence[float],
    shape: Volume,
    pairs: list[dict[str, Any]],
    sources: list[str],
    training: list[dict[str, Any]] | None,
) -> None:
    from rich.console import Console

    from ..decide.tco import format_tokens

    console = Console()
    title = (
        f"Monthly cost at {format_tokens(shape.total_tokens_per_month)} tokens/month "
        f"({1 - shape.output_share:.0%} input)"
    )
    rows = [_row(c, i, training) for i, c in enumerate(at_volume)]
    if console.width >= WIDE_COLUMNS:
        _wide(console, title, entries, hows, rows, curves, curve_volumes)
    else:
        _stacked(console, title, entries, hows, rows, curves, curve_volumes)
    if pairs:
        console.print("[bold]Break-even[/]")
        for pair in pairs:
            console.print(f"  {pair['sentence']}.", soft_wrap=True, highlight=False)
    else:
        console.print(
            "No break-even: give at least one open and one closed model.", highlight=False
        )
    console.print("[bold]Sources and assumptions[/]")
    for line in sources:
        console.print(f"  - {line}", soft_wrap=True, highlight=False, markup=False)


_COLUMNS = ("per month", "$/1M output", "$/1M tokens", "replicas/GPUs", "compute", "staff", "setup")


def _row(c: MonthlyCost, i: int, training: list[dict[str, Any]] | None) -> dict[str, str]:
    row = {
        "per month": usd(c.total),
        "$/1M output": usd(c.per_1m_output_tokens),
        "$/1M tokens": usd(c.per_1m_tokens),
        "replicas/GPUs": f"{c.replicas}/{c.gpus}" if c.kind == "self_host" else "-",
        "compute": usd(c.compute),
        "staff": usd(c.staff),
        "setup": usd(c.setup),
    }
    if training is not None:
        row["training"] = usd(c.training) if c.training is not None else training[i]["status"]
    return row


def _wide(
    console: Console,
    title: str,
    entries: list[CatalogEntry],
    hows: list[str],
    rows: list[dict[str, str]],
    curves: list[list[MonthlyCost]],
    curve_volumes: Sequence[float],
) -> None:
    from rich.table import Table

    from ..decide.tco import format_tokens

    table = Table(title=title)
    table.add_column("model")
    table.add_column("how")
    for column in rows[0] if rows else _COLUMNS:
        table.add_column(column, justify="right")
    for entry, how, row in zip(entries, hows, rows, strict=True):
        table.add_row(entry.id, how, *row.values())
    console.print(table)
    curve = Table(title="Monthly cost by volume (tokens/month, same input share)")
    curve.add_column("volume", justify="right")
    for entry in entries:
        curve.add_column(entry.short_name, justify="right")
    for i, volume in enumerate(curve_volumes):
        curve.add_row(format_tokens(volume), *(usd(costs[i].total) for costs in curves))
    console.print(curve)


def _stacked(
    console: Console,
    title: str,
    entries: list[CatalogEntry],
    hows: list[str],
    rows: list[dict[str, str]],
    curves: list[list[MonthlyCost]],
    curve_volumes: Sequence[float],
) -> None:
    """One block per model (every field on its own line), then the volumes as columns."""
    from rich.table import Table

    from ..decide.tco import format_tokens

    console.print(f"[bold]{title}[/]", highlight=False)
    for entry, how, row in zip(entries, hows, rows, strict=True):
        block = Table(show_header=False, box=None, padding=(0, 1), pad_edge=False)
        block.add_column("field", style="dim", no_wrap=True)
        block.add_column("value", overflow="fold")
        block.add_row("model", f"[bold]{entry.id}[/]")
        block.add_row("how", how)
        block.add_row("costs", "  ".join(f"{k} {v}" for k, v in row.items()))
        console.print(block)
    curve = Table(title="Monthly cost by volume (tokens/month, same input share)")
    curve.add_column("model", overflow="fold", min_width=12)
    for volume in curve_volumes:
        curve.add_column(format_tokens(volume), justify="right", no_wrap=True)
    for entry, costs in zip(entries, curves, strict=True):
        curve.add_row(entry.id, *(usd(c.total) for c in costs))
    console.print(curve)
