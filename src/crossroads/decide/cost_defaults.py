"""The dated defaults behind a self-hosting estimate: ``tco_defaults.yaml`` (GPU prices,
throughput per size class, staff, set-up and training compute), each figure with its source.

(Moved from :mod:`crossroads.decide.tco`, which still exports these names.)
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError

__all__ = ["CpuInstance", "Figure", "TcoDefaults", "load_tco_defaults"]


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
class CpuInstance:
    """The CPU tier: one instance of ``memory_gib`` RAM at ``hour_usd``, and its output
    tokens/s per size class ``(name, max params B, tok/s)``, smallest first."""

    name: str
    vcpus: int
    memory_gib: float
    hour_usd: Figure
    throughput_classes: tuple[tuple[str, float, Figure], ...]

    @property
    def max_params_b(self) -> float:
        return self.throughput_classes[-1][1] if self.throughput_classes else 0.0

    def tokens_per_s(self, params_b: float) -> tuple[float, str] | None:
        """Output tokens/s for a model of ``params_b`` billion parameters (None: too big)."""
        for name, max_params, fig in self.throughput_classes:
            if params_b <= max_params:
                return fig.value, f"CPU {name} class: {fig.cite()}"
        return None


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
    #: The CPU tier (None: no CPU tier is costed).
    cpu_instance: CpuInstance | None = None
    #: GPUs per serving tier (``small-gpu``, ``large-gpu``), in preference order.
    serving_tiers: dict[str, tuple[str, ...]] = field(default_factory=dict)

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


def _classes(raw: Any, where: str) -> tuple[tuple[str, float, Figure], ...]:
    return tuple(
        (str(c["name"]), float(c["max_params_b"]), _figure(c, f"{where}.{c['name']}")) for c in raw
    )


def _cpu(raw: Any) -> CpuInstance | None:
    if raw is None:
        return None
    return CpuInstance(
        str(raw["name"]),
        int(raw["vcpus"]),
        float(raw["memory_gib"]),
        _figure(raw["hour_usd"], "cpu_instance.hour_usd"),
        _classes(raw["throughput"], "cpu_instance.throughput"),
    )


@functools.cache
def load_tco_defaults() -> TcoDefaults:
    """The built-in ``tco_defaults.yaml`` (validated on first use, then cached)."""
    from importlib import resources

    from ..config.yamlfile import parse_yaml

    text = resources.files(__package__ or "crossroads.decide").joinpath("tco_defaults.yaml")
    data = parse_yaml(text.read_text(encoding="utf-8"), "tco_defaults.yaml").data
    try:
        tp, staff, setup = data["throughput"], data["staff"], data["setup"]
        return TcoDefaults(
            _figures(data["gpu_hour_usd"], "gpu_hour_usd"),
            _figures(tp["gpu_throughput_factor"], "gpu_throughput_factor"),
            _classes(tp["classes"], "throughput"),
            _figure(staff["month_usd"], "staff.month_usd"),
            _figures(staff["fte_by_team_size"], "fte_by_team_size"),
            str(staff["default_team_size"]),
            _figure(setup["usd"], "setup.usd"),
            _figure(setup["amortisation_months"], "setup.amortisation_months"),
            _figures(data.get("training") or {}, "training"),
            _cpu(data.get("cpu_instance")),
            {str(k): tuple(map(str, v)) for k, v in (data.get("serving_tiers") or {}).items()},
        )
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"tco_defaults.yaml is malformed: {exc}") from None
