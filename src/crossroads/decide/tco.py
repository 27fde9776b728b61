"""Total cost of ownership: pay-per-token APIs against self-hosted open models, per month.

* **API**: input tokens at the input price (the cached share at the cached-input price),
  output tokens at the output price, from the catalog's dated list prices.
* **Self-hosting**: on the smallest sufficient serving tier (:mod:`.hosting`: a CPU
  instance, one small GPU, one or several data-centre GPUs; at a given volume the tier that
  costs least there), ``replicas × GPUs per replica × $/GPU-hour × 730 h`` + staff
  (FTE share × fully loaded monthly cost) + set-up cost ÷ amortisation months. Replicas are
  **always on** (billed 730 h a month, busy or idle; no scale-to-zero), so cost is a step
  function of volume: ``replicas = max(1, ceil(output tokens per month /
  (output tokens/s per replica × utilisation × 3600 × 730)))``. Capacity counts output tokens
  only; the reference throughputs come from chat-style benchmarks with prefill included.

* **Training** (only when a :class:`TrainingPlan` is given): a one-off fine-tuning job,
  amortised over ``amortisation_months`` and added to the monthly bill of both paths. A
  closed model is trained through its vendor's API at the catalog's price per 1M training
  tokens (``tuning.training_per_1m_tokens``; the tuned model is then called at
  ``tuning.tuned_prices`` when the vendor charges more for it); an open model on rented
  GPUs: ``GPU-hours × $/GPU-hour``, the GPU-hours given (measured) or estimated as
  ``6 × parameters × training tokens / (peak FLOP/s × utilisation)``.

Defaults (GPU prices, throughput per size class, staff, set-up and training compute) live
in ``tco_defaults.yaml`` next to this module, each with a source and a date.

Modules: :mod:`.cost` (the arithmetic), :mod:`.cost_defaults` (the dated defaults) and
:mod:`.cost_options` (options for a catalog model). This module is their public face.
"""

from .cost import (
    HOURS_PER_MONTH,
    MAX_VOLUME,
    MIN_VOLUME,
    ApiOption,
    MissingPriceError,
    MonthlyCost,
    SelfHostOption,
    TrainingPlan,
    Volume,
    amortised_month_usd,
    api_cost,
    break_even,
    break_even_continuous,
    cost_curve,
    format_tokens,
    monthly_cost,
    parse_volume,
    selfhost_cost,
)
from .cost_defaults import Figure, TcoDefaults, load_tco_defaults
from .cost_options import (
    default_api_option,
    default_selfhost_option,
    selfhost_options,
    training_gpu_hours,
)

__all__ = [
    "HOURS_PER_MONTH",
    "MAX_VOLUME",
    "MIN_VOLUME",
    "ApiOption",
    "Figure",
    "MissingPriceError",
    "MonthlyCost",
    "SelfHostOption",
    "TcoDefaults",
    "TrainingPlan",
    "Volume",
    "amortised_month_usd",
    "api_cost",
    "break_even",
    "break_even_continuous",
    "cost_curve",
    "default_api_option",
    "default_selfhost_option",
    "format_tokens",
    "load_tco_defaults",
    "monthly_cost",
    "parse_volume",
    "selfhost_cost",
    "selfhost_options",
    "training_gpu_hours",
]
