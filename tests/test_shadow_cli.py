"""Shadow runs from the command line: `runs --json`, `show --out`, `replay` (with and
without stored bodies) and `compare --evidence`."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from typer.testing import CliRunner

from crossroads.cli.app import app
from crossroads.evals.results import load_run
from crossroads.evals.suite import load_suite
from crossroads.store import open_database

from .fakes.openai_fake import OpenAIFake
from .gateway_harness import gateway_in_home
from .shadow_helpers import QUESTION, candidate_reply, config, production_reply, wait_for_items

runner = CliRunner()

RULE = """
  - name: t
    match: prod
    candidates: [cand]
    sample: 1.0
    scorers: [{type: exact}]
"""
N = 20  # five of them (every fourth) the candidate gets wrong


@pytest.fixture
def fakes() -> Iterator[tuple[OpenAIFake, OpenAIFake]]:
    with OpenAIFake(require_key=False) as prod, OpenAIFake(require_key=False) as cand:
        prod.responder = production_reply
        cand.responder = candidate_reply
        yield prod, cand  # type: ignore[misc]


def _serve(text: str, requests: int, *, shadowed: bool = True) -> tuple[Path, str, list[str]]:
    """Serve ``text`` in $CROSSROADS_HOME, send ``requests`` with the OpenAI SDK; the
    config file for the CLI, the database URL and the request ids."""
    home = Path(os.environ["CROSSROADS_HOME"])
    path = home / "crossroads.yaml"
    path.write_text(text, encoding="utf-8")
    ids = []
    with gateway_in_home(text, home) as gw:
        client = openai.OpenAI(base_url=gw.v1, api_key=gw.create_key("app"), max_retries=0)
        for n in range(requests):
            raw = client.chat.completions.with_raw_response.create(
                model="prod", messages=[{"role": "user", "content": QUESTION.format(n=n)}]
            )
            ids.append(raw.headers["x-request-id"])
        url = gw.database_url or ""
        if shadowed:
            wait_for_items(url, "shadow:t", requests)
    return path, url, ids


def _cli(*args: str) -> Any:
    result = runner.invoke(app, list(args), env={"COLUMNS": "200"})
    return result


def test_runs_show_replay_and_compare_from_production_traffic(
    fakes: tuple[OpenAIFake, OpenAIFake], tmp_path: Path
) -> None:
    prod, cand = fakes
    text = config(prod.url, cand.url, RULE, extra="gateway: {store_bodies: true}")
    path, url, ids = _serve(text, N)

    listed = _cli("--config", str(path), "runs", "--json")
    assert listed.exit_code == 0, listed.output
    (run,) = [r for r in json.loads(listed.output) if r["suite"] == "shadow:t"]
    assert run["models"] == ["prod", "cand"]
    assert run["items"] == N and run["results"] == 2 * N
    assert run["state"] == "complete"  # the gateway stopped: what it holds is complete
    assert set(run) == {"id", "suite", "models", "items", "results", "state", "created"}
    table = _cli("--config", str(path), "runs")
    assert run["id"] in table.output and "shadow:t" in table.output

    shown = _cli("--config", str(path), "show", run["id"], "--out", str(tmp_path / "shown"))
    assert shown.exit_code == 0, shown.output
    written = json.loads((tmp_path / "shown" / "results.json").read_text())
    assert written["run"]["id"] == run["id"]
    assert sorted(i["id"] for i in written["items"]) == sorted(ids)
    assert "shadow:t" in (tmp_path / "shown" / "results.html").read_text()

    # replay: the same requests, the same items and the same scores as the shadow run
    replayed = _cli(
        "--config", str(path), "replay", "--since", "1d", "--match", "prod",
        "--models", "cand", "--out", str(tmp_path / "replay"),
        "--suite-out", str(tmp_path / "suite" / "traffic.yaml"),
    )  # fmt: skip
    assert replayed.exit_code == 0, replayed.output
    again = json.loads((tmp_path / "replay" / "results.json").read_text())
    with open_database(url=url) as db:
        shadow = load_run(db, run["id"])

    def cand_scores(data: dict[str, Any]) -> dict[str, float]:
        return {r["item_id"]: r["score"] for r in data["results"] if r["model"] == "cand"}

    def expected(data: dict[str, Any]) -> dict[str, Any]:
        return {i["id"]: i["expected"] for i in data["items"]}

    assert again["run"]["suite"] == "replay:prod"
    assert expected(again) == expected(shadow)
    assert cand_scores(again) == cand_scores(shadow)
    assert again["summary"]["models"]["cand"]["mean"] == pytest.approx(0.75)
    suite = load_suite(str(tmp_path / "suite" / "traffic.yaml"))
    assert [i.id for i in suite.items] == ids
    assert [i.expected for i in suite.items] == [f"answer {n}" for n in range(N)]
    assert (tmp_path / "suite" / "traffic.jsonl").is_file()

    # compare --evidence: Performance from production traffic, the run recorded
    report_dir = tmp_path / "report"
    compared = _cli(
        "--config", str(path), "compare", "--evidence", run["id"], "--out", str(report_dir)
    )  # fmt: skip
    assert compared.exit_code == 0, compared.output
    report = json.loads((report_dir / "report.json").read_text())
    assert report["quality"]["evidence_runs"] == [run["id"]]
    assert report["quality"]["run_id"] == run["id"]
    assert report["quality"]["measured_on"].startswith(f"measured on {N} production requests")
    line = report["dimensions"]["scores"]["cand"]["performance"]["evidence"][0]
    assert line.startswith("measured quality: 0.750")
    assert f"measured on {N} production requests between" in line
    assert "measured on" in compared.output

    # several runs pooled: the shadow run and its replay are the same 20 requests
    pooled = f"{run['id']},{again['run']['id']}"
    compared = _cli(
        "--config", str(path), "compare", "--evidence", pooled, "--out", str(tmp_path / "pool")
    )  # fmt: skip
    assert compared.exit_code == 0, compared.output
    report = json.loads((tmp_path / "pool" / "report.json").read_text())
    assert report["quality"]["evidence_runs"] == [run["id"], again["run"]["id"]]
    assert report["quality"]["measured_on"].startswith(f"measured on {N} production requests")


def test_compare_without_evidence_keeps_the_catalog_line(tmp_path: Path) -> None:
    """The line --evidence changes: with no measurement it is the published figure."""
    path = tmp_path / "c.yaml"
    path.write_text("models: []\n")
    from crossroads.client import AsyncClient
    from crossroads.decide.compare import build_report, catalog_entry, default_profile

    client = AsyncClient()
    entry = catalog_entry("meta/llama-3.1-8b", client)
    assert entry is not None
    report, _ = build_report(
        names=["meta/llama-3.1-8b"], entries={"meta/llama-3.1-8b": entry}, notes={},
        run=None, profile=default_profile(), suite_name="quick",
    )  # fmt: skip
    line = report.dimensions.scores["meta/llama-3.1-8b"]["performance"].evidence[0]
    assert "not measured here" in line and "production requests" not in line
    assert report.quality.evidence_runs == []


def test_replay_without_stored_bodies_names_store_bodies(
    fakes: tuple[OpenAIFake, OpenAIFake],
) -> None:
    prod, cand = fakes
    path, _, _ = _serve(config(prod.url, cand.url, "  []"), 3, shadowed=False)
    result = _cli("--config", str(path), "replay", "--since", "7d", "--models", "cand")
    assert result.exit_code == 2
    assert "store_bodies" in result.output
    assert "3 requests in the ledger without them" in result.output
