"""`crossroads cost --train-tokens`: a one-off fine-tuning job on both paths, amortised."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from crossroads.catalog import find_model
from crossroads.cli import app
from crossroads.decide.cost_options import training_gpu_hours

runner = CliRunner()
OPEN, CLOSED, UNTUNABLE = "meta/llama-3.1-8b", "openai/gpt-4o-mini", "openai/gpt-4-turbo"


def _json(*args: str) -> dict[str, Any]:
    result = runner.invoke(app, ["cost", "--json", *args])
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def _rows(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["model"]: row for row in data["models"]}


@pytest.mark.parametrize("months", [None, 6.0])
def test_training_is_costed_on_both_paths(months: float | None) -> None:
    extra = [] if months is None else ["--train-months", str(months)]
    data = _json("--models", f"{OPEN},{CLOSED}", "--train-tokens", "2000000", *extra)
    spread = months or 12.0  # TrainingPlan's default
    assert data["training"] == {"tokens": 2e6, "amortisation_months": spread, "gpu_hours": None}
    rows = _rows(data)
    tuning = find_model(CLOSED).tuning  # type: ignore[union-attr]
    assert tuning is not None and tuning.training_per_1m_tokens
    expected = 2e6 * tuning.training_per_1m_tokens / 1e6 / spread
    closed = rows[CLOSED]
    assert closed["cost"]["training"] == pytest.approx(expected)
    assert closed["training"]["per_month"] == pytest.approx(expected)
    assert (
        closed["training"]["status"] == "costed" and "fine-tuning API" in closed["training"]["note"]
    )
    assert closed["cost"]["total"] == pytest.approx(closed["cost"]["compute"] + expected)
    opened = rows[OPEN]
    # 6 FLOPs x parameters x tokens on the fitted GPU, at its hourly price, amortised
    option = opened["option"]
    params = find_model(OPEN).parameters_b  # type: ignore[union-attr]
    assert params is not None
    hours, _ = training_gpu_hours(params, 2e6, option["gpu"])
    assert option["training_usd"] == pytest.approx(hours * option["gpu_hour_usd"])
    assert opened["cost"]["training"] == pytest.approx(hours * option["gpu_hour_usd"] / spread)
    assert opened["training"]["per_month"] == pytest.approx(opened["cost"]["training"])
    assert opened["training"]["months"] == spread and "GPU-hours" in opened["training"]["note"]
    assert any("Training: one-off fine-tuning on 2M tokens" in s for s in data["assumptions"])


def test_gpu_hours_override_the_estimate() -> None:
    data = _json(
        "--models", OPEN, "--train-tokens", "2M", "--train-gpu-hours", "10", "--gpu-hour", "2"
    )
    assert _rows(data)[OPEN]["cost"]["training"] == pytest.approx(10 * 2 / 12)


def test_closed_model_without_tuning_says_not_offered() -> None:
    model = find_model(UNTUNABLE)
    assert model is not None and model.tuning is None
    data = _json("--models", f"{OPEN},{UNTUNABLE}", "--train-tokens", "2000000")
    row = _rows(data)[UNTUNABLE]
    assert "training" not in row["cost"], "never costed as $0"
    assert row["training"]["status"] == "not offered" and row["training"]["per_month"] is None
    assert "no self-serve fine-tuning" in row["training"]["note"]
    assert data["break_even"], "the comparison still runs"
    table = runner.invoke(
        app,
        ["cost", "--models", f"{OPEN},{CLOSED},{UNTUNABLE}", "--train-tokens", "2M"],
        env={"COLUMNS": "220"},
    )
    assert table.exit_code == 0, table.output
    assert "training" in table.stdout and "not offered" in table.stdout
    assert "$0.50" in table.stdout  # gpt-4o-mini: 2M x $3/1M / 12 months


def test_without_training_options_output_is_unchanged() -> None:
    data = _json("--models", f"{OPEN},{CLOSED}")
    assert "training" not in data
    assert all("training" not in row and "training" not in row["cost"] for row in data["models"])
    table = runner.invoke(app, ["cost", "--models", CLOSED], env={"COLUMNS": "220"})
    assert table.exit_code == 0 and "training" not in table.stdout


def test_training_options_need_tokens() -> None:
    result = runner.invoke(app, ["cost", "--models", OPEN, "--train-months", "6"])
    assert result.exit_code == 2 and "--train-tokens" in result.output
