"""The router's plan cache is bounded (issue 15, item 10): made-up ``vendor/model`` names
from one valid key cannot grow the gateway's memory, and an evicted deployment's
connections are closed later, never under a request that still uses them."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from crossroads.backends._http import HTTPBackend
from crossroads.config import parse_config
from crossroads.routing import Router
from crossroads.types import ChatRequest

from .conftest import skip_or_fail
from .fakes.openai_fake import OpenAIFake
from .fakes.server import Reply
from .gateway_harness import gateway_thread


@pytest.fixture
def upstream(monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenAIFake]:
    with OpenAIFake(require_key=False) as fake:
        monkeypatch.setenv("OPENAI_BASE_URL", f"{fake.url}/v1")  # type: ignore[attr-defined]
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0123456789")
        yield fake  # type: ignore[misc]


def _router(size: int) -> Router:
    return Router(parse_config(f"routing:\n  plan_cache_size: {size}\n", "t.yaml"))


def _closed(router_target: object) -> bool:
    backend = router_target.backend  # type: ignore[attr-defined]
    assert isinstance(backend, HTTPBackend)
    return backend.transport.client.is_closed


def _ask(name: str, *, stream: bool = False) -> ChatRequest:
    return ChatRequest.model_validate(
        {"model": name, "stream": stream, "messages": [{"role": "user", "content": "hi"}]}
    )


async def test_the_cache_keeps_its_bound_and_closes_what_it_evicts(upstream: OpenAIFake) -> None:
    router = _router(3)
    first = router.plan("openai/m-0").targets[0]
    for i in range(1, 10):
        await router.complete(_ask(f"openai/m-{i}"))
    await asyncio.sleep(0)  # let the background closes run
    await asyncio.gather(*router._closing)
    assert len(router._plans) == 3
    assert len(router._by_deployment) <= 4  # the 3 cached, and at most one closing
    assert _closed(first)
    live = [router.plan(f"openai/m-{i}").targets[0] for i in (7, 8, 9)]  # still cached
    assert not any(_closed(t) for t in live)
    await router.aclose()
    assert all(_closed(t) for t in live)


async def test_an_evicted_deployment_is_not_closed_under_its_stream(upstream: OpenAIFake) -> None:
    upstream.script(Reply("one two three four five six seven eight"))
    router = _router(2)
    opened = await router.open_stream(_ask("openai/streaming", stream=True))
    for i in range(5):  # evicts "openai/streaming" while its stream is open
        await router.complete(_ask(f"openai/other-{i}"))
    await asyncio.sleep(0)
    assert "openai/streaming" not in router._plans
    assert not _closed(opened.target)
    rest = [chunk async for chunk in opened.rest]  # the stream reads on to its end
    opened.end()
    text = "".join(c.choices[0].delta.content or "" for c in [opened.first, *rest] if c.choices)
    assert text == "one two three four five six seven eight"
    await router.complete(_ask("openai/one-more"))  # the next miss sweeps
    await asyncio.gather(*router._closing)
    assert _closed(opened.target)
    await router.aclose()


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def wander(upstream: OpenAIFake, cache_size: int, names: int = 10_000) -> dict[str, int]:
    """``names`` distinct made-up model names from one key through a gateway whose plan
    cache holds ``cache_size``: RSS growth after the first 1,000 names, and what the
    router holds at the end."""
    config = (
        f"routing:\n  plan_cache_size: {cache_size}\n"
        "gateway:\n  master_key: ${CROSSROADS_MASTER_KEY}\n  serve_unconfigured: true\n"
        "  unpriced_models: flag\n"
    )
    upstream.responder = lambda _: Reply("ok")

    async def batch(url: str, key: str, start: int, stop: int) -> set[int]:
        limits = httpx.Limits(max_connections=16)
        async with httpx.AsyncClient(timeout=60, limits=limits) as client:
            gate = asyncio.Semaphore(16)

            async def one(i: int) -> int:
                async with gate:
                    response = await client.post(
                        url + "/chat/completions",
                        json={"model": f"openai/made-up-{i}", "max_tokens": 5,
                              "messages": [{"role": "user", "content": "hi"}]},
                        headers={"Authorization": f"Bearer {key}"},
                    )
                    return response.status_code

            return set(await asyncio.gather(*(one(i) for i in range(start, stop))))

    with gateway_thread(config) as gw:
        key = gw.create_key("wanderer")
        router = gw.server.config.app.gateway.router  # type: ignore[union-attr]
        before = 0
        for start in range(0, names, 1_000):
            assert asyncio.run(batch(gw.v1, key, start, start + 1_000)) == {200}
            upstream.requests.clear()  # the fake's own record of them
            if start == 0:
                before = _rss_bytes()
        return {
            "grown": _rss_bytes() - before,
            "cached": len(router._plans),
            "held": len(router._by_deployment),
            "descriptors": len(os.listdir("/proc/self/fd")),
        }


def test_ten_thousand_model_names_from_one_key_leave_memory_flat(upstream: OpenAIFake) -> None:
    if not Path("/proc/self/status").exists():
        skip_or_fail("RSS is read from /proc (Linux)")
    seen = wander(upstream, 64)
    assert seen["cached"] == 64
    assert seen["held"] <= 64 + 16  # the cached ones, and those closing after requests
    # 9,000 more names: without the bound each keeps a backend and its HTTP client
    # (RSS grew 74 MiB with plan_cache_size: 100000, measured); with it 3.7 MiB
    assert seen["grown"] < 16 * 1024 * 1024, f"RSS grew by {seen['grown'] / 2**20:.1f} MiB"
    assert seen["descriptors"] < 1_000
