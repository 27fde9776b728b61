"""A loopback server that answers with scripted raw bytes, for protocol round trips."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence

import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .server import FakeServer


class Replay(FakeServer):
    """Answers each request with the next scripted ``(status, headers, body bytes)``,
    on any path, for the HTTP ``methods`` given."""

    def __init__(self, methods: Sequence[str] = ("POST",)) -> None:
        super().__init__()
        self.methods = list(methods)
        self.answers: deque[tuple[int, dict[str, str], bytes]] = deque()

    def routes(self) -> list[Route]:
        return [Route("/{path:path}", self.answer, methods=self.methods)]

    async def answer(self, request: Request) -> Response:
        await self.record(request)
        status, headers, body = self.answers.popleft()
        media = headers.pop("content-type", "application/json")
        return Response(body, status_code=status, headers=headers, media_type=media)


def replay_fixture(*methods: str) -> Callable[[], Iterator[Replay]]:
    """A module-scoped ``replay`` fixture; assign it as ``replay = replay_fixture(...)``."""

    @pytest.fixture(scope="module")
    def replay() -> Iterator[Replay]:
        with Replay(methods or ("POST",)) as server:
            yield server  # type: ignore[misc]

    return replay
