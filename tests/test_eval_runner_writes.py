"""How the runner writes results: one write at a time, every row, nothing held back."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from crossroads.backends.base import Backend
from crossroads.client import AsyncClient
from crossroads.config import parse_config
from crossroads.evals import runner as runner_module
from crossroads.evals.runner import Runner, RunOptions
from crossroads.evals.store import ResultRow, RunStore
from crossroads.evals.suite import parse_suite
from crossroads.store import open_database, results
from crossroads.streaming import StreamAccumulator
from crossroads.types import (
    ChatChunk,
    ChatRequest,
    ChunkChoice,
    Delta,
    ToolCallDelta,
    Usage,
)

from .fakes.instant import InstantBackend


def _numbered_answer(request: ChatRequest) -> Iterator[ChatChunk]:
    """Item n's answer: a tool call and no text when n % 3 == 0, else "The answer is n % 7"."""
    n = int(request.messages[-1].content.split()[1])  # type: ignore[union-attr]
    yield ChatChunk(
        id="c", model=request.model, choices=[ChunkChoice(delta=Delta(role="assistant"))]
    )
    # choice 1 first: the answer is choice 0's, as StreamAccumulator.response() says
    yield ChatChunk(
        id="c",
        model=request.model,
        choices=[ChunkChoice(index=1, delta=Delta(content="other"), finish_reason="length")],
    )
    if n % 3 == 0:  # a tool call and no text
        call = ToolCallDelta(index=0, id="t", type="function")
        yield ChatChunk(
            id="c", model=request.model, choices=[ChunkChoice(delta=Delta(tool_calls=[call]))]
        )
        yield ChatChunk(
            id="c", model=request.model, choices=[ChunkChoice(finish_reason="tool_calls")]
        )
    else:
        for piece in ("The answer ", "is ", str(n % 7)):
            yield ChatChunk(
                id="c", model=request.model, choices=[ChunkChoice(delta=Delta(content=piece))]
            )
        yield ChatChunk(
            id="c", model=request.model, choices=[ChunkChoice(finish_reason="stop")]
        )
    yield ChatChunk(id="c", model=request.model, usage=Usage.of(12, 3))


def _suite(n: int) -> Any:
    items = "".join(f"  - {{id: q{i}, n: {i}, expected: '{i % 7}'}}\n" for i in range(n))
    text = (
        "name: writes\ndefaults: {temperature: 0.5}\nprompt: 'Question {{ n }}'\n"
        f"scorers: [{{type: contains}}]\nitems:\n{items}"
    )
    return parse_suite(text, "writes.yaml")


async def _expected(backend: Backend, suite: Any) -> dict[str, tuple[str, str | None]]:
    """Each item's text and finish reason as StreamAccumulator gives them."""
    found = {}
    for item in suite.items:
        acc = StreamAccumulator()
        request = ChatRequest(model="fast", messages=suite.render(item))
        async for chunk in backend.stream(request):
            acc.add(chunk)
        response = acc.response()
        found[item.id] = (response.text, response.finish_reason)
    return found


def test_one_write_at_a_time_and_every_row_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    n = 2500
    suite = _suite(n)
    config = parse_config(
        f"database_url: sqlite:///{tmp_path / 'db.sqlite'}\n"
        "models:\n  - name: fast\n    backend: vllm\n    model: x\n"
    )
    db = open_database(config=config)
    writing = 0
    most = 0
    batches: list[int] = []
    lock = threading.Lock()
    write = RunStore.write_results

    def tracked(self: RunStore, rows: list[ResultRow]) -> None:
        nonlocal writing, most
        with lock:
            writing += 1
            most = max(most, writing)
        try:
            time.sleep(0.01)  # a slow store: rows keep coming meanwhile
            write(self, rows)
        finally:
            with lock:
                writing -= 1
            batches.append(len(rows))

    monkeypatch.setattr(RunStore, "write_results", tracked)

    async def main() -> tuple[str, dict[str, tuple[str, str | None]]]:
        async with AsyncClient(config) as client:
            backend = InstantBackend(client.deployment("fast"), _numbered_answer)
            client.router.first("fast").backend = backend
            options = RunOptions(models=("fast",), concurrency=32, use_cache=False)
            run_id = await Runner(client, db, suite, options).run()
            return run_id, await _expected(backend, suite)

    run_id, expected = asyncio.run(main())
    assert most == 1, "writes never overlap"
    assert sum(batches) == n
    assert max(batches) <= runner_module.MAX_PENDING + 32, "unwritten rows stay bounded"
    with db.engine.connect() as conn:
        rows = conn.execute(select(results).where(results.c.run_id == run_id)).all()
        assert conn.execute(select(func.count()).select_from(results)).scalar_one() == n
    assert {r.item_id: (r.output, r.finish_reason) for r in rows} == expected
    for r in rows:
        assert (r.prompt_tokens, r.completion_tokens, r.error, r.cached) == (12, 3, None, False)
        n_item = int(r.item_id[1:])
        assert r.passed is (n_item % 3 != 0), r.item_id
    db.dispose()


@pytest.mark.parametrize("n", [0, 1, 3, 4])
def test_first_choice_is_what_the_response_says(n: int) -> None:
    """What the runner keeps of a stream is the assembled response's text and finish."""
    acc = StreamAccumulator()
    assert acc.first_choice() == ("", None) == (acc.response().text, acc.response().finish_reason)
    request = ChatRequest(model="m", messages=[{"role": "user", "content": f"Question {n}"}])
    for chunk in _numbered_answer(request):
        acc.add(chunk)
    response = acc.response()
    assert acc.first_choice() == (response.text, response.finish_reason)
    assert response.finish_reason == ("tool_calls" if n % 3 == 0 else "stop")
