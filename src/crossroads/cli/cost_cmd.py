"""``crossroads cost``: monthly cost of API models against self-hosted open models."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from ..catalog import CatalogEntry
    from ..decide.tco import ApiOption, MonthlyCost, SelfHostOption, Volume

__all__ = ["cost"]

CURVE_VOLUMES = (1e6, 1e7, 1e8, 1e9, 1e10)
ALWAYS_ON = (
    "Self-hosted replicas are always on: each is billed 730 h/month, busy or idle; "
    "replicas = ceil(output tokens per month / (output tok/s x utilisation x 3600 x 730)), "
    "at least 1. Prices are on-demand list prices: re-check them before deciding."
)


def cost(
    models: Annotated[
        str,
        typer.Option(
            "--models",
            help="Comma-separated catalog models, e.g. llama-3.1-8b,openai/gpt-4o-mini. "
            "Closed models are costed at API prices, open models as self-hosted.",
        ),
    ],
    volume: Annotated[
        str, typer.Option(help="Tokens per month, input + output: 50M, 2.5B, 800k, 1e9.")
    ] = "50M",
    input_share: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of the tokens that are input.")
    ] = 0.75,
    gpu: Annotated[
        str | None,
        typer.Option(help="GPU for self-hosting (default: fewest GPUs that fit, H100 first)."),
    ] = None,
    gpu_hour: Annotated[
        float | None, typer.Option("--gpu-hour", min=0.0, help="USD per GPU-hour (override).")
    ] = None,
    utilisation: Annotated[
        float,
        typer.Option(min=0.01, max=1.0, help="Average load as a share of peak throughput."),
    ] = 0.5,
    staff_fte: Annotated[
        float | None,
        typer.Option("--staff-fte", min=0.0, help="Engineer share operating each model."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Compare monthly cost at a volume and across volumes, with the break-even volume."""
    from .app import run_guarded

    run_guarded(
        lambda: _cost(models, volume, input_share, gpu, gpu_hour, utilisation, staff_fte, as_json)
    )


def _usd(value: float | None) -> str:
    if value is None:
        return "-"
    if value == 0:
        return "$0"
    if value >= 100:
        return f"${value:,.0f}"
    return f"${value:,.2f}" if value >= 0.1 else f"${value:.4f}"


def _resolve(names: str) -> list[CatalogEntry]:
    from ..catalog import find_model, suggest
    from ..errors import ConfigError, UnknownModelError

    entries: dict[str, CatalogEntry] = {}
    for name in (n.strip() for n in names.split(",")):
        if not name:
            continue
        entry = find_model(name)
        if entry is None:
            raise UnknownModelError(name, suggest(name))
        entries.setdefault(entry.id, entry)
    if not entries:
        raise ConfigError("--models needs at least one model, e.g. --models llama-3.1-8b,gpt-4o")
    return list(entries.values())


def _sentence(open_name: str, closed_name: str, volume: float | None) -> str:
    from ..decide.tco import MAX_VOLUME, MIN_VOLUME, format_tokens

    if volume is None:
        return (
            f"never within {format_tokens(MIN_VOLUME)}-{format_tokens(MAX_VOLUME)} tokens/month: "
            f"self-hosting {open_name} stays dearer than {closed_name}"
        )
    return (
        f"above {format_tokens(volume)} tokens/month self-hosting {open_name} becomes cheaper "
        f"than {closed_name}"
    )


def _how(option: ApiOption | SelfHostOption, entry: CatalogEntry) -> str:
    from ..decide.tco import ApiOption

    if isinstance(option, ApiOption):
        return f"API ({entry.vendor})"
    return f"self-host: {option.gpus_per_replica} x {option.gpu} ({option.precision})"


def _cost(
    models: str,
    volume_text: str,
    input_share: float,
    gpu: str | None,
    gpu_hour: float | None,
    utilisation: float,
    staff_fte: float | None,
    as_json: bool,
) -> None:
    from ..decide import tco
    from ..errors import ConfigError

    entries = _resolve(models)
    try:
        total = tco.parse_volume(volume_text)
        shape = tco.Volume.from_tokens(total, input_share)
        options: list[tco.ApiOption | tco.SelfHostOption] = [
            tco.default_api_option(e)
            if e.kind == "closed"
            else tco.default_selfhost_option(
                e, gpu=gpu, gpu_hour_usd=gpu_hour, utilisation=utilisation, staff_fte=staff_fte
            )
            for e in entries
        ]
        at_volume = [tco.monthly_cost(o, shape) for o in options]
        curves = [[tco.monthly_cost(o, shape.scaled(v)) for v in CURVE_VOLUMES] for o in options]
    except ConfigError:
        raise
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    pairs: list[dict[str, Any]] = []
    for self_host in (o for o in options if isinstance(o, tco.SelfHostOption)):
        for api in (o for o in options if isinstance(o, tco.ApiOption)):
            step = tco.break_even(self_host, api, shape)
            pairs.append(
                {
                    "open": self_host.name,
                    "closed": api.name,
                    "tokens_per_month": step,
                    "continuous_tokens_per_month": tco.break_even_continuous(self_host, api, shape),
                    "sentence": _sentence(self_host.name, api.name, step),
                }
            )
    sources = _sources(options, utilisation)
    if as_json:
        _print_json(entries, options, at_volume, curves, shape, pairs, sources)
    else:
        _print_tables(entries, options, at_volume, curves, shape, pairs, sources)


def _sources(options: list[ApiOption | SelfHostOption], utilisation: float) -> list[str]:
    from ..decide.tco import ApiOption

    lines = [ALWAYS_ON]
    for o in options:
        if isinstance(o, ApiOption):
            p = o.prices
            cached = f" / ${p.cached_input:g} cached input" if p.cached_input is not None else ""
            lines.append(
                f"{o.name}: ${p.input:g} input / ${p.output:g} output{cached} per 1M tokens "
                f"(list price as of {o.as_of}, {o.source})"
            )
        else:
            details = "; ".join(f"{k}: {v}" for k, v in o.sources.items())
            lines.append(f"{o.name}: utilisation {o.utilisation:.0%}; {details}")
    return lines


def _print_json(
    entries: list[CatalogEntry],
    options: list[ApiOption | SelfHostOption],
    at_volume: list[MonthlyCost],
    curves: list[list[MonthlyCost]],
    shape: Volume,
    pairs: list[dict[str, Any]],
    sources: list[str],
) -> None:
    import dataclasses
    import json

    from ..decide.tco import ApiOption

    def describe(option: ApiOption | SelfHostOption) -> dict[str, Any]:
        data = dataclasses.asdict(option)
        if not isinstance(option, ApiOption):
            data["replica_capacity_output_tokens_per_month"] = option.replica_capacity
        return data

    payload = {
        "volume": {
            "tokens_per_month": shape.total_tokens_per_month,
            "input_tokens_per_month": shape.input_tokens_per_month,
            "output_tokens_per_month": shape.output_tokens_per_month,
            "input_share": 1.0 - shape.output_share,
        },
        "models": [
            {
                "model": entry.id,
                "kind": "api" if isinstance(option, ApiOption) else "self_host",
                "option": describe(option),
                "cost": cost.as_dict(),
                "curve": [c.as_dict() for c in curve],
            }
            for entry, option, cost, curve in zip(entries, options, at_volume, curves, strict=True)
        ],
        "break_even": pairs,
        "assumptions": sources,
    }
    typer.echo(json.dumps(payload, indent=2))


def _print_tables(
    entries: list[CatalogEntry],
    options: list[ApiOption | SelfHostOption],
    at_volume: list[MonthlyCost],
    curves: list[list[MonthlyCost]],
    shape: Volume,
    pairs: list[dict[str, Any]],
    sources: list[str],
) -> None:
    from rich.console import Console
    from rich.table import Table

    from ..decide.tco import format_tokens

    console = Console()
    table = Table(
        title=f"Monthly cost at {format_tokens(shape.total_tokens_per_month)} tokens/month "
        f"({1 - shape.output_share:.0%} input)",
    )
    for column in ("model", "how", "per month", "$/1M output", "$/1M tokens", "replicas/GPUs"):
        table.add_column(column, justify="left" if column in ("model", "how") else "right")
    for column in ("compute", "staff", "setup"):
        table.add_column(column, justify="right")
    for entry, option, c in zip(entries, options, at_volume, strict=True):
        table.add_row(
            entry.id,
            _how(option, entry),
            _usd(c.total),
            _usd(c.per_1m_output_tokens),
            _usd(c.per_1m_tokens),
            f"{c.replicas}/{c.gpus}" if c.kind == "self_host" else "-",
            _usd(c.compute),
            _usd(c.staff),
            _usd(c.setup),
        )
    console.print(table)
    curve = Table(title="Monthly cost by volume (tokens/month, same input share)")
    curve.add_column("volume", justify="right")
    for entry in entries:
        curve.add_column(entry.short_name, justify="right")
    for i, volume in enumerate(CURVE_VOLUMES):
        curve.add_row(format_tokens(volume), *(_usd(costs[i].total) for costs in curves))
    console.print(curve)
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
