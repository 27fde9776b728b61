"""Will this open model run on that hardware? Memory for weights plus KV cache.

The seed's "high technical barrier" of open models, made concrete:

* weights: the catalog's per-precision estimate (parameters × 2 / 1 / 0.5 bytes for
  fp16 / int8 / int4, plus 5 % for embeddings, scales and buffers);
* KV cache: 2 (K and V) × layers × KV heads × head dim × 2 bytes (fp16) per token,
  × context length × concurrent sequences (batch), from the architecture in the catalog;
* usable memory: 90 % of each device (vLLM's default ``gpu_memory_utilization``), the
  rest being the CUDA context, activations and fragmentation; 80 % of system RAM for
  CPU inference. Tensor parallelism splits weights and cache evenly over ``gpus``.

GPU memory is given in GiB, as ``nvidia-smi`` reports it (an "80GB" A100 has 80 GiB);
results are printed in GB (10⁹ bytes).
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from dataclasses import dataclass
from typing import Literal

from ..catalog import CatalogEntry

__all__ = [
    "GPU",
    "GPUS",
    "FitReport",
    "Hardware",
    "PrecisionFit",
    "detect_hardware",
    "estimate_fit",
    "find_gpu",
]

Precision = Literal["fp16", "int8", "int4"]
PRECISIONS: tuple[Precision, ...] = ("fp16", "int8", "int4")
GIB = 2**30
GPU_USABLE = 0.90
RAM_USABLE = 0.80


@dataclass(frozen=True, slots=True)
class GPU:
    name: str
    memory_gib: float


#: Common data-centre and workstation GPUs (memory per device, vendor data sheets).
GPUS: dict[str, GPU] = {
    g.name: g
    for g in (
        GPU("T4", 16),
        GPU("V100-16GB", 16),
        GPU("V100-32GB", 32),
        GPU("A10G", 24),
        GPU("A10", 24),
        GPU("L4", 24),
        GPU("RTX-3090", 24),
        GPU("RTX-4090", 24),
        GPU("RTX-5090", 32),
        GPU("A100-40GB", 40),
        GPU("L40S", 48),
        GPU("A6000", 48),
        GPU("A100-80GB", 80),
        GPU("H100-80GB", 80),
        GPU("H100-NVL", 94),
        GPU("H200", 141),
        GPU("B200", 180),
        GPU("MI300X", 192),
    )
}
_ALIASES = {"A100": "A100-80GB", "H100": "H100-80GB", "V100": "V100-32GB", "4090": "RTX-4090"}


def find_gpu(name: str) -> GPU | None:
    """A GPU by name, forgiving case, spaces and an ``NVIDIA`` prefix."""
    key = name.upper().replace("NVIDIA", "").replace(" ", "-").strip("-")
    key = _ALIASES.get(key, key)
    for gpu in GPUS.values():
        if gpu.name.upper() == key:
            return gpu
    return None


@dataclass(frozen=True, slots=True)
class Hardware:
    """What the model must fit on: ``count`` devices of ``memory_gib`` each."""

    label: str
    memory_gib: float
    count: int = 1
    kind: Literal["gpu", "cpu"] = "gpu"

    @property
    def usable_bytes_per_device(self) -> float:
        share = GPU_USABLE if self.kind == "gpu" else RAM_USABLE
        return self.memory_gib * GIB * share


def detect_hardware() -> Hardware:
    """The GPUs ``nvidia-smi`` reports, else this machine's RAM."""
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(
                ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader,nounits"],
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            ).stdout
            rows = [r.rsplit(",", 1) for r in out.strip().splitlines() if "," in r]
            if rows:
                name, mib = rows[0][0].strip(), float(rows[0][1])
                return Hardware(f"{name} (detected)", mib / 1024, len(rows), "gpu")
        except (OSError, subprocess.SubprocessError, ValueError):
            pass
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return Hardware(f"{ram / GIB:.0f} GiB RAM, no GPU (detected)", ram / GIB, 1, "cpu")


@dataclass(frozen=True, slots=True)
class PrecisionFit:
    precision: Precision
    weights_bytes: float
    kv_cache_bytes: float
    available_bytes: float
    devices_needed: int

    @property
    def total_bytes(self) -> float:
        return self.weights_bytes + self.kv_cache_bytes

    @property
    def fits(self) -> bool:
        return self.total_bytes <= self.available_bytes


@dataclass(frozen=True, slots=True)
class FitReport:
    model: CatalogEntry
    hardware: Hardware
    context: int
    batch: int
    rows: list[PrecisionFit]

    @property
    def best(self) -> PrecisionFit | None:
        """The most precise quantisation that fits, if any."""
        return next((r for r in self.rows if r.fits), None)

    def verdict(self) -> str:
        hw = self.hardware
        where = f"{hw.count} × {hw.label}" if hw.count > 1 else hw.label
        best = self.best
        if best is not None and best.precision == "fp16":
            return f"{self.model.name} fits on {where} at fp16 (no quantisation needed)."
        if best is not None:
            return (
                f"{self.model.name} does not fit on {where} at fp16; quantise to "
                f"{best.precision} ({best.total_bytes / 1e9:.1f} GB of "
                f"{best.available_bytes / 1e9:.1f} GB usable)."
            )
        int4 = self.rows[-1]
        fp16 = self.rows[0]
        unit = "devices" if hw.kind == "gpu" else "machines like this"
        return (
            f"{self.model.name} does not fit on {where} even at int4: it needs "
            f"{int4.devices_needed} {unit} at int4 or {fp16.devices_needed} at fp16 "
            f"(context {self.context:,}, batch {self.batch})."
        )


def estimate_fit(
    model: CatalogEntry, hardware: Hardware, *, context: int, batch: int = 1
) -> FitReport:
    """Memory needed by ``model`` at each precision, against ``hardware``."""
    if model.self_host is None:
        raise ValueError(
            f"{model.name} is a closed model: it runs only on {model.vendor}'s servers."
        )
    if context <= 0 or batch <= 0:
        raise ValueError("context and batch must be positive")
    memory = model.self_host.memory_gb
    kv = model.self_host.architecture.kv_cache_bytes_per_token() * context * batch
    per_device = hardware.usable_bytes_per_device
    rows = []
    for precision in PRECISIONS:
        weights = float(getattr(memory, precision)) * 1e9
        rows.append(
            PrecisionFit(
                precision=precision,
                weights_bytes=weights,
                kv_cache_bytes=kv,
                available_bytes=per_device * hardware.count,
                devices_needed=max(1, math.ceil((weights + kv) / per_device)),
            )
        )
    return FitReport(model, hardware, context, batch, rows)
