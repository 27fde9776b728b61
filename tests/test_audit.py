"""The hash-chained audit log: appends, verification, and tampering of every kind."""

from __future__ import annotations

import itertools
import multiprocessing
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update
from typer.testing import CliRunner

from crossroads.cli import app
from crossroads.guard.audit import GENESIS, AuditLog, record_hash, verify
from crossroads.store import Database, audit_head, audit_log, open_database

N = 8


def events(n: int, tag: str = "t") -> list[dict[str, object]]:
    return [
        {"kind": "decision", "ref": f"{tag}{i}", "payload": {"check": "pii", "i": i, "who": tag}}
        for i in range(n)
    ]


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = open_database(f"sqlite:///{tmp_path / 'audit.db'}")
    with database.engine.begin() as conn:
        AuditLog.append(conn, events(N))
    yield database
    database.dispose()


def test_append_builds_a_verifiable_chain(db: Database) -> None:
    report = verify(db)
    assert report.ok and report.count == N and report.head_seq == N
    with db.engine.connect() as conn:
        rows = list(conn.execute(select(audit_log).order_by(audit_log.c.seq)))
    assert rows[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(rows))
    assert report.head_hash == rows[-1].hash


def test_policy_records_are_written_once(db: Database) -> None:
    policy = {"kind": "policy", "ref": "v1", "payload": {"version": "v1"}}
    with db.engine.begin() as conn:
        assert len(AuditLog.append(conn, [policy, dict(policy)])) == 1
    with db.engine.begin() as conn:
        assert AuditLog.append(conn, [policy]) == []
    assert verify(db).ok


def test_append_rolls_back_with_the_callers_transaction(db: Database) -> None:
    with pytest.raises(RuntimeError), db.engine.begin() as conn:
        AuditLog.append(conn, events(3, "x"))
        raise RuntimeError("the caller's ledger write failed")
    report = verify(db)
    assert report.ok and report.count == N


@pytest.mark.parametrize("seq", range(1, N + 1))
def test_any_edited_record_is_detected(db: Database, seq: int) -> None:
    with db.engine.begin() as conn:
        conn.execute(
            update(audit_log).where(audit_log.c.seq == seq).values(payload='{"check":"none"}')
        )
    report = verify(db)
    assert not report.ok and report.problem is not None
    assert (report.problem.seq, report.problem.reason) == (seq, "edited")


@pytest.mark.parametrize("seq", range(1, N))
def test_an_edit_with_a_recomputed_hash_is_detected(db: Database, seq: int) -> None:
    with db.engine.begin() as conn:
        row = conn.execute(select(audit_log).where(audit_log.c.seq == seq)).one()
        forged = record_hash(row.seq, row.ts, row.kind, row.ref, {"check": "forged"}, row.prev_hash)
        conn.execute(
            update(audit_log)
            .where(audit_log.c.seq == seq)
            .values(payload='{"check":"forged"}', hash=forged)
        )
    report = verify(db)
    assert not report.ok and report.problem is not None
    assert (report.problem.seq, report.problem.reason) == (seq, "edited")


@pytest.mark.parametrize("seq", range(1, N + 1))
def test_any_deleted_record_is_detected(db: Database, seq: int) -> None:
    with db.engine.begin() as conn:
        conn.execute(delete(audit_log).where(audit_log.c.seq == seq))
    report = verify(db)
    assert not report.ok and report.problem is not None
    assert (report.problem.seq, report.problem.reason) == (seq, "deleted")


@pytest.mark.parametrize("seq", range(1, N))
def test_swapped_records_are_detected_as_reordered(db: Database, seq: int) -> None:
    with db.engine.begin() as conn:
        conn.execute(update(audit_log).where(audit_log.c.seq == seq).values(seq=-1))
        conn.execute(update(audit_log).where(audit_log.c.seq == seq + 1).values(seq=seq))
        conn.execute(update(audit_log).where(audit_log.c.seq == -1).values(seq=seq + 1))
    report = verify(db)
    assert not report.ok and report.problem is not None
    assert report.problem.reason == "reordered" and report.problem.seq in (seq, seq + 1)


def test_truncating_the_end_and_the_anchor(db: Database) -> None:
    anchor = verify(db).head_hash
    with db.engine.begin() as conn:
        AuditLog.append(conn, events(2, "later"))
    assert verify(db, anchor=anchor).ok
    with db.engine.begin() as conn:
        conn.execute(delete(audit_log).where(audit_log.c.seq > N - 1))
        conn.execute(
            update(audit_head).values(seq=N - 1, hash=conn.execute(
                select(audit_log.c.hash).where(audit_log.c.seq == N - 1)).scalar_one())
        )  # fmt: skip
    assert verify(db).ok, "a consistent shorter chain looks fine without an anchor..."
    report = verify(db, anchor=anchor)
    assert not report.ok, "...but not against a head hash noted earlier"


def test_deleting_the_tail_without_the_head_is_detected(db: Database) -> None:
    with db.engine.begin() as conn:
        conn.execute(delete(audit_log).where(audit_log.c.seq == N))
    report = verify(db)
    assert report.problem is not None and (report.problem.seq, report.problem.reason) == (
        N,
        "deleted",
    )


def _writer(url: str, tag: str, rounds: int) -> None:
    database = open_database(url)
    for i in range(rounds):
        with database.engine.begin() as conn:
            AuditLog.append(conn, events(3, f"{tag}{i}-"))
    database.dispose()


def _concurrent(url: str) -> None:
    open_database(url).dispose()  # migrate once, up front
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(url, f"p{n}", 15)) for n in range(3)]
    try:
        for p in procs:
            p.start()
        for p in procs:
            p.join(120)
            assert p.exitcode == 0
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join()
    with open_database(url) as database:
        report = verify(database)
    assert report.ok and report.count == 3 * 15 * 3


def test_concurrent_writers_keep_one_chain_sqlite(tmp_path: Path) -> None:
    _concurrent(f"sqlite:///{tmp_path / 'shared.db'}")


def test_concurrent_writers_keep_one_chain_postgres(postgres_url: str) -> None:
    import uuid

    from sqlalchemy import create_engine, text

    name = f"audit_{uuid.uuid4().hex[:12]}"  # a database of its own: others share `test`
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    try:
        _concurrent(postgres_url.rsplit("/", 1)[0] + f"/{name}")
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def test_cli_verify_reports_and_exits_non_zero_on_tampering(tmp_path: Path) -> None:
    config = tmp_path / "crossroads.yaml"
    config.write_text(f"database_url: sqlite:///{tmp_path / 'cli.db'}\n", encoding="utf-8")
    with open_database(config=None, url=f"sqlite:///{tmp_path / 'cli.db'}") as database:
        with database.engine.begin() as conn:
            AuditLog.append(conn, events(4))
        runner = CliRunner()
        ok = runner.invoke(app, ["-c", str(config), "audit", "verify"])
        assert ok.exit_code == 0 and "OK: 4 record(s)" in ok.stdout
        shown = runner.invoke(app, ["-c", str(config), "audit", "show", "--limit", "2"])
        assert shown.exit_code == 0 and "decision" in shown.stdout
        with database.engine.begin() as conn:
            conn.execute(update(audit_log).where(audit_log.c.seq == 2).values(ref="evil"))
        bad = runner.invoke(app, ["-c", str(config), "audit", "verify"])
    assert bad.exit_code == 1 and "BROKEN at record 2: edited" in bad.output
