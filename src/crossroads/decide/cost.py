"""The cost arithmetic: monthly volume, API and self-hosting options, the monthly bill, and
the break-even volume between a self-hosted model and an API (methodology in
:mod:`crossroads.decide.tco`; moved from there, which still exports every name).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from ..backends.base import Prices
from ..errors import ConfigError

__all__ = [
    "HOURS_PER_MONTH",
    "MAX_VOLUME",
    "MIN_VOLUME",
    "ApiOption",
    "MissingPriceError",
    "MonthlyCost",
    "SelfHostOption",
    "TrainingPlan",
    "Volume",
    "amortised_month_usd",
    "api_cost",
    "break_even",
    "break_even_continuous",
    "cost_curve",
    "format_tokens",
    "monthly_cost",
    "parse_volume",
    "selfhost_cost",
]

HOURS_PER_MONTH = 730.0  # 8,760 h / 12
MIN_VOLUME, MAX_VOLUME = 1e6, 1e13  # tokens/month searched by break_even


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
