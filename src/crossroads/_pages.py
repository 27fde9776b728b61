"""Shared by the self-contained pages (results, report): strict JSON and templates.

Strict JSON never holds NaN or Infinity and never crashes on odd values; templates
autoescape everything (all model output is untrusted) and fail on undefined names.
"""

from __future__ import annotations

import functools
import json
import math
from importlib.resources import files
from typing import Any

import jinja2

__all__ = ["clean_json", "page_template", "strict_dumps"]


@functools.cache
def page_template(package: str, name: str) -> jinja2.Template:
    """The Jinja template ``templates/NAME`` of ``package``, loaded once."""
    source = files(package).joinpath("templates", name).read_text("utf-8")
    env = jinja2.Environment(
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.from_string(source)


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
