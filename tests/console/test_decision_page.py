"""The Decision page in Chromium: the ranking and flip points the page computes are the
advisor's (report.json), moving a weight slider past a flip point changes the top choice
exactly there, and the exports are the advisor's files for the profile on screen."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import yaml

from crossroads.config import parse_config
from crossroads.console.decision_model import decide, export_report
from crossroads.decide.advisor import Profile, load_profile

from ..fakes.openai_fake import OpenAIFake
from .a11y import unnamed_controls
from .conftest import MASTER, RunningConsole, console_config, login
from .decide_inputs import inputs_for
from .test_screenshots import _folder, shoot

STEP = 0.05  # the weight sliders' step


def _report(page: Any, console: RunningConsole, profile: dict[str, Any]) -> dict[str, Any]:
    """report.json as the page's export link fetches it (the Python advisor's output)."""
    query = quote(json.dumps(profile))
    response = page.request.get(f"{console.ui}/decision/export.json?profile={query}")
    assert response.status == 200
    data: dict[str, Any] = response.json()
    return data


def _page_state(page: Any) -> dict[str, Any]:
    state: dict[str, Any] = page.evaluate("() => window.CrossroadsDecidePage")
    return state


def _top(page: Any) -> str:
    top: str = page.locator("#top-choice").get_attribute("data-model")
    return top


def test_page_ranking_and_flips_are_the_advisors(
    admin_page: Any, console_server: RunningConsole, tmp_path: Path
) -> None:
    page = admin_page
    page.goto(console_server.ui + "/decision")
    page.wait_for_selector("#ranking tbody tr")
    state = _page_state(page)
    report = _report(page, console_server, state["profile"])
    shown = [tr.get_attribute("data-model") for tr in page.locator("#ranking tbody tr").all()]
    assert shown == [r["model"] for r in report["advice"]["ranking"]]
    assert [r["score"] for r in state["advice"]["ranking"]] == [
        r["score"] for r in report["advice"]["ranking"]
    ]
    sentences = {li.inner_text() for li in page.locator("#flips li").all()}
    for flip in report["advice"]["flip_points"]:
        text = flip["sentence"]
        assert f"{text[:1].upper()}{text[1:]}." in sentences
    assert _top(page) == report["recommendation"]["model"]
    assert unnamed_controls(page) == []
    shoot(page, _folder(tmp_path), "decision")


def test_moving_a_weight_slider_past_the_flip_point_changes_the_top_choice_there(
    admin_page: Any, console_server: RunningConsole
) -> None:
    page = admin_page
    page.goto(console_server.ui + "/decision")
    page.wait_for_selector("#ranking tbody tr")
    report = _report(page, console_server, _page_state(page)["profile"])
    top = report["recommendation"]["model"]
    # An upward weight flip that does not sit on the slider's 0.05 grid.
    flip = next(
        f
        for f in report["advice"]["flip_points"]
        if f["flip_at"] is not None
        and f["parameter"] in report["profile"]["weights"]
        and report["profile"]["weights"][f["parameter"]] < f["flip_at"] < 10
        and abs(f["flip_at"] / STEP - round(f["flip_at"] / STEP)) > 1e-3
    )
    dim, at, current = flip["parameter"], flip["flip_at"], flip["current"]
    below = math.floor((at - current) / STEP + 1e-12)  # key presses that stay below it
    slider = page.locator(f"#w-{dim}")
    slider.focus()
    for _ in range(below):
        slider.press("ArrowRight")
    assert float(slider.input_value()) < at
    assert _top(page) == top  # just below the flip point: unchanged
    slider.press("ArrowRight")
    assert float(slider.input_value()) > at
    assert _top(page) == flip["new_top"]  # one step past it: the advisor's new top choice
    # And exactly there: a hair either side of the value the advisor solved for.
    exact = page.locator(f"#wn-{dim}")
    hair = 2e-6 * max(1.0, at)
    exact.fill(repr(at - hair))
    assert _top(page) == top
    exact.fill(repr(at + hair))
    assert _top(page) == flip["new_top"]
    # The page's profile now is the advisor's profile with that weight: same top choice.
    after = _report(page, console_server, _page_state(page)["profile"])
    assert after["recommendation"]["model"] == flip["new_top"]


def test_constraints_and_volume_rerank_in_the_page(
    admin_page: Any, console_server: RunningConsole
) -> None:
    page = admin_page
    page.goto(console_server.ui + "/decision")
    page.wait_for_selector("#ranking tbody tr")
    page.get_by_label("Data must stay on premises").check()
    state = _page_state(page)
    assert state["profile"]["constraints"]["on_premises"] is True
    assert all(r["kind"] == "open" for r in state["advice"]["ranking"])
    excluded = page.locator("#excluded").inner_text()
    assert "data must stay on premises" in excluded
    report = _report(page, console_server, state["profile"])
    assert [r["name"] for r in state["advice"]["ranking"]] == [
        r["model"] for r in report["advice"]["ranking"]
    ]
    page.locator("#volume-number").fill("2.5e9")
    state = _page_state(page)
    report = _report(page, console_server, state["profile"])
    assert state["profile"]["constraints"]["volume_tokens_per_month"] == 2.5e9
    assert _top(page) == report["recommendation"]["model"]
    assert page.locator("#volume-text").inner_text() == "2.5B tokens/month"
    assert page.locator("#cost-chart path.series").count() == len(state["advice"]["ranking"])


def test_exports_carry_the_profile_on_screen(
    admin_page: Any, console_server: RunningConsole, openai_fake: OpenAIFake, tmp_path: Path
) -> None:
    page = admin_page
    page.goto(console_server.ui + "/decision")
    page.wait_for_selector("#ranking tbody tr")
    page.locator("#wn-cost").fill("3.3")
    page.get_by_label("No ML engineers").check()
    page.locator("#c-budget").fill("1500")
    profile = Profile.model_validate(_page_state(page)["profile"])
    with page.expect_download() as download:
        page.locator("#export-yaml").click()
    saved = tmp_path / "profile.yaml"
    download.value.save_as(saved)
    loaded = load_profile(saved)
    assert loaded == profile and loaded.weights.cost == 3.3
    assert yaml.safe_load(saved.read_text())["constraints"]["monthly_budget_usd"] == 1500
    # The report exports are what the library (and so `compare --profile`) writes.
    config = parse_config(console_config(openai_fake), "test-console.yaml")
    inputs = inputs_for(None, config=config)
    expected, _ = decide(inputs, loaded)
    for fmt in ("html", "md", "json"):
        href = page.eval_on_selector(f"#export-{fmt}", "a => a.href")
        response = page.request.get(href)
        assert response.status == 200
        assert "attachment" in response.headers["content-disposition"]
        body = response.text()
        stamp = _generated(body, fmt)
        pinned = expected.model_copy(update={"generated": stamp})
        assert body == export_report(pinned, fmt)


def _generated(body: str, fmt: str) -> str:
    """The generation time a report export carries (pinned before comparing; the Markdown
    shows it to the minute)."""
    if fmt == "json":
        stamp: str = json.loads(body)["generated"]
        return stamp
    if fmt == "html":
        found = re.search(r'<time datetime="([^"]+)">', body)
        assert found
        return found.group(1)
    label = re.search(r"Generated: (\d{4}-\d\d-\d\d) (\d\d:\d\d) UTC", body)
    assert label
    return f"{label.group(1)}T{label.group(2)}:00+00:00"


def test_bad_requests_get_clear_errors(ui_page: Any, console_server: RunningConsole) -> None:
    response = httpx.get(console_server.ui + "/decision")
    assert response.status_code == 303 and response.headers["location"].endswith("/ui/login")
    login(ui_page, console_server, MASTER)
    bad = quote(json.dumps({"name": "x", "weights": {"cost": -1}}))
    response = ui_page.request.get(f"{console_server.ui}/decision?profile={bad}")
    assert response.status == 400
    assert "weights.cost" in response.text()
    response = ui_page.request.get(f"{console_server.ui}/decision/export.exe")
    assert response.status == 404
    twice = "openai/gpt-4o-mini,meta/llama-3.1-8b,openai/gpt-4o-mini"
    response = ui_page.request.get(f"{console_server.ui}/decision?models={twice}")
    assert response.status == 200 and "2 models" in response.text()  # named twice: once
    response = ui_page.request.get(f"{console_server.ui}/decision?models=nope/unknown")
    assert response.status == 400 and "not in the catalog" in response.text()
    response = ui_page.request.get(f"{console_server.ui}/decision?run=nope")
    assert response.status == 404 and "No evaluation run" in response.text()
