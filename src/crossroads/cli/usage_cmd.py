"""``crossroads usage``: what the gateway served, to whom, and what it cost."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

import typer

from .. import _time

__all__ = ["usage"]

def parse_since(value: str | None, *, now: datetime | None = None) -> datetime | None:
    """``7d``, ``24h``, ``30m``, ``2w``, or an ISO date/datetime (UTC unless it says)."""
    if value is None:
        return None
    try:
        return _time.parse_since(value, now=now)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def _by(value: str) -> str:
    if value not in ("key", "model", "day"):
        raise typer.BadParameter("choose key, model or day")
    return value


def usage(
    ctx: typer.Context,
    by: Annotated[str, typer.Option(help="Group by key, model or day.", callback=_by)] = "key",
    since: Annotated[
        str | None, typer.Option(help="Only requests since: 7d, 24h, 30m or an ISO date.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Requests, tokens, errors and cost from the gateway's usage ledger."""
    from ._common import config_path, run_guarded

    start = parse_since(since)
    group: Literal["key", "model", "day"] = by  # type: ignore[assignment]

    def body() -> None:
        from ..config import load_config
        from ..gateway.ledger import usage_report
        from ..store import open_database

        with open_database(config=load_config(config_path(ctx))) as db:
            rows = usage_report(db, by=group, since=start)
        if as_json:
            typer.echo(json.dumps(rows, indent=2, default=str))
            return
        _print(rows, group, start)

    run_guarded(body)


def _print(rows: list[dict[str, Any]], by: str, since: datetime | None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    period = f"since {since:%Y-%m-%d %H:%M} UTC" if since else "all time"
    if not rows:
        console.print(f"No gateway requests recorded ({period}). Start one: crossroads serve")
        return
    table = Table(title=f"Gateway usage by {by} ({period})", show_footer=True)
    sums = {
        k: sum(r[k] for r in rows)
        for k in (
            "requests",
            "errors",
            "prompt_tokens",
            "completion_tokens",
            "cost_usd",
            "unpriced",
        )
    }
    columns = [
        (by, "total", "left"),
        ("requests", f"{sums['requests']:,}", "right"),
        ("errors", f"{sums['errors']:,}", "right"),
        ("prompt tok", f"{sums['prompt_tokens']:,}", "right"),
        ("completion tok", f"{sums['completion_tokens']:,}", "right"),
        ("cost", f"${sums['cost_usd']:,.4f}", "right"),
        ("unpriced", f"{sums['unpriced']:,}", "right"),
        ("p50 latency", "", "right"),
    ]
    for title, footer, justify in columns:
        table.add_column(title, footer=footer, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        label = str(r[by])
        if by == "key" and r.get("key_id") and r["key_id"] != label:
            label = f"{label} ({r['key_id']})"
        p50 = r["p50_latency_s"]
        table.add_row(
            label,
            f"{r['requests']:,}",
            f"{r['errors']:,}",
            f"{r['prompt_tokens']:,}",
            f"{r['completion_tokens']:,}",
            f"${r['cost_usd']:,.4f}",
            f"{r['unpriced']:,}",
            "—" if p50 is None else f"{p50:.2f}s",
        )
    console.print(table)
    if sums["unpriced"]:
        console.print(
            f"[yellow]{sums['unpriced']:,} request(s) had no known price and are not in the "
            "cost column.[/] Add `prices:` (or `gpu_hour_usd:`) to their model in "
            "crossroads.yaml."
        )
