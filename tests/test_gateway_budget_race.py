"""Budgets hold when the prompt is larger than it looks (issue 15, item 7).

Two `crossroads serve` replicas share PostgreSQL (the ledger) and Redis (reservations).
A key with a $0.60 budget sends 200 requests at once, spread over both replicas, to an
upstream that bills the prompt as a byte-level tokenizer would at worst — one token per
UTF-8 byte of every text it receives plus each message's template overhead, plus a tool
preamble — far more than ``chars // 4`` suggests: short English, Japanese text, a tool
schema, and an Anthropic request with a system prompt. What the ledger holds is at most
the budget plus one request's maximum, and is exactly what the upstream billed.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response

from crossroads.store import open_database, usage_ledger

from .fakes.openai_fake import OpenAIFake
from .gateway_harness import free_port, start_process

#: US$ per 1M tokens, input and output.
PRICE = 300.0
BUDGET = 0.60
MAX_TOKENS = 2
COMPLETION = 2
#: Template tokens per message, and the preamble a vendor adds when tools are offered.
PER_MESSAGE, TOOLS_PREAMBLE = 7, 100

TOOL = {
    "type": "function",
    "function": {
        "name": "lookup_order",
        "description": "Find an order by its number and return its status.",
        "parameters": {
            "type": "object",
            "properties": {"order": {"type": "string", "description": "e.g. A-1234"}},
            "required": ["order"],
        },
    },
}
JAPANESE = "注文の状況を教えてください。" * 4


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def billed_prompt(body: dict[str, Any]) -> int:
    """What this upstream bills as prompt tokens for the OpenAI body it receives."""
    messages = body["messages"]
    tokens = sum(len(s.encode()) for s in _strings(messages)) + PER_MESSAGE * len(messages)
    if body.get("tools"):
        tools = json.dumps(body["tools"], separators=(",", ":"), ensure_ascii=False)
        tokens += len(tools.encode()) + TOOLS_PREAMBLE
    return tokens


class BytewiseUpstream(OpenAIFake):
    """An OpenAI-compatible upstream that bills :func:`billed_prompt` prompt tokens."""

    async def chat(self, request: Request) -> Response:
        body = await self.record(request)
        prompt = billed_prompt(body)
        await asyncio.sleep(0.02)  # long enough for requests to overlap
        return self.json({
            "id": "chatcmpl-bytes", "object": "chat.completion", "created": 1,
            "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "length",
                         "message": {"role": "assistant", "content": "ok ok"}}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": COMPLETION,
                      "total_tokens": prompt + COMPLETION},
        })


#: (path, body) of each kind of request, and the OpenAI body the upstream receives.
KINDS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("/chat/completions",
     {"messages": [{"role": "user", "content": "hi"}]},
     {"messages": [{"role": "user", "content": "hi"}]}),
    ("/chat/completions",
     {"messages": [{"role": "user", "content": JAPANESE}]},
     {"messages": [{"role": "user", "content": JAPANESE}]}),
    ("/chat/completions",
     {"messages": [{"role": "user", "content": "Where is order A-1234?"}], "tools": [TOOL]},
     {"messages": [{"role": "user", "content": "Where is order A-1234?"}], "tools": [TOOL]}),
    ("/messages",
     {"system": "Réponds en français, brièvement.",
      "messages": [{"role": "user", "content": "Où en est la commande A-1234 ?"}]},
     {"messages": [{"role": "system", "content": "Réponds en français, brièvement."},
                   {"role": "user", "content": "Où en est la commande A-1234 ?"}]}),
]


def cost(prompt: int) -> float:
    return (prompt + COMPLETION) * PRICE / 1e6


@pytest.fixture
def upstream() -> Iterator[BytewiseUpstream]:
    with BytewiseUpstream(require_key=False) as fake:
        yield fake  # type: ignore[misc]


def test_two_replicas_hold_a_budget_against_prompts_larger_than_they_look(
    upstream: BytewiseUpstream, tmp_path: Path, postgres_url: str, redis_url: str
) -> None:
    # what the upstream bills for each kind, and what chars // 4 would have guessed
    billed = [billed_prompt({"model": "m", **sent}) for _, _, sent in KINDS]
    assert billed == [13, 179, 377, 90]
    guessed = [  # chars // 4 + 4 per message, the old reservation's prompt
        sum(len(m["content"]) for m in sent["messages"]) // 4 + 4 * len(sent["messages"])
        for _, _, sent in KINDS
    ]
    assert guessed == [4, 18, 9, 23]
    one_request_max = max(cost(p) for p in billed)
    assert one_request_max == pytest.approx(0.1137, abs=1e-12)  # (377 + 2) × $300/M

    config = tmp_path / "gw.yaml"
    config.write_text(
        "models:\n  - name: m\n    backend: openai\n    model: gpt-4o\n"
        f"    base_url: {upstream.url}/v1\n    max_retries: 0\n"
        f"    prices: {{input: {PRICE}, output: {PRICE}}}\n"
        f"gateway:\n  master_key: ${{CROSSROADS_MASTER_KEY}}\n  redis_url: {redis_url}\n"
        f"database_url: {postgres_url}\n",
        encoding="utf-8",
    )
    replicas = [start_process(config, tmp_path / "a.log")]
    replicas.append(start_process(config, tmp_path / "b.log", port=free_port()))
    name = f"bytes-{uuid.uuid4().hex[:8]}"
    try:
        key = replicas[0].create_key(name, budget_usd=BUDGET)

        async def burst() -> list[httpx.Response]:
            limits = httpx.Limits(max_connections=200)
            async with httpx.AsyncClient(timeout=60, limits=limits) as client:
                return list(await asyncio.gather(*(
                    client.post(
                        replicas[i % 2].v1 + KINDS[i % 4][0],
                        json={"model": "m", "max_tokens": MAX_TOKENS, **KINDS[i % 4][1]},
                        headers={"Authorization": f"Bearer {key}", "x-api-key": key,
                                 "anthropic-version": "2023-06-01"},
                    )
                    for i in range(200)
                )))

        responses = asyncio.run(burst())
    finally:
        for replica in replicas:
            replica.stop()
    ok = [i for i, r in enumerate(responses) if r.status_code == 200]
    refused = [r for r in responses if r.status_code == 429]
    assert ok and refused and len(ok) + len(refused) == 200, {r.status_code for r in responses}
    assert all("budget" in r.text for r in refused)
    with open_database(postgres_url) as db, db.engine.connect() as conn:
        rows = conn.execute(
            select(usage_ledger.c.status, usage_ledger.c.prompt_tokens, usage_ledger.c.cost_usd)
            .where(usage_ledger.c.key_name == name)
        ).all()
    assert sorted(row.status for row in rows) == [200] * len(ok) + [429] * len(refused)
    spent = sum(row.cost_usd for row in rows)
    rows = [row for row in rows if row.status == 200]
    # the ledger holds exactly what the upstream billed for the requests that were served
    assert sorted(row.prompt_tokens for row in rows) == sorted(billed[i % 4] for i in ok)
    assert spent == pytest.approx(sum(cost(billed[i % 4]) for i in ok), abs=1e-12)
    # the promise: never more than the budget plus one request's maximum
    assert spent <= BUDGET + one_request_max
    # and, as every reservation is a true upper bound, not even over the budget itself
    assert spent <= BUDGET + 1e-9
