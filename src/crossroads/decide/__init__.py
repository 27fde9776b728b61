"""The decision side: hardware fit (and, later, total cost of ownership and the advisor)."""

from .fit import GPU, GPUS, FitReport, Hardware, PrecisionFit, detect_hardware, estimate_fit

__all__ = [
    "GPU",
    "GPUS",
    "FitReport",
    "Hardware",
    "PrecisionFit",
    "detect_hardware",
    "estimate_fit",
]
