"""The console's frame: login, logout, navigation, headers on every page."""

from __future__ import annotations

from typing import Any

import httpx

from .conftest import MASTER, RunningConsole, login


def test_login_with_master_key_shows_every_page(
    ui_page: Any, console_server: RunningConsole
) -> None:
    page = ui_page
    page.goto(console_server.ui + "/keys")
    assert page.url.endswith("/ui/login")  # not logged in: sent to the login form
    login(page, console_server, MASTER)
    nav = page.get_by_role("navigation", name="Console pages")
    labels = [a.inner_text() for a in nav.get_by_role("link").all()]
    assert labels == ["Playground", "Evaluations", "Decision", "Usage", "Keys", "Logs"]
    assert page.get_by_text("master key").is_visible()
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/ui/login")
    page.goto(console_server.ui + "/keys")
    assert page.url.endswith("/ui/login")


def test_every_console_response_has_the_security_headers(console_server: RunningConsole) -> None:
    for path in ("/login", "/playground", "/static/console.js", "/nope"):
        response = httpx.get(console_server.ui + path)
        csp = response.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp
        assert "unsafe-inline" not in csp and "http" not in csp
        assert "frame-ancestors 'none'" in csp
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"


def test_templates_and_scripts_keep_data_as_text() -> None:
    """No inline script, no `|safe`, no innerHTML / eval in the console's own code; the
    vendored htmx ships with its licence and pinned version."""
    import re
    from importlib import resources

    package = resources.files("crossroads.console")
    templates = [t for t in (package / "templates").iterdir() if t.name.endswith(".html")]
    assert templates
    for template in templates:
        source = template.read_text(encoding="utf-8")
        assert "|safe" not in source.replace(" ", ""), template.name
        assert "autoescape false" not in source, template.name
        for tag in re.findall(r"<script\b[^>]*>", source):
            assert "src=" in tag, f"{template.name}: inline script {tag}"
        assert not re.search(r"\son[a-z]+=", source), f"{template.name}: inline handler"
        assert "style=" not in source, f"{template.name}: inline style"
    scripts = [s for s in (package / "static").iterdir() if s.name.endswith(".js")]
    assert scripts
    for script in scripts:
        source = script.read_text(encoding="utf-8")
        for banned in ("innerHTML", "outerHTML", "insertAdjacentHTML", "eval(",
                       "new Function", "document.write"):
            assert banned not in source, f"{script.name}: {banned}"
    vendor = package / "static" / "vendor"
    assert (vendor / "htmx.LICENSE").read_text().startswith("Zero-Clause BSD")
    assert "2.0.11" in (vendor / "README.md").read_text()
    assert (vendor / "htmx.min.js").read_text().startswith("var htmx=function()")
