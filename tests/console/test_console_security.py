"""The console as an attacker meets it: XSS payloads stay text, CSRF, one key's session
against another key's data, the login rate limit, the cookie's flags."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import create_engine, text

from ..fakes.openai_fake import OpenAIFake
from ..fakes.server import Reply
from .conftest import MASTER, RunningConsole, console_config, login, login_token

PAYLOAD = (
    '<script>alert("s")</script><img src=x onerror=alert("i")>'
    '<a href="javascript:alert(\'j\')">click</a>'
)


def ledger_count(console: RunningConsole) -> int:
    engine = create_engine(console.database_url or "")
    with engine.connect() as conn:
        count = int(conn.execute(text("SELECT count(*) FROM usage_ledger")).scalar_one())
    engine.dispose()
    return count


def test_xss_payloads_in_answer_prompt_and_key_name_stay_text(
    ui_page: Any, make_console: Callable[[str], RunningConsole], openai_fake: OpenAIFake
) -> None:
    console = make_console(console_config(openai_fake, gateway="  store_bodies: true\n"))
    console.create_key(PAYLOAD)
    page = ui_page
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    login(page, console, MASTER)
    openai_fake.replies.append(Reply(text=PAYLOAD))
    page.get_by_label("Model 1").select_option("gpt-4o")
    page.get_by_label("Model 2").select_option("")
    page.get_by_label("User message").fill(PAYLOAD)
    page.get_by_role("button", name="Send to all").click()
    pane = page.locator("article.pane[data-done]")
    pane.wait_for()
    assert pane.locator("[data-role=answer]").inner_text() == PAYLOAD
    # The keys page, the logs and a request's detail (with its stored bodies).
    page.get_by_role("link", name="Keys").click()
    assert page.locator("tbody tr td").first.inner_text() == PAYLOAD
    page.get_by_role("link", name="Logs").click()
    page.locator("table.logs tbody tr a").first.click()
    bodies = page.locator("pre.body").all_inner_texts()
    assert any(PAYLOAD.replace('"', '\\"') in b for b in bodies)  # JSON-escaped quotes
    for where in ("/playground", "/keys", "/logs"):
        if where != "/playground":
            page.goto(console.ui + where)
        assert page.locator("main script, main img, main a[href^='javascript']").count() == 0
    page.goto(page.url)  # detail page again
    assert page.locator("main script, main img, main a[href^='javascript']").count() == 0
    assert dialogs == []


def test_state_changing_requests_without_the_csrf_token_are_refused(
    console_server: RunningConsole, openai_fake: OpenAIFake, console_client: Any
) -> None:
    logged_in = console_client(console_server, MASTER)
    client, token = logged_in.http, logged_in.csrf
    openai_fake.requests.clear()
    before = ledger_count(console_server)
    refused = [
        client.post("/keys", data={"name": "sneaky"}),
        client.post("/keys", data={"name": "sneaky", "csrf_token": "wrong"}),
        client.post("/api/chat", json={"model": "gpt-4o", "user": "hi"}),
        client.post("/api/suite", json={"user": "hi"}),
        client.post("/logout"),
    ]
    assert [r.status_code for r in refused] == [403] * 5
    assert "CSRF" in refused[0].text
    keys = httpx.get(console_server.url + "/admin/keys",
                     headers={"Authorization": f"Bearer {MASTER}"}).json()["data"]
    assert [k["name"] for k in keys] == []
    assert openai_fake.requests == [] and ledger_count(console_server) == before
    assert client.get("/keys").status_code == 200  # still logged in (logout was refused)
    # With the token, the same requests go through.
    assert client.post("/keys", data={"name": "fine", "csrf_token": token}).status_code == 201


def test_a_key_session_sees_only_its_own_requests(
    console_server: RunningConsole, openai_fake: OpenAIFake, console_client: Any
) -> None:
    alice = console_server.create_key("alice")
    bob = console_server.create_key("bob")
    ids = {}
    for name, key in (("alice", alice), ("bob", bob)):
        response = httpx.post(console_server.v1 + "/chat/completions",
                              headers={"Authorization": f"Bearer {key}"},
                              json={"model": "gpt-4o",
                                    "messages": [{"role": "user", "content": "x"}]})
        assert response.status_code == 200
        ids[name] = response.headers["x-request-id"]
    client = console_client(console_server, alice).http
    logs = client.get("/logs").text
    assert ids["alice"] in logs and ids["bob"] not in logs and "bob" not in logs
    assert client.get(f"/logs/{ids['alice']}").status_code == 200
    assert client.get(f"/logs/{ids['bob']}").status_code == 404
    assert client.get(f"/api/calls/{ids['bob']}").status_code == 404
    assert client.get("/keys").status_code == 403  # master-only page
    assert "Keys" not in re.findall(r'<nav aria-label="Console pages">(.*?)</nav>', logs, re.S)[0]


def test_failed_logins_are_rate_limited_per_address(
    console_server: RunningConsole, console_client: Any
) -> None:
    client = console_client(console_server, None).http

    def attempt(key: str) -> httpx.Response:
        return client.post("/login", data={"key": key, "csrf_token": login_token(client)})

    statuses = [attempt("sk-cr-wrong").status_code for _ in range(5)]
    assert statuses == [401] * 5
    blocked = attempt(MASTER)  # even the right key waits
    assert blocked.status_code == 429
    wait = int(blocked.headers["retry-after"])
    assert 0 < wait <= 300
    assert f"try again in {wait} s" in blocked.text
    assert "crossroads_session" not in client.cookies


def test_session_cookie_flags(
    ui_page: Any, console_server: RunningConsole, console_client: Any
) -> None:
    login(ui_page, console_server, MASTER)
    cookies = {c["name"]: c for c in ui_page.context.cookies()}
    session = cookies["crossroads_session"]
    assert session["httpOnly"] is True and session["sameSite"] == "Strict"
    assert session["path"] == "/ui" and session["secure"] is False  # plain http on loopback
    assert MASTER not in session["value"]
    assert MASTER not in ui_page.content() and MASTER not in ui_page.url
    # Under TLS (here: a TLS-terminating proxy on loopback says so), the cookie is Secure.
    client = console_client(console_server, None, headers={"x-forwarded-proto": "https"}).http
    form = client.get("/login")
    assert "; secure" in form.headers["set-cookie"].lower()  # the pre-login token too
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token is not None
    # httpx keeps Secure cookies for https URLs only: hand the pre-login cookie back.
    answer = client.post("/login", data={"key": MASTER, "csrf_token": token[1]},
                         headers={"cookie": f"crossroads_login={token[1]}"})
    assert answer.status_code == 303
    flags = answer.headers["set-cookie"].lower()
    assert "crossroads_session=" in flags and "; secure" in flags and "samesite=strict" in flags
