"""The backend protocol: what every model family implements, and how backends are found.

A backend is a translator (pure functions between the canonical types and the vendor's
wire format) plus a thin transport. Built-in backends are registered through the
entry-point group ``crossroads.backends`` exactly as a third-party plugin would be::

    [project.entry-points."crossroads.backends"]
    mybackend = "my_package.module:MyBackend"
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from importlib.metadata import entry_points
from typing import ClassVar

import httpx

from ..errors import ConfigError
from ..types import ChatChunk, ChatRequest, ChatResponse

__all__ = [
    "Backend",
    "Capabilities",
    "Deployment",
    "Prices",
    "available_backends",
    "load_backend",
]

ENTRY_POINT_GROUP = "crossroads.backends"


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a model served by a backend can do."""

    streaming: bool = True
    tools: bool = False
    json_schema: bool = False
    vision: bool = False
    logprobs: bool = False
    context_window: int | None = None
    #: Requests that can usefully be in flight at once (None: no known limit). An
    #: in-process model that serves one request at a time says 1, so callers queue
    #: instead of measuring time spent waiting in line as latency.
    max_concurrency: int | None = None


@dataclass(frozen=True, slots=True)
class Prices:
    """US dollars per one million tokens."""

    input: float
    output: float
    cached_input: float | None = None

    def cost(self, prompt: int, completion: int, cached: int = 0) -> float:
        cached_price = self.cached_input if self.cached_input is not None else self.input
        fresh = max(prompt - cached, 0)
        return (fresh * self.input + cached * cached_price + completion * self.output) / 1e6


@dataclass(frozen=True, slots=True)
class Deployment:
    """One callable model: a Crossroads name bound to a backend, a vendor id and a key."""

    name: str
    backend: str
    model: str
    base_url: str | None = None
    api_key: str | None = None
    #: The env var the key comes from, so errors can say what to set.
    api_key_env: str | None = None
    timeout: float = 60.0
    connect_timeout: float = 10.0
    max_retries: int = 2
    #: Upper bound on the seconds spent waiting between retries of one call.
    retry_budget_s: float = 60.0
    headers: dict[str, str] = field(default_factory=dict)
    context_window: int | None = None
    max_output_tokens: int | None = None
    prices: Prices | None = None
    options: dict[str, object] = field(default_factory=dict)


class Backend(ABC):
    """A model family. Subclasses set the class attributes and implement two methods."""

    #: Registered name, as used in ``backend:`` and in ``provider/model`` strings.
    name: ClassVar[str]
    #: Where the vendor's API lives when no ``base_url`` is configured.
    default_base_url: ClassVar[str | None] = None
    #: Standard environment variables of the vendor's own SDK.
    api_key_env: ClassVar[str | None] = None
    base_url_env: ClassVar[str | None] = None
    #: Whether a call without an API key is an error (False for local servers).
    requires_key: ClassVar[bool] = True
    #: What the family can do; :attr:`capabilities` adds the deployment's context window.
    features: ClassVar[Capabilities] = Capabilities()
    #: A cheap authenticated GET that proves the upstream is up and takes the key.
    probe_path: ClassVar[str | None] = None
    #: The keys a model entry's ``options:`` may have; any other is a configuration error.
    #: None: the backend validates its options itself (llamacpp, transformers, plugins).
    allowed_options: ClassVar[frozenset[str] | None] = None

    def __init__(self, deployment: Deployment, *, http: httpx.AsyncClient | None = None) -> None:
        self.deployment = deployment

    @property
    def capabilities(self) -> Capabilities:
        return replace(self.features, context_window=self.deployment.context_window)

    @abstractmethod
    async def complete(self, request: ChatRequest) -> ChatResponse:
        """One complete answer."""

    @abstractmethod
    def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        """The answer as OpenAI-shaped chunks; the last chunk carries usage."""

    async def check(self) -> bool:
        """Probe the upstream: True when reached, False when there is nothing to probe.

        Raises the mapped :class:`~crossroads.errors.APIError` when it is down or
        refuses the key.
        """
        transport = getattr(self, "transport", None)
        if transport is None or self.probe_path is None:
            return False
        await transport.get_json(self.probe_path, probe_timeout_s=5.0)
        return True

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections; the default has nothing to release."""


@functools.cache
def available_backends() -> dict[str, str]:
    """Registered backend names mapped to their ``module:Class`` targets."""
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


@functools.cache
def load_backend(name: str) -> type[Backend]:
    """The backend class registered under ``name`` (imported on first use)."""
    for ep in entry_points(group=ENTRY_POINT_GROUP, name=name):
        cls = ep.load()
        if not (isinstance(cls, type) and issubclass(cls, Backend)):
            raise ConfigError(f"Entry point {ep.value!r} for backend {name!r} is not a Backend")
        return cls
    known = ", ".join(sorted(available_backends())) or "none"
    raise ConfigError(
        f"Unknown backend {name!r}. Installed backends: {known}. "
        "A plugin registers one under the entry-point group 'crossroads.backends'."
    )
