"""The ``routes:`` and ``routing:`` sections of crossroads.yaml.

A route is a public model name served by one or more deployments; ``routing:`` sets the
one retry, fallback and cooldown policy every caller (Client, CLI, eval runner,
gateway) shares. Schemas only: :mod:`crossroads.routing` does the work.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Route", "RouteTarget", "RoutingSettings", "Strategy"]

Strategy = Literal["fallback", "weighted", "least-busy", "lowest-latency", "lowest-cost"]


class RouteTarget(BaseModel):
    """One deployment behind a route: any model name Crossroads resolves."""

    model_config = ConfigDict(extra="forbid")
    model: str = Field(min_length=1)
    weight: float = Field(default=1.0, gt=0)


class Route(BaseModel):
    """A public model name clients ask for, served by one or more deployments."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    strategy: Strategy = "fallback"
    deployments: list[RouteTarget] = Field(min_length=1)


class RoutingSettings(BaseModel):
    """Retries, fallbacks and cooldown, the same for every caller."""

    model_config = ConfigDict(extra="forbid")

    #: Attempts per call across a route's deployments (the first try included); also for
    #: names not under ``models:``. A configured model tries each of its replicas once
    #: plus its own ``max_retries`` (default 2) per replica.
    max_attempts: int = Field(default=3, ge=1, le=20)
    #: Total time allowed for retries and fallbacks before the first byte, in seconds.
    retry_budget_s: float = Field(default=30.0, gt=0)
    #: Seconds a deployment rests after a 429/5xx/timeout/connection failure.
    cooldown_s: float = Field(default=30.0, ge=0)
    #: Jittered exponential backoff before a deployment is tried again (a fresh one is
    #: tried at once); an upstream's ``Retry-After`` replaces it.
    backoff_initial_s: float = Field(default=0.5, ge=0)
    backoff_max_s: float = Field(default=8.0, ge=0)
    #: The most model names whose deployments the router keeps ready (least recently
    #: used out; an evicted deployment's connections are closed once no request uses it).
    plan_cache_size: int = Field(default=1024, ge=1)
