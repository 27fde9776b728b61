"""Screenshots of the console's pages, checked to show something (not a blank page).

`CROSSROADS_SCREENSHOTS=docs/ui pytest tests/console/test_screenshots.py` writes them to
docs/ui/ (the README shows one); otherwise they go to a temporary folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..browser import _png_pixels
from ..fakes.openai_fake import OpenAIFake
from ..fakes.server import Reply
from .conftest import RunningConsole


def _folder(tmp_path: Path) -> Path:
    target = os.environ.get("CROSSROADS_SCREENSHOTS")
    folder = Path(target) if target else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _distinct_rows(png: bytes) -> int:
    """How many different pixel rows the image has (a blank page has one)."""
    _width, height, data = _png_pixels(png)
    stride = len(data) // height
    return len({data[i * stride + 1 : (i + 1) * stride] for i in range(height)})


def shoot(page: Any, folder: Path, name: str) -> None:
    png = page.screenshot(full_page=False)
    assert _distinct_rows(png) > 50, f"{name}: the page looks blank"
    (folder / f"{name}.png").write_bytes(png)


def test_screenshots_of_the_console(
    admin_page: Any, console_server: RunningConsole, openai_fake: OpenAIFake, tmp_path: Path
) -> None:
    folder = _folder(tmp_path)
    page = admin_page
    console_server.create_key("analytics-team", budget_usd=25, rpm=120, models=["chat"])
    console_server.create_key("support-bot", budget_usd=5)
    openai_fake.replies.append(Reply(
        text="The three primary colours of light are red, green and blue.",
        prompt_tokens=24, completion_tokens=14,
    ))
    page.get_by_label("Model 1").select_option("gpt-4o")
    page.get_by_label("Model 2").select_option("local/smollm2")
    page.get_by_label("System prompt").fill("Answer in one sentence.")
    page.get_by_label("User message").fill("What are the three primary colours of light?")
    page.get_by_label("Max tokens").fill("24")
    page.get_by_role("button", name="Send to all").click()
    page.locator("article.pane[data-done]").nth(1).wait_for(timeout=120_000)
    shoot(page, folder, "playground")
    page.get_by_role("link", name="Keys").click()
    shoot(page, folder, "keys")
    page.get_by_role("link", name="Logs").click()
    page.get_by_role("button", name="Verify the audit chain").click()
    page.locator("#audit-result p").wait_for()
    shoot(page, folder, "logs")
    page.get_by_role("link", name="Usage").click()
    page.get_by_label("Group by").select_option("model")
    page.get_by_role("button", name="Show").click()
    page.locator("svg.usage-chart").wait_for()
    shoot(page, folder, "usage")
