"""A shadow rule's evaluation runs: one per rule and UTC day (suite ``shadow:NAME``), in
the same ``runs`` / ``run_items`` / ``results`` tables as ``crossroads eval``.

Unlike a suite run, whose items are known up front, a shadow run grows: each sampled
request adds one item (its id is the request id, so the ledger row and the audit record
can be found) and one result per model: the production answer (scored against itself,
the reference) and each candidate's. A gateway that restarts on the same day takes the
day's run up again (resumable); the previous day's run is marked ``complete`` when the
next one starts. Every method blocks (the dispatcher calls them through
``asyncio.to_thread``).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, func, insert, select, update

from ..config.shadow import ShadowRule
from ..evals.store import ResultRow
from ..store import Database, results, run_items, runs, usage_ledger

__all__ = ["DayRun", "PendingItem", "ShadowRuns", "rule_hash", "shadow_spent"]


def rule_hash(rule: ShadowRule) -> str:
    """What makes two days' runs comparable: the candidates and the scorers."""
    blob = json.dumps(
        {"candidates": rule.candidates, "scorers": rule.scorers}, sort_keys=True, default=str
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class PendingItem:
    """One sampled request waiting to be written: its ``run_items`` row, its
    ``results`` rows, and the run's models when this request added one."""

    run_id: str
    item: dict[str, Any]
    rows: Sequence[ResultRow]
    models: list[str] | None = None


@dataclass
class DayRun:
    """The run one rule writes to today, and the position of its next item."""

    run_id: str
    day: date
    models: list[str]
    next_position: int


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0), tzinfo=UTC)
    return start, start + timedelta(days=1)


def shadow_spent(db: Database, rule: str) -> float:
    """What the candidates of rule ``rule`` have cost so far (its ``shadow:NAME`` ledger
    rows): a rule's budget holds across restarts."""
    with db.engine.connect() as conn:
        value = conn.execute(
            select(func.coalesce(func.sum(usage_ledger.c.cost_usd), 0.0)).where(
                usage_ledger.c.key_name == f"shadow:{rule}"
            )
        ).scalar()
    return float(value or 0.0)


class ShadowRuns:
    """The day runs of the rules of one gateway process."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def open_day(self, rule: ShadowRule, day: date, manifest: dict[str, Any]) -> DayRun:
        """The run of ``rule`` for ``day``: the one already stored (taken up again, marked
        ``running``), else a new one; earlier runs of the rule still ``running`` are
        marked ``complete``."""
        start, end = _day_bounds(day)
        suite = rule.suite
        with self.db.engine.begin() as conn:
            conn.execute(
                update(runs)
                .where(and_(runs.c.suite == suite, runs.c.status == "running"))
                .where(runs.c.created_at < start)
                .values(status="complete", finished_at=datetime.now(UTC))
            )
            row = (
                conn.execute(
                    select(runs)
                    .where(runs.c.suite == suite)
                    .where(runs.c.suite_hash == rule_hash(rule))
                    .where(runs.c.created_at >= start, runs.c.created_at < end)
                    .order_by(runs.c.created_at.desc())
                    .limit(1)
                )
                .mappings()
                .first()
            )
            if row is not None:
                position = conn.execute(
                    select(func.coalesce(func.max(run_items.c.position), -1)).where(
                        run_items.c.run_id == row["id"]
                    )
                ).scalar()
                conn.execute(
                    update(runs)
                    .where(runs.c.id == row["id"])
                    .values(status="running", finished_at=None)
                )
                return DayRun(row["id"], day, list(row["models"]), int(position or -1) + 1)
            run_id = uuid.uuid4().hex[:12]
            models = list(rule.candidates)
            now = datetime.now(UTC)
            conn.execute(
                insert(runs).values(
                    id=run_id,
                    suite=suite,
                    suite_hash=rule_hash(rule),
                    suite_source=f"shadow rule {rule.name!r} (crossroads.yaml)",
                    created_at=now,
                    status="running",
                    models=models,
                    repeat=1,
                    options={"shadow": rule.model_dump(mode="json"), "day": day.isoformat()},
                    manifest=manifest,
                )
            )
        return DayRun(run_id, day, models, 0)

    def write(self, batch: Sequence[PendingItem]) -> None:
        """Sampled requests (their items, results and any new production model of their
        run) in one transaction."""
        if not batch:
            return
        with self.db.engine.begin() as conn:
            for entry in batch:
                if entry.models is not None:
                    conn.execute(
                        update(runs).where(runs.c.id == entry.run_id).values(models=entry.models)
                    )
            conn.execute(insert(run_items), [e.item for e in batch])
            rows = [row for e in batch for row in e.rows]
            if rows:
                conn.execute(insert(results), rows)

    def close(self, run: DayRun) -> None:
        """The gateway stops: what the run holds is complete (a restart the same day
        takes it up again)."""
        with self.db.engine.begin() as conn:
            conn.execute(
                update(runs)
                .where(runs.c.id == run.run_id)
                .values(status="complete", finished_at=datetime.now(UTC))
            )
