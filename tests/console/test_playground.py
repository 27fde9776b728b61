"""The playground in Chromium: two models streamed side by side, figures shown, the
prompt saved to a suite that `crossroads eval` loads."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

from sqlalchemy import create_engine, text

from ..fakes.openai_fake import OpenAIFake
from ..fakes.server import Reply
from .conftest import RunningConsole


def test_two_models_stream_side_by_side_with_figures(
    admin_page: Any, console_server: RunningConsole, openai_fake: OpenAIFake
) -> None:
    page = admin_page
    openai_fake.replies.append(Reply(text="Paris is the capital of France.",
                                     prompt_tokens=21, completion_tokens=9))
    page.get_by_label("Model 1").select_option("gpt-4o")
    page.get_by_label("Model 2").select_option("local/smollm2")
    page.get_by_label("System prompt").fill("Answer briefly.")
    page.get_by_label("User message").fill("What is the capital of France?")
    page.get_by_label("Max tokens").fill("12")
    page.get_by_role("button", name="Send to all").click()
    panes = page.locator("article.pane")
    page.locator("article.pane[data-done]").nth(1).wait_for(timeout=120_000)
    assert panes.count() == 2
    vendor = page.get_by_role("article", name="Answer from gpt-4o")
    local = page.get_by_role("article", name="Answer from local/smollm2")
    assert vendor.locator("[data-role=answer]").inner_text() == "Paris is the capital of France."
    assert local.locator("[data-role=answer]").inner_text().strip() != ""
    assert vendor.locator(".badge").inner_text() == "closed"
    assert local.locator(".badge").inner_text() == "open"
    assert "OpenAI" in vendor.locator(".licence").inner_text()
    assert local.locator(".licence").inner_text() == "Apache-2.0"

    def figures(pane: Any) -> dict[str, str]:
        terms = pane.locator("dl.figures dt").all_inner_texts()
        values = pane.locator("dl.figures dd").all_inner_texts()
        return dict(zip(terms, values, strict=True))

    v, loc = figures(vendor), figures(local)
    assert v["Status"] == "done" and loc["Status"] == "done"
    assert v["Tokens in"] == "21" and v["Tokens out"] == "9"
    assert v["Time to first token"].endswith(" s")
    # gpt-4o at the catalog's list price ($2.50 in, $10 out per 1M tokens)
    assert v["Cost"] == f"${(21 * 2.5 + 9 * 10) / 1e6:.6f} (vendor price)"
    assert loc["Cost"] == "$0.0000 (self-hosted, this machine)"
    assert int(loc["Tokens out"]) > 0
    assert v["Guard"] == "nothing redacted or blocked"
    # The vendor received the conversation, as the gateway sends it.
    sent = openai_fake.requests[-1].body
    assert sent["messages"][0] == {"role": "system", "content": "Answer briefly."}
    # Both calls are in the ledger like any gateway call, made by the master key.
    engine = create_engine(console_server.database_url or "")
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT model, key_name, status, endpoint FROM usage_ledger"))
        found = sorted(tuple(r) for r in rows)
    engine.dispose()
    assert found == [("gpt-4o", "master", 200, "/ui/api/chat"),
                     ("local/smollm2", "master", 200, "/ui/api/chat")]


def test_add_to_suite_writes_a_file_crossroads_eval_loads(
    admin_page: Any, console_server: RunningConsole
) -> None:
    page = admin_page
    page.get_by_label("System prompt").fill("Answer with one word.")
    page.get_by_label("User message").fill("What is the capital of Japan?")
    page.get_by_label("Suite name").fill("capitals")
    page.get_by_label("Expected answer (optional)").fill("Tokyo")
    page.get_by_role("button", name="Add to suite").click()
    status = page.get_by_role("status")
    status.filter(has_text="Saved").wait_for()
    assert console_server.home is not None
    path = console_server.home / "suites" / "capitals.yaml"
    assert str(path) in status.inner_text()
    # `crossroads eval` reads it: the item renders to the same conversation.
    check = (
        "import sys, json; from crossroads.evals.suite import load_suite; "
        "s = load_suite(sys.argv[1]); "
        "print(json.dumps([s.name, [i.expected for i in s.items], s.render(s.items[0])]))"
    )
    out = subprocess.run([sys.executable, "-c", check, str(path)], capture_output=True,
                         text=True, check=True)
    name, expected, messages = json.loads(out.stdout)
    assert name == "capitals" and expected == ["Tokyo"]
    assert messages == [{"role": "system", "content": "Answer with one word."},
                        {"role": "user", "content": "What is the capital of Japan?"}]
    # A bad name is refused with a clear message, and nothing is written.
    page.get_by_label("Suite name").fill("../etc")
    page.get_by_role("button", name="Add to suite").click()
    assert "use 1–64 lowercase letters" in _status_after(page, "Suite name")
    assert sorted(p.name for p in path.parent.iterdir()) == ["capitals.yaml"]


def _status_after(page: Any, _label: str) -> str:
    status = page.locator("#suite-status.error")
    status.wait_for()
    return str(status.inner_text())


def test_playground_api_refuses_a_model_outside_the_keys_allow_list(
    console_server: RunningConsole, console_client: Any
) -> None:
    key = console_server.create_key("limited", models=["gpt-4o"])
    client = console_client(console_server, key)
    page = client.http.get("/playground").text
    assert re.search(r'<option value="local/smollm2"[^>]* disabled', page)
    answer = client.http.post("/api/chat", headers={"x-csrf-token": client.csrf},
                              json={"model": "local/smollm2", "user": "hi"})
    assert answer.status_code == 403
    assert "may not use 'local/smollm2'" in answer.json()["error"]["message"]
    # Saving to a suite writes a file on the server: the master key only.
    assert "Add to suite" not in page
    saved = client.http.post("/api/suite", headers={"x-csrf-token": client.csrf},
                             json={"user": "hi"})
    assert saved.status_code == 403
    assert not (console_server.home / "suites").exists()  # type: ignore[operator]

