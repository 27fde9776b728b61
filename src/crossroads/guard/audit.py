"""The append-only, hash-chained audit log of requests, guard decisions and policies.

Each record is ``(seq, ts, kind, ref, payload, prev_hash, hash)`` where ``hash`` is the
SHA-256 of the canonical JSON (sorted keys, no spaces, UTF-8) of all the other fields and
``prev_hash`` is the previous record's hash (64 zeros for the first). Changing a record's
content changes its hash; deleting or moving one breaks the link of the next; the
``audit_head`` row remembers the last record so that cutting off the end shows too.

Appends lock the head row first (``UPDATE ... WHERE id = 1``: a row lock on PostgreSQL,
the write lock on SQLite), so concurrent writers, in one process or many, take turns and
the chain stays linear. Tamper-*evident*, not tamper-proof: someone able to rewrite the
whole table and the head can forge a new chain, which is why ``crossroads audit verify``
prints the head hash — keep it somewhere else and pass it back with ``--anchor``.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Connection, select

from ..store import audit_head, audit_log
from ..store.raw import RawSql

if TYPE_CHECKING:
    from ..config import Config
    from ..store import Database

__all__ = ["GENESIS", "AuditLog", "AuditSink", "DatabaseAudit", "Problem", "VerifyReport", "verify"]

GENESIS = "0" * 64
KINDS = ("request", "decision", "policy")


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def record_hash(seq: int, ts: str, kind: str, ref: str | None, payload: Any, prev: str) -> str:
    """SHA-256 over the canonical JSON of a record's fields."""
    return _hash(seq, ts, kind, ref, canonical(payload), prev)


def _hash(seq: int, ts: str, kind: str, ref: str | None, payload_json: str, prev: str) -> str:
    """:func:`record_hash` with the payload already in canonical JSON: the object is
    written out key by key, in sorted order, exactly as ``canonical`` would."""
    blob = (
        f'{{"kind":{canonical(kind)},"payload":{payload_json},"prev_hash":{canonical(prev)},'
        f'"ref":{canonical(ref)},"seq":{int(seq)},"ts":{canonical(ts)}}}'
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class AuditLog:
    """Appends to the chain inside the caller's transaction."""

    @classmethod
    def append(cls, connection: Connection, events: Sequence[dict[str, Any]]) -> list[int]:
        """Append ``events`` (``{"kind", "payload", "ref"?}``) in order; returns their
        sequence numbers. A ``policy`` event whose ``ref`` (version) is already in the log
        is skipped. Runs in ``connection``'s transaction, so it commits or rolls back with
        whatever else the caller writes (e.g. the usage ledger row)."""
        if not events:
            return []
        sql = RawSql(connection)
        try:
            return cls._append(sql, events)
        finally:
            sql.close()

    @classmethod
    def _append(cls, sql: RawSql, events: Sequence[dict[str, Any]]) -> list[int]:
        now = datetime.now(UTC).isoformat()
        # Taking the head row's lock and reading it is one statement.
        head = sql.execute(
            "UPDATE audit_head SET updated_at = ? WHERE id = 1 RETURNING seq, hash", (now,)
        ).fetchone()
        if head is None:  # a database created without migration 0003's head row
            sql.execute(
                "INSERT INTO audit_head (id, seq, hash, updated_at) VALUES (1, 0, ?, ?)",
                (GENESIS, now),
            )
            head = (0, GENESIS)
        seq, prev = int(head[0]), str(head[1])
        rows: list[tuple[Any, ...]] = []
        seen_policies: set[str | None] = set()
        for event in events:
            kind = event["kind"]
            if kind not in KINDS:
                raise ValueError(f"audit event kind must be one of {KINDS}, not {kind!r}")
            ref = event.get("ref")
            if kind == "policy":
                if ref in seen_policies or cls._has_policy(sql, ref):
                    continue
                seen_policies.add(ref)
            text = canonical(event["payload"])
            seq += 1
            digest = _hash(seq, now, kind, ref, text, prev)
            rows.append((seq, now, kind, ref, text, prev, digest))
            prev = digest
        if rows:
            sql.executemany(
                "INSERT INTO audit_log (seq, ts, kind, ref, payload, prev_hash, hash) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            sql.execute("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", (seq, prev))
        return [r[0] for r in rows]

    @staticmethod
    def _has_policy(sql: RawSql, version: str | None) -> bool:
        found = sql.execute(
            "SELECT seq FROM audit_log WHERE kind = 'policy' AND ref = ? LIMIT 1", (version,)
        ).fetchone()
        return found is not None


@dataclass(frozen=True, slots=True)
class Problem:
    """Where the chain breaks first. ``reason``: edited, deleted or reordered."""

    seq: int
    reason: str
    detail: str


@dataclass(frozen=True, slots=True)
class VerifyReport:
    ok: bool
    count: int
    head_seq: int
    head_hash: str
    problem: Problem | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "count": self.count,
            "head_seq": self.head_seq,
            "head_hash": self.head_hash,
            "problem": None
            if self.problem is None
            else {
                "seq": self.problem.seq,
                "reason": self.problem.reason,
                "detail": self.problem.detail,
            },
        }


def verify(db: Database | Connection, *, anchor: str | None = None) -> VerifyReport:
    """Walk the whole chain; the report names the first broken record and why.
    ``anchor``: a head hash noted earlier, which must still be in the chain."""
    if isinstance(db, Connection):
        return _verify(db, anchor)
    with db.engine.connect() as connection:
        return _verify(connection, anchor)


def _verify(connection: Connection, anchor: str | None) -> VerifyReport:
    head = connection.execute(
        select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)
    ).first()
    head_seq, head_hash = (head[0], head[1]) if head is not None else (0, GENESIS)
    prev, expected, count = GENESIS, 1, 0
    anchor_seen = anchor is None or anchor == GENESIS

    def report(problem: Problem | None) -> VerifyReport:
        return VerifyReport(problem is None, count, head_seq, head_hash, problem)

    rows = connection.execute(select(audit_log).order_by(audit_log.c.seq)).yield_per(1000)
    for row in rows:
        count += 1
        if row.seq != expected:
            return report(
                Problem(expected, "deleted", f"records {expected}..{row.seq - 1} are missing")
            )
        try:
            payload = json.loads(row.payload)
        except ValueError:
            return report(Problem(row.seq, "edited", "its payload is not valid JSON any more"))
        recomputed = record_hash(row.seq, row.ts, row.kind, row.ref, payload, row.prev_hash)
        if recomputed != row.hash or row.prev_hash != prev:
            if row.prev_hash != prev:
                other = _seq_of(connection, row.prev_hash)
                if other is not None and other != row.seq - 1:
                    return report(
                        Problem(
                            row.seq,
                            "reordered",
                            f"record {row.seq} was written after record {other}, "
                            f"not after record {row.seq - 1}",
                        )
                    )
                if recomputed == row.hash:
                    return report(
                        Problem(
                            row.seq - 1,
                            "edited",
                            f"record {row.seq - 1} was rewritten: record {row.seq} no longer "
                            "links to it (or a record between them was deleted)",
                        )
                    )
            return report(Problem(row.seq, "edited", "its content no longer matches its hash"))
        if row.hash == anchor:
            anchor_seen = True
        prev, expected = row.hash, expected + 1
    last = expected - 1
    if head_seq > last:
        return report(
            Problem(last + 1, "deleted", f"records {last + 1}..{head_seq} are missing at the end")
        )
    if head_seq != last or head_hash != prev:
        return report(Problem(last, "edited", "the chain head does not match the last record"))
    if not anchor_seen:
        return report(
            Problem(last, "edited", "the anchor hash is not in the chain (history rewritten)")
        )
    return report(None)


def _seq_of(connection: Connection, digest: str) -> int | None:
    found = connection.execute(select(audit_log.c.seq).where(audit_log.c.hash == digest)).first()
    return None if found is None else int(found[0])


class AuditSink(Protocol):
    """Where a :class:`~crossroads.guard.Guardrails` sends each request's audit events."""

    def write(self, events: list[dict[str, Any]]) -> None: ...

    def close(self) -> None: ...


class DatabaseAudit:
    """Appends to the configured database (opened on first write); used by the Client."""

    def __init__(self, config: Config | None = None, *, url: str | None = None) -> None:
        self._config = config
        self._url = url
        self._db: Database | None = None
        # Writes come from worker threads; opening runs Alembic, which is not thread-safe.
        self._lock = threading.Lock()

    def write(self, events: list[dict[str, Any]]) -> None:
        with self._lock:
            if self._db is None:
                from ..store import open_database

                self._db = open_database(self._url, config=self._config)
            with self._db.engine.begin() as connection:
                AuditLog.append(connection, events)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.dispose()
                self._db = None
