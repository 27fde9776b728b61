"""The Evaluations pages in Chromium: start a run from the browser and follow it to the
end, the run page (figures, filters, search, pages), cancel then resume, two runs compared
with the library's statistics, and what a virtual-key session may do."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from crossroads.evals.results import load_run
from crossroads.evals.stats import mcnemar_exact, paired_bootstrap_diff_ci
from crossroads.evals.store import RunStore
from crossroads.store import open_database

from ..conftest import require
from ..fakes.openai_fake import OpenAIFake
from ..fakes.server import Reply
from .a11y import unnamed_controls
from .conftest import RunningConsole, login
from .test_screenshots import _folder, shoot

expect = require("playwright.sync_api", "pip install pytest-playwright").expect

XSS = (
    '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">'
    " [x](javascript:alert(1))"
)


def _answers(correct: bool, delay_s: float = 0.0) -> Any:
    """A responder: 'Paris' to the France question (right or not), text otherwise."""

    def reply(body: dict[str, Any]) -> Reply:
        question = str(body["messages"][-1]["content"])
        if "France" in question:
            return Reply(text="Paris" if correct else "Lyon", delay_s=delay_s)
        if "2 + 2" in question or "2+2" in question:
            return Reply(text="4" if correct else XSS, delay_s=delay_s)
        return Reply(text=XSS if correct else "I do not know.", delay_s=delay_s)

    return reply


@pytest.fixture
def fake(openai_fake: OpenAIFake) -> Iterator[OpenAIFake]:
    yield openai_fake
    openai_fake.responder = None


def _db(console: RunningConsole) -> Any:
    assert console.database_url
    return open_database(console.database_url)


def _start_run(page: Any, console: RunningConsole, concurrency: int = 4) -> str:
    """Start quick on gpt-4o from the Evaluations page; the job page's URL."""
    page.goto(console.ui + "/evaluations")
    page.get_by_label("Suite", exact=True).select_option("quick")
    page.get_by_label("gpt-4o", exact=True).check()
    page.get_by_label("Concurrency", exact=True).fill(str(concurrency))
    page.get_by_role("button", name="Start the run").click()
    page.wait_for_url("**/ui/evaluations/jobs/*")
    url: str = page.url
    return url


def _wait_status(page: Any, status: str) -> None:
    page.wait_for_selector(f'#job-status[data-status="{status}"]', timeout=60_000)


def test_run_a_suite_from_the_ui_to_completion(
    admin_page: Any, console_server: RunningConsole, fake: OpenAIFake, tmp_path: Path
) -> None:
    fake.responder = _answers(correct=True)
    page = admin_page
    _start_run(page, console_server)
    _wait_status(page, "complete")  # followed live (htmx polling) to the end
    assert page.locator("#job-count").inner_text() == "34/34"
    page.locator("#job-status a").click()
    page.wait_for_selector("#figures")
    run_id = page.url.rsplit("/", 1)[1]
    with _db(console_server) as db:
        data = load_run(db, run_id)
    m = data["summary"]["models"]["gpt-4o"]
    assert data["run"]["status"] == "complete" and len(data["results"]) == 34
    row = page.locator('#figures tr[data-model="gpt-4o"]').inner_text()
    assert f"{m['mean']:.3f} [{m['ci_low']:.3f}–{m['ci_high']:.3f}]" in row
    assert f"{m['pass_rate'] * 100:.1f}%" in row
    assert f"{m['latency_p95']['estimate']:.2f} s" in row
    # Items: 34 over two pages; failures only; text search; model answers stay text.
    assert page.locator("#items-count").inner_text().startswith("34 of 34 items")
    assert page.locator("table.items tbody tr").count() == 20
    page.get_by_role("link", name="Next page").click()
    expect(page.locator("table.items tbody tr")).to_have_count(14)
    failures = sum(1 for r in data["results"] if r["passed"] is False or r["error"])
    page.get_by_label("Failures only").check()
    expect(page.locator("#items-count")).to_contain_text(f"{failures} of 34 items")
    page.get_by_label("Failures only").uncheck()
    page.get_by_label("Search").fill("France")
    expect(page.locator("#items-count")).to_contain_text("1 of 34 items")
    assert "Paris" in page.locator("table.items").inner_text()
    page.get_by_label("Search").fill("")
    page.get_by_label("Search").press("Enter")
    expect(page.locator("#items-count")).to_contain_text("34 of 34 items")
    assert unnamed_controls(page) == []
    assert page.evaluate("() => window.__xss") is None
    assert page.locator("table.items script, table.items img").count() == 0
    assert "<script>window.__xss = 1</script>" in page.locator("table.items").inner_text()
    shoot(page, _folder(tmp_path), "evaluations-run")
    page.goto(console_server.ui + "/evaluations")
    assert page.locator(f'#runs tr[data-run="{run_id}"]').count() == 1
    assert unnamed_controls(page) == []
    shoot(page, _folder(tmp_path), "evaluations")


def test_cancel_then_resume_finishes_without_redoing_items(
    admin_page: Any, console_server: RunningConsole, fake: OpenAIFake
) -> None:
    fake.responder = _answers(correct=True, delay_s=0.15)
    page = admin_page
    _start_run(page, console_server, concurrency=1)
    expect(page.locator("#job-count")).not_to_have_text(re.compile(r"^[0-2]/"), timeout=30_000)
    page.get_by_role("button", name="Cancel the run").click()
    _wait_status(page, "interrupted")
    run_id = page.locator("#job-status a").inner_text()
    with _db(console_server) as db:
        stored = RunStore(db).read_run(run_id)
    done_before = len(stored.results)
    assert stored.run["status"] == "interrupted" and 3 <= done_before < 34
    calls_before = len(fake.requests)
    fake.responder = _answers(correct=True)
    page.get_by_role("button", name="Resume the run").click()
    page.wait_for_url("**/ui/evaluations/jobs/*")
    _wait_status(page, "complete")
    with _db(console_server) as db:
        stored = RunStore(db).read_run(run_id)
    keys = [(r["item_id"], r["model"], r["repeat"]) for r in stored.results]
    assert len(keys) == 34 == len(set(keys))  # every item once: nothing redone
    assert stored.run["status"] == "complete"
    assert len(fake.requests) - calls_before == 34 - done_before


def _item_scores(rows: Any, model: str) -> dict[str, tuple[float, bool | None]]:
    return {
        r["item_id"]: (0.0 if r["error"] else float(r["score"]), r["passed"])
        for r in rows
        if r["model"] == model
    }


def test_compare_two_runs_shows_the_librarys_figures(
    admin_page: Any, console_server: RunningConsole, fake: OpenAIFake, tmp_path: Path
) -> None:
    page = admin_page
    fake.responder = _answers(correct=False)
    _start_run(page, console_server)
    _wait_status(page, "complete")
    run_a = page.locator("#job-status a").inner_text()
    # Fresh answers for run B (not the response cache).
    with _db(console_server) as db, db.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM response_cache")
    fake.responder = _answers(correct=True)
    _start_run(page, console_server)
    _wait_status(page, "complete")
    run_b = page.locator("#job-status a").inner_text()
    page.goto(console_server.ui + "/evaluations")
    page.get_by_label("Run A").select_option(run_a)
    page.get_by_label("Run B").select_option(run_b)
    page.get_by_role("button", name="Compare").click()
    page.wait_for_selector("#compare-models")
    row = page.locator('#compare-models tr[data-model="gpt-4o"]')
    with _db(console_server) as db:
        a = _item_scores(RunStore(db).read_run(run_a).results, "gpt-4o")
        b = _item_scores(RunStore(db).read_run(run_b).results, "gpt-4o")
    ids = sorted(a)
    sa, sb = np.array([a[i][0] for i in ids]), np.array([b[i][0] for i in ids])
    ci = paired_bootstrap_diff_ci(sb, sa, confidence=0.95, seed=0)  # B - A
    mc_b = sum(1 for i in ids if b[i][1] is True and a[i][1] is False)  # fixed
    mc_c = sum(1 for i in ids if b[i][1] is False and a[i][1] is True)  # broke
    p = mcnemar_exact(mc_b, mc_c)
    assert float(row.get_attribute("data-mean-diff")) == ci.estimate
    assert float(row.get_attribute("data-ci-low")) == ci.low
    assert float(row.get_attribute("data-ci-high")) == ci.high
    assert int(row.get_attribute("data-mcnemar-b")) == mc_b
    assert int(row.get_attribute("data-mcnemar-c")) == mc_c
    assert float(row.get_attribute("data-mcnemar-p")) == p
    text = row.inner_text()
    assert f"{ci.estimate:+.4f} [{ci.low:.4f} to {ci.high:.4f}]" in text
    assert f"{mc_b} / {mc_c}, p = {p:.4g}" in text
    assert page.locator('#compare-changes tr[data-change="fixed"]').count() == mc_b > 0
    assert not math.isnan(ci.estimate)
    assert page.evaluate("() => window.__xss") is None
    shoot(page, _folder(tmp_path), "evaluations-compare")


def test_a_virtual_key_runs_only_its_models_and_sees_only_its_runs(
    ui_page: Any, admin_page: Any, console_server: RunningConsole, fake: OpenAIFake, chromium: Any
) -> None:
    fake.responder = _answers(correct=True)
    _start_run(admin_page, console_server)  # the master key's run
    _wait_status(admin_page, "complete")
    admin_run = admin_page.locator("#job-status a").inner_text()
    key = console_server.create_key("evals", models=["gpt-4o"])
    other = console_server.create_key("no-gpt", models=["local/smollm2"])
    context = chromium.new_context()
    page = context.new_page()
    login(page, console_server, other)
    page.goto(console_server.ui + "/evaluations")
    assert page.locator(f'#runs tr[data-run="{admin_run}"]').count() == 0
    assert page.get_by_label("gpt-4o", exact=True).count() == 0  # not offered to this key
    token = page.locator('meta[name="csrf-token"]').get_attribute("content")
    with _db(console_server) as db:
        runs_before = len(RunStore(db).list_runs())
    response = page.request.post(
        console_server.ui + "/evaluations/start",
        form={"csrf_token": token, "suite": "quick", "models": "gpt-4o", "concurrency": "2"},
    )
    assert response.status == 403 and "may not call gpt-4o" in response.text()
    response = page.request.get(console_server.ui + f"/evaluations/runs/{admin_run}")
    assert response.status == 404
    response = page.request.get(console_server.ui + f"/decision?run={admin_run}")
    assert response.status == 404  # nor decide from it
    page.goto(console_server.ui + "/decision")
    assert page.locator(f'#decision-run option[value="{admin_run}"]').count() == 0
    response = page.request.post(
        console_server.ui + "/evaluations/start",
        form={"suite": "quick", "models": "local/smollm2", "concurrency": "2"},
    )
    assert response.status == 403  # no CSRF token: refused
    with _db(console_server) as db:
        assert len(RunStore(db).list_runs()) == runs_before  # nothing started
    context.close()
    login(ui_page, console_server, key)
    _start_run(ui_page, console_server)
    _wait_status(ui_page, "complete")
    mine = ui_page.locator("#job-status a").inner_text()
    ui_page.goto(console_server.ui + "/evaluations")
    shown = [r.get_attribute("data-run") for r in ui_page.locator("#runs tbody tr[data-run]").all()]
    assert shown == [mine]
    assert httpx.get(console_server.ui + f"/evaluations/runs/{mine}").status_code == 303
