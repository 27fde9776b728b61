"""The typed seams of the decision: the run evidence evals hands to decide, and the
decision report decide hands to the report (forgiving on input, exact on output)."""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path
from typing import Any

from crossroads.catalog import find_model
from crossroads.decide.compare import build_report, default_profile
from crossroads.decide.decision import DecisionReport, ModelFacts
from crossroads.evals.stats import summarize
from crossroads.evidence import RunEvidence, RunSummary
from crossroads.report import write_report

SRC = Path(__file__).resolve().parents[1] / "src" / "crossroads"
NAMES = ["openai/gpt-4o-mini", "meta/llama-3.1-8b"]


def _rows() -> list[dict[str, Any]]:
    return [
        {
            "item_id": f"i{i}",
            "model": m,
            "score": float((i + j) % 3 != 0),
            "passed": (i + j) % 3 != 0,
            "latency_s": 0.5 + i / 10,
            "tokens_per_s": 40.0,
            "cost_usd": 1e-5,
            "tags": ["t"],
        }
        for j, m in enumerate(NAMES)
        for i in range(12)
    ]


def test_run_summary_holds_every_field_summarize_writes() -> None:
    summary = summarize(_rows(), NAMES)
    typed = RunSummary.model_validate(summary)
    assert typed.model_dump() == summary
    assert typed.models[NAMES[0]].latency_p95.estimate is not None
    assert typed.pairs[0].a == NAMES[0] and typed.pairs[0].verdict


def test_build_report_uses_the_typed_evidence() -> None:
    entries = {n: find_model(n) for n in NAMES}
    assert all(entries.values())
    run = RunEvidence(
        run_id="run-1",
        suite="quick",
        summary=RunSummary.model_validate(summarize(_rows(), NAMES)),
        input_share=0.6,
        manifest={"seed": 1},
    )
    report, advice = build_report(
        names=NAMES,
        entries=entries,  # type: ignore[arg-type]
        notes={},
        run=run,
        profile=default_profile(),
        suite_name="quick",
    )
    assert isinstance(report, DecisionReport)
    assert report.volume.input_share == 0.6 and report.quality.run_id == "run-1"
    assert report.manifest == {"seed": 1}
    facts = {m.name: m for m in report.models}
    assert facts[NAMES[0]].measured is True and facts[NAMES[0]].quality is not None
    assert report.quality.pairs[0].a == NAMES[0]
    assert [r.model for r in report.advice.ranking] == [r.name for r in advice.ranking]


def test_report_json_keeps_its_shape(tmp_path: Path) -> None:
    entries = {n: find_model(n) for n in NAMES}
    report, _ = build_report(
        names=NAMES,
        entries=entries,  # type: ignore[arg-type]
        notes={NAMES[1]: "not measured here: test"},
        run=None,
        profile=default_profile(),
        suite_name="quick",
    )
    data = json.loads(write_report(report, tmp_path)["json"].read_text("utf-8"))
    assert list(data) == [
        "generated",
        "title",
        "profile",
        "volume",
        "recommendation",
        "models",
        "dimensions",
        "quality",
        "tco",
        "advice",
        "manifest",
    ]
    assert list(data["models"][0]) == list(ModelFacts.model_fields)
    assert data["models"][0]["quality"] is None and data["models"][1]["note"].endswith("test")
    assert data["volume"] == {"tokens_per_month": 10_000_000, "input_share": 0.75}
    assert isinstance(data["models"][0]["context_window"], int)  # integers stay integers
    assert data["quality"] == {
        "suite": "quick",
        "run_id": None,
        "evidence_runs": [],  # `compare --evidence RUN_ID,…` records its runs here
        "measured_on": None,
        "pairs": [],
    }
    assert DecisionReport.model_validate(data).model_dump(mode="json") == data


def test_a_malformed_report_validates_to_empty_values() -> None:
    report = DecisionReport.model_validate(
        {
            "title": 7,
            "profile": None,
            "models": [{"name": "x", "measured": "yes", "quality": {}}, None, "junk"],
            "volume": {"tokens_per_month": float("inf"), "input_share": "most"},
            "dimensions": {"scores": {"x": {"cost": {"score": "high", "evidence": "cheap"}}}},
            "tco": {"volumes": [1e6, None, math.nan], "curves": {"x": "flat"}},
            "advice": {"flip_points": [None, {"current": [1], "flip_at": 5}]},
            "manifest": ["not", "a", "mapping"],
        }
    )
    assert report.title == "7" and report.profile.weights == {}
    assert [m.name for m in report.models] == ["x", None, None]
    assert report.models[0].measured is None and report.models[0].quality is None
    assert report.volume.tokens_per_month is None and report.volume.input_share is None
    cost = report.dimensions.scores["x"]["cost"]
    assert cost.score is None and cost.evidence == ["cheap"]
    assert report.tco.volumes == [1e6, None, None] and report.tco.curves == {"x": []}
    assert report.advice.flip_points[0].current is None
    assert report.advice.flip_points[1].current == "[1]"
    assert report.advice.flip_points[1].flip_at == 5
    assert report.manifest == {}


def _imports(package: str) -> set[str]:
    """Absolute names of the crossroads modules ``package``'s modules import."""
    found = set()
    for path in (SRC / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 2 and node.module:
                found.add(node.module.split(".")[0])
    return found


def test_decide_and_evals_do_not_import_each_other() -> None:
    assert "evals" not in _imports("decide")
    assert "decide" not in _imports("evals")
