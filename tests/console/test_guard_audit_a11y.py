"""Guard decisions in a playground pane, a broken audit chain named from the UI, and
pages usable with a keyboard and named controls."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import create_engine, text

from ..fakes.openai_fake import OpenAIFake
from ..fakes.server import Reply
from .conftest import MASTER, RunningConsole, console_config, login

GUARDED = """
guardrails:
  policies:
    - name: default
      applies_to: {keys: ["*"], models: ["*"]}
      input:
        - {check: pii, action: redact}
"""


def test_a_pane_shows_what_the_guardrails_redacted(
    ui_page: Any, make_console: Callable[[str], RunningConsole], openai_fake: OpenAIFake
) -> None:
    console = make_console(console_config(openai_fake, extra=GUARDED))
    login(ui_page, console, MASTER)
    openai_fake.replies.append(Reply(text="Noted."))
    ui_page.get_by_label("Model 1").select_option("gpt-4o")
    ui_page.get_by_label("Model 2").select_option("")
    ui_page.get_by_label("User message").fill("Mail jane.doe@example.com about it.")
    ui_page.get_by_role("button", name="Send to all").click()
    pane = ui_page.locator("article.pane[data-done]")
    pane.wait_for()
    terms = pane.locator("dl.figures dt").all_inner_texts()
    guard = pane.locator("dl.figures dd").nth(terms.index("Guard")).inner_text()
    assert guard.startswith("redact ") and "(input, pii)" in guard
    sent = openai_fake.requests[-1].body["messages"][-1]["content"]
    assert "jane.doe@example.com" not in sent  # what the pane says happened, happened


def test_the_ui_names_the_first_broken_audit_record(
    admin_page: Any, console_server: RunningConsole, openai_fake: OpenAIFake
) -> None:
    key = console_server.create_key("audited")
    for _ in range(3):
        assert httpx.post(console_server.v1 + "/chat/completions",
                          headers={"Authorization": f"Bearer {key}"},
                          json={"model": "gpt-4o",
                                "messages": [{"role": "user", "content": "x"}]}).status_code == 200
    engine = create_engine(console_server.database_url or "")
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET payload = '{\"edited\": 1}' WHERE seq = 2"))
    engine.dispose()
    admin_page.goto(console_server.ui + "/logs")
    admin_page.get_by_role("button", name="Verify the audit chain").click()
    result = admin_page.locator("#audit-result p")
    result.wait_for()
    assert result.inner_text().startswith("BROKEN at record 2: edited")


def test_every_control_has_an_accessible_name_and_the_keyboard_works(
    admin_page: Any, console_server: RunningConsole
) -> None:
    page = admin_page
    for path in ("/playground", "/keys", "/logs", "/evaluations", "/decision", "/usage"):
        page.goto(console_server.ui + path)
        controls = page.locator(
            "input:not([type=hidden]), select, textarea, button, a[href], meter"
        )
        assert controls.count() > 0
        for i in range(controls.count()):
            control = controls.nth(i)
            role = control.evaluate("e => e.tagName.toLowerCase()")
            name = control.evaluate(
                "e => (e.labels && e.labels.length ? e.labels[0].textContent : '')"
                " || e.getAttribute('aria-label') || e.textContent"
            )
            assert name.strip(), f"{path}: a {role} without an accessible name"
    # The first Tab reaches "Skip to content", which moves focus to the page's content.
    page.goto(console_server.ui + "/keys")
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("() => document.activeElement.id") == "main"
    # A key can be created with the keyboard alone.
    page.get_by_label("Name").focus()
    page.keyboard.type("keyboard-made")
    page.keyboard.press("Enter")
    assert page.get_by_label("The new key").inner_text().startswith("sk-cr-")
