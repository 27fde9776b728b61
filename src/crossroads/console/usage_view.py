"""What the Usage page shows, from the daily rollups: the query's filters read from the
URL (a virtual key always gets its own key, whatever the URL says), the chart's bars,
and the CSV export (cells a spreadsheet would run as a formula are quoted)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from typing import Any

from ..gateway.usage_rollup import GROUPS, GroupBy, rollup_usage
from ..store import Database
from .sessions import Session
from .web import ConsoleError

__all__ = ["CSV_COLUMNS", "METRICS", "UsageFilters", "bars", "filters", "query", "to_csv"]

#: The chart's metric choices: (field, label).
METRICS: dict[str, str] = {
    "cost_usd": "Cost (US$)",
    "requests": "Requests",
    "tokens": "Tokens (in + out)",
    "errors": "Errors",
    "p95_latency_s": "Latency p95 (s)",
}
CSV_COLUMNS = (
    "group", "label", "requests", "errors", "error_rate", "prompt_tokens",
    "completion_tokens", "cached_tokens", "reasoning_tokens", "cost_usd", "unpriced",
    "mean_latency_s", "p50_latency_s", "p95_latency_s",
)
#: The default range: the last 30 days.
DEFAULT_DAYS = 30
_BAR_WIDTH = 320


@dataclass(frozen=True)
class UsageFilters:
    by: GroupBy
    since: dt.date
    until: dt.date
    #: The key whose usage is shown (None: every key; '' the master key's own calls).
    key_id: str | None
    metric: str

    def query_string(self) -> str:
        from urllib.parse import urlencode

        params = {"by": self.by, "since": self.since.isoformat(),
                  "until": self.until.isoformat(), "metric": self.metric}
        if self.key_id is not None:
            params["key"] = self.key_id
        return urlencode(params)


def _date(name: str, value: str | None, default: dt.date) -> dt.date:
    if not value:
        return default
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        raise ConsoleError(
            400, f"`{name}` must be a date like 2026-03-01, not {value[:40]!r}."
        ) from None


def filters(
    session: Session,
    *,
    by: str | None,
    since: str | None,
    until: str | None,
    key: str | None,
    metric: str | None,
) -> UsageFilters:
    """The page's filters, checked; a virtual-key session is pinned to its own key."""
    group = by or "key"
    if group not in GROUPS:
        raise ConsoleError(400, f"Group by one of {', '.join(GROUPS)}, not {group[:40]!r}.")
    today = dt.datetime.now(dt.UTC).date()
    last = _date("until", until, today)
    first = _date("since", since, last - dt.timedelta(days=DEFAULT_DAYS - 1))
    if first > last:
        raise ConsoleError(400, "`since` is after `until`: swap the two dates.")
    chosen = metric or "cost_usd"
    if chosen not in METRICS:
        raise ConsoleError(400, f"Chart one of {', '.join(METRICS)}, not {chosen[:40]!r}.")
    if session.admin:
        key_id = key[:32] if key else None
        if key == "master":
            key_id = ""
    else:  # a virtual key sees its own usage, whatever the URL asks for
        key_id = session.key_id or "\x00"
    return UsageFilters(group, first, last, key_id, chosen)


def query(db: Database, f: UsageFilters) -> list[dict[str, Any]]:
    rows = rollup_usage(db, f.by, since=f.since, until=f.until, key_id=f.key_id)
    for r in rows:
        r["tokens"] = r["prompt_tokens"] + r["completion_tokens"]
    return rows


def bars(rows: list[dict[str, Any]], metric: str) -> list[dict[str, Any]]:
    """One bar per row: its label, value and width (SVG user units, no inline style)."""
    values = [float(r.get(metric) or 0.0) for r in rows]
    top = max(values, default=0.0)
    return [
        {"label": r["label"], "value": v, "width": round(_BAR_WIDTH * v / top, 1) if top else 0,
         "y": i * 24}
        for i, (r, v) in enumerate(zip(rows, values, strict=True))
    ]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else (
        f"{value:.10g}" if isinstance(value, float) else str(value)
    )
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text  # a spreadsheet would otherwise run it as a formula
    return text


def to_csv(rows: list[dict[str, Any]], by: str) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([by if c == "group" else c for c in CSV_COLUMNS])
    for r in rows:
        writer.writerow([_cell(r.get(c)) for c in CSV_COLUMNS])
    return out.getvalue()
