"""The usage ledger on real SQLite and PostgreSQL: group commit, durability under
``kill -9``, a database that goes away, reports, and ``crossroads usage``."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, create_engine, func, select
from sqlalchemy.exc import OperationalError
from typer.testing import CliRunner

from crossroads.cli import app
from crossroads.config import crossroads_home
from crossroads.gateway.ledger import (
    Ledger,
    LedgerUnavailableError,
    LedgerWriteError,
    UsageRecord,
    spent_by_key,
    usage_report,
)
from crossroads.store import Database, open_database, usage_ledger

from .test_gateway_keys import isolated_postgres

runner = CliRunner()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.db'}"
        return
    yield from isolated_postgres(request.getfixturevalue("postgres_url"))


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    with open_database(db_url) as database:
        yield database


def usage(request_id: str | None = None, **fields: Any) -> UsageRecord:
    values: dict[str, Any] = {
        "request_id": request_id or uuid.uuid4().hex,
        "model": "openai/gpt-4o",
        "endpoint": "/v1/chat/completions",
        "status": 200,
    }
    values.update(fields)
    return UsageRecord(**values)


def stored_ids(db: Database) -> set[str]:
    with db.engine.connect() as conn:
        return set(conn.execute(select(usage_ledger.c.request_id)).scalars())


async def test_group_commit_writes_every_record(db: Database) -> None:
    batches: list[int] = []
    ledger = Ledger(db, max_batch=64, on_commit=lambda conn, recs: batches.append(len(recs)))
    records = [
        usage(
            key_id="key_a",
            prompt_tokens=i,
            cost_usd=0.001,
            guard_decisions=[{"policy": "pii", "action": "redact"}],
            request_body={"messages": [{"role": "user", "content": f"hi {i}"}]},
        )
        for i in range(500)
    ]
    await asyncio.gather(*(ledger.record(r) for r in records))
    await ledger.aclose()
    assert stored_ids(db) == {r.request_id for r in records}
    assert sum(batches) == 500 and max(batches) <= 64
    if db.engine.dialect.name == "sqlite":
        # Committed at once on the caller's thread, one transaction per row; only rows
        # that met the writer thread's WAL checkpoint were queued, and grouped there.
        assert batches.count(1) >= 250
    else:
        assert len(batches) < 500  # callers shared transactions
    with db.engine.connect() as conn:
        row = conn.execute(
            select(usage_ledger).where(usage_ledger.c.request_id == records[7].request_id)
        ).one()
    assert row.prompt_tokens == 7 and row.guard_decisions[0]["action"] == "redact"
    assert row.request_body["messages"][0]["content"] == "hi 7" and row.response_body is None
    assert spent_by_key(db) == {"key_a": pytest.approx(0.5)}


async def test_a_recorded_row_is_committed_when_record_returns(db: Database) -> None:
    ledger = Ledger(db)
    for i in range(5):
        await ledger.record(usage(f"seen-{i}"))
        assert f"seen-{i}" in stored_ids(db)  # another connection sees it: committed
    await ledger.aclose()


async def test_sqlite_write_lock_held_elsewhere_defers_the_row_to_the_writer(
    tmp_path: Path,
) -> None:
    import sqlite3

    path = tmp_path / "locked.db"
    db = open_database(f"sqlite:///{path}")
    ledger = Ledger(db)
    await ledger.record(usage("before"))
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process's writer holds the lock
    pending = asyncio.ensure_future(ledger.record(usage("during")))
    await asyncio.sleep(0.2)
    # The row waits for the lock in the writer thread, not on the event loop (whose
    # connection never waits), and is not lost while it waits.
    assert not pending.done() and ledger._thread is not None
    other.execute("COMMIT")
    await asyncio.wait_for(pending, 15)
    await ledger.record(usage("after"))
    await ledger.aclose()
    other.close()
    assert stored_ids(db) == {"before", "during", "after"}
    db.dispose()


async def test_sqlite_wal_is_checkpointed_off_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from crossroads.gateway import ledger as ledger_module

    monkeypatch.setattr(ledger_module, "_CHECKPOINT_EVERY", 50)
    monkeypatch.setattr(ledger_module, "_WAL_RESTART_FRAMES", 500)
    path = tmp_path / "wal.db"
    db = open_database(f"sqlite:///{path}")
    ledger = Ledger(db)
    threads: list[str] = []
    checkpoint = ledger._checkpoint

    def spy() -> None:
        import threading

        checkpoint()
        threads.append(threading.current_thread().name)

    monkeypatch.setattr(ledger, "_checkpoint", spy)
    for i in range(1, 1001):
        await ledger.record(usage(guard_decisions=[{"check": "pii", "pad": "x" * 200}]))
        if i % 50 == 0:  # let the writer thread finish each checkpoint before going on
            for _ in range(500):
                if len(threads) == i // 50:
                    break
                await asyncio.sleep(0.01)
    await ledger.aclose()
    assert len(threads) == 20 and set(threads) == {"crossroads-ledger"}
    # The WAL is restarted instead of growing with every row (to ~19 MB here).
    wal = path.with_name(path.name + "-wal")
    assert not wal.exists() or wal.stat().st_size < 4_000_000
    assert len(stored_ids(db)) == 1000
    db.dispose()


async def test_same_request_id_twice_keeps_the_first(db: Database) -> None:
    ledger = Ledger(db)
    await ledger.record(usage("dup", status=200))
    await ledger.record(usage("dup", status=500))
    await ledger.record(usage("x" * 80, model="m" * 300))  # over-long text is cut, not refused
    await ledger.aclose()
    with db.engine.connect() as conn:
        rows = conn.execute(select(usage_ledger.c.request_id, usage_ledger.c.status)).all()
    assert ("dup", 200) in rows and len(rows) == 2


async def test_a_refused_row_does_not_sink_its_batch(db: Database) -> None:
    audit: list[str] = []

    def on_commit(conn: Connection, records: list[UsageRecord]) -> None:
        if any(r.request_id == "poison" for r in records):
            raise ValueError("the audit hook refuses this row")
        audit.extend(r.request_id for r in records)

    ledger = Ledger(db, on_commit=on_commit)
    good = [usage() for _ in range(20)]
    results = await asyncio.gather(
        *(ledger.record(r) for r in [*good[:10], usage("poison"), *good[10:]]),
        return_exceptions=True,
    )
    await ledger.aclose()
    assert isinstance(results[10], LedgerWriteError)
    assert [r for i, r in enumerate(results) if i != 10] == [None] * 20
    assert stored_ids(db) == {r.request_id for r in good}  # the hook ran in the same commit
    assert sorted(audit) == sorted(r.request_id for r in good)


async def test_database_down_keeps_rows_and_tells_callers(db: Database) -> None:
    down = [True]

    def on_commit(conn: Connection, records: list[UsageRecord]) -> None:
        if down[0]:
            raise OperationalError("INSERT", {}, ConnectionError("server closed the connection"))

    ledger = Ledger(db, on_commit=on_commit)
    lost = usage("while-down")
    with pytest.raises(LedgerUnavailableError, match="kept in memory"):
        await ledger.record(lost)
    assert ledger.retained == 1 and stored_ids(db) == set()

    down[0] = False  # the database is back: the next batch carries the kept row
    await ledger.record(usage("after"))
    await ledger.aclose()
    assert stored_ids(db) == {"while-down", "after"} and ledger.retained == 0


async def test_unreachable_postgres_raises_unavailable() -> None:
    engine = create_engine(
        "postgresql+psycopg://postgres@127.0.0.1:1/none", connect_args={"connect_timeout": 2}
    )
    ledger = Ledger(Database("postgresql://127.0.0.1:1/none", engine), retry_interval_s=60)
    with pytest.raises(LedgerUnavailableError):
        await ledger.record(usage())
    assert ledger.retained == 1
    await ledger.aclose()
    engine.dispose()
    with pytest.raises(RuntimeError, match="closed"):
        await ledger.record(usage())


async def test_bodies_must_be_json() -> None:
    ledger = Ledger(open_database(f"sqlite:///{crossroads_home() / 'x.db'}"))
    with pytest.raises(TypeError, match="not JSON"):
        await ledger.record(usage(request_body={"when": object()}))
    await ledger.aclose()
    ledger.db.dispose()


_WRITER = """
import asyncio, sys, uuid
from crossroads.gateway.ledger import Ledger, UsageRecord
from crossroads.store import open_database

async def one(ledger):
    rid = uuid.uuid4().hex
    await ledger.record(UsageRecord(request_id=rid, model="m", endpoint="/v1/chat/completions",
                                    status=200, cost_usd=0.001, key_id="key_k"))
    print(rid, flush=True)

async def main():
    ledger = Ledger(open_database(sys.argv[1]), max_batch=32)
    while True:
        await asyncio.gather(*(one(ledger) for _ in range(16)))

asyncio.run(main())
"""


def test_committed_rows_survive_kill_9(db_url: str, tmp_path: Path) -> None:
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    open_database(db_url).dispose()  # migrate before the writer starts
    proc = subprocess.Popen(
        [sys.executable, str(script), db_url], stdout=subprocess.PIPE, text=False
    )
    assert proc.stdout is not None
    buffer = b""

    def read_until_enough() -> None:
        nonlocal buffer
        assert proc.stdout is not None
        while buffer.count(b"\n") < 300:
            chunk = os.read(proc.stdout.fileno(), 65536)
            assert chunk, "the writer stopped early"
            buffer += chunk

    try:
        read_until_enough()
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # also when the reading failed
        buffer += proc.stdout.read()
        proc.stdout.close()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    printed = {line.decode() for line in buffer.split(b"\n")[:-1]}  # complete lines only
    assert len(printed) >= 300
    with open_database(db_url) as db:
        missing = printed - stored_ids(db)
    assert not missing


async def test_usage_report_groupings(db: Database) -> None:
    day1 = datetime(2030, 5, 1, 23, 30, tzinfo=UTC)
    day2 = day1 + timedelta(hours=1)  # past midnight UTC
    rows = [
        usage(
            key_id="key_a",
            key_name="alpha",
            created_at=day1,
            cost_usd=0.10,
            prompt_tokens=10,
            completion_tokens=5,
            latency_s=1.0,
        ),
        usage(
            key_id="key_a",
            key_name="alpha",
            created_at=day2,
            cost_usd=0.20,
            prompt_tokens=20,
            completion_tokens=5,
            latency_s=3.0,
            status=502,
            error_class="UpstreamUnavailableError",
        ),
        usage(
            key_id="key_b",
            key_name="beta",
            created_at=day2,
            model="local/smollm2",
            cost_usd=None,
            price_flag="unpriced",
            latency_s=0.5,
        ),
        usage(
            key_id=None,
            created_at=day2,
            model="local/smollm2",
            cost_usd=0.0,
            price_flag="self-hosted",
            latency_s=0.7,
        ),
    ]
    ledger = Ledger(db)
    for r in rows:
        await ledger.record(r)
    await ledger.aclose()

    by_key = {r["key"]: r for r in usage_report(db, by="key")}
    assert set(by_key) == {"alpha", "beta", "(no key)"}
    alpha = by_key["alpha"]
    assert alpha["key_id"] == "key_a" and alpha["requests"] == 2 and alpha["errors"] == 1
    assert alpha["cost_usd"] == pytest.approx(0.30) and alpha["prompt_tokens"] == 30
    assert alpha["p50_latency_s"] == pytest.approx(2.0)
    assert by_key["beta"]["unpriced"] == 1 and by_key["beta"]["cost_usd"] == 0

    by_model = {r["model"]: r for r in usage_report(db, by="model")}
    assert by_model["local/smollm2"]["requests"] == 2 and by_model["local/smollm2"]["unpriced"] == 1
    assert list(by_model) == ["openai/gpt-4o", "local/smollm2"]  # most expensive first

    by_day = usage_report(db, by="day")
    assert [(r["day"], r["requests"]) for r in by_day] == [("2030-05-01", 1), ("2030-05-02", 3)]
    since = usage_report(db, by="day", since=day1 + timedelta(minutes=1))
    assert [r["day"] for r in since] == ["2030-05-02"]
    assert spent_by_key(db) == {"key_a": pytest.approx(0.30), "key_b": 0.0}


def test_usage_command() -> None:
    url = f"sqlite:///{crossroads_home() / 'crossroads.db'}"
    now = datetime.now(UTC)

    async def fill() -> None:
        with open_database(url) as db:
            ledger = Ledger(db)
            for r in [
                usage(key_id="key_a", key_name="alpha", cost_usd=0.5, prompt_tokens=100),
                usage(key_id="key_a", key_name="alpha", cost_usd=None, model="mystery"),
                usage(
                    key_id="key_a",
                    key_name="alpha",
                    cost_usd=1.0,
                    created_at=now - timedelta(days=3),
                ),
            ]:
                await ledger.record(r)
            await ledger.aclose()

    asyncio.run(fill())
    table = runner.invoke(app, ["usage"], env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    assert "alpha (key_a)" in table.stdout and "$1.5000" in table.stdout
    assert "1 request(s) had no known price" in table.stdout

    recent = runner.invoke(app, ["usage", "--by", "model", "--since", "24h", "--json"])
    assert recent.exit_code == 0, recent.output
    models = {r["model"]: r for r in json.loads(recent.stdout)}
    assert models["openai/gpt-4o"]["cost_usd"] == 0.5 and models["mystery"]["unpriced"] == 1

    days = json.loads(runner.invoke(app, ["usage", "--by", "day", "--json"]).stdout)
    assert sum(d["requests"] for d in days) == 3 and len(days) == 2
    since_date = (now - timedelta(days=1)).date().isoformat()
    dated = json.loads(runner.invoke(app, ["usage", "--since", since_date, "--json"]).stdout)
    assert dated[0]["requests"] == 2

    assert runner.invoke(app, ["usage", "--by", "week"]).exit_code == 2
    assert runner.invoke(app, ["usage", "--since", "last tuesday"]).exit_code == 2
    with open_database(url) as db, db.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(usage_ledger)).scalar() == 3
