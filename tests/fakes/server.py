"""A loopback HTTP server for vendor fakes: uvicorn + Starlette in a background thread.

Each vendor fake (``openai_fake``, ``anthropic_fake``, ``google_fake``) renders the same
scripted :class:`Reply` objects in its vendor's documented wire format. Tests queue
replies with ``fake.script(...)``; with nothing queued a fake answers with
``DEFAULT_TEXT``. Every request body and its headers are recorded in ``fake.requests``.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

DEFAULT_TEXT = "Hello from the fake."


@dataclass
class Reply:
    """What the fake should answer next, independent of the vendor format."""

    text: str = DEFAULT_TEXT
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    finish: str = "stop"  # stop | length | tool_calls | content_filter
    prompt_tokens: int = 11
    completion_tokens: int = 7
    cached_tokens: int = 0
    #: HTTP error instead of an answer.
    status: int = 200
    error_message: str = ""
    error_type: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    #: For streams: send this many chunks, then an error event.
    fail_after_chunks: int | None = None
    #: For streams: cut the connection after this many chunks, with no final event.
    truncate_after_chunks: int | None = None
    #: Seconds to wait before answering (OpenAI fake).
    delay_s: float = 0.0
    #: For streams: seconds to wait before each content chunk (OpenAI fake).
    chunk_delay_s: float = 0.0

    @classmethod
    def error(cls, status: int, message: str = "boom", *, type: str = "", **headers: str) -> Reply:
        return cls(
            status=status,
            error_message=message,
            error_type=type,
            headers={k.replace("_", "-"): v for k, v in headers.items()},
        )

    @classmethod
    def tool(cls, name: str, arguments: dict[str, Any]) -> Reply:
        return cls(text="", tool_calls=[(name, arguments)], finish="tool_calls")

    def pieces(self, size: int = 4) -> list[str]:
        """The text cut into stream-sized pieces."""
        return [self.text[i : i + size] for i in range(0, len(self.text), size)] or [""]


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: Any
    query: dict[str, str]


class FakeServer:
    """Base of the vendor fakes; subclasses implement ``routes()``."""

    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        #: Answers computed from the request body when nothing is scripted.
        self.responder: Callable[[Any], Reply] | None = None
        self.requests: list[Recorded] = []
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- scripting -----------------------------------------------------------------
    def script(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def next_reply(self) -> Reply:
        if self.replies:
            return self.replies.popleft()
        if self.responder is not None and self.requests:
            return self.responder(self.requests[-1].body)
        return Reply()

    async def record(self, request: Request) -> Any:
        raw = await request.body()
        body = json.loads(raw) if raw else None
        self.requests.append(
            Recorded(request.url.path, dict(request.headers), body, dict(request.query_params))
        )
        return body

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- helpers for subclasses ----------------------------------------------------
    @staticmethod
    def json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        return JSONResponse(body, status_code=status, headers=headers)

    @staticmethod
    def sse(events: AsyncIterator[str], headers: dict[str, str] | None = None) -> Response:
        return StreamingResponse(events, media_type="text/event-stream", headers=headers)

    def routes(self) -> list[Route]:
        raise NotImplementedError

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> FakeServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            Starlette(routes=self.routes()),
            log_level="warning",
            lifespan="off",
            ws="none",
            access_log=False,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
