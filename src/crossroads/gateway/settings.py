"""The ``gateway:`` section of crossroads.yaml (validated with the rest of the file)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["GatewaySettings", "Route", "RouteTarget", "Strategy"]

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


class GatewaySettings(BaseModel):
    """``crossroads serve`` behaviour. Every field has a safe default."""

    model_config = ConfigDict(extra="forbid")

    #: Admin key (an env reference); default: $CROSSROADS_MASTER_KEY.
    master_key: str | None = None
    #: Redis URL for limits and budget reservations shared by all replicas/workers.
    redis_url: str | None = None
    #: Seconds to wait for Redis before failing closed (budgeted keys get 503).
    redis_timeout_s: float = Field(default=1.0, gt=0, le=10)
    routes: list[Route] = Field(default_factory=list)
    #: Attempts per request across deployments (the first try included).
    max_attempts: int = Field(default=3, ge=1, le=20)
    #: Total time allowed for retries and fallbacks before the first byte, in seconds.
    retry_budget_s: float = Field(default=30.0, gt=0)
    #: Seconds a deployment rests after a 429/5xx/timeout/connection failure.
    cooldown_s: float = Field(default=30.0, ge=0)
    #: A model with no known price: ``block`` it, or serve it and ``flag`` the ledger row.
    unpriced_models: Literal["block", "flag"] = "block"
    #: Store prompt and response bodies in the ledger.
    store_bodies: bool = False
    #: SIGTERM: seconds to let in-flight requests and streams finish.
    shutdown_timeout_s: float = Field(default=30.0, ge=0)
    #: Largest accepted request body.
    max_request_bytes: int = Field(default=4 * 1024 * 1024, gt=0)
    #: Default max_tokens assumed when reserving budget for a request that sets none.
    default_max_tokens: int = Field(default=4096, gt=0)

    @field_validator("routes")
    @classmethod
    def _unique(cls, routes: list[Route]) -> list[Route]:
        names = [r.name for r in routes]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"route names used twice: {', '.join(dupes)}")
        return routes
