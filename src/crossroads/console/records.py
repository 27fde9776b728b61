"""The ledger as the console reads it: recent requests and one request's detail, always
limited to what the session may see (a virtual key: its own rows only)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from .._time import as_utc
from ..store import Database
from ..store.tables import usage_ledger

__all__ = ["MAX_PAGE", "one", "recent"]

#: The most rows one logs page shows.
MAX_PAGE = 200

_LIST_COLUMNS = (
    "request_id", "created_at", "key_id", "key_name", "model", "deployment", "backend",
    "endpoint", "stream", "status", "error_class", "prompt_tokens", "completion_tokens",
    "cost_usd", "price_flag", "latency_s", "ttft_s", "guard_decisions",
)


def _row(mapping: Any, columns: tuple[str, ...]) -> dict[str, Any]:
    row = {name: mapping[name] for name in columns}
    created = row.get("created_at")
    if isinstance(created, dt.datetime):
        row["created_at"] = as_utc(created)
    return row


def recent(
    db: Database,
    *,
    key_id: str | None,
    limit: int = 50,
    before: int | None = None,
    model: str | None = None,
    errors_only: bool = False,
) -> tuple[list[dict[str, Any]], int | None]:
    """The latest ledger rows (newest first) and the cursor of the next page (None at
    the end). ``key_id`` None means every key (the master key's view)."""
    c = usage_ledger.c
    columns = [getattr(c, name) for name in _LIST_COLUMNS]
    query = select(c.id, *columns).order_by(c.id.desc()).limit(min(limit, MAX_PAGE) + 1)
    if key_id is not None:
        query = query.where(c.key_id == key_id)
    if before is not None:
        query = query.where(c.id < before)
    if model:
        query = query.where(c.model == model)
    if errors_only:
        query = query.where(c.status >= 400)
    with db.engine.connect() as conn:
        found = [r._mapping for r in conn.execute(query)]
    more = len(found) > min(limit, MAX_PAGE)
    found = found[: min(limit, MAX_PAGE)]
    cursor = int(found[-1]["id"]) if more and found else None
    return [_row(r, _LIST_COLUMNS) for r in found], cursor


def one(db: Database, request_id: str, *, key_id: str | None) -> dict[str, Any] | None:
    """The ledger row of ``request_id`` with its bodies (when ``store_bodies`` kept them);
    None when there is none, or when it belongs to another key than ``key_id``."""
    c = usage_ledger.c
    query = select(usage_ledger).where(c.request_id == request_id)
    with db.engine.connect() as conn:
        found = conn.execute(query).first()
    if found is None:
        return None
    names = tuple(col.name for col in usage_ledger.c if col.name != "id")
    row = _row(found._mapping, names)
    if key_id is not None and row["key_id"] != key_id:
        return None
    return row
