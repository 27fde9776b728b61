"""Storage: SQLAlchemy 2 over SQLite (WAL, the embedded default) or PostgreSQL.

The schema is created and upgraded by Alembic migrations shipped in the package
(append-only, named ``NNNN_what.py``). The database is ``database_url`` from
crossroads.yaml, else ``$CROSSROADS_DATABASE_URL``, else
``sqlite:///$CROSSROADS_HOME/crossroads.db``.
"""

from .db import Database, database_url_for, open_database
from .tables import (
    api_keys,
    audit_head,
    audit_log,
    metadata,
    response_cache,
    responses,
    results,
    run_items,
    runs,
    usage_ledger,
)

__all__ = [
    "Database",
    "api_keys",
    "audit_head",
    "audit_log",
    "database_url_for",
    "metadata",
    "open_database",
    "response_cache",
    "responses",
    "results",
    "run_items",
    "runs",
    "usage_ledger",
]
