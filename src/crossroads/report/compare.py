"""``crossroads compare`` end to end: measure what can be measured, then decide.

This is the one place that joins the two work packages: :mod:`crossroads.evals` runs the
suite and hands back :class:`~crossroads.evidence.RunEvidence`, and
:func:`crossroads.decide.compare.build_report` turns it into the decision. (Moved here
from ``crossroads.decide.compare``: decide and evals sit on the same layer and must not
import each other.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from ..catalog import CatalogEntry
from ..client import AsyncClient
from ..config import Config
from ..decide.advisor import Advice, Profile
from ..decide.compare import build_report, catalog_entry, why_not_measured
from ..decide.decision import DecisionReport
from ..errors import ConfigError
from ..evals.results import load_evidence, load_pooled_evidence
from ..evals.runner import ProgressEvent, Runner, RunOptions
from ..evals.suite import Suite
from ..store import Database

__all__ = ["CompareResult", "compare_from_evidence", "run_compare"]


@dataclass
class CompareResult:
    report: DecisionReport
    advice: Advice
    run_id: str | None


async def _measure(
    client: AsyncClient,
    db: Database,
    suite: Suite,
    models: list[str],
    progress: Callable[[ProgressEvent], None] | None,
    seed: int | None,
) -> str:
    options = RunOptions(models=tuple(models), concurrency=8, per_model_concurrency=4, seed=seed)
    return await Runner(client, db, suite, options, progress=progress).run()


def run_compare(
    config: Config,
    db: Database,
    suite: Suite,
    names: list[str],
    profile: Profile,
    *,
    progress: Callable[[ProgressEvent], None] | None = None,
    seed: int | None = None,
) -> CompareResult:
    """Measure what can be measured, then build the report."""
    client = AsyncClient(config)
    entries: dict[str, CatalogEntry] = {}
    notes: dict[str, str] = {}
    for name in names:
        entry = catalog_entry(name, client)
        if entry is None:
            raise ConfigError(
                f"{name!r} is not in the catalog, so it cannot be costed or scored; give a "
                "catalog id (`crossroads models`) or a configured model whose vendor model "
                "the catalog knows."
            )
        entries[name] = entry
        why = why_not_measured(name, client)
        if why is not None:
            notes[name] = why
    measurable = [n for n in names if n not in notes]

    async def measure() -> str | None:
        try:
            if not measurable:
                return None
            return await _measure(client, db, suite, measurable, progress, seed)
        finally:
            await client.aclose()

    run_id = asyncio.run(measure())
    report, advice = build_report(
        names=names,
        entries=entries,
        notes=notes,
        run=load_evidence(db, run_id) if run_id else None,
        profile=profile,
        suite_name=suite.name,
    )
    return CompareResult(report, advice, run_id)


def _entry(name: str, client: AsyncClient, config: Config) -> CatalogEntry | None:
    """The catalog facts of ``name``; for a route (e.g. the production name clients ask
    for), those of its first deployment."""
    entry = catalog_entry(name, client)
    route = config.route(name)
    if entry is None and route is not None:
        entry = catalog_entry(route.deployments[0].model, client)
    return entry


def compare_from_evidence(
    config: Config,
    db: Database,
    run_ids: list[str],
    profile: Profile,
    names: list[str] | None = None,
) -> CompareResult:
    """The decision from stored runs (shadow or replay runs of production traffic, or any
    eval run) instead of a new measurement: their per-model scores and intervals are the
    Performance evidence, and the report records the run ids."""
    evidence = load_pooled_evidence(db, run_ids)
    chosen = names or list(evidence.summary.models)
    client = AsyncClient(config)
    try:
        entries: dict[str, CatalogEntry] = {}
        for name in chosen:
            entry = _entry(name, client, config)
            if entry is None:
                raise ConfigError(
                    f"{name!r} (in run {evidence.run_id}) is not in the catalog, so it cannot "
                    "be costed or scored; leave it out with --models, or configure it as a "
                    "model whose vendor model the catalog knows."
                )
            entries[name] = entry
    finally:
        asyncio.run(client.aclose())
    notes = {
        n: "not in the evidence runs: catalog facts only"
        for n in chosen
        if n not in evidence.summary.models
    }
    report, advice = build_report(
        names=chosen,
        entries=entries,
        notes=notes,
        run=evidence,
        profile=profile,
        suite_name=evidence.suite,
    )
    return CompareResult(report, advice, evidence.run_id)
