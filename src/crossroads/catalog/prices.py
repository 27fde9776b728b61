"""Newer list prices from a community price map, kept apart from the shipped catalog.

The map is LiteLLM's ``model_prices_and_context_window.json`` format (shared by other tools):
one object per model name with ``input_cost_per_token``, ``output_cost_per_token``, optionally
``cache_read_input_token_cost``, ``max_input_tokens`` and ``litellm_provider``. Prices there are
USD per token; the catalog's are USD per 1M tokens.

Nothing changes silently: :func:`price_changes` only compares; :func:`write_overrides` (the
CLI's ``--apply``) records each changed price with its source and date in
``$CROSSROADS_HOME/catalog/prices.json``; the package's ``models.yaml`` is never written. The
catalog reads the overrides on load (:func:`apply_overrides`), so ``crossroads models`` shows
the new price and its date.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError

__all__ = [
    "LITELLM_SOURCE",
    "PriceChange",
    "apply_overrides",
    "overrides_path",
    "price_changes",
    "read_overrides",
    "read_price_map",
    "write_overrides",
]

LITELLM_SOURCE = (
    "https://raw.githubusercontent.com/BerriAI/litellm/main/model_prices_and_context_window.json"
)
#: The map's key prefix for a catalog provider (LiteLLM names Gemini models gemini/...).
_PREFIXES = {"google": ("gemini/", ""), "deepseek": ("deepseek/",), "mistral": ("mistral/",)}


def overrides_path() -> Path:
    from ..config import crossroads_home

    return crossroads_home() / "catalog" / "prices.json"


@dataclass(frozen=True, slots=True)
class PriceChange:
    """One catalog price that the map gives differently (USD per 1M tokens)."""

    id: str
    key: str  # the map's model name it was matched to
    old: tuple[float, float, float | None] | None  # input, output, cached input
    new: tuple[float, float, float | None]
    old_as_of: str | None


def _per_1m(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{where}: must be a number of USD per token, got {value!r}")
    if value < 0:
        raise ConfigError(f"{where}: must be >= 0, got {value!r}")
    return round(float(value) * 1e6, 6)


def read_price_map(path: Path) -> dict[str, tuple[float, float, float | None]]:
    """``{model name: (input, output, cached input)}`` in USD per 1M tokens; entries without
    both token prices (images, audio, the ``sample_spec`` template) are left out."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the price map: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: the price map is not UTF-8 text ({exc.reason})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{path}:{exc.lineno}:{exc.colno}: the price map is not valid JSON: {exc.msg}"
        ) from None
    except RecursionError:
        raise ConfigError(f"{path}: the price map is nested too deeply") from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: a price map is a JSON object of model name -> prices "
            "(LiteLLM's model_prices_and_context_window.json format)"
        )
    prices: dict[str, tuple[float, float, float | None]] = {}
    for name, spec in data.items():
        if name == "sample_spec" or not isinstance(spec, dict):
            continue
        where = f"{path}: {name!r}"
        given = (
            _per_1m(spec.get("input_cost_per_token"), f"{where}: input_cost_per_token"),
            _per_1m(spec.get("output_cost_per_token"), f"{where}: output_cost_per_token"),
        )
        cached = _per_1m(
            spec.get("cache_read_input_token_cost"), f"{where}: cache_read_input_token_cost"
        )
        if given[0] is not None and given[1] is not None:
            prices[str(name).lower()] = (given[0], given[1], cached)
    return prices


def _keys(entry: Any) -> list[str]:
    names = [entry.vendor_model, *entry.aliases, entry.id.split("/", 1)[1]]
    prefixes = _PREFIXES.get(entry.provider, ("",))
    return [f"{p}{n}".lower() for n in dict.fromkeys(names) for p in prefixes]


def price_changes(
    entries: Iterable[Any], price_map: Mapping[str, tuple[float, float, float | None]]
) -> list[PriceChange]:
    """Catalog entries whose price the map gives differently (or gives where there was none
    for a closed model); entries the map does not name are left alone."""
    changes = []
    for entry in entries:
        if entry.status == "retired":
            continue  # history: the last list price stays
        key = next((k for k in _keys(entry) if k in price_map), None)
        if key is None:
            continue
        new = price_map[key]
        p = entry.prices
        old = (p.input, p.output, p.cached_input) if p is not None else None
        if old is None and entry.kind == "open":
            continue  # open weights: no hosted price to compare
        if old is None or not _same(old, new):
            as_of = p.as_of.isoformat() if p is not None else None
            changes.append(PriceChange(entry.id, key, old, new, as_of))
    return changes


def _same(a: tuple[float, float, float | None], b: tuple[float, float, float | None]) -> bool:
    close = math.isclose(a[0], b[0], abs_tol=1e-9) and math.isclose(a[1], b[1], abs_tol=1e-9)
    return close and (b[2] is None or (a[2] is not None and math.isclose(a[2], b[2])))


def read_overrides(path: Path | None = None) -> dict[str, dict[str, Any]]:
    """The recorded overrides (empty without a file); a damaged file is a ConfigError."""
    path = path or overrides_path()
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(
            f"{path}: cannot read the recorded price overrides ({exc}); delete the file to go "
            "back to the shipped prices, or run `crossroads catalog update --prices FILE "
            "--apply` again"
        ) from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ConfigError(f"{path}: price overrides must be a JSON object of id -> prices")
    return data


def write_overrides(
    changes: Iterable[PriceChange], *, source: str, as_of: dt.date, path: Path | None = None
) -> Path:
    """Record ``changes`` (merged over earlier overrides) with their source and date."""
    path = path or overrides_path()
    data = read_overrides(path)
    for change in changes:
        data[change.id] = {
            "input": change.new[0],
            "output": change.new[1],
            "cached_input": change.new[2],
            "as_of": as_of.isoformat(),
            "source": source,
            "matched": change.key,
            "previous": list(change.old) if change.old else None,
            "previous_as_of": change.old_as_of,
        }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)
    from . import forget_overrides

    forget_overrides()
    return path


def apply_overrides(entries: tuple[Any, ...], path: Path) -> tuple[Any, ...]:
    """``entries`` with the recorded prices (and their dates and sources) in place."""
    from . import PriceInfo

    data = read_overrides(path)
    out = []
    for entry in entries:
        row = data.get(entry.id)
        if row is None:
            out.append(entry)
            continue
        try:
            prices = PriceInfo.model_validate(
                {k: row.get(k) for k in ("input", "output", "cached_input", "as_of", "source")}
            )
        except ValueError as exc:
            raise ConfigError(f"{path}: {entry.id}: invalid recorded price: {exc}") from None
        out.append(entry.model_copy(update={"prices": prices}))
    return tuple(out)
