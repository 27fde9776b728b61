"""Total cost of ownership: pay-per-token APIs against self-hosted open models, per month.

* **API**: input tokens at the input price (the cached share at the cached-input price),
  output tokens at the output price, from the catalog's dated list prices.
* **Self-hosting**: ``replicas × GPUs per replica × $/GPU-hour × 730 h`` + staff
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
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ..backends.base import Prices
from ..catalog import CatalogEntry
from ..errors import ConfigError
from .fit import GPUS, Hardware, estimate_fit, find_gpu

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
    "training_gpu_hours",
]

HOURS_PER_MONTH = 730.0  # 8,760 h / 12
MIN_VOLUME, MAX_VOLUME = 1e6, 1e13  # tokens/month searched by break_even
_TP_SIZES = (1, 2, 4, 8)  # tensor-parallel sizes tried when fitting a replica
_FIT_CONTEXT = 4096


class MissingPriceError(ConfigError, ValueError):
    """A price or fact needed to cost a model is missing: no API price (never silently
    $0), or no parameter count to estimate its training (never a guessed size)."""


def amortised_month_usd(one_off_usd: float | None, months: float) -> float:
    """A one-off cost spread evenly over ``months`` (0 without one)."""
    return (one_off_usd or 0.0) / months


@dataclass(frozen=True, slots=True)
class Volume:
    """Monthly traffic: ``requests_per_month`` requests of ``input_tokens`` + ``output_tokens``
    each (averages per request); ``cached_share`` of input tokens is read from a prompt cache."""

    requests_per_month: float
    input_tokens: float
    output_tokens: float
    cached_share: float = 0.0

    def __post_init__(self) -> None:
        counts = (self.requests_per_month, self.input_tokens, self.output_tokens)
        if not all(math.isfinite(v) and v >= 0 for v in counts) or not 0 <= self.cached_share <= 1:
            raise ValueError(f"invalid volume {self}: counts must be >= 0, cached_share in [0, 1]")

    @classmethod
    def from_tokens(
        cls,
        total_tokens_per_month: float,
        input_share: float = 0.75,
        *,
        tokens_per_request: float = 1000.0,
        cached_share: float = 0.0,
    ) -> Volume:
        """A volume from total (input + output) tokens a month, split by ``input_share``."""
        if not (0.0 <= input_share <= 1.0 and tokens_per_request > 0):
            raise ValueError(
                f"need 0 <= input_share <= 1 (got {input_share!r}), tokens_per_request > 0"
            )
        return cls(
            total_tokens_per_month / tokens_per_request,
            tokens_per_request * input_share,
            tokens_per_request * (1.0 - input_share),
            cached_share,
        )

    @property
    def input_tokens_per_month(self) -> float:
        return self.requests_per_month * self.input_tokens

    @property
    def output_tokens_per_month(self) -> float:
        return self.requests_per_month * self.output_tokens

    @property
    def total_tokens_per_month(self) -> float:
        return self.input_tokens_per_month + self.output_tokens_per_month

    @property
    def output_share(self) -> float:
        per_request = self.input_tokens + self.output_tokens
        return self.output_tokens / per_request if per_request else 0.0

    def scaled(self, total_tokens_per_month: float) -> Volume:
        """The same request shape at another total volume (more or fewer requests)."""
        per_request = self.input_tokens + self.output_tokens
        if per_request <= 0:
            raise ValueError("a volume shape needs tokens per request > 0")
        return dataclasses.replace(self, requests_per_month=total_tokens_per_month / per_request)


_SUFFIX = {"": 1.0, "k": 1e3, "m": 1e6, "b": 1e9}
_VOLUME_RE = re.compile(r"^(?P<num>[0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)(?P<suffix>[kmb]?)$")


def parse_volume(text: str) -> float:
    """Tokens per month from ``"50M"``, ``"2.5B"``, ``"800k"``, ``"1e9"`` or ``"1,000,000"``."""
    cleaned = re.sub(r"[\s,_]", "", str(text)).lower()
    match = _VOLUME_RE.match(cleaned)
    if not match:
        raise ValueError(
            f"cannot read {text!r} as a token volume: use a number with an optional k, M or B "
            "suffix (50M, 2.5B, 800k, 1e9)"
        )
    return float(match["num"]) * _SUFFIX[match["suffix"]]


def format_tokens(tokens: float) -> str:
    """``38_000_000`` → ``"38M"``; ``1.25e9`` → ``"1.2B"`` (the inverse of parse_volume)."""
    for suffix, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if tokens >= scale:
            value = tokens / scale
            return f"{value:.3g}{suffix}" if value < 1000 else f"{value:,.0f}{suffix}"
    return f"{tokens:.0f}"


@dataclass(frozen=True, slots=True)
class TrainingPlan:
    """A one-off fine-tuning job: ``tokens`` = tokens in the data × epochs.

    ``gpu_hours`` (self-hosted path) is a measured or quoted figure; without it the
    GPU-hours are estimated from the model size (:func:`training_gpu_hours`).
    """

    tokens: float
    amortisation_months: float = 12.0
    gpu_hours: float | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.tokens) and self.tokens >= 0):
            raise ValueError(f"training tokens must be >= 0, got {self.tokens!r}")
        if not self.amortisation_months > 0:
            raise ValueError("training amortisation_months must be > 0")
        if self.gpu_hours is not None and self.gpu_hours < 0:
            raise ValueError("training gpu_hours must be >= 0")


@dataclass(frozen=True, slots=True)
class ApiOption:
    """Pay-per-token API access at list ``prices`` (USD per 1M tokens); with training, a
    one-off ``training_usd`` spread over ``training_months``."""

    name: str
    prices: Prices
    as_of: str | None = None
    source: str | None = None
    training_usd: float | None = None
    training_months: float = 12.0
    training_note: str | None = None

    def __post_init__(self) -> None:
        if not self.training_months > 0:
            raise ValueError(
                f"invalid API option {self.name!r}: training_months={self.training_months!r}"
            )

    @property
    def training_month_usd(self) -> float:
        """Amortised training (0 without training)."""
        return amortised_month_usd(self.training_usd, self.training_months)

    @property
    def fixed_month_usd(self) -> float:
        """Amortised training: paid whatever the volume (0 without training)."""
        return self.training_month_usd


@dataclass(frozen=True, slots=True)
class SelfHostOption:
    """Always-on replicas of ``gpus_per_replica`` × ``gpu`` rented at ``gpu_hour_usd``."""

    name: str
    gpu: str
    gpus_per_replica: int
    gpu_hour_usd: float
    tokens_per_s_per_replica: float  # output tokens/s at full load
    utilisation: float = 0.5
    staff_fte: float = 0.25
    staff_month_usd: float = 15_000.0
    setup_usd: float = 0.0
    amortisation_months: float = 12.0
    precision: str = "fp16"
    sources: dict[str, str] = field(default_factory=dict)
    training_usd: float | None = None
    training_months: float = 12.0

    def __post_init__(self) -> None:
        ok = {
            "gpus_per_replica": self.gpus_per_replica >= 1,
            "tokens_per_s_per_replica": self.tokens_per_s_per_replica > 0,
            "utilisation": 0.0 < self.utilisation <= 1.0,
            "amortisation_months": self.amortisation_months > 0,
            "gpu_hour_usd": self.gpu_hour_usd >= 0,
            "staff_fte": self.staff_fte >= 0,
            "staff_month_usd": self.staff_month_usd >= 0,
            "setup_usd": self.setup_usd >= 0,
            "training_months": self.training_months > 0,
        }
        if bad := [f"{k}={getattr(self, k)!r}" for k, good in ok.items() if not good]:
            raise ValueError(f"invalid self-hosting option {self.name!r}: {', '.join(bad)}")

    @property
    def replica_capacity(self) -> float:
        """Output tokens one replica serves in a month at the given utilisation."""
        return self.tokens_per_s_per_replica * self.utilisation * 3600 * HOURS_PER_MONTH

    @property
    def replica_month_usd(self) -> float:
        return self.gpus_per_replica * self.gpu_hour_usd * HOURS_PER_MONTH

    @property
    def training_month_usd(self) -> float:
        """Amortised training (0 without training)."""
        return amortised_month_usd(self.training_usd, self.training_months)

    @property
    def fixed_month_usd(self) -> float:
        """Staff plus amortised set-up and training: paid whatever the volume."""
        return (
            self.staff_fte * self.staff_month_usd
            + self.setup_usd / self.amortisation_months
            + self.training_month_usd
        )

    def replicas_for(self, output_tokens_per_month: float) -> int:
        return max(1, math.ceil(output_tokens_per_month / self.replica_capacity - 1e-9))


@dataclass(frozen=True, slots=True)
class MonthlyCost:
    """One option's monthly bill at one volume, in USD."""

    option: str
    kind: Literal["api", "self_host"]
    tokens_per_month: float
    output_tokens_per_month: float
    compute: float  # API charges, or GPU rental
    staff: float = 0.0
    setup: float = 0.0  # amortised
    replicas: int = 0
    gpus: int = 0
    training: float | None = None  # amortised one-off fine-tuning (None: not configured)

    @property
    def total(self) -> float:
        return self.compute + self.staff + self.setup + (self.training or 0.0)

    @property
    def per_1m_output_tokens(self) -> float | None:
        out = self.output_tokens_per_month
        return self.total / (out / 1e6) if out > 0 else None

    @property
    def per_1m_tokens(self) -> float | None:
        total = self.tokens_per_month
        return self.total / (total / 1e6) if total > 0 else None

    def as_dict(self) -> dict[str, Any]:
        extra = ("total", "per_1m_output_tokens", "per_1m_tokens")
        data = dataclasses.asdict(self) | {name: getattr(self, name) for name in extra}
        if self.training is None:
            data.pop("training")
        return data


def api_cost(option: ApiOption, volume: Volume) -> MonthlyCost:
    cached = volume.input_tokens_per_month * volume.cached_share
    p = option.prices
    cached_price = p.cached_input if p.cached_input is not None else p.input
    charges = (
        (volume.input_tokens_per_month - cached) * p.input
        + cached * cached_price
        + volume.output_tokens_per_month * p.output
    ) / 1e6
    training = option.fixed_month_usd if option.training_usd is not None else None
    return MonthlyCost(
        option.name,
        "api",
        volume.total_tokens_per_month,
        volume.output_tokens_per_month,
        charges,
        training=training,
    )


def selfhost_cost(option: SelfHostOption, volume: Volume) -> MonthlyCost:
    replicas = option.replicas_for(volume.output_tokens_per_month)
    return MonthlyCost(
        option.name, "self_host", volume.total_tokens_per_month, volume.output_tokens_per_month,
        compute=replicas * option.replica_month_usd,
        staff=option.staff_fte * option.staff_month_usd,
        setup=option.setup_usd / option.amortisation_months,
        replicas=replicas, gpus=replicas * option.gpus_per_replica,
        training=option.training_month_usd if option.training_usd is not None else None,
    )  # fmt: skip


def monthly_cost(option: ApiOption | SelfHostOption, volume: Volume) -> MonthlyCost:
    if isinstance(option, ApiOption):
        return api_cost(option, volume)
    return selfhost_cost(option, volume)


def cost_curve(
    option: ApiOption | SelfHostOption, volumes: Iterable[Volume | float]
) -> list[MonthlyCost]:
    """Costs at several volumes (plain numbers are total tokens/month, 75 % input)."""
    return [
        monthly_cost(option, v if isinstance(v, Volume) else Volume.from_tokens(v)) for v in volumes
    ]


def _crossing_terms(
    self_host: SelfHostOption, api: ApiOption, shape: Volume
) -> tuple[float, float, float, float] | None:
    """(a, C, R, F): API $/token, replica capacity in total tokens, $/replica, fixed $."""
    unit = shape.scaled(1e6)
    a = api_cost(api, unit).compute / 1e6  # per-token charges only; fixed parts below
    if a <= 0 or shape.output_share <= 0:
        return None  # a free API, or no output tokens to serve: never cheaper to self-host
    capacity = self_host.replica_capacity / shape.output_share
    # The API's own fixed part (amortised training) offsets self-hosting's fixed costs.
    fixed = self_host.fixed_month_usd - api.fixed_month_usd
    return a, capacity, self_host.replica_month_usd, fixed


def break_even(self_host: SelfHostOption, api: ApiOption, volume_shape: Volume) -> float | None:
    """Total tokens/month above which self-hosting is cheaper than the API, for good.

    Uses the real step function (whole, always-on replicas). API cost is ``a·V``; in step j
    (``(j-1)·C < V <= j·C``) self-hosting costs ``F + j·R``, cheaper for ``V > (F + j·R)/a``.
    The search walks the steps in closed form: the last step whose crossing lies inside it is
    ``J = ceil((F + R)/(a·C - R))``; every later step is cheaper throughout, so the answer is
    ``min((F + J·R)/a, J·C)`` -- this step-function value is what is returned (a crossing
    below :data:`MIN_VOLUME` is returned as is). None when self-hosting never wins
    (``a·C <= R``) or only above :data:`MAX_VOLUME`. :func:`break_even_continuous` gives the
    smooth (fractional-replica) crossing, a lower bound.
    """
    terms = _crossing_terms(self_host, api, volume_shape)
    if terms is None:
        return None
    a, capacity, replica, fixed = terms
    margin = a * capacity - replica  # what a full replica saves against the API
    if margin <= 0:
        return None
    if fixed + replica <= 0:
        return 0.0
    last = max(1, math.ceil((fixed + replica) / margin))
    crossing = min((fixed + last * replica) / a, last * capacity)
    return crossing if crossing <= MAX_VOLUME else None


def break_even_continuous(
    self_host: SelfHostOption, api: ApiOption, volume_shape: Volume
) -> float | None:
    """The analytic crossing when replicas may be fractional (but at least one).

    ``a·V = F + R·max(1, V/C)``: ``(F + R)/a`` if that is within one replica's capacity, else
    ``F / (a - R/C)``. A lower bound on :func:`break_even`, equal to it when the crossing lies
    within the first replica.
    """
    terms = _crossing_terms(self_host, api, volume_shape)
    if terms is None:
        return None
    a, capacity, replica, fixed = terms
    first = max(0.0, (fixed + replica) / a)
    if first <= capacity:
        crossing = first
    elif a * capacity > replica:
        crossing = fixed * capacity / (a * capacity - replica)
    else:
        return None
    return crossing if crossing <= MAX_VOLUME else None


# --------------------------------------------------------------------------- defaults


@dataclass(frozen=True, slots=True)
class Figure:
    """A default number with its date and either a source URL or an assumption note."""

    value: float
    as_of: dt.date
    source: str | None = None
    note: str = ""
    estimate: bool = False
    assumption: bool = False

    def cite(self) -> str:
        kind = "assumption; " if self.assumption else "estimate; " if self.estimate else ""
        where = f", {self.source}" if self.source else ""
        return f"{kind}as of {self.as_of.isoformat()}{where}"


@dataclass(frozen=True, slots=True)
class TcoDefaults:
    """``tco_defaults.yaml``: GPU prices and throughput factors (preference order), throughput
    per size class ``(name, max params B, tok/s per GPU)``, staff and set-up figures."""

    gpu_hour_usd: dict[str, Figure]
    gpu_factor: dict[str, Figure]
    throughput_classes: tuple[tuple[str, float, Figure], ...]
    staff_month_usd: Figure
    fte_by_team_size: dict[str, Figure]
    default_team_size: str
    setup_usd: Figure
    amortisation_months: Figure
    #: ``flops_per_param_token``, ``reference_tflops`` and ``mfu`` (training compute).
    training: dict[str, Figure] = field(default_factory=dict)

    def tokens_per_s_per_gpu(self, params_b: float, gpu: str) -> tuple[float, str]:
        """Reference output tokens/s per GPU for a model size on ``gpu``, with its citation."""
        factor = self.gpu_factor.get(gpu)
        if factor is None:
            raise ValueError(f"no default throughput for GPU {gpu!r}; pass a measured tokens/s")
        on_gpu = f" x {factor.value:g} for {gpu} ({factor.cite()})" if factor.value != 1 else ""
        for name, max_params, fig in self.throughput_classes:
            if params_b <= max_params:
                return fig.value * factor.value, f"{name} class: {fig.cite()}{on_gpu}"
        name, max_params, fig = self.throughput_classes[-1]
        scaled = fig.value * max_params / params_b * factor.value
        cite = f"{name} class x {max_params:g}/{params_b:g}, estimate: {fig.cite()}{on_gpu}"
        return scaled, cite


def _figure(raw: Any, where: str) -> Figure:
    source, assumption = raw.get("source"), raw.get("assumption")
    if not source and not assumption:
        raise ValueError(f"{where}: needs a source URL or an assumption note")
    as_of = raw["as_of"]
    return Figure(
        float(raw["value"]),
        as_of if isinstance(as_of, dt.date) else dt.date.fromisoformat(str(as_of)),
        str(source) if source else None,
        str(assumption or raw.get("note") or ""),
        bool(raw.get("estimate", False)),
        bool(assumption),
    )


def _figures(raw: Mapping[str, Any], where: str) -> dict[str, Figure]:
    return {key: _figure(value, f"{where}.{key}") for key, value in raw.items()}


@functools.cache
def load_tco_defaults() -> TcoDefaults:
    """The built-in ``tco_defaults.yaml`` (validated on first use, then cached)."""
    from importlib import resources

    import yaml

    text = resources.files(__package__ or "crossroads.decide").joinpath("tco_defaults.yaml")
    try:
        data = yaml.safe_load(text.read_text(encoding="utf-8"))
        tp, staff, setup = data["throughput"], data["staff"], data["setup"]
        return TcoDefaults(
            _figures(data["gpu_hour_usd"], "gpu_hour_usd"),
            _figures(tp["gpu_throughput_factor"], "gpu_throughput_factor"),
            tuple(
                (str(c["name"]), float(c["max_params_b"]), _figure(c, c["name"]))
                for c in tp["classes"]
            ),
            _figure(staff["month_usd"], "staff.month_usd"),
            _figures(staff["fte_by_team_size"], "fte_by_team_size"),
            str(staff["default_team_size"]),
            _figure(setup["usd"], "setup.usd"),
            _figure(setup["amortisation_months"], "setup.amortisation_months"),
            _figures(data.get("training") or {}, "training"),
        )
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"tco_defaults.yaml is malformed: {exc}") from None


# --------------------------------------------------------------------------- options


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
