"""Plain SQL on the DB-API connection beneath a SQLAlchemy transaction.

The gateway writes a ledger row and an audit record for every request. Through
SQLAlchemy Core each statement costs a cache-key walk, a compiled-statement lookup and
per-column type processing (about 0.1 ms a statement here); the same statements sent
to the driver directly cost a tenth of that. :class:`RawSql` does that for the two hot
write paths, in whatever transaction the caller's ``Connection`` has open, so commit and
rollback stay SQLAlchemy's. It supports the databases Crossroads supports: SQLite and
PostgreSQL (psycopg). Statements are written with ``?`` placeholders.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from .._time import as_utc

__all__ = ["RawSql"]


@functools.lru_cache(maxsize=64)
def _pyformat(sql: str) -> str:
    """``?`` placeholders as psycopg's ``%s``."""
    return sql.replace("?", "%s")


class RawSql:
    """Statements on ``connection``'s driver connection, in its open transaction."""

    def __init__(self, connection: Connection) -> None:
        self.dialect = connection.dialect.name
        if self.dialect not in ("sqlite", "postgresql"):
            raise NotImplementedError(
                f"plain SQL is written for SQLite and PostgreSQL, not {self.dialect}"
            )
        self._pg = self.dialect == "postgresql"
        dbapi = connection.connection.dbapi_connection
        assert dbapi is not None
        self._cursor: Any = dbapi.cursor()

    def _prepare(self, sql: str) -> str:
        return _pyformat(sql) if self._pg else sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement; returns the cursor (for ``fetchone``)."""
        self._cursor.execute(self._prepare(sql), params)
        return self._cursor

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self._cursor.executemany(self._prepare(sql), list(rows))

    def datetime(self, value: datetime) -> Any:
        """A timezone-aware value as SQLAlchemy's ``DateTime(timezone=True)`` stores it:
        itself on PostgreSQL, UTC text (``YYYY-MM-DD HH:MM:SS.ffffff``) on SQLite."""
        value = as_utc(value)
        if self._pg:
            return value
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")

    def close(self) -> None:
        self._cursor.close()
