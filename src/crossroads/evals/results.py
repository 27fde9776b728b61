"""A stored run as one JSON-ready dict, the typed evidence the decision reads, and the files
written for it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..evidence import RunEvidence, RunSummary
from ..store import Database
from .store import RunStore

__all__ = [
    "list_runs",
    "load_evidence",
    "load_pooled_evidence",
    "load_run",
    "measured_input_share",
    "write_outputs",
]

_RESULT_FIELDS = (
    "item_id",
    "model",
    "repeat",
    "output",
    "score",
    "passed",
    "format_error",
    "scores",
    "latency_s",
    "ttft_s",
    "tokens_per_s",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "cached",
    "error",
)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def load_run(db: Database, run_id: str) -> dict[str, Any]:
    """Run, manifest, items, results and the statistical summary of one run."""
    from .stats import summarize

    stored = RunStore(db).read_run(run_id)
    run, items, rows = stored.run, stored.items, stored.results
    tags = {i["item_id"]: list(i["tags"]) for i in items}
    result_rows = [{k: r[k] for k in _RESULT_FIELDS} for r in rows]
    summary = summarize(
        [{**r, "tags": tags.get(r["item_id"], [])} for r in result_rows], list(run["models"])
    )
    expected_total = len(items) * len(run["models"]) * run["repeat"]
    return {
        "run": {
            "id": run["id"],
            "suite": run["suite"],
            "suite_hash": run["suite_hash"],
            "created": _iso(run["created_at"]),
            "finished": _iso(run["finished_at"]),
            "models": list(run["models"]),
            "repeat": run["repeat"],
            "status": "complete" if len(result_rows) >= expected_total else "partial",
            "options": run["options"],
        },
        "manifest": run["manifest"],
        "items": [
            {
                "id": i["item_id"],
                "tags": list(i["tags"]),
                "prompt": i["prompt"],
                "expected": i["expected"],
            }
            for i in items
        ],
        "results": result_rows,
        "summary": summary,
    }


def measured_input_share(results: list[dict[str, Any]], default: float = 0.75) -> float:
    """The share of input tokens in what the run actually sent and received."""
    prompt = sum(r.get("prompt_tokens") or 0 for r in results if not r.get("cached"))
    completion = sum(r.get("completion_tokens") or 0 for r in results if not r.get("cached"))
    return prompt / (prompt + completion) if prompt + completion > 0 else default


def load_evidence(db: Database, run_id: str) -> RunEvidence:
    """One run as the decision reads it (see :mod:`crossroads.evidence`)."""
    data = load_run(db, run_id)
    return RunEvidence(
        run_id=data["run"]["id"],
        suite=data["run"]["suite"],
        summary=RunSummary.model_validate(data["summary"]),
        input_share=measured_input_share(data["results"]),
        manifest=data["manifest"] or {},
    )


def _production_dates(db: Database, request_ids: list[str]) -> list[Any]:
    """When the requests among ``request_ids`` reached the gateway (its ledger rows)."""
    from sqlalchemy import select

    from ..store import usage_ledger

    found: list[Any] = []
    with db.engine.connect() as conn:
        for start in range(0, len(request_ids), 500):
            chunk = request_ids[start : start + 500]
            found += conn.execute(
                select(usage_ledger.c.created_at).where(usage_ledger.c.request_id.in_(chunk))
            ).scalars()
    return found


def load_pooled_evidence(db: Database, run_ids: list[str]) -> RunEvidence:
    """Several runs as one piece of evidence (``crossroads compare --evidence A,B``): their
    results pooled (item ids are unique: shadow and replay items are request ids) and
    summarized again, with how many of the items are production requests and when they
    were served."""
    from .stats import summarize

    if not run_ids:
        raise ValueError("no run ids")
    runs = [load_run(db, run_id) for run_id in run_ids]
    models: list[str] = []
    rows: list[dict[str, Any]] = []
    item_ids: list[str] = []
    for data in runs:
        tags = {i["id"]: i["tags"] for i in data["items"]}
        models += [m for m in data["run"]["models"] if m not in models]
        rows += [{**r, "tags": tags.get(r["item_id"], [])} for r in data["results"]]
        item_ids += [i["id"] for i in data["items"]]
    summary = summarize(rows, models) if len(runs) > 1 else runs[0]["summary"]
    dates = sorted(_production_dates(db, list(dict.fromkeys(item_ids))))
    suites = list(dict.fromkeys(d["run"]["suite"] for d in runs))
    return RunEvidence(
        run_id=",".join(run_ids),
        suite=", ".join(suites),
        summary=RunSummary.model_validate(summary),
        input_share=measured_input_share([r for d in runs for r in d["results"]]),
        manifest=runs[0]["manifest"] or {},
        run_ids=list(run_ids),
        production_requests=len(dates),
        production_from=_iso(dates[0]) if dates else None,
        production_to=_iso(dates[-1]) if dates else None,
    )


def write_outputs(data: dict[str, Any], out: Path) -> tuple[Path, Path]:
    """``results.json`` and the self-contained ``results.html`` in ``out``."""
    from .html import render_results_html

    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "results.json"
    html_path = out / "results.html"
    json_path.write_text(
        json.dumps(data, indent=1, ensure_ascii=False, default=str), encoding="utf-8"
    )
    html_path.write_text(render_results_html(data), encoding="utf-8")
    return json_path, html_path


def list_runs(db: Database, limit: int = 50) -> list[dict[str, Any]]:
    """The latest ``limit`` runs, newest first, each with ``n``, its number of results."""
    return RunStore(db).list_runs(limit)
