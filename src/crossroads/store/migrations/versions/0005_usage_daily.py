"""Daily usage rollups: one row per UTC day, key, model and route (deployment), kept by
a database trigger in the same transaction as each ledger row, so the Usage page reads
a few thousand rollup rows instead of scanning millions of raw ones. Latency is kept as
a sum, a maximum and a fixed histogram (``lat_b00`` … ``lat_b15``), enough to estimate
p50/p95 within one bucket.

The trigger fires only for rows actually inserted (a repeated ``request_id`` is ignored
by the ledger's ``ON CONFLICT DO NOTHING`` and counted nowhere) and for every writer (the
gateway, ``crossroads`` tools, a bulk load). Existing ledger rows are rolled up here.

This file is frozen with its revision: later changes go in a new migration.

Revision ID: 0005_usage_daily
Revises: 0004_responses
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_usage_daily"
down_revision = "0004_responses"
branch_labels = None
depends_on = None

#: Upper bounds (seconds, exclusive) of the latency buckets; the last bucket is open.
BOUNDS = (0.025, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0, 15.0, 30.0)
BUCKETS = tuple(f"lat_b{i:02d}" for i in range(len(BOUNDS) + 1))
KEY = ("day", "key_id", "model", "route")
SUMS = (
    "requests", "errors", "prompt_tokens", "completion_tokens", "cached_tokens",
    "reasoning_tokens", "cost_usd", "unpriced", "latency_sum", *BUCKETS,
)


def _bucket_exprs(latency: str) -> list[str]:
    exprs = []
    for i in range(len(BUCKETS)):
        low = f"{latency} >= {BOUNDS[i - 1]!r}" if i > 0 else None
        high = f"{latency} < {BOUNDS[i]!r}" if i < len(BOUNDS) else None
        cond = " AND ".join(c for c in (low, high) if c)
        exprs.append(f"CASE WHEN {cond} THEN 1 ELSE 0 END")
    return exprs


def _values(row: str, day: str) -> list[str]:
    """The rollup columns' values for one ledger row (``row`` is NEW or a table alias)."""
    return [
        day,
        f"COALESCE({row}.key_id, '')",
        f"{row}.model",
        f"COALESCE({row}.deployment, '')",
        f"{row}.key_name",
        "1",
        f"CASE WHEN {row}.status >= 400 THEN 1 ELSE 0 END",
        f"{row}.prompt_tokens",
        f"{row}.completion_tokens",
        f"{row}.cached_tokens",
        f"{row}.reasoning_tokens",
        f"COALESCE({row}.cost_usd, 0.0)",
        f"CASE WHEN {row}.cost_usd IS NULL THEN 1 ELSE 0 END",
        f"{row}.latency_s",
        *_bucket_exprs(f"{row}.latency_s"),
        f"{row}.latency_s",
    ]


COLUMNS = (*KEY, "key_name", *SUMS, "latency_max")


def _upsert(values: str, greatest: str) -> str:
    updates = [f"{c} = usage_daily.{c} + excluded.{c}" for c in SUMS]
    updates.append("key_name = COALESCE(excluded.key_name, usage_daily.key_name)")
    updates.append(f"latency_max = {greatest}(usage_daily.latency_max, excluded.latency_max)")
    return (
        f"INSERT INTO usage_daily ({', '.join(COLUMNS)}) {values} "
        f"ON CONFLICT ({', '.join(KEY)}) DO UPDATE SET {', '.join(updates)}"
    )


def upgrade() -> None:
    op.create_table(
        "usage_daily",
        sa.Column("day", sa.String(10), nullable=False),  # YYYY-MM-DD (UTC)
        sa.Column("key_id", sa.String(32), nullable=False),  # '' = no key (master)
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("route", sa.String(200), nullable=False),  # deployment; '' = none
        sa.Column("key_name", sa.String(200)),
        sa.Column("requests", sa.Integer, nullable=False),
        sa.Column("errors", sa.Integer, nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger, nullable=False),
        sa.Column("completion_tokens", sa.BigInteger, nullable=False),
        sa.Column("cached_tokens", sa.BigInteger, nullable=False),
        sa.Column("reasoning_tokens", sa.BigInteger, nullable=False),
        sa.Column("cost_usd", sa.Float, nullable=False),  # priced requests only
        sa.Column("unpriced", sa.Integer, nullable=False),
        sa.Column("latency_sum", sa.Float, nullable=False),
        *(sa.Column(b, sa.Integer, nullable=False) for b in BUCKETS),
        sa.Column("latency_max", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint(*KEY, name="pk_usage_daily"),
    )
    op.create_index("ix_usage_daily_key_day", "usage_daily", ["key_id", "day"])
    pg = op.get_bind().dialect.name == "postgresql"
    if pg:
        new_day = "to_char(NEW.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
        one = _upsert(f"VALUES ({', '.join(_values('NEW', new_day))})", "GREATEST")
        op.execute(
            "CREATE FUNCTION usage_daily_add() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN {one}; RETURN NULL; END $$"
        )
        op.execute(
            "CREATE TRIGGER usage_daily_add AFTER INSERT ON usage_ledger "
            "FOR EACH ROW EXECUTE FUNCTION usage_daily_add()"
        )
        day = "to_char(u.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
    else:
        new_day = "substr(NEW.created_at, 1, 10)"
        one = _upsert(f"VALUES ({', '.join(_values('NEW', new_day))})", "max")
        op.execute(
            "CREATE TRIGGER usage_daily_add AFTER INSERT ON usage_ledger "
            f"FOR EACH ROW BEGIN {one}; END"
        )
        day = "substr(u.created_at, 1, 10)"
    # Backfill: the same values, summed per group (PostgreSQL needs no conflict clause).
    vals = _values("u", day)
    sums = [*vals[:4], "MAX(u.key_name)", *(f"SUM({v})" for v in vals[5:-1]), "MAX(u.latency_s)"]
    sums[5] = "COUNT(*)"
    op.execute(
        f"INSERT INTO usage_daily ({', '.join(COLUMNS)}) SELECT {', '.join(sums)} "
        f"FROM usage_ledger u GROUP BY {', '.join(vals[:4])}"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS usage_daily_add" + (
        " ON usage_ledger" if op.get_bind().dialect.name == "postgresql" else ""
    ))
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS usage_daily_add()")
    op.drop_index("ix_usage_daily_key_day", "usage_daily")
    op.drop_table("usage_daily")
