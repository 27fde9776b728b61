"""The gateway's Responses API: responses kept with ``store: true``, per key.

Revision ID: 0004_responses
Revises: 0003_audit_log
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_responses"
down_revision = "0003_audit_log"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "responses",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("response", sa.JSON, nullable=False),
        sa.Column("conversation", sa.JSON, nullable=False),
    )
    op.create_index("ix_responses_owner", "responses", ["owner"])


def downgrade() -> None:
    op.drop_index("ix_responses_owner", "responses")
    op.drop_table("responses")
