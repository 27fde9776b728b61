"""Shared by the self-contained pages (results, report): strict JSON, templates, and the
forgiving readers and formatters their view models are built with.

Strict JSON never holds NaN or Infinity and never crashes on odd values; templates
autoescape everything (all model output is untrusted) and fail on undefined names.
"""

from __future__ import annotations

import functools
import json
import math
from datetime import datetime
from importlib.resources import files
from typing import Any

import jinja2

__all__ = [
    "DASH",
    "as_dict",
    "as_str",
    "clean_json",
    "date_label",
    "fixed",
    "num",
    "page_template",
    "strict_dumps",
]

#: What a page shows for a missing value.
DASH = "—"


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


def num(value: Any) -> float | None:
    """A finite number, or None for null / missing / bool / non-numeric / NaN / inf."""
    if type(value) is int:  # fast paths: this runs several times per result
        return value
    if type(value) is float:
        return value if math.isfinite(value) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    f = float(value)
    return f if math.isfinite(f) else None


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_str(value: Any, default: str = "") -> str:
    return value if isinstance(value, str) else default if value is None else str(value)


def fixed(value: Any, digits: int = 2) -> str:
    """A number with ``digits`` decimals, or the dash."""
    v = num(value)
    return DASH if v is None else f"{v:.{digits}f}"


def date_label(value: Any) -> str:
    """An ISO timestamp as ``YYYY-MM-DD HH:MM TZ`` (the raw text if it is not one)."""
    raw = as_str(value)
    try:
        dt = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return raw or DASH
    tz = dt.strftime("%Z") or ""
    return dt.strftime("%Y-%m-%d %H:%M") + (f" {tz}" if tz else "")
