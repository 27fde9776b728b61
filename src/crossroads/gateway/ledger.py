"""The usage ledger: one committed row per gateway request, the durable truth for spend.

``Ledger.record`` returns only once the row is committed, so a response the gateway
completes after awaiting it survives ``kill -9``. ``on_commit`` runs inside the row's
transaction (the audit log uses it to append in the same commit).

Where the commit happens:

- SQLite: right away, on the event loop's thread, one row per transaction. A WAL
  commit with ``synchronous=NORMAL`` is a file append of tens of microseconds; a
  hand-off to a thread and back costs more than that and, under load, several turns of
  the event loop and waits for the GIL, which is most of the latency a gateway adds.
  That connection never waits: it does not wait for another writer's lock
  (``busy_timeout=0``) and does not run WAL checkpoints (they fsync; the writer thread
  runs one every ``_CHECKPOINT_EVERY`` commits, see ``_checkpoint``). If the row cannot
  be written at once (another process holds the write lock, the disk is full,
  anything), it goes to the writer thread, which waits, retries and keeps rows as below.
- PostgreSQL (a network round trip per statement): one writer thread group-commits
  whatever is queued (up to ``max_batch`` rows) in one transaction and resolves every
  waiting caller at once.

Rows are sent as plain SQL on the driver's connection (``store.raw``), not through
SQLAlchemy Core, whose per-statement overhead was most of the ledger's cost.

When the database fails: transient errors (connection lost, locked, timed out) are
retried three times; if they persist, the rows are kept in memory (up to
``max_retained``) and written with the next batch or every ``retry_interval_s``, and
every waiting caller gets ``LedgerUnavailableError`` (a 503 for the gateway). A row the
database refuses for itself (not for being down) is isolated from its batch, logged
and its caller gets ``LedgerWriteError``; the rest of the batch is written. Recording
the same ``request_id`` twice keeps the first row.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import operator
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Connection, func, select
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from .._time import as_utc
from ..errors import UpstreamUnavailableError
from ..store import Database, usage_ledger
from ..store.raw import RawSql

__all__ = [
    "Ledger",
    "LedgerUnavailableError",
    "LedgerWriteError",
    "UsageRecord",
    "spent_by_key",
    "usage_report",
]

log = logging.getLogger("crossroads.gateway.ledger")

_TRANSIENT = (OperationalError, InterfaceError, DisconnectionError, PoolTimeoutError)
_RETRY_DELAYS_S = (0.05, 0.25, 1.0)
#: Inline (SQLite) commits between two WAL checkpoints run by the writer thread.
_CHECKPOINT_EVERY = 200
#: WAL length (pages) at which a checkpoint restarts the WAL instead of leaving it be.
_WAL_RESTART_FRAMES = 2000


class LedgerUnavailableError(UpstreamUnavailableError):
    """The database did not take the usage row; it is kept in memory and retried."""


class LedgerWriteError(UpstreamUnavailableError):
    """The database refused this one row (not a transient failure); it is not retried."""


@dataclass(kw_only=True)
class UsageRecord:
    """One gateway request as the ledger stores it."""

    request_id: str
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    key_id: str | None = None
    key_name: str | None = None
    #: The model name the client asked for.
    model: str
    #: The deployment the router chose, and its backend family.
    deployment: str | None = None
    backend: str | None = None
    protocol: Literal["openai", "anthropic"] = "openai"
    endpoint: str
    stream: bool = False
    #: HTTP status returned to the client.
    status: int
    error_class: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    #: US dollars; None when the price is unknown.
    cost_usd: float | None = None
    #: Why the cost is what it is, e.g. ``unpriced`` or ``self-hosted``.
    price_flag: str | None = None
    latency_s: float = 0.0
    ttft_s: float | None = None
    guard_decisions: list[dict[str, Any]] = field(default_factory=list)
    #: JSON-serialisable bodies, stored only when ``gateway.store_bodies`` is on.
    request_body: Any = None
    response_body: Any = None
    #: The three JSON columns as text, encoded once by ``Ledger.record``.
    encoded_json: tuple[str, str | None, str | None] | None = field(
        default=None, init=False, repr=False, compare=False
    )


_LIMITS: dict[str, int] = {
    c.name: length
    for c in usage_ledger.c
    if isinstance(length := getattr(c.type, "length", None), int)
}


_COLUMNS = tuple(c.name for c in usage_ledger.c if c.name != "id")
_VALUES = operator.attrgetter(*_COLUMNS)
_CREATED = _COLUMNS.index("created_at")
_JSON = tuple(
    _COLUMNS.index(name) for name in ("guard_decisions", "request_body", "response_body")
)
_LIMITED = tuple((i, _LIMITS[name]) for i, name in enumerate(_COLUMNS) if name in _LIMITS)


def _encode_json(rec: UsageRecord) -> tuple[str, str | None, str | None]:
    """The JSON columns' text (``None`` is SQL NULL); raises if a value is not JSON."""
    decisions = json.dumps(rec.guard_decisions) if rec.guard_decisions else "[]"
    request = None if rec.request_body is None else json.dumps(rec.request_body)
    response = None if rec.response_body is None else json.dumps(rec.response_body)
    return decisions, request, response


def _params(sql: RawSql, rec: UsageRecord) -> list[Any]:
    values = list(_VALUES(rec))
    values[_CREATED] = sql.datetime(rec.created_at)
    for i, text in zip(_JSON, rec.encoded_json or _encode_json(rec), strict=True):
        values[i] = text
    for i, limit in _LIMITED:  # PostgreSQL enforces VARCHAR lengths
        value = values[i]
        if isinstance(value, str) and len(value) > limit:
            values[i] = value[:limit]
    return values


@dataclass
class _Waiter:
    record: UsageRecord
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[None]


def _resolve(waiter: _Waiter, error: BaseException | None) -> None:
    def done() -> None:
        if waiter.future.done():  # the caller was cancelled; the row is written anyway
            return
        if error is None:
            waiter.future.set_result(None)
        else:
            waiter.future.set_exception(error)

    with contextlib.suppress(RuntimeError):  # the caller's loop is closed
        waiter.loop.call_soon_threadsafe(done)


class Ledger:
    """Group-committed usage rows in ``db``; ``await record(rec)`` means committed."""

    def __init__(
        self,
        db: Database,
        *,
        max_batch: int = 256,
        on_commit: Callable[[Connection, list[UsageRecord]], None] | None = None,
        retry_interval_s: float = 5.0,
        max_retained: int = 100_000,
    ) -> None:
        self.db = db
        self.max_batch = max_batch
        self.on_commit = on_commit
        self.retry_interval_s = retry_interval_s
        self.max_retained = max_retained
        # JSON columns get their text, which PostgreSQL is told to read as json.
        cast = db.engine.dialect.name == "postgresql"
        marks = ["CAST(? AS json)" if cast and i in _JSON else "?" for i in range(len(_COLUMNS))]
        self._insert_sql = (
            f"INSERT INTO usage_ledger ({', '.join(_COLUMNS)}) VALUES ({', '.join(marks)}) "
            "ON CONFLICT (request_id) DO NOTHING"
        )
        # SQLite: batches are committed on the event loop's thread (see the module doc).
        self._inline = db.engine.dialect.name == "sqlite"
        self._inline_conn: Connection | None = None
        self._inline_commits = 0
        self._checkpoint_due = False
        self._cond = threading.Condition()
        self._queue: deque[_Waiter] = deque()
        self._retained: list[UsageRecord] = []  # only the writer thread touches it
        self._closing = False
        self._thread: threading.Thread | None = None

    @property
    def retained(self) -> int:
        """Rows waiting in memory for the database to come back."""
        return len(self._retained)

    async def record(self, rec: UsageRecord) -> None:
        """Write ``rec``; returns once it is committed (raises if it could not be)."""
        try:
            rec.encoded_json = _encode_json(rec)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"usage record {rec.request_id}: a body is not JSON: {exc}") from exc
        if self._closing:
            raise RuntimeError("the ledger is closed")
        if self._inline and self._write_inline(rec):
            return
        loop = asyncio.get_running_loop()
        waiter = _Waiter(rec, loop, loop.create_future())
        self._enqueue([waiter])
        await waiter.future

    def _enqueue(self, waiters: list[_Waiter]) -> None:
        """Hand rows to the writer thread (started on first use)."""
        with self._cond:
            self._queue.extend(waiters)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="crossroads-ledger", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def _write_inline(self, rec: UsageRecord) -> bool:
        """Commit ``rec`` now, on this thread, without waiting for any lock. False when
        that was not possible (the writer thread then takes it)."""
        if self._retained or self._queue:
            return False  # keep order behind rows already waiting there
        try:
            self._write([rec], self._inline_connection())
        except Exception as exc:
            if not isinstance(exc, _TRANSIENT):
                log.debug("inline ledger write failed; handing it to the writer", exc_info=True)
            return False
        self._inline_commits += 1
        if self._inline_commits % _CHECKPOINT_EVERY == 0:
            with self._cond:
                self._checkpoint_due = True
            self._enqueue([])
        return True

    def _checkpoint(self) -> None:
        """Copy the WAL back into the database file (the writer thread's job: it fsyncs,
        which the event loop must not wait for). A passive checkpoint never holds up
        writers; if steady traffic keeps it from catching up with the end of the WAL,
        which would then grow without bound, a restarting one does: new writes wait for
        it (the event loop's, which never wait, come to this thread meanwhile)."""
        try:
            with self.db.engine.connect() as conn:
                _, frames, _ = conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
                if frames > _WAL_RESTART_FRAMES:
                    # It waits for readers; a long report must not hold writers up long.
                    conn.exec_driver_sql("PRAGMA busy_timeout=200")
                    try:
                        conn.exec_driver_sql("PRAGMA wal_checkpoint(RESTART)")
                    finally:
                        conn.exec_driver_sql("PRAGMA busy_timeout=10000")
        except Exception as exc:  # the next one will try again
            log.warning("ledger: WAL checkpoint failed (%s)", exc.__class__.__name__)

    def _inline_connection(self) -> Connection:
        if self._inline_conn is not None and self._inline_conn.invalidated:
            self._drop_inline_connection()  # a new DB-API connection would wait on locks
        if self._inline_conn is None:
            conn = self.db.engine.connect()
            # Never block the event loop on another writer's lock: fail at once instead
            # (the batch then goes to the writer thread, which waits).
            conn.exec_driver_sql("PRAGMA busy_timeout=0")
            # Its commits must not run checkpoints (they fsync); the writer thread does.
            conn.exec_driver_sql("PRAGMA wal_autocheckpoint=0")
            conn.commit()
            self._inline_conn = conn
        return self._inline_conn

    def _drop_inline_connection(self) -> None:
        conn, self._inline_conn = self._inline_conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.invalidate()  # its busy_timeout=0 must not go back to the pool
                conn.close()

    async def aclose(self) -> None:
        """Write everything queued (one last try for retained rows), then stop."""
        self._drop_inline_connection()
        with self._cond:
            self._closing = True
            self._cond.notify()
            thread = self._thread
        if thread is not None:
            await asyncio.to_thread(thread.join)

    # -- the writer thread -----------------------------------------------------------------

    def _run(self) -> None:
        last_try = time.monotonic()
        while True:
            with self._cond:
                while not self._queue and not self._closing and not self._checkpoint_due:
                    wait = self.retry_interval_s - (time.monotonic() - last_try)
                    if self._retained and wait <= 0:
                        break
                    self._cond.wait(timeout=wait if self._retained else None)
                batch = [
                    self._queue.popleft() for _ in range(min(len(self._queue), self.max_batch))
                ]
                closing = self._closing and not self._queue
                checkpoint, self._checkpoint_due = self._checkpoint_due, False
            # Rows first: their requests are waiting; the checkpoint (an fsync) is not.
            if batch or self._retained:
                last_try = time.monotonic()
                self._flush(batch, final=closing)
            if checkpoint:
                self._checkpoint()
            if closing:
                if self._retained:
                    log.error(
                        "ledger closed with %d rows the database never took; lost request ids: %s",
                        len(self._retained),
                        ", ".join(r.request_id for r in self._retained[:50]),
                    )
                return

    def _write(self, records: list[UsageRecord], connection: Connection | None = None) -> None:
        if connection is None:
            with self.db.engine.begin() as conn:
                self._insert(conn, records)
            return
        with connection.begin():
            self._insert(connection, records)

    def _insert(self, conn: Connection, records: list[UsageRecord]) -> None:
        sql = RawSql(conn)
        try:
            sql.executemany(self._insert_sql, (_params(sql, r) for r in records))
        finally:
            sql.close()
        if self.on_commit is not None:
            self.on_commit(conn, records)

    def _flush(self, batch: list[_Waiter], *, final: bool) -> None:
        records = self._retained + [w.record for w in batch]
        error: Exception | None = None
        for delay in (*_RETRY_DELAYS_S, None):
            try:
                self._write(records)
            except _TRANSIENT as exc:
                error = exc
                if delay is not None:
                    time.sleep(delay)
                continue
            except Exception:
                log.exception("the ledger batch was refused; writing its rows one by one")
                self._retained = []
                self._isolate(batch, records)
                return
            self._retained = []
            for w in batch:
                _resolve(w, None)
            return
        assert error is not None
        kept = records[-self.max_retained :]
        if len(kept) < len(records):
            log.error("ledger: dropped %d rows (retention full)", len(records) - len(kept))
        self._retained = kept
        log.error(
            "ledger: the database is unavailable (%s); %d rows kept in memory%s",
            error.__class__.__name__,
            len(kept),
            "" if final else f", retrying every {self.retry_interval_s:g}s",
        )
        failure = LedgerUnavailableError(  # the error's class is in the log, not here
            "The usage ledger could not be written; the row is kept in memory and "
            "retried. Check the database."
        )
        for w in batch:
            _resolve(w, failure)

    def _isolate(self, batch: list[_Waiter], records: list[UsageRecord]) -> None:
        """Write each row alone so one bad row does not sink the others."""
        waiting = {id(w.record): w for w in batch}
        for rec in records:
            error: Exception | None = None
            try:
                self._write([rec])
            except _TRANSIENT as exc:
                self._retained.append(rec)
                log.error("ledger: row %s not written: %s", rec.request_id, type(exc).__name__)
                error = LedgerUnavailableError(
                    "The usage ledger could not be written; the row is kept in memory and "
                    "retried."
                )
            except Exception as exc:
                log.error("ledger: row %s refused: %s", rec.request_id, exc.__class__.__name__)
                error = LedgerWriteError(f"The usage ledger refused row {rec.request_id}.")
            waiter = waiting.get(id(rec))
            if waiter is not None:
                _resolve(waiter, error)


# -- reports -------------------------------------------------------------------------------


def spent_by_key(db: Database) -> dict[str, float]:
    """US dollars spent per key id, from the ledger (seeds the limiter at startup)."""
    query = (
        select(usage_ledger.c.key_id, func.coalesce(func.sum(usage_ledger.c.cost_usd), 0.0))
        .where(usage_ledger.c.key_id.is_not(None))
        .group_by(usage_ledger.c.key_id)
    )
    with db.engine.connect() as conn:
        return {key_id: float(total) for key_id, total in conn.execute(query)}


def usage_report(
    db: Database,
    by: Literal["key", "model", "day"] = "key",
    since: datetime | None = None,
) -> list[dict[str, Any]]:
    """One row per key, model or UTC day: requests, errors (status ≥ 400), tokens, cost,
    requests with an unknown price, and median latency. Costs exclude unpriced requests."""
    c = usage_ledger.c
    query = select(
        c.created_at,
        c.key_id,
        c.key_name,
        c.model,
        c.status,
        c.prompt_tokens,
        c.completion_tokens,
        c.cached_tokens,
        c.reasoning_tokens,
        c.cost_usd,
        c.latency_s,
    )
    if since is not None:
        query = query.where(c.created_at >= as_utc(since))
    groups: dict[str, dict[str, Any]] = {}
    latencies: dict[str, list[float]] = {}
    with db.engine.connect() as conn:
        for r in conn.execution_options(yield_per=5000).execute(query):
            if by == "key":
                group = r.key_id or "(no key)"
            elif by == "model":
                group = r.model
            else:
                group = as_utc(r.created_at).date().isoformat()
            g = groups.get(group)
            if g is None:
                g = groups[group] = {
                    by: group if by != "key" else (r.key_name or group),
                    "requests": 0,
                    "errors": 0,
                    "prompt_tokens": 0,
                    "completion_tokens": 0,
                    "cached_tokens": 0,
                    "reasoning_tokens": 0,
                    "cost_usd": 0.0,
                    "unpriced": 0,
                    "p50_latency_s": None,
                }
                if by == "key":
                    g["key_id"] = r.key_id
                latencies[group] = []
            g["requests"] += 1
            g["errors"] += int(r.status >= 400)
            g["prompt_tokens"] += r.prompt_tokens
            g["completion_tokens"] += r.completion_tokens
            g["cached_tokens"] += r.cached_tokens
            g["reasoning_tokens"] += r.reasoning_tokens
            if r.cost_usd is None:
                g["unpriced"] += 1
            else:
                g["cost_usd"] += r.cost_usd
            latencies[group].append(r.latency_s)
    for group, g in groups.items():
        g["p50_latency_s"] = statistics.median(latencies[group]) if latencies[group] else None
    rows = list(groups.values())
    if by == "day":
        rows.sort(key=lambda g: str(g["day"]))
    else:
        rows.sort(key=lambda g: (-g["cost_usd"], -g["requests"], str(g[by])))
    return rows
