"""Usage totals per key, model, route or UTC day, read from the daily rollups
(``usage_daily``, kept by a trigger on the ledger) instead of the raw ledger rows.

:func:`rollup_usage` answers from the rollups: exact counts, tokens and cost, and
latency p50/p95 estimated from the rollups' fixed histogram (within one bucket of the
exact value). :func:`raw_usage` computes the same figures by scanning the ledger (exact
percentiles); it is the reference the tests and the benchmark compare with.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any, Literal, cast, get_args

from sqlalchemy import ColumnElement, func, select

from ..store import Database, usage_ledger
from ..store.tables import USAGE_LATENCY_BOUNDS, usage_daily

__all__ = [
    "GROUPS",
    "GroupBy",
    "bucket_of",
    "percentile_from_buckets",
    "raw_usage",
    "rollup_usage",
]

GroupBy = Literal["key", "model", "route", "day"]
GROUPS: tuple[GroupBy, ...] = get_args(GroupBy)
_BUCKETS = tuple(f"lat_b{i:02d}" for i in range(len(USAGE_LATENCY_BOUNDS) + 1))
_SUMS = (
    "requests", "errors", "prompt_tokens", "completion_tokens", "cached_tokens",
    "reasoning_tokens", "cost_usd", "unpriced", "latency_sum",
)
#: Shown for a request made without a virtual key (the master key).
NO_KEY = "(master key)"


def bucket_of(latency_s: float) -> int:
    """The histogram bucket ``latency_s`` falls in (as the rollup trigger counts it)."""
    for i, bound in enumerate(USAGE_LATENCY_BOUNDS):
        if latency_s < bound:
            return i
    return len(USAGE_LATENCY_BOUNDS)


def percentile_from_buckets(counts: list[int], q: float, maximum: float) -> float | None:
    """The ``q`` quantile (0..1) estimated from bucket counts, interpolating linearly
    inside the bucket that holds it (the open last bucket ends at ``maximum``)."""
    total = sum(counts)
    if total == 0:
        return None
    target = q * total
    seen = 0
    for i, count in enumerate(counts):
        if count and seen + count >= target:
            low = USAGE_LATENCY_BOUNDS[i - 1] if i > 0 else 0.0
            high = USAGE_LATENCY_BOUNDS[i] if i < len(USAGE_LATENCY_BOUNDS) else maximum
            high = max(low, min(high, maximum))
            return low + (high - low) * max(0.0, target - seen) / count
        seen += count
    return maximum


def _day_range(since: dt.date | None, until: dt.date | None) -> tuple[str | None, str | None]:
    return (
        since.isoformat() if since is not None else None,
        until.isoformat() if until is not None else None,
    )


def _finish(g: dict[str, Any]) -> dict[str, Any]:
    n = g["requests"]
    g["error_rate"] = g["errors"] / n if n else 0.0
    g["mean_latency_s"] = g["latency_sum"] / n if n else None
    return g


def _sort(rows: list[dict[str, Any]], by: GroupBy) -> list[dict[str, Any]]:
    if by == "day":
        return sorted(rows, key=lambda g: str(g["group"]))
    return sorted(rows, key=lambda g: (-g["cost_usd"], -g["requests"], str(g["group"])))


def rollup_usage(
    db: Database,
    by: GroupBy = "key",
    *,
    since: dt.date | None = None,
    until: dt.date | None = None,
    key_id: str | None = None,
) -> list[dict[str, Any]]:
    """One row per group from the rollups, days ``since``..``until`` (inclusive, UTC).
    ``key_id`` None: every key; otherwise only that key's usage ('' is the master key)."""
    if by not in GROUPS:
        raise ValueError(f"group by one of {', '.join(GROUPS)}, not {by!r}")
    c = usage_daily.c
    group = cast(ColumnElement[str], {"key": c.key_id, "model": c.model, "route": c.route,
                                      "day": c.day}[by])
    query = select(
        group.label("group"),
        func.max(c.key_name).label("key_name"),
        *(func.sum(getattr(c, name)).label(name) for name in (*_SUMS, *_BUCKETS)),
        func.max(c.latency_max).label("latency_max"),
    ).group_by(group)
    first, last = _day_range(since, until)
    if first is not None:
        query = query.where(c.day >= first)
    if last is not None:
        query = query.where(c.day <= last)
    if key_id is not None:
        query = query.where(c.key_id == key_id)
    rows = []
    with db.engine.connect() as conn:
        for r in conn.execute(query).mappings():
            g: dict[str, Any] = {name: int(r[name]) for name in _SUMS}
            g["cost_usd"] = float(r["cost_usd"])
            g["latency_sum"] = float(r["latency_sum"])
            g["group"] = r["group"]
            g["label"] = _label(by, r["group"], r["key_name"])
            counts = [int(r[b]) for b in _BUCKETS]
            top = float(r["latency_max"])
            g["p50_latency_s"] = percentile_from_buckets(counts, 0.50, top)
            g["p95_latency_s"] = percentile_from_buckets(counts, 0.95, top)
            rows.append(_finish(g))
    return _sort(rows, by)


def _label(by: GroupBy, group: str, key_name: str | None) -> str:
    if by == "key":
        return NO_KEY if not group else (key_name or group)
    if by == "route":
        return group or "(none)"
    return group


def raw_usage(
    db: Database,
    by: GroupBy = "key",
    *,
    since: dt.date | None = None,
    until: dt.date | None = None,
    key_id: str | None = None,
) -> list[dict[str, Any]]:
    """What :func:`rollup_usage` answers, computed from every raw ledger row in range
    (exact percentiles, by nearest rank)."""
    if by not in GROUPS:
        raise ValueError(f"group by one of {', '.join(GROUPS)}, not {by!r}")
    c = usage_ledger.c
    query = select(
        c.created_at, c.key_id, c.key_name, c.model, c.deployment, c.status,
        c.prompt_tokens, c.completion_tokens, c.cached_tokens, c.reasoning_tokens,
        c.cost_usd, c.latency_s,
    )
    if since is not None:
        query = query.where(c.created_at >= dt.datetime.combine(since, dt.time(), dt.UTC))
    if until is not None:
        end = dt.datetime.combine(until + dt.timedelta(days=1), dt.time(), dt.UTC)
        query = query.where(c.created_at < end)
    if key_id is not None:
        query = query.where(c.key_id == key_id if key_id else c.key_id.is_(None))
    groups: dict[str, dict[str, Any]] = {}
    latencies: dict[str, list[float]] = {}
    with db.engine.connect() as conn:
        for r in conn.execution_options(yield_per=5000).execute(query):
            if by == "key":
                group = r.key_id or ""
            elif by == "model":
                group = r.model
            elif by == "route":
                group = r.deployment or ""
            else:
                created = r.created_at
                if created.tzinfo is not None:
                    created = created.astimezone(dt.UTC)
                group = created.date().isoformat()
            g = groups.get(group)
            if g is None:
                g = groups[group] = {name: 0 for name in _SUMS}
                g.update(group=group, cost_usd=0.0, latency_sum=0.0, key_name=None)
                latencies[group] = []
            g["requests"] += 1
            g["errors"] += int(r.status >= 400)
            g["prompt_tokens"] += r.prompt_tokens
            g["completion_tokens"] += r.completion_tokens
            g["cached_tokens"] += r.cached_tokens
            g["reasoning_tokens"] += r.reasoning_tokens
            if r.cost_usd is None:
                g["unpriced"] += 1
            else:
                g["cost_usd"] += r.cost_usd
            g["latency_sum"] += r.latency_s
            g["key_name"] = max(filter(None, (g["key_name"], r.key_name)), default=None)
            latencies[group].append(r.latency_s)
    rows = []
    for group, g in groups.items():
        g["label"] = _label(by, group, g.pop("key_name"))
        ordered = sorted(latencies[group])
        g["p50_latency_s"] = _nearest_rank(ordered, 0.50)
        g["p95_latency_s"] = _nearest_rank(ordered, 0.95)
        rows.append(_finish(g))
    return _sort(rows, by)


def _nearest_rank(ordered: list[float], q: float) -> float:
    """The ``q`` quantile by nearest rank: the smallest value with at least ``q`` of
    the values at or below it."""
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]
