"""Table definitions (SQLAlchemy Core). Changes go through a new migration."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

__all__ = ["metadata", "response_cache", "results", "run_items", "runs"]

metadata = MetaData()

runs = Table(
    "runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("suite", String(200), nullable=False),
    Column("suite_hash", String(32), nullable=False),
    Column("suite_source", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("status", String(16), nullable=False),  # running | complete | interrupted
    Column("models", JSON, nullable=False),
    Column("repeat", Integer, nullable=False),
    Column("options", JSON, nullable=False),
    Column("manifest", JSON, nullable=False),
)

run_items = Table(
    "run_items",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("item_id", String(200), primary_key=True),
    Column("position", Integer, nullable=False),
    Column("tags", JSON, nullable=False),
    Column("prompt", Text, nullable=False),
    Column("expected", JSON),
)

results = Table(
    "results",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("item_id", String(200), nullable=False),
    Column("model", String(200), nullable=False),
    Column("repeat", Integer, nullable=False),
    Column("output", Text, nullable=False),
    Column("score", Float, nullable=False),
    Column("passed", Boolean),
    Column("format_error", Boolean, nullable=False),
    Column("scores", JSON, nullable=False),
    Column("latency_s", Float),
    Column("ttft_s", Float),
    Column("tokens_per_s", Float),
    Column("prompt_tokens", Integer, nullable=False),
    Column("completion_tokens", Integer, nullable=False),
    Column("cost_usd", Float),
    Column("cached", Boolean, nullable=False),
    Column("error", Text),
    Column("finish_reason", String(32)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("run_id", "item_id", "model", "repeat", name="uq_result"),
)
Index("ix_results_run_model", results.c.run_id, results.c.model)

response_cache = Table(
    "response_cache",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("model", String(200), nullable=False),
    Column("output", Text, nullable=False),
    Column("prompt_tokens", Integer, nullable=False),
    Column("completion_tokens", Integer, nullable=False),
    Column("finish_reason", String(32)),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
