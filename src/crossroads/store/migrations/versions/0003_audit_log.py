"""Guardrails: the append-only, hash-chained audit log and its head row.

Revision ID: 0003_audit_log
Revises: 0002_gateway
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0003_audit_log"
down_revision = "0002_gateway"
branch_labels = None
depends_on = None

GENESIS = "0" * 64


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("ts", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("ref", sa.String(64)),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index("ux_audit_log_hash", "audit_log", ["hash"], unique=True)
    op.create_index("ix_audit_log_kind_ref", "audit_log", ["kind", "ref"])
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.String(32), nullable=False),
    )
    op.bulk_insert(
        head,
        [{"id": 1, "seq": 0, "hash": GENESIS, "updated_at": datetime.now(UTC).isoformat()}],
    )


def downgrade() -> None:
    op.drop_table("audit_head")
    op.drop_index("ix_audit_log_kind_ref", "audit_log")
    op.drop_index("ux_audit_log_hash", "audit_log")
    op.drop_table("audit_log")
