"""Table definitions (SQLAlchemy Core). Changes go through a new migration."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

__all__ = [
    "USAGE_LATENCY_BOUNDS",
    "api_keys",
    "audit_head",
    "audit_log",
    "metadata",
    "response_cache",
    "responses",
    "results",
    "run_items",
    "runs",
    "usage_daily",
    "usage_ledger",
]

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

# -- gateway (migration 0002_gateway) ------------------------------------------------

#: Virtual keys: only the SHA-256 of a key and a display prefix are stored.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("key_hash", String(64), nullable=False),
    Column("prefix", String(16), nullable=False),
    Column("budget_usd", Float),
    Column("rpm", Integer),
    Column("tpm", Integer),
    Column("models", JSON, nullable=False),  # list of names/globs; empty = every model
    Column("expires_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
Index("ux_api_keys_key_hash", api_keys.c.key_hash, unique=True)
Index(
    "ux_api_keys_active_name",
    api_keys.c.name,
    unique=True,
    sqlite_where=api_keys.c.revoked_at.is_(None),
    postgresql_where=api_keys.c.revoked_at.is_(None),
)

#: One row per gateway request (the durable truth for spend and usage reports).
usage_ledger = Table(
    "usage_ledger",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("key_id", String(32)),
    Column("key_name", String(200)),
    Column("model", String(200), nullable=False),
    Column("deployment", String(200)),
    Column("backend", String(64)),
    Column("protocol", String(16), nullable=False),
    Column("endpoint", String(200), nullable=False),
    Column("stream", Boolean, nullable=False),
    Column("status", Integer, nullable=False),
    Column("error_class", String(100)),
    Column("prompt_tokens", Integer, nullable=False),
    Column("completion_tokens", Integer, nullable=False),
    Column("cached_tokens", Integer, nullable=False),
    Column("reasoning_tokens", Integer, nullable=False),
    Column("cost_usd", Float),  # NULL = unknown price
    Column("price_flag", String(32)),
    Column("latency_s", Float, nullable=False),
    Column("ttft_s", Float),
    Column("guard_decisions", JSON, nullable=False),
    Column("request_body", JSON),
    Column("response_body", JSON),
)
Index("ux_usage_ledger_request_id", usage_ledger.c.request_id, unique=True)
Index("ix_usage_ledger_created_at", usage_ledger.c.created_at)
Index("ix_usage_ledger_key_id", usage_ledger.c.key_id)

# -- guardrails: the hash-chained audit log (migration 0003) --------------------------------
#: Append-only records; ``hash`` is sha256 over the canonical JSON of the other columns
#: (``payload`` parsed), so editing, deleting or reordering any record breaks the chain.
audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("ts", String(32), nullable=False),
    Column("kind", String(16), nullable=False),  # request | decision | policy
    Column("ref", String(64)),  # request id or policy version
    Column("payload", Text, nullable=False),  # canonical JSON, never raw secrets
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)
Index("ux_audit_log_hash", audit_log.c.hash, unique=True)
Index("ix_audit_log_kind_ref", audit_log.c.kind, audit_log.c.ref)

#: One row (id 1): the last record's seq and hash. Appends lock it, so concurrent
#: writers take turns; a verifier compares it with the end of the chain.
audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("updated_at", String(32), nullable=False),
)

# -- the gateway's Responses API (migration 0004) ---------------------------------------
#: Responses created with ``store: true``: readable (and continued with
#: ``previous_response_id``) only by the key that created them (``owner``: the key id,
#: or ``master``). ``conversation`` is the canonical messages up to and including the
#: answer, without the request's instructions.
responses = Table(
    "responses",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("owner", String(64), nullable=False),
    Column("model", String(200), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("response", JSON, nullable=False),
    Column("conversation", JSON, nullable=False),
)
Index("ix_responses_owner", responses.c.owner)

# -- daily usage rollups (migration 0005) -------------------------------------------------
#: One row per UTC day, key, model and route (the deployment), kept by a trigger on
#: ``usage_ledger`` in the same transaction as each row. ``key_id``/``route`` are ''
#: when the ledger has none. Latency: a sum, a maximum and a histogram whose bucket
#: ``lat_bNN`` counts requests below ``USAGE_LATENCY_BOUNDS[NN]`` (the last one is open).
USAGE_LATENCY_BOUNDS = (
    0.025, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0, 15.0, 30.0
)
usage_daily = Table(
    "usage_daily",
    metadata,
    Column("day", String(10), nullable=False),
    Column("key_id", String(32), nullable=False),
    Column("model", String(200), nullable=False),
    Column("route", String(200), nullable=False),
    Column("key_name", String(200)),
    Column("requests", Integer, nullable=False),
    Column("errors", Integer, nullable=False),
    Column("prompt_tokens", BigInteger, nullable=False),
    Column("completion_tokens", BigInteger, nullable=False),
    Column("cached_tokens", BigInteger, nullable=False),
    Column("reasoning_tokens", BigInteger, nullable=False),
    Column("cost_usd", Float, nullable=False),
    Column("unpriced", Integer, nullable=False),
    Column("latency_sum", Float, nullable=False),
    *(Column(f"lat_b{i:02d}", Integer, nullable=False) for i in range(16)),
    Column("latency_max", Float, nullable=False),
    PrimaryKeyConstraint("day", "key_id", "model", "route", name="pk_usage_daily"),
)
Index("ix_usage_daily_key_day", usage_daily.c.key_id, usage_daily.c.day)
