"""The Evaluations pages' data: the runs list, one run's figures and items (filtered and
paged on the server), and two runs of the same suite compared.

Every figure comes from :mod:`crossroads.evals`: a run's per-model figures are the summary
:func:`crossroads.evals.results.load_run` computes (what ``crossroads show`` prints); two
runs are compared model by model with :func:`crossroads.evals.stats.summarize`, the same
function that compares two models of one run (paired bootstrap CI of the mean per-item
difference, exact McNemar on pass/fail items, the same significance rule), applied to the
model's rows from run B and from run A as if they were two models (``model@B`` against
``model@A``: the difference is B − A).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from ..evals.results import list_runs, load_run
from ..evals.stats import summarize
from ..evals.store import RunStore
from ..store import Database

__all__ = [
    "PAGE_SIZE",
    "ItemFilter",
    "ItemPage",
    "compare_runs",
    "item_page",
    "run_overview",
    "runs_list",
]

#: Items per page on a run page.
PAGE_SIZE = 20


def runs_list(db: Database, limit: int = 100) -> list[dict[str, Any]]:
    """What ``crossroads runs`` lists: newest first, with the number of results."""
    return list_runs(db, limit)


def run_overview(db: Database, run_id: str) -> dict[str, Any]:
    """The run (as ``load_run`` gives it, results left out) and one row of figures per
    model: score with its CI, pass rate, latency p50 / p95, cost."""
    data = load_run(db, run_id)
    summary = data["summary"]
    figures = []
    for model in data["run"]["models"]:
        m = summary["models"].get(model, {})
        figures.append(
            {
                "model": model,
                "n_items": m.get("n_items"),
                "mean": m.get("mean"),
                "ci_low": m.get("ci_low"),
                "ci_high": m.get("ci_high"),
                "pass_rate": m.get("pass_rate"),
                "latency_p50": (m.get("latency_p50") or {}).get("estimate"),
                "latency_p95": (m.get("latency_p95") or {}).get("estimate"),
                "cost_usd_total": m.get("cost_usd_total"),
                "errors": m.get("errors"),
            }
        )
    tags = sorted({t for item in data["items"] for t in item["tags"]})
    return {
        "run": data["run"],
        "figures": figures,
        "pairs": summary["pairs"],
        "tags": tags,
        "n_items": len(data["items"]),
        "n_results": len(data["results"]),
    }


@dataclass(frozen=True)
class ItemFilter:
    """What the run page's filter form asks for."""

    failures: bool = False
    disagreements: bool = False
    tag: str = ""
    q: str = ""
    page: int = 1

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> ItemFilter:
        try:
            page = max(1, int(query.get("page") or 1))
        except ValueError:
            page = 1
        return cls(
            failures=query.get("failures") in ("1", "on", "true"),
            disagreements=query.get("disagreements") in ("1", "on", "true"),
            tag=(query.get("tag") or "")[:200],
            q=(query.get("q") or "")[:500],
            page=page,
        )

    def query(self, page: int | None = None) -> dict[str, str]:
        """The filter as query parameters (for the pagination links)."""
        out = {"page": str(page or self.page)}
        if self.failures:
            out["failures"] = "1"
        if self.disagreements:
            out["disagreements"] = "1"
        if self.tag:
            out["tag"] = self.tag
        if self.q:
            out["q"] = self.q
        return out


@dataclass
class ItemPage:
    """One page of items: each with its answers per model (every repeat)."""

    models: list[str]
    rows: list[dict[str, Any]]
    total: int
    page: int
    pages: int
    filter: ItemFilter
    all_items: int = 0
    tags: list[str] = field(default_factory=list)


def _failed(result: Mapping[str, Any]) -> bool:
    return bool(result.get("error")) or result.get("passed") is False


def _disagree(answers: Mapping[str, Sequence[Mapping[str, Any]]]) -> bool:
    """The models do not all agree: some passed where others failed (pass/fail items),
    or their scores differ."""
    outcomes = {(not _failed(r)) for rs in answers.values() for r in rs}
    if len(outcomes) > 1:
        return True
    scores = {round(float(r.get("score") or 0.0), 9) for rs in answers.values() for r in rs}
    return len(scores) > 1


def item_page(db: Database, run_id: str, filt: ItemFilter) -> ItemPage:
    """The items of ``run_id`` that pass ``filt``, one page of them, with every model's
    answers (the text search looks in the prompt, the expected answer and the answers)."""
    stored = RunStore(db).read_run(run_id)
    models = list(stored.run["models"])
    by_item: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for r in stored.results:
        by_item.setdefault(r["item_id"], {}).setdefault(r["model"], []).append(dict(r))
    needle = filt.q.casefold()
    kept = []
    for item in stored.items:
        answers = by_item.get(item["item_id"], {})
        for rs in answers.values():
            rs.sort(key=lambda r: r["repeat"])
        if filt.tag and filt.tag not in item["tags"]:
            continue
        if filt.failures and not any(_failed(r) for rs in answers.values() for r in rs):
            continue
        if filt.disagreements and not (len(answers) > 1 and _disagree(answers)):
            continue
        if needle:
            haystack = [item["prompt"], str(item["expected"] or "")]
            haystack += [r["output"] for rs in answers.values() for r in rs]
            if not any(needle in text.casefold() for text in haystack):
                continue
        kept.append(
            {
                "id": item["item_id"],
                "tags": list(item["tags"]),
                "prompt": item["prompt"],
                "expected": item["expected"],
                "answers": answers,
            }
        )
    pages = max(1, math.ceil(len(kept) / PAGE_SIZE))
    page = min(filt.page, pages)
    start = (page - 1) * PAGE_SIZE
    tags = sorted({t for item in stored.items for t in item["tags"]})
    return ItemPage(
        models,
        kept[start : start + PAGE_SIZE],
        len(kept),
        page,
        pages,
        filt,
        all_items=len(stored.items),
        tags=tags,
    )


def _relabel(
    rows: Sequence[Mapping[str, Any]], side: str, tags: Mapping[str, list[str]]
) -> list[dict[str, Any]]:
    return [
        {**r, "model": f"{r['model']}@{side}", "tags": tags.get(r["item_id"], [])} for r in rows
    ]


def _item_scores(rows: Sequence[Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """Per (model, item): mean score over repeats and whether every repeat passed."""
    grouped: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for r in rows:
        grouped.setdefault((r["model"], r["item_id"]), []).append(r)
    out = {}
    for key, rs in grouped.items():
        scores = [0.0 if r.get("error") else float(r.get("score") or 0.0) for r in rs]
        binary = [r for r in rs if r.get("passed") is not None or r.get("error")]
        out[key] = {
            "score": math.fsum(scores) / len(scores),
            "passed": (all(not _failed(r) for r in rs) if binary else None),
            "output": rs[0].get("output", ""),
        }
    return out


def compare_runs(
    db: Database, run_a: str, run_b: str, *, confidence: float = 0.95
) -> dict[str, Any]:
    """Run B against run A, model by model (the models both ran) and item by item."""
    if run_a == run_b:
        raise ConfigError("Pick two different runs to compare.")
    store = RunStore(db)
    a, b = store.read_run(run_a), store.read_run(run_b)
    if a.run["suite"] != b.run["suite"]:
        raise ConfigError(
            f"Run {run_a} ran suite {a.run['suite']!r} and run {run_b} suite "
            f"{b.run['suite']!r}: compare two runs of the same suite."
        )
    models = [m for m in a.run["models"] if m in set(b.run["models"])]
    if not models:
        raise ConfigError(f"Runs {run_a} and {run_b} have no model in common.")
    tags = {i["item_id"]: list(i["tags"]) for i in [*a.items, *b.items]}
    rows = _relabel([dict(r) for r in a.results], "A", tags)
    rows += _relabel([dict(r) for r in b.results], "B", tags)
    per_model = []
    for model in models:
        # B first: the pair is B - A (positive: B is better); McNemar's ``b`` counts the
        # items B passed and A failed (fixed), ``c`` the reverse (broke).
        names = [f"{model}@B", f"{model}@A"]
        summary = summarize(rows, names, confidence=confidence)
        per_model.append(
            {
                "model": model,
                "a": summary["models"][names[1]],
                "b": summary["models"][names[0]],
                "pair": summary["pairs"][0],
            }
        )
    sa, sb = _item_scores(a.results), _item_scores(b.results)
    prompts = {i["item_id"]: i["prompt"] for i in [*b.items, *a.items]}
    changes = []
    for item_id in prompts:
        for model in models:
            x, y = sa.get((model, item_id)), sb.get((model, item_id))
            if x is None or y is None:
                continue
            if x["passed"] is False and y["passed"] is True:
                what = "fixed"
            elif x["passed"] is True and y["passed"] is False:
                what = "broke"
            elif y["score"] > x["score"] + 1e-9:
                what = "better"
            elif y["score"] < x["score"] - 1e-9:
                what = "worse"
            else:
                continue
            changes.append(
                {
                    "item": item_id,
                    "model": model,
                    "change": what,
                    "prompt": prompts[item_id],
                    "score_a": x["score"],
                    "score_b": y["score"],
                    "output_a": x["output"],
                    "output_b": y["output"],
                }
            )
    return {
        "a": dict(a.run),
        "b": dict(b.run),
        "same_version": a.run["suite_hash"] == b.run["suite_hash"],
        "models": per_model,
        "changes": changes,
        "confidence": confidence,
    }
