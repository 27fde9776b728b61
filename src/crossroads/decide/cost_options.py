"""Costing a catalog model: its API option from the dated list prices, its self-hosting
option from the hardware fit and the defaults, and the cost of a fine-tuning job.

(Moved from :mod:`crossroads.decide.tco`, which still exports these names.)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from ..backends.base import Prices
from ..catalog import CatalogEntry
from ..errors import ConfigError
from .cost import ApiOption, MissingPriceError, SelfHostOption, TrainingPlan, format_tokens
from .cost_defaults import Figure, TcoDefaults, load_tco_defaults
from .fit import GPUS, Hardware, estimate_fit, find_gpu

__all__ = ["default_api_option", "default_selfhost_option", "training_gpu_hours"]

_TP_SIZES = (1, 2, 4, 8)  # tensor-parallel sizes tried when fitting a replica
_FIT_CONTEXT = 4096


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


def _fit_replica(entry: CatalogEntry, gpus: Iterable[str]) -> tuple[str, int, str]:
    """(GPU, count, precision): fp16 if it fits on <= 8 GPUs, else int8; then the fewest
    GPUs; then the earlier GPU in ``gpus`` (H100 first in the defaults)."""
    context = min(_FIT_CONTEXT, entry.context_window)
    best: tuple[int, int, int, str] | None = None
    for rank, name in enumerate(gpus):
        rows = {
            n: estimate_fit(entry, Hardware(name, GPUS[name].memory_gib, n), context=context).rows
            for n in _TP_SIZES
        }
        for level in (0, 1):  # fp16, then int8
            count = next((n for n in _TP_SIZES if rows[n][level].fits), None)
            if count is not None:
                best = min(best or (level, count, rank, name), (level, count, rank, name))
                break
    if best is None:
        raise ValueError(
            f"{entry.name} does not fit on 8 x {'/'.join(gpus)} even at int8; multi-node "
            "serving is not modelled (give gpus= and a measured tokens_per_s)"
        )
    return best[3], best[1], ("fp16", "int8")[best[0]]


def _pick(given: float | None, default: Figure | None, what: str) -> tuple[float, str]:
    if given is not None:
        return given, "given"
    if default is None:
        raise ValueError(f"no default {what}; pass one")
    return default.value, default.cite()


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
) -> SelfHostOption:
    """A self-hosting option for an open model, from the hardware fit and the defaults.

    GPU type and count come from :func:`~crossroads.decide.fit.estimate_fit` (context 4,096,
    one sequence) over the GPUs priced in the defaults (or ``gpu``): fp16 before int8, then
    the fewest GPUs, then H100 first. ``tokens_per_s`` is a measured output throughput per
    replica (e.g. from a local backend) replacing the reference figure; every other keyword
    overrides the matching default. With ``training``, the fine-tuning job is costed on the
    same GPU type: its GPU-hours (given, or :func:`training_gpu_hours`) × $/GPU-hour.
    """
    if entry.self_host is None:
        raise ValueError(f"{entry.name} is a closed model: it cannot be self-hosted.")
    d = defaults or load_tco_defaults()
    candidates = [name for name in d.gpu_hour_usd if name in GPUS]
    if gpu is not None:
        found = find_gpu(gpu)
        if found is None:
            raise ValueError(f"unknown GPU {gpu!r}; known: {', '.join(GPUS)}")
        candidates = [found.name]
    name, count, precision = _fit_replica(entry, candidates)
    count = gpus or count
    hourly, hourly_cite = _pick(gpu_hour_usd, d.gpu_hour_usd.get(name), f"$/GPU-hour for {name}")
    if tokens_per_s is None:
        per_gpu, tps_cite = d.tokens_per_s_per_gpu(entry.parameters_b or 1.0, name)
        tokens_per_s = per_gpu * count
        tps_note = f"{per_gpu:,.0f} output tok/s per GPU x {count} ({tps_cite})"
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
        "gpu_hour": f"{name} ${hourly:g}/GPU-hour ({hourly_cite})",
        "throughput": tps_note,
        "staff": f"{fte:g} FTE ({team} team; {fte_cite}) x ${month:,.0f}/month ({month_cite})",
        "setup": f"${setup:,.0f} ({setup_cite}) over {months:g} months ({months_cite})",
    }
    training_usd: float | None = None
    if training is not None:
        if training.gpu_hours is not None:
            hours, how = training.gpu_hours, "given"
        elif entry.parameters_b is None:
            raise MissingPriceError(
                f"Cannot estimate the training cost of {entry.id}: the catalog does not give "
                "its parameter count. Add parameters_b to its catalog entry, or give the "
                "training job's measured or quoted GPU-hours (--train-gpu-hours)."
            )
        else:
            hours, how = training_gpu_hours(entry.parameters_b, training.tokens, name, d)
        training_usd = hours * hourly
        sources["training"] = (
            f"{hours:,.2f} GPU-hours ({how}) x ${hourly:g}/GPU-hour = ${training_usd:,.2f}, "
            f"spread over {training.amortisation_months:g} months"
        )
    return SelfHostOption(
        entry.short_name, name, count, hourly, tokens_per_s, utilisation,
        fte, month, setup, months, precision, sources,
        training_usd, training.amortisation_months if training else 12.0,
    )  # fmt: skip
