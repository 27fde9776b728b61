"""Keys and logs pages in Chromium: create and revoke a key (the API then refuses it),
spend against budget, the request log and its detail, the audit chain from the UI."""

from __future__ import annotations

from typing import Any

import httpx

from ..fakes.openai_fake import OpenAIFake
from ..fakes.server import Reply
from .conftest import RunningConsole


def chat(console: RunningConsole, key: str, text: str = "hi") -> httpx.Response:
    return httpx.post(
        console.v1 + "/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={"model": "gpt-4o", "messages": [{"role": "user", "content": text}]},
        timeout=30,
    )


def test_create_then_revoke_a_key(
    admin_page: Any, console_server: RunningConsole, openai_fake: OpenAIFake
) -> None:
    page = admin_page
    page.get_by_role("link", name="Keys").click()
    page.get_by_label("Name").fill("team-a")
    page.get_by_label("Budget (US$)").fill("5")
    page.get_by_label("Requests per minute").fill("60")
    page.get_by_label("Allowed models (comma-separated; empty = all)").fill("gpt-4o, chat")
    page.get_by_role("button", name="Create key").click()
    shown = page.get_by_label("The new key")
    raw = shown.inner_text().strip()
    assert raw.startswith("sk-cr-")
    assert page.get_by_role("button", name="Copy key").is_visible()
    # The key works against the API, within its allow-list.
    openai_fake.replies.append(Reply(prompt_tokens=1000, completion_tokens=1000))
    assert chat(console_server, raw).status_code == 200
    row = page.locator("tr[data-key='team-a']")
    page.goto(console_server.ui + "/keys")  # shown once: not on the page again
    assert page.get_by_label("The new key").count() == 0
    assert raw not in page.content()
    cells = row.locator("td").all_inner_texts()
    assert cells[2] == "active"
    assert cells[3].startswith("$0.0125 / $5.00")  # 1000 in × $2.50 + 1000 out × $10 per 1M
    assert cells[4] == "60" and cells[6] == "gpt-4o, chat"
    page.get_by_role("button", name="Revoke team-a").click()
    page.get_by_text("Revoked the key team-a").wait_for()
    assert row.locator("td").nth(2).inner_text() == "revoked"
    refused = chat(console_server, raw)
    assert refused.status_code == 401
    assert "revoked" in refused.json()["error"]["message"]


def test_invalid_key_settings_are_refused_with_the_reason(
    admin_page: Any, console_server: RunningConsole
) -> None:
    page = admin_page
    page.goto(console_server.ui + "/keys")
    page.get_by_label("Name").fill("bad-expiry")
    page.get_by_label("Expires (UTC)").fill("2001-01-01T00:00")
    page.get_by_role("button", name="Create key").click()
    alert = page.get_by_role("alert")
    assert "past" in alert.inner_text() or "expir" in alert.inner_text()
    assert page.locator("tr[data-key='bad-expiry']").count() == 0


def test_logs_list_detail_and_audit(
    admin_page: Any, console_server: RunningConsole, openai_fake: OpenAIFake
) -> None:
    key = console_server.create_key("reader")
    openai_fake.replies.append(Reply(text="logged answer", prompt_tokens=5, completion_tokens=2))
    response = chat(console_server, key)
    request_id = response.headers["x-request-id"]
    page = admin_page
    page.get_by_role("link", name="Logs").click()
    first = page.locator("table.logs tbody tr").first
    cells = first.locator("td").all_inner_texts()
    assert cells[1] == "reader" and cells[2] == "gpt-4o" and cells[4] == "200"
    assert cells[6] == "5 / 2"
    page.get_by_role("link", name=f"Detail of request {request_id}").click()
    assert page.get_by_role("heading", level=1).inner_text() == f"Request {request_id}"
    assert "gateway.store_bodies is off" in page.locator("main").inner_text()
    page.go_back()
    page.get_by_role("button", name="Verify the audit chain").click()
    result = page.locator("#audit-result p")
    result.wait_for()
    assert result.inner_text().startswith("OK: ")
