"""Evaluation runs in the database: the one place that holds their SQL and the response
cache.

The runner creates (or resumes) a run, looks temperature-0 answers up in the cache and
adds new ones, writes result rows in batches and finishes the run; ``crossroads runs``,
``crossroads show`` and everything built on :func:`~crossroads.evals.results.load_run`
read runs back. Every method blocks (the runner calls them through
``asyncio.to_thread``) and opens its own connection, so one ``RunStore`` serves any
thread.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from sqlalchemy import RowMapping, desc, func, insert, select, update

from ..backends.base import Deployment
from ..errors import ConfigError
from ..store import Database, response_cache, results, run_items, runs
from .scoring import Answer

if TYPE_CHECKING:
    from .suite import Suite

__all__ = ["ResultRow", "ResumedRun", "RunStatus", "RunStore", "StoredRun", "response_key"]

#: ``runs.status``: ``running`` while a runner works on it, then how it ended.
RunStatus = Literal["running", "complete", "interrupted"]

#: Rows per INSERT when a run's items are written.
_ITEM_BATCH = 1000


class ResultRow(TypedDict):
    """One answer to one item by one model (a row of ``results``)."""

    run_id: str
    item_id: str
    model: str
    repeat: int
    output: str
    score: float
    passed: bool | None
    format_error: bool
    scores: dict[str, dict[str, Any]]
    latency_s: float | None
    ttft_s: float | None
    tokens_per_s: float | None
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None
    cached: bool
    error: str | None
    finish_reason: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ResumedRun:
    """A stored run taken up again: its models and repeats, and what is already done."""

    models: tuple[str, ...]
    repeat: int
    #: ``(item_id, model, repeat)`` of every result already written.
    done: set[tuple[str, str, int]]


@dataclass(frozen=True, slots=True)
class StoredRun:
    """One run as stored: its ``runs`` row, its items in suite order, its results in the
    order they were written."""

    run: RowMapping
    items: Sequence[RowMapping]
    results: Sequence[RowMapping]


def _now() -> datetime:
    return datetime.now(UTC)


def response_key(
    deployment: Deployment, messages: list[dict[str, str]], options: Mapping[str, Any]
) -> str:
    """The response-cache key of one call: what the model is, where, what it was asked
    and with which options (the repeat number left out, so repeats share an answer)."""
    identity = {
        "backend": deployment.backend,
        "model": deployment.model,
        "base_url": deployment.base_url,
    }
    blob = json.dumps(
        {"m": identity, "msg": messages, "o": {**options, "_repeat": 0}},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


class RunStore:
    """The ``runs``, ``run_items``, ``results`` and ``response_cache`` tables of ``db``."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- writing a run -------------------------------------------------------------------
    def create_run(
        self,
        suite: Suite,
        models: Sequence[str],
        repeat: int,
        options: Mapping[str, Any],
        manifest: Mapping[str, Any],
    ) -> str:
        """A new run (status ``running``) with every item of ``suite``; returns its id."""
        run_id = uuid.uuid4().hex[:12]
        with self.db.engine.begin() as conn:
            conn.execute(
                insert(runs).values(
                    id=run_id,
                    suite=suite.name,
                    suite_hash=suite.hash,
                    suite_source=suite.source,
                    created_at=_now(),
                    status="running",
                    models=list(models),
                    repeat=repeat,
                    options=dict(options),
                    manifest=dict(manifest),
                )
            )
            rows = [
                {
                    "run_id": run_id,
                    "item_id": item.id,
                    "position": position,
                    "tags": list(item.tags),
                    "prompt": suite.render(item)[-1]["content"],
                    "expected": item.expected,
                }
                for position, item in enumerate(suite.items)
            ]
            for start in range(0, len(rows), _ITEM_BATCH):
                conn.execute(insert(run_items), rows[start : start + _ITEM_BATCH])
        return run_id

    def resume_run(self, run_id: str, suite: Suite) -> ResumedRun:
        """Run ``run_id`` marked ``running`` again, with what it has done so far; a
        :class:`ConfigError` if there is no such run or it was made from another version
        of ``suite``."""
        with self.db.engine.connect() as conn:
            row = conn.execute(select(runs).where(runs.c.id == run_id)).mappings().first()
            if row is None:
                raise ConfigError(f"No run {run_id!r} to resume (`crossroads runs` lists them).")
            if row["suite_hash"] != suite.hash:
                raise ConfigError(
                    f"Run {run_id} was made with a different version of suite "
                    f"{row['suite']!r} (hash {row['suite_hash']}, now {suite.hash}); "
                    "start a new run instead."
                )
            done = conn.execute(
                select(results.c.item_id, results.c.model, results.c.repeat).where(
                    results.c.run_id == run_id
                )
            ).all()
        with self.db.engine.begin() as conn:
            conn.execute(update(runs).where(runs.c.id == run_id).values(status="running"))
        return ResumedRun(
            models=tuple(row["models"]),
            repeat=row["repeat"],
            done={(r.item_id, r.model, r.repeat) for r in done},
        )

    def write_results(self, rows: Sequence[ResultRow]) -> None:
        """Add ``rows`` in one transaction (one INSERT, many parameter sets)."""
        with self.db.engine.begin() as conn:
            conn.execute(insert(results), rows)

    def finish_run(self, run_id: str, status: RunStatus) -> None:
        with self.db.engine.begin() as conn:
            conn.execute(
                update(runs).where(runs.c.id == run_id).values(status=status, finished_at=_now())
            )

    # -- the response cache ------------------------------------------------------------
    def cached_answer(self, key: str) -> Answer | None:
        """The answer stored under ``key`` (free: ``cost_usd`` 0, no timings), if any."""
        with self.db.engine.connect() as conn:
            row = conn.execute(select(response_cache).where(response_cache.c.key == key)).first()
        if row is None:
            return None
        return Answer(
            text=row.output,
            model=row.model,
            prompt_tokens=row.prompt_tokens,
            completion_tokens=row.completion_tokens,
            cost_usd=0.0,
            finish_reason=row.finish_reason,
        )

    def cache_answer(self, key: str, answer: Answer) -> None:
        """Keep ``answer`` under ``key`` unless an answer is already there."""
        with self.db.engine.begin() as conn:
            existing = conn.execute(
                select(response_cache.c.key).where(response_cache.c.key == key)
            ).first()
            if existing is None:
                conn.execute(
                    insert(response_cache).values(
                        key=key,
                        model=answer.model,
                        output=answer.text,
                        prompt_tokens=answer.prompt_tokens,
                        completion_tokens=answer.completion_tokens,
                        finish_reason=answer.finish_reason,
                        created_at=_now(),
                    )
                )

    # -- reading runs --------------------------------------------------------------------
    def read_run(self, run_id: str) -> StoredRun:
        """Run ``run_id`` as stored; a :class:`ConfigError` naming recent runs if there is
        no such run."""
        with self.db.engine.connect() as conn:
            run = conn.execute(select(runs).where(runs.c.id == run_id)).mappings().first()
            if run is None:
                known = conn.execute(select(runs.c.id).order_by(desc(runs.c.created_at)).limit(5))
                hint = ", ".join(r.id for r in known) or "none yet"
                raise ConfigError(f"No run {run_id!r}. Recent runs: {hint} (`crossroads runs`).")
            items = (
                conn.execute(
                    select(run_items)
                    .where(run_items.c.run_id == run_id)
                    .order_by(run_items.c.position)
                )
                .mappings()
                .all()
            )
            rows = (
                conn.execute(
                    select(results).where(results.c.run_id == run_id).order_by(results.c.id)
                )
                .mappings()
                .all()
            )
        return StoredRun(run=run, items=items, results=rows)

    def list_runs(self, limit: int = 50) -> list[dict[str, Any]]:
        """The latest ``limit`` runs, newest first: each ``runs`` row, ``n``, the results
        it has, and ``items``, its items."""
        counts = (
            select(results.c.run_id, func.count().label("n")).group_by(results.c.run_id).subquery()
        )
        item_counts = (
            select(run_items.c.run_id, func.count().label("n_items"))
            .group_by(run_items.c.run_id)
            .subquery()
        )
        query = (
            select(
                runs,
                func.coalesce(counts.c.n, 0).label("n"),
                func.coalesce(item_counts.c.n_items, 0).label("items"),
            )
            .outerjoin(counts, counts.c.run_id == runs.c.id)
            .outerjoin(item_counts, item_counts.c.run_id == runs.c.id)
            .order_by(desc(runs.c.created_at))
            .limit(limit)
        )
        with self.db.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]
