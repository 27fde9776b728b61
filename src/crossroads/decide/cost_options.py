"""Costing a catalog model: its API option from the dated list prices, its self-hosting
option from the hardware fit and the defaults, and the cost of a fine-tuning job.

(Moved from :mod:`crossroads.decide.tco`, which still exports these names.)
"""

from __future__ import annotations

import dataclasses

from ..backends.base import Prices
from ..catalog import CatalogEntry
from ..errors import ConfigError
from .cost import (
    ApiOption,
    MissingPriceError,
    SelfHostOption,
    TrainingPlan,
    Volume,
    format_tokens,
    selfhost_cost,
)
from .cost_defaults import Figure, TcoDefaults, load_tco_defaults
from .fit import GPUS, find_gpu
from .hosting import ServingPlan, ServingTier, fit_on_gpus, serving_plans

__all__ = [
    "default_api_option",
    "default_selfhost_option",
    "selfhost_options",
    "training_gpu_hours",
]


def training_gpu_hours(
    parameters_b: float, tokens: float, gpu: str, defaults: TcoDefaults | None = None
) -> tuple[float, str]:
    """Estimated GPU-hours to train ``parameters_b`` billion parameters on ``tokens``
    training tokens on ``gpu``: ``k·N·D / (peak FLOP/s × utilisation × GPU factor)``, with
    its citation (``k`` = 6 FLOPs per parameter per token, Kaplan et al. 2020)."""
    d = defaults or load_tco_defaults()
    try:
        k, peak, mfu = (d.training[n] for n in ("flops_per_param_token", "reference_tflops", "mfu"))
    except KeyError:
        raise ConfigError("tco_defaults.yaml has no `training` section") from None
    factor = d.gpu_factor.get(gpu)
    if factor is None:
        raise ValueError(f"no training estimate for GPU {gpu!r}; pass measured GPU-hours")
    flops = k.value * parameters_b * 1e9 * tokens
    per_second = peak.value * 1e12 * mfu.value * factor.value
    cite = (
        f"{k.value:g} x {parameters_b:g}B params x {format_tokens(tokens)} tokens "
        f"({k.cite()}) / ({peak.value:g} TFLOPS ({peak.cite()}) x {mfu.value:.0%} utilisation "
        f"({mfu.cite()})" + (f" x {factor.value:g} for {gpu})" if factor.value != 1 else ")")
    )
    return flops / per_second / 3600.0, cite


def _api_training(entry: CatalogEntry, plan: TrainingPlan) -> tuple[float, Prices | None, str]:
    """Training cost through the vendor's API, the tuned model's prices, and a note."""
    t = entry.tuning
    if t is None:
        raise MissingPriceError(
            f"Cannot cost training {entry.id}: its vendor offers no self-serve fine-tuning API "
            f"(catalog: {entry.fine_tuning})"
        )
    if t.training_per_1m_tokens is None:
        billed = f"${t.training_per_hour:g} per training hour" if t.training_per_hour else None
        raise MissingPriceError(
            f"Cannot cost training {entry.id} per token: "
            + (f"{t.api} bills {billed}." if billed else f"no price per token is listed ({t.api}).")
            + f" See {t.source}."
        )
    usd = plan.tokens * t.training_per_1m_tokens / 1e6
    tuned = t.tuned_prices
    prices = Prices(tuned.input, tuned.output, tuned.cached_input) if tuned else None
    note = (
        f"training: {format_tokens(plan.tokens)} tokens x ${t.training_per_1m_tokens:g}/1M "
        f"({t.api}, as of {t.as_of.isoformat()}, {t.source}) = ${usd:,.2f}, spread over "
        f"{plan.amortisation_months:g} months"
        + (
            f"; the tuned model is billed ${tuned.input:g}/${tuned.output:g} per 1M"
            if tuned
            else ""
        )
        + f"; data retention: {t.data_retention} ({t.retention_source})"
    )
    return usd, prices, note


def default_api_option(entry: CatalogEntry, *, training: TrainingPlan | None = None) -> ApiOption:
    """API pricing from the catalog's dated list prices; no price is an error, never $0.

    With ``training``, the one-off fine-tuning cost through the vendor's API is added, and
    the tuned model's prices replace the base model's where the vendor charges more.
    """
    if entry.prices is None:
        why = (
            "it is an open-weight model without a hosted list price in the catalog (cost it as "
            "self-hosted)"
            if entry.kind == "open"
            else f"the catalog has no list price for this {entry.status} model"
        )
        raise MissingPriceError(f"Cannot cost {entry.id} as an API: {why}.")
    p = entry.prices
    prices = Prices(p.input, p.output, p.cached_input)
    option = ApiOption(entry.short_name, prices, p.as_of.isoformat(), p.source)
    if training is None:
        return option
    usd, tuned, note = _api_training(entry, training)
    return dataclasses.replace(
        option,
        prices=tuned or prices,
        training_usd=usd,
        training_months=training.amortisation_months,
        training_note=note,
    )


def _pick(given: float | None, default: Figure | None, what: str) -> tuple[float, str]:
    if given is not None:
        return given, "given"
    if default is None:
        raise ValueError(f"no default {what}; pass one")
    return default.value, default.cite()


def selfhost_options(
    entry: CatalogEntry,
    *,
    gpu: str | None = None,
    gpus: int | None = None,
    utilisation: float = 0.5,
    gpu_hour_usd: float | None = None,
    tokens_per_s: float | None = None,
    staff_fte: float | None = None,
    staff_month_usd: float | None = None,
    setup_usd: float | None = None,
    amortisation_months: float | None = None,
    team_size: str | None = None,
    defaults: TcoDefaults | None = None,
    training: TrainingPlan | None = None,
) -> list[SelfHostOption]:
    """One self-hosting option per serving tier the model fits, smallest tier first
    (:func:`~crossroads.decide.hosting.serving_plans`); with ``gpu``, only that GPU
    (fp16 before int8, then the fewest GPUs). Keywords as :func:`default_selfhost_option`."""
    if entry.self_host is None:
        raise ValueError(f"{entry.name} is a closed model: it cannot be self-hosted.")
    d = defaults or load_tco_defaults()
    if gpu is not None:
        found = find_gpu(gpu)
        if found is None:
            raise ValueError(f"unknown GPU {gpu!r}; known: {', '.join(GPUS)}")
        name, count, precision = fit_on_gpus(entry, [found.name])
        tier: ServingTier = "large-gpu" if count == 1 else "multi-gpu"
        plans = [ServingPlan(tier, name, count, precision, found.memory_gib)]
    else:
        plans = serving_plans(entry, d)
        if not plans:
            fit_on_gpus(entry, [n for n in d.gpu_hour_usd if n in GPUS])  # raises: why not
            raise ValueError(f"{entry.name} fits no serving tier")
    return [
        _option(
            entry, plan, d, gpus=gpus, utilisation=utilisation, gpu_hour_usd=gpu_hour_usd,
            tokens_per_s=tokens_per_s, staff_fte=staff_fte, staff_month_usd=staff_month_usd,
            setup_usd=setup_usd, amortisation_months=amortisation_months, team_size=team_size,
            training=training,
        )
        for plan in plans
    ]  # fmt: skip


def default_selfhost_option(
    entry: CatalogEntry,
    *,
    gpu: str | None = None,
    gpus: int | None = None,
    utilisation: float = 0.5,
    gpu_hour_usd: float | None = None,
    tokens_per_s: float | None = None,
    staff_fte: float | None = None,
    staff_month_usd: float | None = None,
    setup_usd: float | None = None,
    amortisation_months: float | None = None,
    team_size: str | None = None,
    defaults: TcoDefaults | None = None,
    training: TrainingPlan | None = None,
    volume: Volume | None = None,
) -> SelfHostOption:
    """A self-hosting option for an open model, from the hardware fit and the defaults.

    The hardware is the smallest sufficient serving tier (:mod:`.hosting`: one CPU instance,
    one small GPU such as an L4, one or several data-centre GPUs), or ``gpu`` when given. With
    a ``volume``, the tier whose always-on replicas cost least at that volume is chosen
    instead (a small model on many L4s can cost more than on one H100); ties go to the smaller
    tier. ``tokens_per_s`` is a measured output throughput per replica (e.g. from a local
    backend) replacing the reference figure; every other keyword overrides the matching
    default. With ``training``, the fine-tuning job is costed on the serving GPU type (on the
    reference GPU for the CPU tier): its GPU-hours (given, or :func:`training_gpu_hours`) x
    $/GPU-hour.
    """
    options = selfhost_options(
        entry, gpu=gpu, gpus=gpus, utilisation=utilisation, gpu_hour_usd=gpu_hour_usd,
        tokens_per_s=tokens_per_s, staff_fte=staff_fte, staff_month_usd=staff_month_usd,
        setup_usd=setup_usd, amortisation_months=amortisation_months, team_size=team_size,
        defaults=defaults, training=training,
    )  # fmt: skip
    if volume is None:
        return options[0]
    return min(options, key=lambda o: selfhost_cost(o, volume).total)  # first of equals


def _option(
    entry: CatalogEntry,
    plan: ServingPlan,
    d: TcoDefaults,
    *,
    gpus: int | None,
    utilisation: float,
    gpu_hour_usd: float | None,
    tokens_per_s: float | None,
    staff_fte: float | None,
    staff_month_usd: float | None,
    setup_usd: float | None,
    amortisation_months: float | None,
    team_size: str | None,
    training: TrainingPlan | None,
) -> SelfHostOption:
    name, count = plan.hardware, gpus or plan.count
    cpu = d.cpu_instance if plan.tier == "cpu" else None
    if cpu is not None:
        hourly, hourly_cite = _pick(gpu_hour_usd, cpu.hour_usd, f"$/hour for {name}")
        hour_note = f"{name} CPU instance ${hourly:g}/hour ({hourly_cite})"
    else:
        price = d.gpu_hour_usd.get(name)
        hourly, hourly_cite = _pick(gpu_hour_usd, price, f"$/GPU-hour for {name}")
        hour_note = f"{name} ${hourly:g}/GPU-hour ({hourly_cite})"
    if tokens_per_s is None:
        if cpu is not None:
            found = cpu.tokens_per_s(entry.parameters_b or 1.0)
            assert found is not None  # the CPU plan exists only for sizes with a class
            per_gpu, tps_cite = found
            tps_note = f"{per_gpu:,.0f} output tok/s per instance ({tps_cite})"
        else:
            per_gpu, tps_cite = d.tokens_per_s_per_gpu(entry.parameters_b or 1.0, name)
            tps_note = f"{per_gpu:,.0f} output tok/s per GPU x {count} ({tps_cite})"
        tokens_per_s = per_gpu * count
    else:
        tps_note = f"{tokens_per_s:,.0f} output tok/s per replica (measured/given)"
    team = team_size or d.default_team_size
    if staff_fte is None and team not in d.fte_by_team_size:
        raise ValueError(f"team_size must be one of {sorted(d.fte_by_team_size)}")
    fte, fte_cite = _pick(staff_fte, d.fte_by_team_size.get(team), "FTE share")
    month, month_cite = _pick(staff_month_usd, d.staff_month_usd, "staff cost")
    setup, setup_cite = _pick(setup_usd, d.setup_usd, "set-up cost")
    months, months_cite = _pick(amortisation_months, d.amortisation_months, "amortisation")
    sources = {
        "hardware": plan.describe(),
        "gpu_hour": hour_note,
        "throughput": tps_note,
        "staff": f"{fte:g} FTE ({team} team; {fte_cite}) x ${month:,.0f}/month ({month_cite})",
        "setup": f"${setup:,.0f} ({setup_cite}) over {months:g} months ({months_cite})",
    }
    training_usd: float | None = None
    if training is not None:
        train_gpu = name if cpu is None else next(iter(d.gpu_hour_usd))
        train_hourly = hourly if cpu is None else d.gpu_hour_usd[train_gpu].value
        if training.gpu_hours is not None:
            hours, how = training.gpu_hours, "given"
        elif entry.parameters_b is None:
            raise MissingPriceError(
                f"Cannot estimate the training cost of {entry.id}: the catalog does not give "
                "its parameter count. Add parameters_b to its catalog entry, or give the "
                "training job's measured or quoted GPU-hours (--train-gpu-hours)."
            )
        else:
            hours, how = training_gpu_hours(entry.parameters_b, training.tokens, train_gpu, d)
        training_usd = hours * train_hourly
        sources["training"] = (
            f"{hours:,.2f} {train_gpu} GPU-hours ({how}) x ${train_hourly:g}/GPU-hour = "
            f"${training_usd:,.2f}, spread over {training.amortisation_months:g} months"
        )
    return SelfHostOption(
        entry.short_name, name, count, hourly, tokens_per_s, utilisation,
        fte, month, setup, months, plan.precision, sources,
        training_usd, training.amortisation_months if training else 12.0,
    )  # fmt: skip
