"""`crossroads ui` and `crossroads serve` host the console (as a new user runs them)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from ..gateway_harness import MASTER, free_port, start_process
from .conftest import RunningConsole, login

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_crossroads_ui_opens_the_browser_and_answers_offline(
    ui_page: Any, tmp_path: Path
) -> None:
    opened = tmp_path / "opened.txt"
    recorder = tmp_path / "browser.py"
    recorder.write_text(
        "import sys, pathlib\n"
        f"pathlib.Path({str(opened)!r}).write_text(sys.argv[1])\n"
    )
    port = free_port()
    log = tmp_path / "ui.log"
    env = {**os.environ, "CROSSROADS_HOME": str(tmp_path / "home"),
           "BROWSER": f"{sys.executable} {recorder} %s"}
    env.pop("CROSSROADS_MASTER_KEY", None)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "crossroads", "ui", "--open", "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp_path,
        )
    try:
        deadline = time.monotonic() + 60
        while not opened.exists() and time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            time.sleep(0.1)
        assert opened.read_text() == f"http://127.0.0.1:{port}/ui/"
        printed = log.read_text()
        key = re.search(r"Master key for this run \(log in with it; shown only now\): (\S+)",
                        printed)
        assert key is not None, printed
        assert printed.count(key[1]) == 1
        console = RunningConsole(f"http://127.0.0.1:{port}")
        login(ui_page, console, key[1])
        ui_page.get_by_label("Model 1").select_option("local/smollm2")
        ui_page.get_by_label("Model 2").select_option("")
        ui_page.get_by_label("User message").fill("Say hello.")
        ui_page.get_by_label("Max tokens").fill("8")
        ui_page.get_by_role("button", name="Send to all").click()
        pane = ui_page.locator("article.pane[data-done]")
        pane.wait_for(timeout=120_000)
        assert pane.locator("[data-role=answer]").inner_text().strip() != ""
        assert pane.locator("dl.figures dd").first.inner_text() == "done"
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert key[1] not in log.read_text().replace(printed, "")  # never logged again


def test_crossroads_serve_hosts_the_console_behind_the_master_key(tmp_path: Path) -> None:
    running = start_process(EXAMPLES / "gateway.yaml", tmp_path / "serve.log",
                            env={"CROSSROADS_HOME": str(tmp_path)})
    try:
        with httpx.Client(base_url=running.url + "/ui") as client:
            assert client.get("/playground").status_code == 303  # to the login form
            form = client.get("/login").text
            token = re.search(r'name="csrf_token" value="([^"]+)"', form)
            assert token is not None
            answer = client.post("/login", data={"key": MASTER, "csrf_token": token[1]})
            assert answer.status_code == 303
            page = client.get("/playground")
            assert page.status_code == 200 and "Log out" in page.text
            assert '<option value="chat"' in page.text
    finally:
        running.stop()
    assert MASTER not in (tmp_path / "serve.log").read_text()


def test_serve_hosts_the_console_unless_told_not_to(
    monkeypatch: Any, tmp_path: Path
) -> None:
    """The factory `crossroads serve` hands uvicorn: the console's, or the bare gateway's
    with --no-console; more than one worker is warned about."""
    import uvicorn
    from typer.testing import CliRunner

    from crossroads.cli.app import app
    from crossroads.console.app import app_from_env

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda target, **kw: calls.append({"app": target, **kw}))
    config = tmp_path / "crossroads.yaml"
    config.write_text("models: []\n")
    runner = CliRunner()
    assert runner.invoke(app, ["serve", "-c", str(config)]).exit_code == 0
    assert runner.invoke(app, ["serve", "-c", str(config), "--no-console"]).exit_code == 0
    many = runner.invoke(app, ["serve", "-c", str(config), "--workers", "2"])
    assert [c["app"] for c in calls] == ["crossroads.console.app:app_from_env",
                                        "crossroads.gateway.app:app_from_env",
                                        "crossroads.console.app:app_from_env"]
    assert all(c["factory"] is True for c in calls)
    assert "console sessions live in one worker process" in many.stderr
    # The factory builds the gateway with /ui mounted.
    monkeypatch.setenv("CROSSROADS_CONFIG", str(config))
    paths = [getattr(route, "path", "") for route in app_from_env().routes]
    assert "/ui" in paths and "/v1/chat/completions" in paths
