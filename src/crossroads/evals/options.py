"""What one evaluation run is asked to do (read by the runner and by its manifest)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RunOptions"]


@dataclass(frozen=True, slots=True)
class RunOptions:
    models: tuple[str, ...]
    repeat: int = 1
    concurrency: int = 8
    per_model_concurrency: int = 8
    use_cache: bool = True
    seed: int | None = None
