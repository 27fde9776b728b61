"""Strict JSON for files and pages: never NaN or Infinity, never a crash on odd values."""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["clean_json", "strict_dumps"]


def clean_json(value: Any) -> Any:
    """JSON-safe copy: non-finite floats become None, unknown objects become strings."""
    if isinstance(value, dict):
        return {str(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, str | int | bool):
        return value
    return str(value)


def strict_dumps(value: Any, **kwargs: Any) -> str:
    """Strict JSON (no NaN/Infinity); walks the value with :func:`clean_json` only when it
    must."""
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False, default=str, **kwargs)
    except (ValueError, TypeError):
        return json.dumps(clean_json(value), ensure_ascii=False, allow_nan=False, **kwargs)
