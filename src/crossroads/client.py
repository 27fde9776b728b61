"""The Python API: ``Client`` and ``AsyncClient``, one interface to every model.

from crossroads import Client
client = Client()                       # reads crossroads.yaml if there is one
reply = client.chat("openai/gpt-4o", "Say hi")
print(reply.text, reply.usage.timings)
for chunk in client.stream_chat("anthropic/claude-sonnet-4-5", "Count to 3"):
    ...
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import httpx
from pydantic import ValidationError

from .backends.base import Backend, Deployment, load_backend
from .config import Config, load_config
from .errors import (
    BadRequestError,
    ContextWindowExceededError,
    TimeoutError,
    UpstreamUnavailableError,
)
from .routing import ReplicaPool, resolve, resolve_all
from .types import ChatChunk, ChatRequest, ChatResponse, Message, Timings, Usage, text_of

if TYPE_CHECKING:
    from .guard import Guardrails, RequestGuard

__all__ = ["AsyncClient", "Client", "MessagesInput", "estimate_prompt_tokens"]

MessagesInput = str | Sequence[Message | dict[str, Any]]

#: Failures after which another replica of the same model is tried.
_FAILOVER = (UpstreamUnavailableError, TimeoutError)

#: Characters per token in the pre-flight context check (OpenAI's rule of thumb).
CHARS_PER_TOKEN = 4


def estimate_prompt_tokens(request: ChatRequest) -> int:
    """A rough prompt size in tokens, good enough to refuse a hopeless call for free."""
    chars = sum(len(text_of(m.content)) for m in request.messages)
    return chars // CHARS_PER_TOKEN + 4 * len(request.messages)


def _as_messages(messages: MessagesInput) -> list[Any]:
    if isinstance(messages, str):
        return [{"role": "user", "content": messages}]
    return list(messages)


class AsyncClient:
    """Chat with any configured or ``provider/model`` model; one backend per deployment."""

    def __init__(
        self,
        config: Config | str | Path | None = None,
        *,
        http: httpx.AsyncClient | None = None,
        check_context: bool = True,
    ) -> None:
        self.config = config if isinstance(config, Config) else load_config(config)
        self._http = http
        self._check_context = check_context
        self._pools: dict[str, ReplicaPool] = {}
        self._guardrails: Guardrails | None = None

    def deployment(self, model: str) -> Deployment:
        """What ``model`` resolves to (raises UnknownModelError, MissingKeyError)."""
        return resolve(model, self.config)

    def pool(self, model: str) -> ReplicaPool:
        """The (cached) backends serving ``model``, one per replica."""
        found = self._pools.get(model)
        if found is None:
            backends = [
                load_backend(d.backend)(d, http=self._http) for d in resolve_all(model, self.config)
            ]
            found = self._pools[model] = ReplicaPool.of(backends)
        return found

    def backend(self, model: str) -> Backend:
        """The backend of ``model``'s first replica."""
        return self.pool(model).backends[0]

    def _request(self, model: str, messages: MessagesInput, options: dict[str, Any]) -> ChatRequest:
        try:
            request = ChatRequest(model=model, messages=_as_messages(messages), **options)
        except ValidationError as exc:
            raise BadRequestError(f"Invalid request: {exc}") from exc
        return request

    def _check(self, backend: Backend, request: ChatRequest) -> None:
        window = backend.deployment.context_window
        if not (self._check_context and window):
            return
        estimate = estimate_prompt_tokens(request)
        if estimate > window:
            raise ContextWindowExceededError(
                f"The prompt is about {estimate:,} tokens but {request.model} accepts "
                f"{window:,}. Shorten the prompt or choose a model with a larger context "
                "window (`crossroads models`).",
                vendor="crossroads",
            )

    async def chat(self, model: str, messages: MessagesInput, **options: Any) -> ChatResponse:
        """One complete answer; ``options`` are Chat Completions fields."""
        return await self.complete(self._request(model, messages, options))

    # -- guardrails (config.guardrails; see crossroads.guard) ------------------------------
    def _guard(self, model: str) -> RequestGuard | None:
        """The guardrail policies of one call, or None when none apply."""
        settings = self.config.guardrails
        if not settings.policies:
            return None
        if self._guardrails is None:
            from .guard import Guardrails
            from .guard.audit import DatabaseAudit

            audit = DatabaseAudit(self.config) if settings.audit else None
            self._guardrails = Guardrails.from_config(settings, judge=self._complete, audit=audit)
        guard = self._guardrails.for_request(key=None, model=model)
        return guard if guard.active else None

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """Like :meth:`chat`, for an already-built request (guardrails applied)."""
        guard = self._guard(request.model)
        if guard is None:
            return await self._complete(request)
        try:
            response = await self._complete(await guard.check_input(request))
            return await guard.check_output(response)
        finally:
            await guard.record()

    async def stream(self, request: ChatRequest) -> AsyncGenerator[ChatChunk, None]:
        """Like :meth:`stream_chat`, for an already-built request (guardrails applied:
        the output is filtered with a sliding window)."""
        guard = self._guard(request.model)
        if guard is None:
            async with contextlib.aclosing(self._stream(request)) as chunks:
                async for chunk in chunks:
                    yield chunk
            return
        try:
            checked = await guard.check_input(request)  # plants canaries the filter checks
            stream_filter = guard.stream_filter()
            async with contextlib.aclosing(self._stream(checked)) as chunks:
                async for chunk in chunks:
                    if chunk.usage is not None and not chunk.choices:
                        for held in await stream_filter.afinish():
                            yield held
                    for out in stream_filter.feed(chunk):
                        yield out
            for held in await stream_filter.afinish():
                yield held
        finally:
            await guard.record()

    async def _complete(self, request: ChatRequest) -> ChatResponse:
        pool = self.pool(request.model)
        replicas = pool.order()
        for attempt, replica in enumerate(replicas):
            self._check(replica.backend, request)
            start = time.perf_counter()
            replica.in_flight += 1
            try:
                response = await replica.backend.complete(request)
            except _FAILOVER:
                pool.mark_down(replica)
                if attempt == len(replicas) - 1:
                    raise
                continue
            finally:
                replica.in_flight -= 1
            total = time.perf_counter() - start
            response.usage.timings = Timings(time_to_first_token_s=total, total_s=total)
            return response
        raise AssertionError("a pool always has a replica")

    def stream_chat(
        self, model: str, messages: MessagesInput, **options: Any
    ) -> AsyncGenerator[ChatChunk, None]:
        """The answer as chunks; the last chunk carries usage with timings."""
        options.pop("stream", None)
        return self.stream(self._request(model, messages, options))

    async def _stream(self, request: ChatRequest) -> AsyncGenerator[ChatChunk, None]:
        """A replica that fails before its first chunk is cooled down and the next one is
        tried."""
        pool = self.pool(request.model)
        replicas = pool.order()
        for attempt, replica in enumerate(replicas):
            self._check(replica.backend, request)
            start = time.perf_counter()
            first: float | None = None
            held: ChatChunk | None = None
            started = False
            replica.in_flight += 1
            try:
                async for chunk in replica.backend.stream(request):
                    started = True
                    if first is None and any(
                        c.delta.content or c.delta.tool_calls or c.delta.refusal
                        for c in chunk.choices
                    ):
                        first = time.perf_counter() - start
                    if chunk.usage is not None:
                        # Hold usage back so timings can be attached when the stream ends.
                        if held is not None:
                            yield held
                        held = chunk
                        continue
                    yield chunk
            except _FAILOVER:
                if started or attempt == len(replicas) - 1:
                    raise
                pool.mark_down(replica)
                continue
            finally:
                replica.in_flight -= 1
            usage = held.usage if held is not None and held.usage is not None else Usage()
            usage.timings = Timings(
                time_to_first_token_s=first, total_s=time.perf_counter() - start
            )
            yield held or ChatChunk(id="chatcmpl-usage", model=request.model, usage=usage)
            return

    async def aclose(self) -> None:
        if self._guardrails is not None:
            await self._guardrails.aclose()
            self._guardrails = None
        for pool in self._pools.values():
            for backend in pool.backends:
                await backend.aclose()
        self._pools.clear()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


class Client:
    """Blocking twin of :class:`AsyncClient` (runs its own event loop)."""

    def __init__(
        self,
        config: Config | str | Path | None = None,
        *,
        check_context: bool = True,
    ) -> None:
        self._runner = asyncio.Runner()
        self._async = AsyncClient(config, check_context=check_context)

    @property
    def config(self) -> Config:
        return self._async.config

    def deployment(self, model: str) -> Deployment:
        return self._async.deployment(model)

    def chat(self, model: str, messages: MessagesInput, **options: Any) -> ChatResponse:
        return self._runner.run(self._async.chat(model, messages, **options))

    def stream_chat(
        self, model: str, messages: MessagesInput, **options: Any
    ) -> Iterator[ChatChunk]:
        stream = self._async.stream_chat(model, messages, **options)
        try:
            while True:
                try:
                    yield self._runner.run(stream.__anext__())
                except StopAsyncIteration:
                    return
        finally:
            self._runner.run(stream.aclose())

    def close(self) -> None:
        self._runner.run(self._async.aclose())
        self._runner.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
