"""The gateway: virtual keys and the usage ledger.

Revision ID: 0002_gateway
Revises: 0001_evaluation_runs
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_gateway"
down_revision = "0001_evaluation_runs"
branch_labels = None
depends_on = None

_ACTIVE = sa.text("revoked_at IS NULL")


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("budget_usd", sa.Float),
        sa.Column("rpm", sa.Integer),
        sa.Column("tpm", sa.Integer),
        sa.Column("models", sa.JSON, nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ux_api_keys_key_hash", "api_keys", ["key_hash"], unique=True)
    # A name is unique among keys that are not revoked (a revoked name can be reused).
    op.create_index(
        "ux_api_keys_active_name",
        "api_keys",
        ["name"],
        unique=True,
        sqlite_where=_ACTIVE,
        postgresql_where=_ACTIVE,
    )
    op.create_table(
        "usage_ledger",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_id", sa.String(32)),
        sa.Column("key_name", sa.String(200)),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("deployment", sa.String(200)),
        sa.Column("backend", sa.String(64)),
        sa.Column("protocol", sa.String(16), nullable=False),
        sa.Column("endpoint", sa.String(200), nullable=False),
        sa.Column("stream", sa.Boolean, nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("error_class", sa.String(100)),
        sa.Column("prompt_tokens", sa.Integer, nullable=False),
        sa.Column("completion_tokens", sa.Integer, nullable=False),
        sa.Column("cached_tokens", sa.Integer, nullable=False),
        sa.Column("reasoning_tokens", sa.Integer, nullable=False),
        sa.Column("cost_usd", sa.Float),
        sa.Column("price_flag", sa.String(32)),
        sa.Column("latency_s", sa.Float, nullable=False),
        sa.Column("ttft_s", sa.Float),
        sa.Column("guard_decisions", sa.JSON, nullable=False),
        sa.Column("request_body", sa.JSON),
        sa.Column("response_body", sa.JSON),
    )
    op.create_index("ux_usage_ledger_request_id", "usage_ledger", ["request_id"], unique=True)
    op.create_index("ix_usage_ledger_created_at", "usage_ledger", ["created_at"])
    op.create_index("ix_usage_ledger_key_id", "usage_ledger", ["key_id"])


def downgrade() -> None:
    op.drop_index("ix_usage_ledger_key_id", "usage_ledger")
    op.drop_index("ix_usage_ledger_created_at", "usage_ledger")
    op.drop_index("ux_usage_ledger_request_id", "usage_ledger")
    op.drop_table("usage_ledger")
    op.drop_index("ux_api_keys_active_name", "api_keys")
    op.drop_index("ux_api_keys_key_hash", "api_keys")
    op.drop_table("api_keys")
