"""Routes: a public model name → the deployments that serve it, and the order to try them.

A route from ``gateway.routes`` lists deployments (any model name Crossroads resolves,
replicas expanded); any other name is a route of its own replicas. Strategies:

* ``fallback`` — in the order written;
* ``weighted`` — a weighted random first choice, the rest by weight;
* ``least-busy`` — fewest requests in flight;
* ``lowest-latency`` — lowest moving average of observed latency (untried first);
* ``lowest-cost`` — cheapest price per token (unpriced last).

Healthy deployments come first; one that failed with 429, 5xx, a timeout or a connection
error rests for ``cooldown_s`` (a circuit breaker) and is tried only when nothing else
is left. Failures of those kinds before the first byte move on to the next deployment,
with jittered backoff when a deployment is tried again, within ``max_attempts`` and a
total ``retry_budget_s``. Any other error (400, 401, 403, 404, 422) is not retried.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from typing import Any

from ..backends.base import Backend, Deployment, load_backend
from ..config import Config
from ..errors import (
    APIError,
    MissingKeyError,
    RateLimitError,
    TimeoutError,
    UpstreamUnavailableError,
)
from ..routing import resolve_all
from ..types import ChatChunk, ChatRequest, ChatResponse
from .settings import GatewaySettings, Route, RouteTarget, Strategy

__all__ = ["FAILOVER_ERRORS", "OpenStream", "Router", "Target", "close_stream"]

log = logging.getLogger("crossroads.gateway")

#: Errors after which another deployment (or a later retry) is tried.
FAILOVER_ERRORS = (RateLimitError, UpstreamUnavailableError, TimeoutError)

_EWMA = 0.2
_BACKOFF_BASE_S = 0.05
_BACKOFF_MAX_S = 2.0


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
class _Plan:
    strategy: Strategy
    targets: list[Target]


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
class Router:
    """Turns model names into ordered deployments and calls them with fallback."""

    config: Config
    settings: GatewaySettings
    _plans: dict[str, _Plan] = field(default_factory=dict)
    _by_deployment: dict[tuple[str, str | None], Target] = field(default_factory=dict)

    def route_names(self) -> list[str]:
        return [r.name for r in self.settings.routes]

    def _route(self, name: str) -> Route:
        for route in self.settings.routes:
            if route.name == name:
                return route
        return Route(name=name, strategy="least-busy", deployments=[RouteTarget(model=name)])

    def plan(self, model: str) -> _Plan:
        """The (cached) deployments of ``model``; raises UnknownModelError and friends."""
        found = self._plans.get(model)
        if found is not None:
            return found
        route = self._route(model)
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
                        load_backend(plain.backend)(plain),
                        weight=spec.weight,
                        gpu_hour_usd=entry.gpu_hour_usd if entry else None,
                    )
                    self._by_deployment[key] = target
                targets.append(target)
        if not targets:
            assert missing is not None
            raise missing
        plan = self._plans[model] = _Plan(route.strategy, targets)
        return plan

    def order(self, model: str) -> list[Target]:
        """Deployments of ``model`` in the order to try them now."""
        plan = self.plan(model)
        now = time.monotonic()
        healthy = [t for t in plan.targets if t.down_until <= now]
        resting = sorted(
            (t for t in plan.targets if t.down_until > now), key=lambda t: t.down_until
        )
        return _by_strategy(plan.strategy, healthy) + resting

    def mark_down(self, target: Target) -> None:
        target.down_until = time.monotonic() + self.settings.cooldown_s

    def _attempts(self, model: str) -> list[Target]:
        order = self.order(model)
        n = self.settings.max_attempts
        return [order[i % len(order)] for i in range(n)]

    async def _pause(self, tried: set[int], target: Target, started: float) -> None:
        """Backoff before trying a deployment again (none before a fresh one)."""
        if id(target) not in tried and target.down_until <= time.monotonic():
            return
        delay = min(_BACKOFF_MAX_S, _BACKOFF_BASE_S * 2 ** len(tried)) * (0.5 + random.random() / 2)
        if time.monotonic() - started + delay > self.settings.retry_budget_s:
            raise _BudgetSpent
        await asyncio.sleep(delay)

    async def _tries(
        self, request: ChatRequest
    ) -> AsyncGenerator[tuple[int, Target, ChatRequest], None]:
        """Each attempt: its number, its deployment and the request for it, after any
        backoff; ends after ``max_attempts`` or when the retry budget is spent."""
        started = time.monotonic()
        tried: set[int] = set()
        for attempt, target in enumerate(self._attempts(request.model), 1):
            try:
                await self._pause(tried, target, started)
            except _BudgetSpent:
                return
            tried.add(id(target))
            yield attempt, target, request.model_copy(update={"model": target.deployment.model})

    async def complete(self, request: ChatRequest) -> tuple[ChatResponse, Target, int]:
        """One answer, with fallback; returns it, the deployment that gave it and the
        number of attempts."""
        last: APIError | None = None
        async with aclosing(self._tries(request)) as tries:
            async for attempt, target, call in tries:
                t0 = time.perf_counter()
                target.started()
                try:
                    response = await target.backend.complete(call)
                except FAILOVER_ERRORS as exc:
                    target.finished(None)
                    self.mark_down(target)
                    last = exc
                    continue
                except BaseException:
                    target.finished(None)
                    raise
                target.finished(time.perf_counter() - t0, response.usage.total_tokens)
                return response, target, attempt
        assert last is not None
        raise last

    async def open_stream(self, request: ChatRequest) -> OpenStream:
        """Start a stream with fallback until its first chunk has arrived."""
        last: APIError | None = None
        async with aclosing(self._tries(request)) as tries:
            async for attempt, target, call in tries:
                stream = target.backend.stream(call).__aiter__()
                target.started()
                try:
                    first = await stream.__anext__()
                except FAILOVER_ERRORS as exc:
                    target.finished(None)
                    self.mark_down(target)
                    await close_stream(stream)
                    last = exc
                    continue
                except StopAsyncIteration:  # the relay's end() frees the deployment
                    first = ChatChunk(id="chatcmpl-empty", model=request.model)
                    return OpenStream(target, first, _empty(), attempt)
                except BaseException:
                    target.finished(None)
                    await close_stream(stream)
                    raise
                return OpenStream(target, first, stream, attempt)
        assert last is not None
        raise last

    async def aclose(self) -> None:
        for target in self._by_deployment.values():
            await target.backend.aclose()
        self._by_deployment.clear()
        self._plans.clear()


class _BudgetSpent(Exception):
    pass


async def close_stream(stream: Any) -> None:
    """Close an upstream stream; an error while closing a broken one is logged, never
    raised over the error that broke it."""
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        try:
            await aclose()
        except Exception:
            log.debug("error while closing an upstream stream", exc_info=True)


async def _empty() -> AsyncIterator[ChatChunk]:
    return
    yield  # pragma: no cover


def _by_strategy(strategy: Strategy, targets: list[Target]) -> list[Target]:
    if len(targets) < 2:
        return targets
    if strategy == "fallback":
        return targets
    if strategy == "least-busy":
        start = random.randrange(len(targets))  # spread ties
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
