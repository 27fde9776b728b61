"""``crossroads serve`` option handling, with ``uvicorn.run`` replaced: no server starts."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from typer.testing import CliRunner

from crossroads.cli.app import app

runner = CliRunner()

CONFIG = """\
models:
  - name: fast
    backend: openai
    model: gpt-4o-mini
    api_key: ${MY_OPENAI_KEY}
"""


@pytest.fixture
def uvicorn_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []

    def fake_run(app_path: str, **kwargs: Any) -> None:
        calls.append({"app": app_path, **kwargs})

    monkeypatch.setattr(uvicorn, "run", fake_run)
    return calls


def test_an_unknown_log_level_is_refused_naming_the_levels(
    uvicorn_calls: list[dict[str, Any]],
) -> None:
    result = runner.invoke(app, ["serve", "--log-level", "verbose"])
    assert result.exit_code == 2, result.output
    assert "verbose" in result.stderr
    assert "critical, error, warning, info, debug, trace" in result.stderr
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    assert uvicorn_calls == []


@pytest.mark.parametrize("level", ["critical", "error", "warning", "info", "debug", "trace"])
def test_every_uvicorn_log_level_is_accepted(
    uvicorn_calls: list[dict[str, Any]], tmp_path: Path, level: str
) -> None:
    config = tmp_path / "crossroads.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    result = runner.invoke(app, ["serve", "--config", str(config), "--log-level", level.upper()])
    assert result.exit_code == 0, result.output
    assert [c["log_level"] for c in uvicorn_calls] == [level]
    # the name uvicorn receives is one it maps to the logging level the user asked for
    numeric = {"critical": 50, "error": 40, "warning": 30, "info": 20, "debug": 10, "trace": 5}
    assert uvicorn.config.LOG_LEVELS[uvicorn_calls[0]["log_level"]] == numeric[level]


@pytest.mark.parametrize("where", ["root", "serve"])
def test_config_is_taken_from_the_root_or_the_serve_option(
    uvicorn_calls: list[dict[str, Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    where: str,
) -> None:
    config = tmp_path / "crossroads.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    monkeypatch.delenv("CROSSROADS_CONFIG", raising=False)  # serve sets it; undone after
    flag = ["--config", str(config)]
    args = [*flag, "serve"] if where == "root" else ["serve", *flag]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert len(uvicorn_calls) == 1 and uvicorn_calls[0]["log_level"] == "info"
    assert os.environ["CROSSROADS_CONFIG"] == str(config.resolve())


def test_a_master_key_naming_an_unset_variable_stops_the_start(
    uvicorn_calls: list[dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CROSSROADS_TEST_ADMIN_KEY", raising=False)
    monkeypatch.delenv("CROSSROADS_CONFIG", raising=False)
    config = tmp_path / "crossroads.yaml"
    config.write_text(
        CONFIG + "gateway:\n  master_key: ${CROSSROADS_TEST_ADMIN_KEY}\n", encoding="utf-8"
    )
    result = runner.invoke(app, ["serve", "--config", str(config)])
    assert result.exit_code != 0
    assert "CROSSROADS_TEST_ADMIN_KEY" in result.output and "not set" in result.output
    assert "Traceback" not in result.output
    assert uvicorn_calls == []  # it never started listening
