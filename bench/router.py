"""The failover loop alone: CPU per ``Router.complete`` on a backend that answers at once.

    PYTHONPATH=$TREE/src .venv/bin/python bench/router.py [--calls 30000]

The Client, the eval runner and the gateway all call this loop; run it on two trees to
compare them (the tree before the one-core refactor kept the router in
``crossroads.gateway.router``, constructed with the gateway settings).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from crossroads.backends.base import Backend, Deployment
from crossroads.config import parse_config
from crossroads.types import ChatChunk, ChatRequest, ChatResponse, Usage

CONFIG = parse_config(
    "models:\n  - {name: m, backend: openai, model: x, base_url: 'http://127.0.0.1:9/v1',"
    " prices: {input: 1, output: 2}}\n"
)


class Instant(Backend):
    name = "instant"

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment

    async def complete(self, request: ChatRequest) -> ChatResponse:
        return ChatResponse(
            id="x",
            model="x",
            created=0,
            choices=[{"index": 0, "message": {"role": "assistant", "content": "hi"}}],
            usage=Usage(prompt_tokens=1, completion_tokens=1, total_tokens=2),
        )

    def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        raise NotImplementedError


def make_router() -> Any:
    try:
        from crossroads.routing import Router

        return Router(CONFIG)
    except ImportError:  # before the one-core refactor
        from crossroads.gateway.router import Router as GatewayRouter  # type: ignore

        return GatewayRouter(CONFIG, CONFIG.gateway)  # type: ignore[attr-defined]


async def measure(calls: int) -> float:
    router = make_router()
    target = router.plan("m").targets[0]
    target.backend = Instant(target.deployment)
    request = ChatRequest(model="m", messages=[{"role": "user", "content": "hi"}])
    for _ in range(2000):
        await router.complete(request)
    start = time.process_time()
    for _ in range(calls):
        await router.complete(request)
    return (time.process_time() - start) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=30_000)
    args = parser.parse_args()
    print(f"Router.complete: {asyncio.run(measure(args.calls)):.1f} µs CPU per call")


if __name__ == "__main__":
    main()
