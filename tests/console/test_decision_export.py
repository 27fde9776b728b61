"""The decision page's exports are the files ``crossroads compare --profile`` writes: the
report as HTML, Markdown and JSON byte for byte (the generation time pinned), and the
profile as YAML that the profile loader reads back to the same weights and constraints."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from crossroads.cli import app
from crossroads.config import load_config
from crossroads.console.decision_model import (
    decide,
    export_report,
    profile_yaml,
)
from crossroads.decide.advisor import load_profile, with_overrides
from crossroads.evals.results import load_evidence
from crossroads.store import open_database

from ..fakes.openai_fake import OpenAIFake
from ..fakes.server import Reply
from .decide_inputs import PROFILES, inputs_for, profiles

MODELS = ["openai/gpt-4o-mini", "meta/llama-3.1-8b", "anthropic/claude-haiku-4-5", "google/palm-2"]


def _cli_compare(out: Path, profile: Path, models: list[str]) -> dict[str, Any]:
    """``crossroads compare`` (in a thread of its own: a browser test earlier in the
    session may hold this thread's event loop)."""
    args = ["compare", "--models", ",".join(models), "--profile", str(profile), "--out", str(out)]
    with ThreadPoolExecutor(1) as pool:
        result = pool.submit(CliRunner().invoke, app, args, env={"COLUMNS": "200"}).result()
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads((out / "report.json").read_text("utf-8"))
    return data


def _assert_exports_equal_cli(out: Path, report: Any, generated: str) -> None:
    pinned = report.model_copy(update={"generated": generated})
    for fmt, name in (("html", "report.html"), ("md", "report.md"), ("json", "report.json")):
        written = (out / name).read_bytes()
        assert export_report(pinned, fmt).encode("utf-8") == written, name  # type: ignore[arg-type]


@pytest.mark.parametrize("profile_path", PROFILES, ids=lambda p: p.stem)
def test_exports_equal_compare_with_the_same_profile(tmp_path: Path, profile_path: Path) -> None:
    cli = _cli_compare(tmp_path / "cli", profile_path, MODELS)
    inputs = inputs_for(MODELS)
    report, _ = decide(inputs, load_profile(profile_path))
    assert report.generated != "2000-01-01T00:00:00+00:00"
    _assert_exports_equal_cli(tmp_path / "cli", report, cli["generated"])


def test_exports_equal_compare_when_a_model_was_measured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same run, same numbers: the console decides from the run compare measured."""
    with OpenAIFake() as fake:
        fake.responder = lambda body: Reply(text="Paris")
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("OPENAI_BASE_URL", fake.url + "/v1")
        cli = _cli_compare(tmp_path / "cli", PROFILES[0], MODELS)
        assert fake.requests
    run_id = cli["quality"]["run_id"]
    assert run_id
    config = load_config(None)
    with open_database(config=config) as db:
        evidence = load_evidence(db, run_id)
    inputs = inputs_for(MODELS, run=evidence, config=config)
    report, _ = decide(inputs, load_profile(PROFILES[0]))
    assert report.models[0].measured is True
    _assert_exports_equal_cli(tmp_path / "cli", report, cli["generated"])


def test_profile_yaml_loads_back_to_the_same_profile(tmp_path: Path) -> None:
    edited = with_overrides(
        profiles()[2],
        cost=0.1 + 0.2,  # a weight without a short decimal form
        performance=7.123456789012345,
        languages=["German", "fr"],
        p95_latency_s=1.5,
        monthly_budget_usd=None,
    )
    for profile in [*profiles(), edited]:
        path = tmp_path / f"{profile.name}.yaml"
        path.write_text(profile_yaml(profile), encoding="utf-8")
        loaded = load_profile(path)
        assert loaded == profile
        assert loaded.weights.as_dict() == profile.weights.as_dict()
