"""One router for every caller: a model name → its deployments, tried in order.

The Python ``Client`` (and so ``crossroads chat`` and the eval runner) and the gateway
all call :class:`Router`. A name in ``routes:`` lists deployments (any model name
Crossroads resolves, replicas expanded); any other name is a route of its own replicas
(``least-busy``). Strategies:

* ``fallback`` — in the order written;
* ``weighted`` — a weighted random first choice, the rest by weight;
* ``least-busy`` — fewest requests in flight;
* ``lowest-latency`` — lowest moving average of observed latency (untried first);
* ``lowest-cost`` — cheapest price per token (unpriced last).

Healthy deployments come first; one that failed with 429, 5xx, a timeout or a connection
error rests for ``routing.cooldown_s`` (a circuit breaker) and is tried only when nothing
else is left. Such failures before the first byte move on to the next deployment, with
the backoff of :class:`RetryPolicy` when a deployment is tried again, within
``max_attempts`` and a total ``retry_budget_s``. Any other error (400, 401, 403, 404, 422)
is not retried. Backends make exactly one attempt per call.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, TypeVar, cast

import httpx

from ..backends.base import Backend, Deployment, load_backend
from ..config import Config, Route, RouteTarget, RoutingSettings, Strategy
from ..errors import APIError, ContextWindowExceededError, MissingKeyError
from ..types import ChatChunk, ChatRequest, ChatResponse, estimate_prompt_tokens
from .attempt_log import log_cut, log_failure, log_served
from .plans import PlanCache
from .resolve import resolve_all
from .retry import RetryPolicy

if TYPE_CHECKING:  # backends are imported when a deployment needs them
    from ..backends.openai import OpenAIBackend, RawEvent

__all__ = ["OpenRelay", "OpenStream", "RoutePlan", "Router", "Target", "close_stream"]

_Item = TypeVar("_Item")

log = logging.getLogger("crossroads.routing")

_EWMA = 0.2

_T = TypeVar("_T")


@dataclass(eq=False)
class Target:
    """One deployment behind a route, with what the router has learnt about it."""

    deployment: Deployment
    backend: Backend
    weight: float = 1.0
    gpu_hour_usd: float | None = None
    in_flight: int = 0
    down_until: float = 0.0
    latency_ewma_s: float | None = None
    #: Throughput bookkeeping for self-hosted costing (tokens over busy seconds).
    busy_since: float | None = None
    busy_s: float = 0.0
    tokens: int = 0
    #: Requests whose failover may still try this deployment (it is not closed under them).
    held: int = 0

    @property
    def name(self) -> str:
        return self.deployment.name

    @property
    def price_per_mtok(self) -> float | None:
        prices = self.deployment.prices
        return None if prices is None else (prices.input + prices.output) / 2

    def started(self) -> None:
        if self.in_flight == 0:
            self.busy_since = time.monotonic()
        self.in_flight += 1

    def finished(self, latency_s: float | None, tokens: int = 0) -> None:
        self.in_flight -= 1
        if self.in_flight == 0 and self.busy_since is not None:
            self.busy_s += time.monotonic() - self.busy_since
            self.busy_since = None
        self.tokens += tokens
        if latency_s is not None:
            previous = self.latency_ewma_s
            self.latency_ewma_s = (
                latency_s if previous is None else previous + _EWMA * (latency_s - previous)
            )

    def tokens_per_busy_s(self) -> float | None:
        """Measured throughput of this deployment: tokens per second of busy time."""
        busy = self.busy_s
        if self.busy_since is not None:
            busy += time.monotonic() - self.busy_since
        return self.tokens / busy if busy > 0 and self.tokens > 0 else None


@dataclass
class RoutePlan:
    """What a name stands for: its deployments, how to order them, how many tries."""

    strategy: Strategy
    targets: list[Target]
    max_attempts: int
    #: Round-robin among equally busy deployments (``least-busy``).
    turn: itertools.count[int] = field(default_factory=itertools.count)


@dataclass
class OpenStream:
    """A stream whose first chunk has arrived: from here on there is no fallback."""

    target: Target
    first: ChatChunk
    rest: AsyncIterator[ChatChunk]
    attempts: int = 1
    started: float = field(default_factory=time.perf_counter)
    done: bool = False

    def end(self, tokens: int = 0) -> None:
        """The stream is over (completed, failed or abandoned): its deployment is free."""
        if not self.done:
            self.done = True
            self.target.finished(time.perf_counter() - self.started, tokens)


@dataclass
class OpenRelay:
    """A stream relayed as its upstream sent it (:meth:`Router.open_relay`), whose first
    events have arrived: from here on there is no fallback."""

    target: Target
    first: list[RawEvent]
    rest: AsyncIterator[list[RawEvent]]
    attempts: int = 1
    started: float = field(default_factory=time.perf_counter)
    done: bool = False

    def end(self, tokens: int = 0) -> None:
        """The stream is over (completed, failed or abandoned): its deployment is free."""
        if not self.done:
            self.done = True
            self.target.finished(time.perf_counter() - self.started, tokens)


@dataclass
class Router:
    """Turns model names into ordered deployments and calls them with fallback.

    ``http`` is handed to every backend (tests inject ``httpx.MockTransport``);
    ``check_context`` refuses, for free, a prompt larger than a deployment's window.
    """

    config: Config
    http: httpx.AsyncClient | None = None
    check_context: bool = False
    _plans: PlanCache = field(init=False)
    _by_deployment: dict[tuple[str, str | None], Target] = field(default_factory=dict)
    _closing: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        settings = self.config.routing
        self._plans = PlanCache(settings.plan_cache_size)
        self.retry = RetryPolicy(
            retry_budget_s=settings.retry_budget_s,
            initial_delay_s=settings.backoff_initial_s,
            max_delay_s=settings.backoff_max_s,
        )

    @classmethod
    def over(
        cls,
        name: str,
        backends: list[Backend],
        *,
        strategy: Strategy = "fallback",
        settings: RoutingSettings | None = None,
    ) -> Router:
        """A router whose one route ``name`` is already-built backends (for embedding
        Crossroads, and for tests that inject a backend)."""
        config = Config(routing=settings or RoutingSettings())
        router = cls(config)
        targets = [Target(b.deployment, b) for b in backends]
        router._plans[name] = RoutePlan(strategy, targets, config.routing.max_attempts)
        return router

    def route_names(self) -> list[str]:
        return [r.name for r in self.config.routes]

    def _route(self, name: str) -> tuple[Route, int | None]:
        """The route for ``name`` and its retries per deployment (None: a route, which
        has ``routing.max_attempts`` in all)."""
        route = self.config.route(name)
        if route is not None:
            return route, None
        entry = self.config.entry(name)
        plain = Route(name=name, strategy="least-busy", deployments=[RouteTarget(model=name)])
        return plain, entry.max_retries if entry is not None else None

    def plan(self, model: str) -> RoutePlan:
        """The (cached) deployments of ``model``; raises UnknownModelError and friends."""
        found = self._plans.get(model)
        if found is not None:
            return found
        route, retries = self._route(model)
        targets: list[Target] = []
        missing: MissingKeyError | None = None
        for spec in route.deployments:
            entry = self.config.entry(spec.model)
            try:
                deployments = resolve_all(spec.model, self.config)
            except MissingKeyError as exc:
                # A deployment without its key is left out; the route falls back.
                missing = missing or exc
                continue
            for deployment in deployments:
                key = (deployment.name, deployment.base_url)
                target = self._by_deployment.get(key)
                if target is None:
                    # The router owns retries and fallback; the backend makes one try.
                    plain = replace(deployment, max_retries=0)
                    target = Target(
                        plain,
                        load_backend(plain.backend)(plain, http=self.http),
                        weight=spec.weight,
                        gpu_hour_usd=entry.gpu_hour_usd if entry else None,
                    )
                    self._by_deployment[key] = target
                targets.append(target)
        if not targets:
            assert missing is not None
            raise missing
        # A configured model tries each replica once plus its own ``max_retries``.
        attempts = (
            self.config.routing.max_attempts if retries is None else len(targets) * (retries + 1)
        )
        plan = self._plans[model] = RoutePlan(route.strategy, targets, attempts)
        if self._plans.retired:
            self._sweep()
        return plan

    def _sweep(self) -> None:
        """Close, in the background, the backends of deployments that left the plan
        cache and that no request uses or may still try (:class:`PlanCache`)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop to close on: :meth:`aclose` closes them
        for target in self._plans.closable():
            key = (target.deployment.name, target.deployment.base_url)
            if self._by_deployment.get(key) is target:
                del self._by_deployment[key]
            task = loop.create_task(target.backend.aclose())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    def first(self, model: str) -> Target:
        """The deployment ``model`` would be tried on first (ignoring cooldowns)."""
        return self.plan(model).targets[0]

    def order(self, model: str) -> list[Target]:
        """Deployments of ``model`` in the order to try them now."""
        plan = self.plan(model)
        now = time.monotonic()
        healthy = [t for t in plan.targets if t.down_until <= now]
        resting = sorted(
            (t for t in plan.targets if t.down_until > now), key=lambda t: t.down_until
        )
        return _by_strategy(plan, healthy) + resting

    def mark_down(self, target: Target) -> None:
        target.down_until = time.monotonic() + self.config.routing.cooldown_s

    def _check_window(self, target: Target, request: ChatRequest) -> None:
        window = target.deployment.context_window
        if not (self.check_context and window):
            return
        estimate = estimate_prompt_tokens(request)
        if estimate > window:
            raise ContextWindowExceededError(
                f"The prompt is about {estimate:,} tokens but {request.model} accepts "
                f"{window:,}. Shorten the prompt or choose a model with a larger context "
                "window (`crossroads models`).",
                vendor="crossroads",
                prompt_tokens=estimate,
                context_window=window,
            )

    async def _tries(
        self, request: ChatRequest
    ) -> AsyncGenerator[tuple[int, Target, ChatRequest], APIError | None]:
        """Each attempt: its number, its deployment and the request for it, after any
        backoff; ends after ``max_attempts`` or when the retry budget is spent."""
        plan = self.plan(request.model)
        order = self.order(request.model)
        started = time.monotonic()
        tried: set[int] = set()
        last: APIError | None = None
        for target in order:
            target.held += 1  # not closed while this request may try it
        try:
            for attempt in range(1, plan.max_attempts + 1):
                target = order[(attempt - 1) % len(order)]
                if id(target) in tried or target.down_until > time.monotonic():
                    delay = self.retry.delay(len(tried), last)
                    if time.monotonic() - started + delay > self.retry.retry_budget_s:
                        return
                    await asyncio.sleep(delay)
                tried.add(id(target))
                self._check_window(target, request)
                last = yield (
                    attempt,
                    target,
                    request.model_copy(update={"model": target.deployment.model}),
                )
        finally:
            for target in order:
                target.held -= 1

    async def _failover(
        self,
        request: ChatRequest,
        attempt: Callable[[Target, ChatRequest], Awaitable[_T]],
    ) -> tuple[_T, Target, int]:
        """The one failover loop: ``attempt`` on each deployment in turn until one
        succeeds; retryable failures cool their deployment down and move on, others are
        raised at once. Returns the result, its deployment and the number of attempts.
        The deployment stays busy (``Target.started``) for the caller to finish."""
        last: APIError | None = None
        max_attempts = self.plan(request.model).max_attempts
        async with aclosing(self._tries(request)) as tries:
            step = await anext(tries, None)
            while step is not None:
                number, target, call = step
                target.started()
                try:
                    result = await attempt(target, call)
                except APIError as exc:
                    target.finished(None)
                    if not self.retry.retryable(exc):
                        log_failure(
                            target, number, max_attempts, exc, retryable=False, following=None
                        )
                        raise
                    self.mark_down(target)
                    last = exc
                    step = await _next(tries, exc)
                    log_failure(
                        target, number, max_attempts, exc, retryable=True,
                        following=step[1] if step is not None else None,
                    )
                    continue
                except BaseException:
                    target.finished(None)
                    raise
                if number > 1:
                    log_served(target, number)
                return result, target, number
        assert last is not None
        raise last

    async def complete(self, request: ChatRequest) -> tuple[ChatResponse, Target, int]:
        """One answer, with fallback; returns it, the deployment that gave it and the
        number of attempts."""
        started = time.perf_counter()

        async def one(target: Target, call: ChatRequest) -> ChatResponse:
            nonlocal started
            started = time.perf_counter()
            return await target.backend.complete(call)

        response, target, attempts = await self._failover(request, one)
        target.finished(time.perf_counter() - started, response.usage.total_tokens)
        return response, target, attempts

    async def open_stream(self, request: ChatRequest) -> OpenStream:
        """Start a stream with fallback until its first chunk has arrived (the relay's
        :meth:`OpenStream.end` frees the deployment)."""

        async def first_chunk(
            target: Target, call: ChatRequest
        ) -> tuple[ChatChunk, AsyncIterator[ChatChunk]]:
            stream = target.backend.stream(call).__aiter__()
            try:
                return await stream.__anext__(), stream
            except StopAsyncIteration:
                return ChatChunk(id="chatcmpl-empty", model=request.model), _empty()
            except BaseException:
                await close_stream(stream)
                raise

        (first, rest), target, attempts = await self._failover(request, first_chunk)
        return OpenStream(target, first, _cut_logged(rest, target, attempts), attempts)

    def relays(self, targets: list[Target]) -> bool:
        """Whether a stream to any of ``targets`` can be relayed byte for byte to an
        OpenAI client (every one speaks OpenAI's stream format: :meth:`open_relay`)."""
        return bool(targets) and all(
            getattr(t.backend, "relays_openai_sse", False) for t in targets
        )

    async def open_relay(self, request: ChatRequest) -> OpenRelay:
        """:meth:`open_stream` for a relay: the upstream's events as it sent them
        (``OpenAIBackend.relay``), with fallback until the first ones have arrived."""

        async def first_events(
            target: Target, call: ChatRequest
        ) -> tuple[list[RawEvent], AsyncIterator[list[RawEvent]]]:
            backend = cast("OpenAIBackend", target.backend)
            stream = backend.relay(call).__aiter__()
            try:
                return await stream.__anext__(), stream
            except StopAsyncIteration:
                return [], _no_events()
            except BaseException:
                await close_stream(stream)
                raise

        (first, rest), target, attempts = await self._failover(request, first_events)
        return OpenRelay(target, first, _cut_logged(rest, target, attempts), attempts)

    async def aclose(self) -> None:
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
        closed = {id(t): t for t in (*self._by_deployment.values(), *self._plans.retired.values())}
        for target in closed.values():
            await target.backend.aclose()
        self._by_deployment.clear()
        self._plans.clear()


async def _cut_logged(
    rest: AsyncIterator[_Item], target: Target, attempts: int
) -> AsyncIterator[_Item]:
    """``rest`` (chunks, or a relay's raw events), logging (once) the failure that cuts
    it after its first chunk."""
    try:
        async for chunk in rest:
            yield chunk
    except Exception as exc:
        log_cut(target, attempts, exc)
        raise
    finally:
        await close_stream(rest)


async def _next(
    tries: AsyncGenerator[tuple[int, Target, ChatRequest], APIError | None], failure: APIError
) -> tuple[int, Target, ChatRequest] | None:
    """The next attempt, telling the loop why the last one failed (for its backoff)."""
    try:
        return await tries.asend(failure)
    except StopAsyncIteration:
        return None


async def close_stream(stream: Any) -> None:
    """Close an upstream stream; an error while closing a broken one is logged, never
    raised over the error that broke it."""
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        try:
            await aclose()
        except Exception:
            log.debug("error while closing an upstream stream", exc_info=True)


async def _no_events() -> AsyncIterator[list[RawEvent]]:
    return
    yield  # pragma: no cover


async def _empty() -> AsyncIterator[ChatChunk]:
    return
    yield  # pragma: no cover


def _by_strategy(plan: RoutePlan, targets: list[Target]) -> list[Target]:
    strategy = plan.strategy
    if len(targets) < 2:
        return targets
    if strategy == "fallback":
        return targets
    if strategy == "least-busy":
        start = next(plan.turn) % len(targets)  # spread ties: round-robin
        rotated = targets[start:] + targets[:start]
        return sorted(rotated, key=lambda t: t.in_flight)
    if strategy == "lowest-latency":
        return sorted(
            targets,
            key=lambda t: -1.0 if t.latency_ewma_s is None else t.latency_ewma_s,
        )
    if strategy == "lowest-cost":
        return sorted(
            targets,
            key=lambda t: float("inf") if t.price_per_mtok is None else t.price_per_mtok,
        )
    # weighted: draw without replacement in proportion to weight
    pool = list(targets)
    ordered: list[Target] = []
    while pool:
        pick = random.choices(pool, weights=[t.weight for t in pool])[0]
        ordered.append(pick)
        pool.remove(pick)
    return ordered
