"""The ``gateway:`` section of crossroads.yaml (validated with the rest of the file)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["DEPRECATED_ROUTING_FIELDS", "GatewaySettings"]

#: Fields that moved from ``gateway:`` to the top level (``routes:``, ``routing:``);
#: still read from ``gateway:`` for one release, with a deprecation message.
DEPRECATED_ROUTING_FIELDS = ("routes", "max_attempts", "retry_budget_s", "cooldown_s")


class GatewaySettings(BaseModel):
    """``crossroads serve`` behaviour. Every field has a safe default."""

    model_config = ConfigDict(extra="forbid")

    #: Admin key (an env reference); default: $CROSSROADS_MASTER_KEY.
    master_key: str | None = None
    #: Redis URL for limits and budget reservations shared by all replicas/workers.
    redis_url: str | None = None
    #: Seconds to wait for Redis before failing closed (budgeted keys get 503).
    redis_timeout_s: float = Field(default=1.0, gt=0, le=10)
    #: A model with no known price: ``block`` it, or serve it and ``flag`` the ledger row.
    unpriced_models: Literal["block", "flag"] = "block"
    #: Store prompt and response bodies in the ledger.
    store_bodies: bool = False
    #: SIGTERM: seconds to let in-flight requests and streams finish.
    shutdown_timeout_s: float = Field(default=30.0, ge=0)
    #: Largest accepted request body.
    max_request_bytes: int = Field(default=4 * 1024 * 1024, gt=0)
    #: Largest accepted request header (request line and fields), in bytes; more gets 431.
    max_header_bytes: int = Field(default=64 * 1024, ge=1024)
    #: Most header fields in one request; more gets 431.
    max_headers: int = Field(default=100, ge=10)
    #: Seconds for a request's header to arrive (from the connection opening, or from
    #: the request's first byte on a kept-alive one); then 408 and the connection closed.
    header_timeout_s: float = Field(default=10.0, gt=0)
    #: Seconds for a request's body to arrive once its header has; then 408 and closed.
    body_timeout_s: float = Field(default=30.0, gt=0)
    #: Seconds an idle keep-alive connection stays open between requests.
    keep_alive_timeout_s: float = Field(default=5.0, gt=0)
    #: Default max_tokens assumed when reserving budget for a request that sets none.
    default_max_tokens: int = Field(default=4096, gt=0)
    #: The most messages in a chat request; also the most items of any other array in
    #: its body (content parts, tools, stop), and 8× this many JSON objects and arrays.
    max_messages: int = Field(default=2048, gt=0)
    #: The deepest JSON nesting accepted in a request body.
    max_json_depth: int = Field(default=64, ge=8)
    #: Bearer token for ``GET /metrics`` (an env reference like ``${METRICS_TOKEN}``).
    #: Unset: the master key is the token when there is one (else /metrics is open).
    metrics_token: str | None = None
    #: Serve ``GET /metrics`` to anyone, even with a master key (trusted networks only).
    metrics_public: bool = False
    #: Model names served besides the configured ones (``models:`` entries and aliases,
    #: ``routes:``): ``false`` (none), ``true`` (any name the router resolves: embedded
    #: models, ``provider/model``, catalog ids), or a list of such names.
    serve_unconfigured: bool | list[str] = False
    #: A key with a budget whose client disconnects: seconds to go on reading the
    #: upstream's answer for the usage it bills (never past the deployments' timeout);
    #: 0 cuts at once. A request cut without its usage is charged its reservation.
    disconnect_wait_s: float = Field(default=60.0, ge=0, le=3600)
    #: At most this many requests read on at once after their clients left (the rest
    #: are cut at once and charged their reservation).
    disconnect_max_waits: int = Field(default=64, ge=0)
