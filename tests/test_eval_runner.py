"""The evaluation runner against loopback fakes with known answers."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from crossroads.client import AsyncClient
from crossroads.config import load_config
from crossroads.evals.results import load_run
from crossroads.evals.runner import Runner, RunOptions
from crossroads.evals.suite import load_suite
from crossroads.store import open_database, results

from .fakes.openai_fake import OpenAIFake
from .fakes.server import Reply

CAPITALS = {
    "France": "Paris",
    "Japan": "Tokyo",
    "Italy": "Rome",
    "Kenya": "Nairobi",
    "Peru": "Lima",
    "Egypt": "Cairo",
    "Spain": "Madrid",
    "Canada": "Ottawa",
    "Norway": "Oslo",
    "Chile": "Santiago",
    "Ghana": "Accra",
    "Cuba": "Havana",
}
#: Items the "weak" model gets wrong.
WEAK_MISSES = {"Kenya", "Canada", "Ghana", "Chile"}


def answer_for(weak: bool, delay_s: float = 0.0) -> Any:
    def responder(body: dict[str, Any]) -> Reply:
        question = body["messages"][-1]["content"]
        country = next(c for c in CAPITALS if c in question)
        wrong = weak and country in WEAK_MISSES
        return Reply(
            text="I am not sure." if wrong else f"The capital is {CAPITALS[country]}.",
            delay_s=delay_s,
        )

    return responder


@pytest.fixture
def fakes() -> Iterator[tuple[OpenAIFake, OpenAIFake]]:
    with OpenAIFake() as strong, OpenAIFake() as weak:
        strong.responder = answer_for(False)
        weak.responder = answer_for(True)
        yield strong, weak


@pytest.fixture
def setup(
    tmp_path: Path, fakes: tuple[OpenAIFake, OpenAIFake], monkeypatch: pytest.MonkeyPatch
) -> Path:
    strong, weak = fakes
    monkeypatch.setenv("FAKE_KEY", "k")
    (tmp_path / "crossroads.yaml").write_text(
        f"database_url: sqlite:///{tmp_path / 'db.sqlite'}\n"
        "models:\n"
        f"  - name: strong\n    backend: openai\n    model: gpt-4o\n"
        f"    base_url: {strong.url}/v1\n    api_key: ${{FAKE_KEY}}\n    max_retries: 3\n"
        f"  - name: weak\n    backend: openai\n    model: gpt-4o-mini\n"
        f"    base_url: {weak.url}/v1\n    api_key: ${{FAKE_KEY}}\n    max_retries: 3\n"
    )
    items = [
        {
            "id": c.lower(),
            "country": c,
            "expected": p,
            "tags": ["africa" if c in {"Kenya", "Egypt", "Ghana"} else "other"],
        }
        for c, p in CAPITALS.items()
    ]
    (tmp_path / "capitals.jsonl").write_text("\n".join(json.dumps(i) for i in items))
    (tmp_path / "capitals.yaml").write_text(
        "name: capitals\ndescription: capital cities\n"
        "defaults: {temperature: 0, max_tokens: 20}\n"
        "prompt: 'What is the capital of {{ country }}?'\n"
        "scorers:\n  - type: contains\n"
        "items_file: capitals.jsonl\n"
    )
    return tmp_path


def run(setup: Path, models: tuple[str, ...] = ("strong", "weak"), **kw: Any) -> str:
    config = load_config(setup / "crossroads.yaml")
    suite = load_suite(str(setup / "capitals.yaml"))
    with open_database(config=config) as db:

        async def main() -> str:
            async with AsyncClient(config) as client:
                return await Runner(client, db, suite, RunOptions(models=models, **kw)).run()

        return asyncio.run(main())


def load(setup: Path, run_id: str) -> dict[str, Any]:
    with open_database(config=load_config(setup / "crossroads.yaml")) as db:
        return load_run(db, run_id)


def test_scores_are_exactly_as_expected(setup: Path, fakes: tuple[OpenAIFake, OpenAIFake]) -> None:
    run_id = run(setup)
    data = load(setup, run_id)
    assert data["run"]["status"] == "complete"
    by_model = data["summary"]["models"]
    assert by_model["strong"]["mean"] == 1.0
    assert by_model["weak"]["mean"] == pytest.approx(8 / 12)
    assert by_model["weak"]["by_tag"]["africa"]["mean"] == pytest.approx(1 / 3)
    failed = {r["item_id"] for r in data["results"] if r["model"] == "weak" and not r["passed"]}
    assert failed == {c.lower() for c in WEAK_MISSES}
    first = data["results"][0]
    assert first["latency_s"] > 0 and first["prompt_tokens"] == 11
    assert first["cost_usd"] > 0, "gpt-4o is priced from the catalog"
    assert len(fakes[0].requests) == len(fakes[1].requests) == 12
    assert data["manifest"]["models"]["strong"]["model"] == "gpt-4o"
    assert data["manifest"]["suite"]["hash"] == data["run"]["suite_hash"]


def test_temperature_zero_is_cached_and_marked(
    setup: Path, fakes: tuple[OpenAIFake, OpenAIFake]
) -> None:
    run(setup)
    calls = len(fakes[0].requests)
    second = run(setup)
    assert len(fakes[0].requests) == calls, "the second run is served from the cache"
    data = load(setup, second)
    assert all(r["cached"] and r["latency_s"] is None for r in data["results"])
    assert data["summary"]["models"]["strong"]["mean"] == 1.0
    run(setup, use_cache=False)
    assert len(fakes[0].requests) == 2 * calls


def test_rate_limits_are_honoured(setup: Path, fakes: tuple[OpenAIFake, OpenAIFake]) -> None:
    # `max_retries: 3` in the config: the router tries a call up to four times.
    fakes[0].script(*[Reply.error(429, "slow down", retry_after="0") for _ in range(3)])
    run_id = run(setup, models=("strong",), concurrency=1, use_cache=False)
    data = load(setup, run_id)
    assert all(r["error"] is None for r in data["results"])
    assert data["summary"]["models"]["strong"]["mean"] == 1.0
    assert len(fakes[0].requests) == 12 + 3


def test_rate_limits_past_the_retries_are_recorded_not_fatal(
    setup: Path, fakes: tuple[OpenAIFake, OpenAIFake]
) -> None:
    fakes[0].script(*[Reply.error(429, "slow down", retry_after="0") for _ in range(4)])
    run_id = run(setup, models=("strong",), concurrency=1, use_cache=False)
    data = load(setup, run_id)
    errors = [r for r in data["results"] if r["error"]]
    assert len(errors) == 1 and "RateLimitError" in errors[0]["error"]
    assert len(fakes[0].requests) == 4 + 11


def test_upstream_errors_are_recorded_not_fatal(
    setup: Path, fakes: tuple[OpenAIFake, OpenAIFake]
) -> None:
    fakes[0].script(Reply.error(400, "bad request"))
    run_id = run(setup, models=("strong",), concurrency=1, use_cache=False)
    data = load(setup, run_id)
    errors = [r for r in data["results"] if r["error"]]
    assert len(errors) == 1 and "BadRequestError" in errors[0]["error"]
    assert errors[0]["score"] == 0
    assert data["summary"]["models"]["strong"]["errors"] == 1


def test_killed_run_resumes_only_the_missing_items(
    setup: Path, fakes: tuple[OpenAIFake, OpenAIFake]
) -> None:
    strong, weak = fakes
    strong.responder = answer_for(False, delay_s=0.3)
    weak.responder = answer_for(True, delay_s=0.3)
    env = {**os.environ, "CROSSROADS_HOME": str(setup)}
    cmd = [
        sys.executable,
        "-m",
        "crossroads.cli",
        "-c",
        str(setup / "crossroads.yaml"),
        "eval",
        str(setup / "capitals.yaml"),
        "--models",
        "strong,weak",
        "--concurrency",
        "2",
        "--no-cache",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open_database(config=load_config(setup / "crossroads.yaml")) as db:
        deadline = time.monotonic() + 30
        done = 0
        while time.monotonic() < deadline and done < 6:
            time.sleep(0.1)
            with db.engine.connect() as conn:
                done = conn.execute(select(func.count()).select_from(results)).scalar_one()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        with db.engine.connect() as conn:
            done = conn.execute(select(func.count()).select_from(results)).scalar_one()
            run_id = conn.execute(select(results.c.run_id).distinct()).scalar_one()
    assert 6 <= done < 24, "killed part-way"
    before = len(strong.requests) + len(weak.requests)
    strong.responder = answer_for(False)
    weak.responder = answer_for(True)
    result = CliRunner().invoke(
        __import__("crossroads.cli", fromlist=["app"]).app,
        [
            "-c",
            str(setup / "crossroads.yaml"),
            "eval",
            str(setup / "capitals.yaml"),
            "--models",
            "strong,weak",
            "--resume",
            run_id,
            "--no-cache",
        ],
    )
    assert result.exit_code == 0, result.output
    resumed_calls = len(strong.requests) + len(weak.requests) - before
    assert resumed_calls == 24 - done
    data = load(setup, run_id)
    assert data["run"]["status"] == "complete"
    assert len(data["results"]) == 24
    assert data["summary"]["models"]["strong"]["mean"] == 1.0


def test_cli_eval_writes_files_and_lists_runs(setup: Path) -> None:
    from crossroads.cli import app

    runner = CliRunner()
    cfg = str(setup / "crossroads.yaml")
    out = setup / "out"
    result = runner.invoke(
        app,
        [
            "-c",
            cfg,
            "eval",
            str(setup / "capitals.yaml"),
            "--models",
            "strong,weak",
            "--out",
            str(out),
        ],
        env={"COLUMNS": "160"},
    )
    assert result.exit_code == 0, result.output
    assert "strong" in result.stdout and "1.00" in result.stdout
    data = json.loads((out / "results.json").read_text())
    assert len(data["results"]) == 24
    assert "<html" in (out / "results.html").read_text().lower()
    listed = runner.invoke(app, ["-c", cfg, "runs"], env={"COLUMNS": "160"})
    assert data["run"]["id"] in listed.stdout
    shown = runner.invoke(app, ["-c", cfg, "show", data["run"]["id"]], env={"COLUMNS": "160"})
    assert shown.exit_code == 0 and "weak" in shown.stdout


def test_bad_suite_and_unknown_model_are_clear_errors(setup: Path) -> None:
    from crossroads.cli import app

    runner = CliRunner()
    cfg = str(setup / "crossroads.yaml")
    (setup / "broken.yaml").write_text(
        "name: b\nprompt: '{{ nope }}'\nscorers: [{type: contains}]\nitems: [{id: a}]\n"
    )
    broken = runner.invoke(
        app, ["-c", cfg, "eval", str(setup / "broken.yaml"), "--models", "strong"]
    )
    assert broken.exit_code == 2 and "item 0" in broken.stderr and "nope" in broken.stderr
    unknown = runner.invoke(
        app, ["-c", cfg, "eval", str(setup / "capitals.yaml"), "--models", "strongg"]
    )
    assert unknown.exit_code == 2 and "Did you mean" in unknown.stderr


def test_runs_are_stored_in_postgresql_too(setup: Path, postgres_url: str) -> None:
    config_path = setup / "crossroads.yaml"
    text = config_path.read_text().splitlines()
    config_path.write_text("\n".join([f"database_url: {postgres_url}", *text[1:]]) + "\n")
    run_id = run(setup)
    data = load(setup, run_id)
    assert data["run"]["status"] == "complete"
    assert len(data["results"]) == 24
    assert data["summary"]["models"]["weak"]["mean"] == pytest.approx(8 / 12)
