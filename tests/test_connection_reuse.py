"""Streams give their connection back to the pool (PERFORMANCE.md: LiteLLM did not)."""

from __future__ import annotations

import socket

import pytest

from crossroads.backends.base import Deployment
from crossroads.backends.openai import OpenAIBackend
from crossroads.types import ChatRequest

from .fakes.openai_fake import OpenAIFake


async def test_streams_reuse_one_pooled_connection(
    openai_fake: OpenAIFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    connects: list[object] = []
    original = socket.socket.connect

    def counting(self: socket.socket, address: object) -> None:
        connects.append(address)
        original(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", counting)
    backend = OpenAIBackend(
        Deployment(
            name="m",
            backend="openai",
            model="gpt-4o",
            base_url=openai_fake.url + "/v1",
            api_key="k",
        )
    )
    request = ChatRequest(model="m", messages=[{"role": "user", "content": "hi"}])
    async for _ in backend.stream(request):  # warm-up: opens the one connection
        pass
    for _ in range(10):
        chunks = [c async for c in backend.stream(request)]
        assert chunks[-1].usage is not None
    await backend.aclose()
    assert len(connects) <= 2, f"{len(connects)} connections for 11 sequential streams"
