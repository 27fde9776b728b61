"""The Usage page: the playground's spend shows up there (Chromium), a virtual key sees
only its own key's usage whatever the URL asks, and the CSV export (formula-safe)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

import httpx

from ..fakes.openai_fake import OpenAIFake
from ..fakes.server import Reply
from .conftest import MASTER, RunningConsole, login

# gpt-4o at the catalog's list price: $2.50 in, $10 out per 1M tokens.
COST_1000_1000 = "$0.0125"


def chat(console: RunningConsole, key: str) -> httpx.Response:
    response = httpx.post(
        console.v1 + "/chat/completions", headers={"Authorization": f"Bearer {key}"},
        json={"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]}, timeout=30,
    )
    assert response.status_code == 200, response.text
    return response


def key_ids(console: RunningConsole) -> dict[str, str]:
    keys = httpx.get(console.url + "/admin/keys",
                     headers={"Authorization": f"Bearer {MASTER}"}).json()["data"]
    return {k["name"]: k["id"] for k in keys}


def test_the_playground_spend_shows_on_the_usage_page(
    ui_page: Any, console_server: RunningConsole, openai_fake: OpenAIFake
) -> None:
    alice = console_server.create_key("alice")
    bob = console_server.create_key("bob")
    openai_fake.replies.append(Reply(prompt_tokens=500, completion_tokens=500))
    chat(console_server, bob)
    page = ui_page
    login(page, console_server, alice)
    openai_fake.replies.append(Reply(text="Hello.", prompt_tokens=1000, completion_tokens=1000))
    page.get_by_label("Model 1").select_option("gpt-4o")
    page.get_by_label("Model 2").select_option("")
    page.get_by_label("User message").fill("Say hello.")
    page.get_by_role("button", name="Send to all").click()
    page.locator("article.pane[data-done]").wait_for()
    page.get_by_role("link", name="Usage").click()
    rows = page.locator("table.usage tbody tr")
    assert rows.count() == 1  # alice's own usage only
    cells = rows.first.locator("td").all_inner_texts()
    assert cells[0] == "alice" and cells[1] == "1"
    assert cells[3] == "1000 / 1000" and cells[4] == COST_1000_1000
    assert "bob" not in page.locator("main").inner_text()
    # Grouped by model, and the chart has one bar with an accessible title.
    page.get_by_label("Group by").select_option("model")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url("**/ui/usage?by=model*")
    assert page.locator("table.usage tbody tr td").first.inner_text() == "gpt-4o"
    assert page.locator("svg.usage-chart rect.usage-bar").count() == 1
    assert page.get_by_role("img", name="Cost (US$) per model").is_visible()


def test_the_master_key_sees_every_key_and_can_pick_one(
    admin_page: Any, console_server: RunningConsole, openai_fake: OpenAIFake
) -> None:
    for name in ("alice", "bob"):
        key = console_server.create_key(name)
        openai_fake.replies.append(Reply(prompt_tokens=1000, completion_tokens=1000))
        chat(console_server, key)
    page = admin_page
    page.get_by_role("link", name="Usage").click()
    labels = page.locator("table.usage tbody tr td:first-child").all_inner_texts()
    assert sorted(labels) == ["alice", "bob"]
    page.get_by_label("Key", exact=True).select_option(label="bob")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url("**key=*")
    assert page.locator("table.usage tbody tr td:first-child").all_inner_texts() == ["bob"]


def test_a_key_session_cannot_see_another_keys_usage(
    console_server: RunningConsole, openai_fake: OpenAIFake, console_client: Any
) -> None:
    alice = console_server.create_key("alice")
    bob = console_server.create_key("bob-secret-team")
    chat(console_server, alice)
    chat(console_server, bob)
    chat(console_server, MASTER)
    ids = key_ids(console_server)
    client = console_client(console_server, alice).http
    for query in ("", f"?key={ids['bob-secret-team']}", "?key=master", "?key=",
                  "?by=model&key=" + ids["bob-secret-team"]):
        page = client.get("/usage" + query)
        assert page.status_code == 200
        assert "bob-secret-team" not in page.text and "(master key)" not in page.text
        assert page.text.count('<tr data-group=') == 1
        exported = client.get("/usage.csv" + query)
        rows = list(csv.DictReader(io.StringIO(exported.text)))
        assert len(rows) == 1 and rows[0]["requests"] == "1"
        assert "bob" not in exported.text
    # The master key's view has all three.
    admin = console_client(console_server, MASTER).http
    assert admin.get("/usage").text.count('<tr data-group=') == 3


def test_csv_export_has_the_figures_and_no_formulas(
    console_server: RunningConsole, openai_fake: OpenAIFake, console_client: Any
) -> None:
    evil = console_server.create_key("=HYPERLINK(\"http://x\")")
    plus = console_server.create_key("+1-2")
    for key in (evil, plus):
        openai_fake.replies.append(Reply(prompt_tokens=1000, completion_tokens=1000))
        chat(console_server, key)
    client = console_client(console_server, MASTER).http
    today = dt.datetime.now(dt.UTC).date().isoformat()
    answer = client.get(f"/usage.csv?by=key&since={today}&until={today}")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert f'crossroads-usage-key-{today}-{today}.csv' in answer.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert sorted(r["label"] for r in rows) == ["'+1-2", "'=HYPERLINK(\"http://x\")"]
    for r in rows:
        assert r["requests"] == "1" and r["prompt_tokens"] == "1000"
        assert float(r["cost_usd"]) == 0.0125
        assert float(r["p50_latency_s"]) >= 0
    by_day = list(csv.DictReader(io.StringIO(client.get("/usage.csv?by=day").text)))
    assert [(r["day"], r["requests"]) for r in by_day] == [(today, "2")]
    # A day before the range: nothing.
    assert client.get("/usage.csv?since=2020-01-01&until=2020-01-02").text.count("\n") == 1
    # Bad input: a clear error.
    bad = client.get("/usage?since=yesterday")
    assert bad.status_code == 400 and "must be a date like 2026-03-01" in bad.text
    assert client.get("/usage?by=status").status_code == 400
    swapped = client.get("/usage?since=2026-02-02&until=2026-02-01")
    assert swapped.status_code == 400 and "swap" in swapped.text
