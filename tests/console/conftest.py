"""Shared console fixtures: the gateway with its console on a free loopback port (with a
temporary ``CROSSROADS_HOME``), headless Chromium, and logged-in pages.

- ``console_server``: the running gateway + console (a :class:`RunningConsole`), with the
  OpenAI fake as ``gpt-4o`` and the embedded ``local/smollm2``; ``make_console(text)``
  starts one with another configuration.
- ``chromium``: Debian's Chromium (a failure under CI=true when it is missing).
- ``ui_page``: a fresh page (its own cookies); ``admin_page``: logged in with the master key;
  ``login(page, console_server, key)`` logs a page in with any key.
- ``console_client(console, key)``: an HTTP client logged in (with its CSRF token).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from crossroads.config import parse_config
from crossroads.console import create_app

from ..browser import CHROMIUM_FLAGS, _chromium
from ..conftest import require
from ..fakes.openai_fake import OpenAIFake
from ..gateway_harness import MASTER, RunningGateway, _wait_ready, free_port

__all__ = [
    "MASTER",
    "ConsoleClient",
    "RunningConsole",
    "console_config",
    "login",
    "login_token",
    "run_console",
]


@dataclass
class RunningConsole(RunningGateway):
    home: Path | None = None

    @property
    def ui(self) -> str:
        return self.url + "/ui"


def console_config(fake: OpenAIFake, extra: str = "", gateway: str = "") -> str:
    """A configuration with the OpenAI fake as ``gpt-4o`` (catalog prices apply), a
    ``chat`` route in front of it and the embedded ``local/smollm2`` served; ``gateway``
    adds lines (indented two spaces) to the ``gateway:`` section, ``extra`` top-level
    sections."""
    return f"""gateway:
  serve_unconfigured: [local/smollm2]
{gateway}
models:
  - name: gpt-4o
    backend: openai
    model: gpt-4o
    base_url: {fake.url}/v1
    api_key: ${{CONSOLE_TEST_VENDOR_KEY}}
routes:
  - name: chat
    deployments:
      - model: gpt-4o
{extra}
"""


@contextmanager
def run_console(config_text: str, home: Path) -> Iterator[RunningConsole]:
    """The gateway with its console, in a thread of this process, on a free port."""
    names = ("CROSSROADS_HOME", "CROSSROADS_MASTER_KEY", "CONSOLE_TEST_VENDOR_KEY")
    previous = {k: os.environ.get(k) for k in names}
    os.environ["CONSOLE_TEST_VENDOR_KEY"] = "test-key"
    os.environ["CROSSROADS_HOME"] = str(home)
    os.environ["CROSSROADS_MASTER_KEY"] = MASTER
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(parse_config(config_text, "test-console.yaml")),
            host="127.0.0.1", port=port, log_level="warning", access_log=False, ws="none",
            timeout_graceful_shutdown=5,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    running = RunningConsole(
        f"http://127.0.0.1:{port}", server=server, thread=thread, home=home,
        database_url=f"sqlite:///{home / 'crossroads.db'}",
    )
    try:
        _wait_ready(running.url)
        yield running
    finally:
        running.stop()
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture
def make_console(tmp_path: Path) -> Iterator[Callable[[str], RunningConsole]]:
    """Start a console with the given configuration text (stopped after the test)."""
    stack: list[Any] = []

    def start(config_text: str) -> RunningConsole:
        home = tmp_path / f"home{len(stack)}"
        home.mkdir()
        manager = run_console(config_text, home)
        running = manager.__enter__()
        stack.append(manager)
        return running

    yield start
    for manager in reversed(stack):
        manager.__exit__(None, None, None)


@pytest.fixture
def console_server(
    make_console: Callable[[str], RunningConsole], openai_fake: OpenAIFake
) -> RunningConsole:
    return make_console(console_config(openai_fake))


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Per module: Playwright's sync API keeps an event loop running in this thread while
    it is open, and later tests call ``asyncio.run``."""
    sync_api = require("playwright.sync_api", "pip install pytest-playwright")
    executable = _chromium()
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def ui_page(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    yield page
    context.close()


def login(page: Any, console: RunningConsole, key: str) -> None:
    """Log ``page`` in to ``console`` with ``key`` through the login form."""
    page.goto(console.ui + "/login")
    page.get_by_label("Key").fill(key)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/ui/playground")


@dataclass
class ConsoleClient:
    """An HTTP client logged in to the console, with its session's CSRF token."""

    http: httpx.Client
    csrf: str


def login_token(client: httpx.Client) -> str:
    """The pre-login token of a fresh login form."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert found is not None
    return found[1]


@pytest.fixture
def console_client() -> Iterator[Callable[..., Any]]:
    """``console_client(console, key)``: a :class:`ConsoleClient` logged in with ``key``
    (``key=None``: not logged in; ``csrf`` is then empty). Closed after the test."""
    opened: list[httpx.Client] = []

    def open_client(console: RunningConsole, key: str | None,
                    **options: Any) -> ConsoleClient:
        client = httpx.Client(base_url=console.ui, timeout=30, **options)
        opened.append(client)
        if key is None:
            return ConsoleClient(client, "")
        answer = client.post("/login", data={"key": key, "csrf_token": login_token(client)})
        assert answer.status_code == 303, answer.text
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/logs").text)
        assert csrf is not None
        return ConsoleClient(client, csrf[1])

    yield open_client
    for client in opened:
        client.close()


@pytest.fixture
def admin_page(ui_page: Any, console_server: RunningConsole) -> Any:
    login(ui_page, console_server, MASTER)
    return ui_page
