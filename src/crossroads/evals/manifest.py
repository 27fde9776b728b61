"""The reproducibility manifest of a run: what was asked, of which models, where."""

from __future__ import annotations

import contextlib
import os
import platform
import sys
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .options import RunOptions

if TYPE_CHECKING:
    from ..client import AsyncClient
    from .suite import Suite

__all__ = ["build_manifest"]

_PACKAGES = (
    "crossroads",
    "httpx",
    "pydantic",
    "llama_cpp_python",
    "torch",
    "transformers",
    "openai",
    "anthropic",
    "google-genai",
    "sacrebleu",
    "numpy",
)


def _versions() -> dict[str, str]:
    found = {"python": sys.version.split()[0]}
    for name in _PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def _hardware() -> dict[str, Any]:
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
    }
    with contextlib.suppress(ValueError, OSError, AttributeError):
        info["ram_gib"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    return info


def _revision(backend: str, model: str) -> str:
    """What pins the model's weights: the file's size and mtime for local files, else the
    vendor's model id (vendors do not expose weight hashes)."""
    path = Path(model).expanduser()
    if backend in ("llamacpp", "transformers") and path.exists():
        stat = path.stat()
        return f"{path.name} ({stat.st_size} bytes, modified {int(stat.st_mtime)})"
    return model


def build_manifest(
    client: AsyncClient, suite: Suite, options: RunOptions, call_options: dict[str, Any]
) -> dict[str, Any]:
    models = {}
    for name in options.models:
        d = client.deployment(name)
        models[name] = {
            "backend": d.backend,
            "model": d.model,
            "base_url": d.base_url,
            "revision": _revision(d.backend, d.model),
            "prices_per_1m": asdict(d.prices) if d.prices else None,
        }
    return {
        "suite": {
            "name": suite.name,
            "hash": suite.hash,
            "source": suite.source,
            "items": len(suite.items),
            "prompt": suite.spec.prompt,
            "system": suite.spec.system,
            "scorers": suite.spec.scorers,
            "licence": suite.spec.licence,
        },
        "models": models,
        "options": call_options,
        "repeat": options.repeat,
        "seed": options.seed,
        "cache": options.use_cache,
        "versions": _versions(),
        "hardware": _hardware(),
    }
