"""Where an open model is served: the smallest sufficient serving tier.

The tiers, smallest first (``serving_tiers`` and ``cpu_instance`` in ``tco_defaults.yaml``,
each price dated and sourced there):

* ``cpu``: one CPU instance (llama.cpp), when the fp16 weights plus KV cache fit in 80 % of
  its RAM and the model is no larger than the CPU throughput classes go (1.5B);
* ``small-gpu``: one card of <= 24 GB (T4, L4, A10G, cheapest first) at fp16;
* ``large-gpu``: one data-centre GPU (H100 first), ``multi-gpu``: 2-8 of them tensor-parallel,
  fp16 before int8, then the fewest GPUs.

The fit is :func:`~crossroads.decide.fit.estimate_fit` at a context of 4,096 tokens (or the
model's window if smaller), one sequence. The TCO (:mod:`.cost_options`), the Ease-of-use and
Scalability evidence (:mod:`.dimensions`) and ``crossroads fit`` all read their tier from here,
so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from ..catalog import CatalogEntry
from .cost_defaults import Figure, TcoDefaults, load_tco_defaults
from .fit import GPUS, Hardware, estimate_fit

__all__ = [
    "FIT_CONTEXT",
    "ServingPlan",
    "ServingTier",
    "fit_on_gpus",
    "hour_price",
    "serving_plans",
]

ServingTier = Literal["cpu", "small-gpu", "large-gpu", "multi-gpu"]
FIT_CONTEXT = 4096
_TP_SIZES = (1, 2, 4, 8)  # tensor-parallel sizes tried when fitting a replica


@dataclass(frozen=True, slots=True)
class ServingPlan:
    """One replica: ``count`` x ``hardware`` (a GPU, or the CPU instance) at ``precision``."""

    tier: ServingTier
    hardware: str
    count: int
    precision: str
    memory_gib: float  # per device (RAM for the CPU instance)

    @property
    def kind(self) -> Literal["gpu", "cpu"]:
        return "cpu" if self.tier == "cpu" else "gpu"

    def describe(self) -> str:
        """``tier cpu: 1 x c7i.2xlarge CPU instance (16 GiB RAM, no GPU) at fp16``."""
        if self.tier == "cpu":
            what = f"{self.hardware} CPU instance ({self.memory_gib:g} GiB RAM, no GPU)"
        else:
            what = f"{self.hardware} ({self.memory_gib:g} GB GPU)"
        return f"tier {self.tier}: {self.count} x {what} at {self.precision}"


def _context(entry: CatalogEntry) -> int:
    return min(FIT_CONTEXT, entry.context_window or FIT_CONTEXT)


def fit_on_gpus(entry: CatalogEntry, gpus: Iterable[str]) -> tuple[str, int, str]:
    """(GPU, count, precision): fp16 if it fits on <= 8 GPUs, else int8; then the fewest
    GPUs; then the earlier GPU in ``gpus``. ValueError when nothing fits."""
    names = [g for g in gpus if g in GPUS]
    best: tuple[int, int, int, str] | None = None
    for rank, name in enumerate(names):
        rows = {
            n: estimate_fit(
                entry, Hardware(name, GPUS[name].memory_gib, n), context=_context(entry)
            ).rows
            for n in _TP_SIZES
        }
        for level in (0, 1):  # fp16, then int8
            count = next((n for n in _TP_SIZES if rows[n][level].fits), None)
            if count is not None:
                best = min(best or (level, count, rank, name), (level, count, rank, name))
                break
    if best is None:
        raise ValueError(
            f"{entry.name} does not fit on 8 x {'/'.join(names)} even at int8; multi-node "
            "serving is not modelled (give gpus= and a measured tokens_per_s)"
        )
    return best[3], best[1], ("fp16", "int8")[best[0]]


def _cpu_plan(entry: CatalogEntry, d: TcoDefaults) -> ServingPlan | None:
    cpu = d.cpu_instance
    if cpu is None or entry.parameters_b is None or entry.parameters_b > cpu.max_params_b:
        return None
    hw = Hardware(cpu.name, cpu.memory_gib, 1, "cpu")
    if not estimate_fit(entry, hw, context=_context(entry)).rows[0].fits:
        return None
    return ServingPlan("cpu", cpu.name, 1, "fp16", cpu.memory_gib)


def _small_gpu_plan(entry: CatalogEntry, d: TcoDefaults) -> ServingPlan | None:
    for name in d.serving_tiers.get("small-gpu", ()):
        gpu = GPUS.get(name)
        if gpu is None or name not in d.gpu_hour_usd:
            continue
        hw = Hardware(name, gpu.memory_gib, 1)
        if estimate_fit(entry, hw, context=_context(entry)).rows[0].fits:
            return ServingPlan("small-gpu", name, 1, "fp16", gpu.memory_gib)
    return None


def _large_gpu_plan(entry: CatalogEntry, d: TcoDefaults) -> ServingPlan | None:
    names = d.serving_tiers.get("large-gpu") or tuple(d.gpu_hour_usd)
    priced = [n for n in names if n in d.gpu_hour_usd]
    try:
        name, count, precision = fit_on_gpus(entry, priced)
    except ValueError:
        return None
    tier: ServingTier = "large-gpu" if count == 1 else "multi-gpu"
    return ServingPlan(tier, name, count, precision, GPUS[name].memory_gib)


def serving_plans(entry: CatalogEntry, defaults: TcoDefaults | None = None) -> list[ServingPlan]:
    """One replica plan per tier ``entry`` fits, smallest tier first (empty for a closed
    model or one too big for 8 GPUs even at int8)."""
    if entry.self_host is None:
        return []
    d = defaults or load_tco_defaults()
    plans = (_cpu_plan(entry, d), _small_gpu_plan(entry, d), _large_gpu_plan(entry, d))
    return [p for p in plans if p is not None]


def hour_price(plan: ServingPlan, defaults: TcoDefaults | None = None) -> Figure | None:
    """The dated price of one device of ``plan`` per hour (the CPU instance, or one GPU)."""
    d = defaults or load_tco_defaults()
    if plan.tier == "cpu":
        return d.cpu_instance.hour_usd if d.cpu_instance is not None else None
    return d.gpu_hour_usd.get(plan.hardware)
