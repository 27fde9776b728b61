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

from .backends.base import Backend, Deployment
from .config import Config, load_config
from .errors import BadRequestError
from .guard.stream import guarded_stream
from .routing import Router, close_stream
from .telemetry import configure as configure_telemetry
from .telemetry.calls import close_chat_span, open_chat_span
from .types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    Message,
    Timings,
    Usage,
    estimate_prompt_tokens,
)

if TYPE_CHECKING:
    from .guard import Guardrails, RequestGuard

__all__ = ["AsyncClient", "Client", "MessagesInput", "estimate_prompt_tokens"]

MessagesInput = str | Sequence[Message | dict[str, Any]]


def _as_messages(messages: MessagesInput) -> list[Any]:
    if isinstance(messages, str):
        return [{"role": "user", "content": messages}]
    return list(messages)


class AsyncClient:
    """Chat with any route, configured or ``provider/model`` model, through the same
    :class:`~crossroads.routing.Router` as the gateway (same fallbacks and retries)."""

    def __init__(
        self,
        config: Config | str | Path | None = None,
        *,
        http: httpx.AsyncClient | None = None,
        check_context: bool = True,
    ) -> None:
        self.config = config if isinstance(config, Config) else load_config(config)
        configure_telemetry(self.config.telemetry)  # off unless configured
        self.router = Router(self.config, http=http, check_context=check_context)
        self._guardrails: Guardrails | None = None

    def deployment(self, model: str) -> Deployment:
        """The deployment ``model`` is tried on first (raises UnknownModelError,
        MissingKeyError); a route's first deployment whose key is set."""
        return self.router.first(model).deployment

    def backend(self, model: str) -> Backend:
        """The backend ``model`` is tried on first."""
        return self.router.first(model).backend

    def _request(self, model: str, messages: MessagesInput, options: dict[str, Any]) -> ChatRequest:
        try:
            request = ChatRequest(model=model, messages=_as_messages(messages), **options)
        except ValidationError as exc:
            raise BadRequestError(f"Invalid request: {exc}") from exc
        return request

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
            async with contextlib.aclosing(self._stream(checked)) as chunks:
                async for out in guarded_stream(chunks, guard.stream_filter()):
                    yield out
        finally:
            await guard.record()

    async def _complete(self, request: ChatRequest) -> ChatResponse:
        span = open_chat_span(request)  # None: tracing off
        start = time.perf_counter()
        try:
            response, target, _ = await self.router.complete(request)
        except BaseException as exc:
            close_chat_span(span, error=exc)
            raise
        total = time.perf_counter() - start
        response.usage.timings = Timings(time_to_first_token_s=total, total_s=total)
        if span is not None:
            deployment = target.deployment
            close_chat_span(
                span,
                backend=deployment.backend,
                model=deployment.model,
                deployment=deployment.name,
                response=response,
                usage=response.usage,
            )
        return response

    def stream_chat(
        self, model: str, messages: MessagesInput, **options: Any
    ) -> AsyncGenerator[ChatChunk, None]:
        """The answer as chunks; the last chunk carries usage with timings."""
        options.pop("stream", None)
        return self.stream(self._request(model, messages, options))

    async def _stream(self, request: ChatRequest) -> AsyncGenerator[ChatChunk, None]:
        """The router falls back until the first chunk; timings ride on the usage chunk.

        A server that sends no usage in streams (llama-cpp-python's, some proxies) gets
        the gateway's estimate: the prompt's estimate and one token per content delta."""
        span = open_chat_span(request, stream=True)  # None: tracing off
        start = time.perf_counter()
        try:
            opened = await self.router.open_stream(request)
        except BaseException as exc:
            close_chat_span(span, error=exc)
            raise
        first: float | None = None
        held: ChatChunk | None = None
        tokens = deltas = 0
        failed: BaseException | None = None
        try:
            chunk: ChatChunk | None = opened.first
            rest = opened.rest
            while chunk is not None:
                if any(
                    c.delta.content or c.delta.tool_calls or c.delta.refusal for c in chunk.choices
                ):
                    deltas += 1
                    if first is None:
                        first = time.perf_counter() - start
                if chunk.usage is not None:
                    # Hold usage back so timings can be attached when the stream ends.
                    if held is not None:
                        yield held
                    held = chunk
                    tokens = chunk.usage.total_tokens
                elif chunk.choices or chunk.id != "chatcmpl-empty":
                    yield chunk
                chunk = await anext(rest, None)
        except BaseException as exc:
            failed = exc
            raise
        finally:
            opened.end(tokens)
            await close_stream(opened.rest)
            if failed is not None:
                close_chat_span(span, error=failed)
        if held is not None and held.usage is not None:
            usage = held.usage
        else:
            prompt = estimate_prompt_tokens(request)
            usage = Usage.of(prompt, deltas)
        usage.timings = Timings(time_to_first_token_s=first, total_s=time.perf_counter() - start)
        deployment = opened.target.deployment
        close_chat_span(
            span,
            backend=deployment.backend,
            model=deployment.model,
            deployment=deployment.name,
            usage=usage,
            ttft_s=first,
        )
        yield held or ChatChunk(id="chatcmpl-usage", model=request.model, usage=usage)

    async def aclose(self) -> None:
        if self._guardrails is not None:
            await self._guardrails.aclose()
            self._guardrails = None
        await self.router.aclose()

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
