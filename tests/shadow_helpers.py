"""Shared pieces of the shadow tests: two loopback OpenAI fakes with known answers (the
production model and a candidate that agrees on a known share of the prompts) and a
wait for the shadow run to reach a number of items."""

from __future__ import annotations

import re
import time
from typing import Any

from crossroads.evals.results import list_runs, load_run
from crossroads.store import open_database

from .fakes.server import Reply

QUESTION = "question {n}: what is the answer?"


def number(body: Any) -> int:
    text = body["messages"][-1]["content"]
    found = re.search(r"question (\d+)", text if isinstance(text, str) else str(text))
    return int(found.group(1)) if found else -1


def production_reply(body: Any) -> Reply:
    return Reply(text=f"answer {number(body)}", prompt_tokens=20, completion_tokens=5)


def candidate_reply(body: Any) -> Reply:
    """Agrees with production except on every fourth question (known share: 0.75)."""
    n = number(body)
    text = f"answer {n}" if n % 4 != 0 else f"no idea about {n}"
    return Reply(text=text, prompt_tokens=20, completion_tokens=5)


def config(prod_url: str, cand_url: str, rule: str, *, extra: str = "") -> str:
    return f"""
models:
  - name: prod
    backend: openai
    model: gpt-4o-mini
    base_url: {prod_url}/v1
    max_retries: 0
    prices: {{input: 1.0, output: 2.0}}
  - name: cand
    backend: openai
    model: meta/llama-3.1-8b
    base_url: {cand_url}/v1
    max_retries: 0
    timeout: 30
    prices: {{input: 100.0, output: 100.0}}
shadow:
{rule}
{extra}
"""


def wait_for_items(
    database_url: str, suite: str, n: int, timeout_s: float = 60.0
) -> dict[str, Any]:
    """The run of ``suite`` once it holds ``n`` items (fails after ``timeout_s``: a
    deadline for a background task, not a speed assertion)."""
    deadline = time.monotonic() + timeout_s
    data: dict[str, Any] = {}
    with open_database(url=database_url) as db:
        while time.monotonic() < deadline:
            runs = [r for r in list_runs(db) if r["suite"] == suite]
            if runs:
                data = load_run(db, runs[0]["id"])
                if len(data["items"]) >= n:
                    return data
            time.sleep(0.05)
    found = len(data.get("items", []))
    raise AssertionError(f"the shadow run of {suite} has {found} items, expected {n}")
