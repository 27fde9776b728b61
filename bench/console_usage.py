"""The Usage page on a big ledger: its server query from the daily rollups against the
same aggregation over the raw ledger rows, in one run.

    PYTHONPATH=src .venv/bin/python bench/console_usage.py [--rows 1000000] [--rounds 5]
        [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/test]

Builds a ledger of ``--rows`` rows (90 days, 20 virtual keys and the master key, 8 models
on 12 deployments, 4 % errors, latencies from 50 ms to a minute) through the migrations'
schema: rows go in with ``executemany`` (SQLite) or ``COPY`` (PostgreSQL, into a fresh
schema dropped at the end), and the rollup trigger fills ``usage_daily`` as it does for
the gateway. Then, alternating A B, B A, …:

- rollups: what ``GET /ui/usage`` runs (the page's group-by query for the whole 90 days
  plus the key picker's), ``crossroads.console.usage_view.query`` + ``rollup_usage``;
- raw scan: ``raw_usage``, the same figures (exact percentiles) from every raw row;
- raw SQL: a ``GROUP BY`` over the raw rows in the database, sums only (no percentiles):
  the cheapest raw query, to show the rollups do not win only by skipping Python.

Reports the median of ``--rounds`` per query and the ratio (target: the page ≤ 300 ms,
the raw query ≥ 3 s). ``--trigger-cost`` measures instead what the rollup trigger adds
to the ledger's write (``Ledger.record`` on SQLite, one row per commit as the gateway
writes them), against the same database without the trigger, interleaved.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from sqlalchemy import create_engine, text  # noqa: E402

from crossroads.console import usage_view  # noqa: E402
from crossroads.gateway.usage_rollup import raw_usage, rollup_usage  # noqa: E402
from crossroads.store import Database, open_database  # noqa: E402

COLUMNS = (
    "request_id", "created_at", "key_id", "key_name", "model", "deployment", "backend",
    "protocol", "endpoint", "stream", "status", "error_class", "prompt_tokens",
    "completion_tokens", "cached_tokens", "reasoning_tokens", "cost_usd", "price_flag",
    "latency_s", "ttft_s", "guard_decisions",
)
DAYS = 90
END = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def rows(n: int, pg: bool) -> Iterator[tuple[Any, ...]]:
    rnd = random.Random(14)
    keys = [(None, "master")] + [(f"k{i:030d}", f"team-{i}") for i in range(20)]
    models = [(f"model-{m}", [f"dep-{m}"] + ([f"dep-{m}b"] if m < 4 else [])) for m in range(8)]
    start = END - dt.timedelta(days=DAYS)
    step = DAYS * 86400 / n
    for i in range(n):
        key_id, key_name = rnd.choice(keys)
        model, deployments = rnd.choice(models)
        created = start + dt.timedelta(seconds=i * step)
        status = 200 if rnd.random() > 0.04 else 502
        latency = rnd.lognormvariate(-0.7, 1.0)
        prompt, completion = rnd.randint(10, 4000), rnd.randint(1, 800)
        yield (
            f"r{i}", created if pg else created.strftime("%Y-%m-%d %H:%M:%S.%f"), key_id,
            key_name, model, rnd.choice(deployments), "openai", "openai",
            "/v1/chat/completions", False, status, None if status == 200 else "Upstream",
            prompt, completion, 0, 0,
            None if i % 50 == 0 else (prompt * 2.5 + completion * 10) / 1e6, None,
            latency, latency / 3, "[]",
        )


def load_sqlite(db: Database, n: int) -> None:
    marks = ", ".join("?" * len(COLUMNS))
    sql = f"INSERT INTO usage_ledger ({', '.join(COLUMNS)}) VALUES ({marks})"
    batch: list[tuple[Any, ...]] = []
    with db.engine.begin() as conn:
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        for row in rows(n, pg=False):
            batch.append(row)
            if len(batch) == 50_000:
                cursor.executemany(sql, batch)
                batch.clear()
        if batch:
            cursor.executemany(sql, batch)


def load_postgres(db: Database, n: int) -> None:
    with db.engine.begin() as conn:
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        with cursor.copy(f"COPY usage_ledger ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for row in rows(n, pg=True):
                copy.write_row(row)
        cursor.execute("ANALYZE usage_ledger")
        cursor.execute("ANALYZE usage_daily")


def raw_sql(db: Database) -> int:
    with db.engine.connect() as conn:
        result = conn.execute(text(
            "SELECT key_id, count(*), sum(CASE WHEN status >= 400 THEN 1 ELSE 0 END), "
            "sum(prompt_tokens), sum(completion_tokens), sum(cost_usd), avg(latency_s) "
            "FROM usage_ledger WHERE created_at >= :since GROUP BY key_id"
        ), {"since": END - dt.timedelta(days=DAYS)}).all()
    return len(result)


def page_query(db: Database, admin: Any) -> int:
    since = (END - dt.timedelta(days=DAYS)).date().isoformat()
    f = usage_view.filters(admin, by="key", since=since, until=END.date().isoformat(),
                           key=None, metric=None)
    shown = usage_view.query(db, f)
    rollup_usage(db, "key", since=f.since, until=f.until)  # the key picker
    return len(shown)


def measure(db: Database, rounds: int) -> dict[str, float]:
    from crossroads.console.sessions import Session

    admin = Session(id="bench", admin=True, name="master", key_id=None, secret="x")
    since = (END - dt.timedelta(days=DAYS)).date()
    queries: dict[str, Callable[[], int]] = {
        "rollups (the page)": lambda: page_query(db, admin),
        "raw scan (same figures)": lambda: len(raw_usage(db, "key", since=since)),
        "raw SQL GROUP BY (sums only)": lambda: raw_sql(db),
    }
    times: dict[str, list[float]] = {name: [] for name in queries}
    names = list(queries)
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            t0 = time.perf_counter()
            groups = queries[name]()
            times[name].append(time.perf_counter() - t0)
            assert groups == 21, (name, groups)
    return {name: statistics.median(ts) for name, ts in times.items()}


def report(label: str, db: Database, n: int, load_s: float, rounds: int) -> None:
    with db.engine.connect() as conn:
        daily = conn.execute(text("SELECT count(*) FROM usage_daily")).scalar_one()
        ledger = conn.execute(text("SELECT count(*) FROM usage_ledger")).scalar_one()
    assert ledger == n
    print(f"\n{label}: {ledger:,} ledger rows -> {daily:,} rollup rows "
          f"(loaded, trigger included, in {load_s:.0f} s)")
    medians = measure(db, rounds)
    page = medians["rollups (the page)"]
    for name, value in medians.items():
        ratio = "" if name.startswith("rollups") else f"  ({value / page:,.0f}x the page)"
        print(f"  {name:32s} median {value * 1000:9.1f} ms{ratio}")


def trigger_cost(rounds: int, n: int = 2000) -> None:
    import asyncio

    from crossroads.gateway.ledger import Ledger, UsageRecord

    async def write(db: Database, tag: str) -> float:
        ledger = Ledger(db)
        t0 = time.perf_counter()
        for i in range(n):
            await ledger.record(UsageRecord(
                request_id=f"{tag}-{i}", model="gpt-4o", key_id="k1", key_name="a",
                deployment="d", endpoint="/v1/chat/completions", status=200,
                prompt_tokens=10, completion_tokens=5, cost_usd=0.001, latency_s=0.3,
            ))
        await ledger.aclose()
        return (time.perf_counter() - t0) / n

    with tempfile.TemporaryDirectory() as tmp:
        with_trigger = open_database(f"sqlite:///{tmp}/a.db")
        without = open_database(f"sqlite:///{tmp}/b.db")
        with without.engine.begin() as conn:
            conn.execute(text("DROP TRIGGER usage_daily_add"))
        a: list[float] = []
        b: list[float] = []
        for r in range(rounds):
            a.append(asyncio.run(write(with_trigger, f"r{r}")))
            b.append(asyncio.run(write(without, f"r{r}")))
        print(f"Ledger.record on SQLite, {n} rows x {rounds} rounds (median per row): "
              f"with the rollup trigger {statistics.median(a) * 1e6:.1f} µs, "
              f"without {statistics.median(b) * 1e6:.1f} µs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--postgres", help="also run on this PostgreSQL (a temporary schema)")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--trigger-cost", action="store_true")
    args = parser.parse_args()
    if args.trigger_cost:
        trigger_cost(args.rounds)
        return
    if not args.skip_sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            db = open_database(f"sqlite:///{tmp}/usage.db")
            t0 = time.perf_counter()
            load_sqlite(db, args.rows)
            report("SQLite", db, args.rows, time.perf_counter() - t0, args.rounds)
            db.dispose()
    if args.postgres:
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        admin = create_engine(args.postgres)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            db = open_database(f"{args.postgres}?options=-csearch_path%3D{schema}")
            t0 = time.perf_counter()
            load_postgres(db, args.rows)
            report("PostgreSQL", db, args.rows, time.perf_counter() - t0, args.rounds)
            db.dispose()
        finally:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


if __name__ == "__main__":
    main()
