"""``crossroads cost``: monthly cost of API models against self-hosted open models."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from ..catalog import CatalogEntry
    from ..decide.tco import ApiOption, MonthlyCost, SelfHostOption, TrainingPlan, Volume

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
    train_tokens: Annotated[
        str | None,
        typer.Option(
            "--train-tokens",
            help="Add a one-off fine-tuning job on this many tokens (data x epochs: 2M, 2e6): "
            "closed models at their vendor's training price, open ones by GPU-hours.",
        ),
    ] = None,
    train_gpu_hours: Annotated[
        float | None,
        typer.Option(
            "--train-gpu-hours", min=0.0, help="GPU-hours of the self-hosted training (override)."
        ),
    ] = None,
    train_months: Annotated[
        float | None,
        typer.Option(
            "--train-months", min=0.0, help="Months the training cost is spread over (default 12)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Compare monthly cost at a volume and across volumes, with the break-even volume."""
    from ._common import run_guarded

    def body() -> None:
        plan = _plan(train_tokens, train_gpu_hours, train_months)
        _cost(models, volume, input_share, gpu, gpu_hour, utilisation, staff_fte, plan, as_json)

    run_guarded(body)


def _plan(tokens: str | None, gpu_hours: float | None, months: float | None) -> TrainingPlan | None:
    """The training plan of the --train-* options (None when none is given)."""
    if tokens is None and gpu_hours is None and months is None:
        return None
    from ..decide import tco
    from ..errors import ConfigError

    if tokens is None:
        raise ConfigError(
            "--train-gpu-hours and --train-months need --train-tokens (tokens trained on, "
            "data x epochs), e.g. --train-tokens 2M"
        )
    try:
        extra = {} if months is None else {"amortisation_months": months}
        return tco.TrainingPlan(tco.parse_volume(tokens), gpu_hours=gpu_hours, **extra)
    except ValueError as exc:
        raise ConfigError(f"--train-*: {exc}") from None


def _usd(value: float | None) -> str:
    from .cost_tables import usd

    return usd(value)


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


def _cheapest(choices: list[ApiOption | SelfHostOption], volume: Volume) -> MonthlyCost:
    """The cheapest of a model's options at ``volume`` (the smaller tier on ties)."""
    from ..decide.tco import monthly_cost

    return min((monthly_cost(o, volume) for o in choices), key=lambda c: c.total)


def _how(option: ApiOption | SelfHostOption, entry: CatalogEntry) -> str:
    from ..decide.tco import ApiOption

    if isinstance(option, ApiOption):
        return f"API ({entry.vendor}){', tuned' if option.training_usd is not None else ''}"
    return f"self-host: {option.gpus_per_replica} x {option.gpu} ({option.precision})"


def _cost(
    models: str,
    volume_text: str,
    input_share: float,
    gpu: str | None,
    gpu_hour: float | None,
    utilisation: float,
    staff_fte: float | None,
    plan: TrainingPlan | None,
    as_json: bool,
) -> None:
    from ..decide import tco
    from ..errors import ConfigError

    entries = _resolve(models)
    # Closed models whose training cannot be costed: (status for their row, why).
    untrained: dict[str, tuple[str, str]] = {}

    def api_option(e: CatalogEntry) -> tco.ApiOption:
        try:
            return tco.default_api_option(e, training=plan)
        except tco.MissingPriceError as exc:
            if plan is None or e.prices is None:
                raise  # no price for the model itself: never costed as $0
            status = "not offered" if e.tuning is None else "not per token"
            untrained[e.short_name] = (status, exc.message)
            return tco.default_api_option(e)

    try:
        total = tco.parse_volume(volume_text)
        shape = tco.Volume.from_tokens(total, input_share)
        # Per model: its API option, or one self-hosting option per serving tier it fits.
        choices: list[list[tco.ApiOption | tco.SelfHostOption]] = [
            [api_option(e)]
            if e.kind == "closed"
            else list(
                tco.selfhost_options(
                    e,
                    gpu=gpu,
                    gpu_hour_usd=gpu_hour,
                    utilisation=utilisation,
                    staff_fte=staff_fte,
                    training=plan,
                )
            )
            for e in entries
        ]
        at_volume = [_cheapest(c, shape) for c in choices]
        options = [c[[tco.monthly_cost(o, shape).total for o in c].index(m.total)]
                   for c, m in zip(choices, at_volume, strict=True)]  # fmt: skip
        curves = [[_cheapest(c, shape.scaled(v)) for v in CURVE_VOLUMES] for c in choices]
    except ConfigError:
        raise
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    pairs: list[dict[str, Any]] = []
    for i, choice in enumerate(choices):
        tiers = [o for o in choice if isinstance(o, tco.SelfHostOption)]
        if not tiers:
            continue
        for api in (o for o in options if isinstance(o, tco.ApiOption)):
            # Above the lowest tier's crossing, that tier (so the cheapest one) stays cheaper.
            steps = [tco.break_even(own, api, shape) for own in tiers]
            smooth = [tco.break_even_continuous(own, api, shape) for own in tiers]
            step = min((x for x in steps if x is not None), default=None)
            pairs.append(
                {
                    "open": options[i].name,
                    "closed": api.name,
                    "tokens_per_month": step,
                    "continuous_tokens_per_month": min(
                        (x for x in smooth if x is not None), default=None
                    ),
                    "sentence": _sentence(options[i].name, api.name, step),
                }
            )
    sources = _sources(entries, options, plan, untrained)
    training = _training(options, untrained) if plan is not None else None
    if as_json:
        _print_json(entries, options, at_volume, curves, shape, pairs, sources, plan, training)
    else:
        from .cost_tables import print_tables

        hows = [_how(o, e) for o, e in zip(options, entries, strict=True)]
        print_tables(
            entries, hows, at_volume, curves, CURVE_VOLUMES, shape, pairs, sources, training
        )


def _training(
    options: list[ApiOption | SelfHostOption], untrained: dict[str, tuple[str, str]]
) -> list[dict[str, Any]]:
    """Per option: the one-off training cost, its months and note, or why there is none."""
    from ..decide.tco import ApiOption

    rows: list[dict[str, Any]] = []
    for o in options:
        if o.name in untrained:
            row: dict[str, Any] = {"usd": None, "months": None, "per_month": None}
            status, why = untrained[o.name]
            rows.append(row | {"status": status, "note": why})
            continue
        note = o.training_note if isinstance(o, ApiOption) else o.sources.get("training")
        usd = o.training_usd or 0.0
        row = {"usd": usd, "months": o.training_months, "per_month": o.training_month_usd}
        rows.append(row | {"status": "costed", "note": note})
    return rows


def _sources(
    entries: list[CatalogEntry],
    options: list[ApiOption | SelfHostOption],
    plan: TrainingPlan | None,
    untrained: dict[str, tuple[str, str]],
) -> list[str]:
    from ..decide.tco import ApiOption, format_tokens

    lines = [ALWAYS_ON]
    if plan is not None:
        lines.append(
            f"Training: one-off fine-tuning on {format_tokens(plan.tokens)} tokens "
            f"(data x epochs), spread over {plan.amortisation_months:g} months; the monthly "
            "share is the 'training' column and is included in every total and the break-even."
        )
    for entry, o in zip(entries, options, strict=True):
        if isinstance(o, ApiOption):
            p = o.prices
            cached = f" / ${p.cached_input:g} cached input" if p.cached_input is not None else ""
            tuned = o.training_usd is not None and entry.tuning and entry.tuning.tuned_prices
            what = "tuned-model price, see training; base model's" if tuned else ""
            lines.append(
                f"{o.name}: ${p.input:g} input / ${p.output:g} output{cached} per 1M tokens "
                f"({what} list price as of {o.as_of}, {o.source})".replace("( ", "(")
            )
            if o.training_note:
                lines.append(f"{o.name} {o.training_note}")
            if o.name in untrained:
                status, why = untrained[o.name]
                lines.append(f"{o.name} training: {status}, costed without training. {why}")
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
    plan: TrainingPlan | None,
    training: list[dict[str, Any]] | None,
) -> None:
    import dataclasses
    import json

    from ..decide.tco import ApiOption

    def describe(option: ApiOption | SelfHostOption) -> dict[str, Any]:
        data = dataclasses.asdict(option)
        if not isinstance(option, ApiOption):
            data["replica_capacity_output_tokens_per_month"] = option.replica_capacity
        return data

    payload: dict[str, Any] = {
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
    if plan is not None and training is not None:
        payload["training"] = dataclasses.asdict(plan)
        for row, train in zip(payload["models"], training, strict=True):
            row["training"] = train
    typer.echo(json.dumps(payload, indent=2))
