"""``crossroads fit``: will an open model run on this (or that) hardware?"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from ..catalog import CatalogEntry

__all__ = ["fit"]


def fit(
    model: Annotated[str, typer.Argument(help="A catalog model, e.g. llama-3.1-70b.")],
    gpu: Annotated[
        str | None, typer.Option(help="GPU type, e.g. A100-80GB, H100, L4, RTX-4090.")
    ] = None,
    gpus: Annotated[int, typer.Option(min=1, help="Number of GPUs (tensor parallel).")] = 1,
    ram: Annotated[
        float | None, typer.Option(min=0.1, help="CPU inference with this many GB of RAM.")
    ] = None,
    context: Annotated[int, typer.Option(min=1, help="Tokens of context per sequence.")] = 4096,
    batch: Annotated[int, typer.Option(min=1, help="Concurrent sequences.")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Estimate memory (weights at fp16/int8/int4 + KV cache) and say what fits."""
    from ._common import run_guarded

    if gpu and ram:
        typer.echo("error: give --gpu or --ram, not both.", err=True)
        raise typer.Exit(2)
    run_guarded(lambda: _fit(model, gpu, gpus, ram, context, batch, as_json))


def _fit(
    model: str,
    gpu: str | None,
    gpus: int,
    ram: float | None,
    context: int,
    batch: int,
    as_json: bool,
) -> None:
    import json

    from rich.console import Console
    from rich.table import Table

    from ..catalog import find_model, suggest
    from ..decide.fit import GIB, GPUS, Hardware, detect_hardware, estimate_fit, find_gpu
    from ..errors import ConfigError, UnknownModelError

    entry = find_model(model)
    if entry is None:
        raise UnknownModelError(model, suggest(model))
    if entry.self_host is None:
        raise ConfigError(
            f"{entry.name} is a closed model: its weights are not published, so it runs only "
            f"on {entry.vendor}'s servers. Try an open model (`crossroads models --open`)."
        )
    if gpu:
        found = find_gpu(gpu)
        if found is None:
            raise ConfigError(f"Unknown GPU {gpu!r}. Known: {', '.join(GPUS)}.")
        hardware = Hardware(found.name, found.memory_gib, gpus, "gpu")
    elif ram:
        hardware = Hardware(f"{ram:g} GB RAM (CPU)", ram * 1e9 / GIB, 1, "cpu")
    else:
        hardware = detect_hardware()
    report = estimate_fit(
        entry, hardware, context=min(context, entry.context_window or context), batch=batch
    )
    tier = _serving_tier(entry)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "model": entry.id,
                    "hardware": {
                        "label": hardware.label,
                        "count": hardware.count,
                        "memory_gib_each": hardware.memory_gib,
                        "kind": hardware.kind,
                    },
                    "context": report.context,
                    "batch": batch,
                    "precisions": [
                        {
                            "precision": r.precision,
                            "weights_gb": round(r.weights_bytes / 1e9, 2),
                            "kv_cache_gb": round(r.kv_cache_bytes / 1e9, 2),
                            "total_gb": round(r.total_bytes / 1e9, 2),
                            "available_gb": round(r.available_bytes / 1e9, 2),
                            "fits": r.fits,
                            "devices_needed": r.devices_needed,
                        }
                        for r in report.rows
                    ],
                    "recommended": report.best.precision if report.best else None,
                    "verdict": report.verdict(),
                    "serving_tier": tier,
                },
                indent=2,
            )
        )
        return
    console = Console()
    arch = entry.self_host.architecture
    where = f"{hardware.count} × {hardware.label}" if hardware.count > 1 else hardware.label
    table = Table(
        title=f"{entry.id} ({entry.parameters_b:g}B, {arch.type}) on {where}",
        caption=f"context {report.context:,} × batch {batch}; usable = 90% of GPU memory "
        "or 80% of RAM",
    )
    for column in (
        "precision",
        "weights GB",
        "KV cache GB",
        "total GB",
        "usable GB",
        "fits",
        "devices needed",
    ):
        table.add_column(column, justify="left" if column in ("precision", "fits") else "right")
    for r in report.rows:
        table.add_row(
            r.precision,
            f"{r.weights_bytes / 1e9:.1f}",
            f"{r.kv_cache_bytes / 1e9:.2f}",
            f"{r.total_bytes / 1e9:.1f}",
            f"{r.available_bytes / 1e9:.1f}",
            "[green]yes[/]" if r.fits else "[red]no[/]",
            str(r.devices_needed),
        )
    console.print(table)
    console.print(report.verdict())
    if tier is not None:
        console.print(
            f"Smallest sufficient serving tier: {tier['text']}, "
            f"${tier['replica_month_usd']:,.0f}/month always on ({tier['price_source']}). "
            "`crossroads cost` and `compare` price this tier unless a bigger one costs less "
            "at the volume asked."
        )


def _serving_tier(entry: CatalogEntry) -> dict[str, Any] | None:
    """The tier the TCO and the decision use (:mod:`crossroads.decide.hosting`)."""
    from ..decide.cost import HOURS_PER_MONTH
    from ..decide.hosting import hour_price, serving_plans

    plans = serving_plans(entry)
    if not plans:
        return None
    plan = plans[0]
    price = hour_price(plan)
    hourly = price.value if price is not None else None
    return {
        "tier": plan.tier,
        "hardware": plan.hardware,
        "count": plan.count,
        "precision": plan.precision,
        "text": plan.describe(),
        "hour_usd": hourly,
        "replica_month_usd": (hourly or 0.0) * plan.count * HOURS_PER_MONTH,
        "price_source": price.cite() if price is not None else "no price",
    }
