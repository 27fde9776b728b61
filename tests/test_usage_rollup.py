"""The daily usage rollups equal a scan of the raw ledger (SQLite and PostgreSQL):
exact counts, tokens and cost; latency p50/p95 within one histogram bucket. Kept by a
trigger in the ledger row's transaction, backfilled by the migration."""

from __future__ import annotations

import datetime as dt
import importlib
import random
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import func, select

from crossroads.gateway.ledger import Ledger, UsageRecord
from crossroads.gateway.usage_rollup import (
    GROUPS,
    bucket_of,
    percentile_from_buckets,
    raw_usage,
    rollup_usage,
)
from crossroads.store import Database, open_database
from crossroads.store.tables import USAGE_LATENCY_BOUNDS, usage_daily

from .test_gateway_keys import isolated_postgres

EXACT = ("requests", "errors", "prompt_tokens", "completion_tokens", "cached_tokens",
         "reasoning_tokens", "unpriced", "label")


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        with open_database(f"sqlite:///{tmp_path / 'usage.db'}") as database:
            yield database
        return
    for url in isolated_postgres(request.getfixturevalue("postgres_url")):
        with open_database(url) as database:
            yield database


def _records(n: int, seed: int = 7) -> list[UsageRecord]:
    rnd = random.Random(seed)
    start = dt.datetime(2026, 3, 1, 22, 30, tzinfo=dt.UTC)
    keys = [(None, None), ("k-alpha", "alpha"), ("k-beta", "<b>beta</b>")]
    out = []
    for i in range(n):
        key_id, key_name = rnd.choice(keys)
        # Some rows in a non-UTC zone late at night: the day must be the UTC day.
        created = start + dt.timedelta(hours=rnd.uniform(0, 24 * 5))
        if i % 5 == 0:
            created = created.astimezone(dt.timezone(dt.timedelta(hours=-7)))
        out.append(UsageRecord(
            request_id=f"req-{i}", created_at=created, key_id=key_id, key_name=key_name,
            model=rnd.choice(["gpt-4o", "local/smollm2", "claude"]),
            deployment=rnd.choice([None, "openai-east", "vllm-1"]),
            endpoint="/v1/chat/completions", status=rnd.choice([200] * 8 + [429, 502]),
            prompt_tokens=rnd.randint(0, 3000), completion_tokens=rnd.randint(0, 900),
            cached_tokens=rnd.randint(0, 50), reasoning_tokens=rnd.randint(0, 20),
            cost_usd=None if i % 11 == 0 else rnd.uniform(0, 0.05),
            latency_s=rnd.choice([rnd.uniform(0, 0.3), rnd.uniform(0.3, 4), rnd.uniform(4, 60)]),
        ))
    return out


async def _write(db: Database, records: list[UsageRecord]) -> None:
    ledger = Ledger(db)
    for rec in records:
        await ledger.record(rec)
    await ledger.aclose()


def _assert_same(rollup: list[dict[str, Any]], raw: list[dict[str, Any]]) -> None:
    assert [g["group"] for g in rollup] == [g["group"] for g in raw]
    for a, b in zip(rollup, raw, strict=True):
        assert {k: a[k] for k in EXACT} == {k: b[k] for k in EXACT}
        assert a["cost_usd"] == pytest.approx(b["cost_usd"], rel=1e-9, abs=1e-12)
        assert a["latency_sum"] == pytest.approx(b["latency_sum"], rel=1e-9)
        for q in ("p50_latency_s", "p95_latency_s"):
            assert abs(bucket_of(a[q]) - bucket_of(b[q])) <= 1, (a["group"], q, a[q], b[q])


async def test_rollup_equals_raw_scan(db: Database) -> None:
    records = _records(600)
    await _write(db, records)
    await _write(db, records[:40])  # the same request ids again: counted once
    since, until = dt.date(2026, 3, 2), dt.date(2026, 3, 4)
    for by in GROUPS:
        for kwargs in ({}, {"since": since, "until": until}, {"key_id": "k-beta"},
                       {"key_id": ""}, {"key_id": "k-alpha", "since": since}):
            rollup = rollup_usage(db, by, **kwargs)
            raw = raw_usage(db, by, **kwargs)
            assert rollup, (by, kwargs)
            _assert_same(rollup, raw)
    total = sum(g["requests"] for g in rollup_usage(db, "day"))
    assert total == 600
    days = [g["group"] for g in rollup_usage(db, "day", since=since, until=until)]
    assert days == ["2026-03-02", "2026-03-03", "2026-03-04"]
    labels = {g["label"] for g in rollup_usage(db, "key")}
    assert labels == {"(master key)", "alpha", "<b>beta</b>"}
    with pytest.raises(ValueError, match="group by one of key, model, route, day"):
        rollup_usage(db, "status")  # type: ignore[arg-type]


async def test_migration_backfills_existing_rows(db: Database) -> None:
    records = _records(200, seed=3)
    await _write(db, records)
    expected = {by: rollup_usage(db, by) for by in GROUPS}
    cfg = AlembicConfig()
    with resources.as_file(resources.files("crossroads.store") / "migrations") as folder:
        cfg.set_main_option("script_location", str(folder))
        with db.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0004_responses")
        with db.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    for by in GROUPS:
        again = rollup_usage(db, by)
        _assert_same(again, expected[by])
        assert [g["p95_latency_s"] for g in again] == pytest.approx(
            [g["p95_latency_s"] for g in expected[by]]
        )
        _assert_same(rollup_usage(db, by), raw_usage(db, by))
    with db.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(usage_daily)).scalar_one() > 10


def test_bounds_match_the_migration() -> None:
    migration = importlib.import_module(
        "crossroads.store.migrations.versions.0005_usage_daily"
    )
    assert tuple(migration.BOUNDS) == USAGE_LATENCY_BOUNDS
    assert len(migration.BUCKETS) == len(USAGE_LATENCY_BOUNDS) + 1


def test_percentile_from_buckets() -> None:
    counts = [0] * (len(USAGE_LATENCY_BOUNDS) + 1)
    assert percentile_from_buckets(counts, 0.5, 0.0) is None
    counts[bucket_of(0.6)] = 10  # all in [0.5, 0.75)
    assert 0.5 <= percentile_from_buckets(counts, 0.5, 0.7)  <= 0.7  # type: ignore[operator]
    counts = [0] * len(counts)
    counts[-1] = 4  # the open bucket ends at the maximum seen
    assert percentile_from_buckets(counts, 1.0, 42.0) == 42.0
