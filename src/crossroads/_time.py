"""Times as the store keeps them: timezone-aware UTC; and "since" filters as users write
them (``7d``, ``24h``, ``30m``, ``2w`` or an ISO date/datetime). Standard library only,
so the CLI can import it at start-up."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

__all__ = ["as_utc", "parse_since"]

_RELATIVE = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def as_utc(value: datetime) -> datetime:
    """``value`` in UTC; a naive value (SQLite hands those back) is taken to be UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_since(value: str, *, now: datetime | None = None) -> datetime:
    """``7d``, ``24h``, ``30m``, ``2w`` before ``now``, or an ISO date/datetime (UTC
    unless it gives an offset). Raises ValueError with a message that says what to give."""
    match = _RELATIVE.match(value)
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        return (now or datetime.now(UTC)) - timedelta(**{_UNITS[unit]: amount})
    try:
        return as_utc(datetime.fromisoformat(value.strip()))
    except ValueError:
        raise ValueError(
            f"{value!r}: give a duration (7d, 24h, 30m, 2w) or an ISO date such as 2026-01-31"
        ) from None
