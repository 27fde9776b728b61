"""Crossroads: open- vs closed-source LLMs, settled with software.

One interface to vendor APIs and open models, evidence from your own tasks, and a
decision you can defend. The public API is exactly ``__all__``; names load lazily so
that ``import crossroads`` (and ``crossroads --help``) stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "AsyncClient": "crossroads.client",
    "Client": "crossroads.client",
    "Config": "crossroads.config",
    "load_config": "crossroads.config",
    "Backend": "crossroads.backends.base",
    "Capabilities": "crossroads.backends.base",
    "Deployment": "crossroads.backends.base",
    "ChatRequest": "crossroads.types",
    "ChatResponse": "crossroads.types",
    "ChatChunk": "crossroads.types",
    "Usage": "crossroads.types",
    "CrossroadsError": "crossroads.errors",
    "APIError": "crossroads.errors",
    "AuthenticationError": "crossroads.errors",
    "BadRequestError": "crossroads.errors",
    "ConfigError": "crossroads.errors",
    "ContentFilteredError": "crossroads.errors",
    "ContextWindowExceededError": "crossroads.errors",
    "MissingKeyError": "crossroads.errors",
    "NotFoundError": "crossroads.errors",
    "PermissionDeniedError": "crossroads.errors",
    "RateLimitError": "crossroads.errors",
    "TimeoutError": "crossroads.errors",  # old name of UpstreamTimeoutError (deprecated)
    "UpstreamTimeoutError": "crossroads.errors",
    "UnknownModelError": "crossroads.errors",
    "UpstreamUnavailableError": "crossroads.errors",
}

__all__ = [
    "APIError",
    "AsyncClient",
    "AuthenticationError",
    "Backend",
    "BadRequestError",
    "Capabilities",
    "ChatChunk",
    "ChatRequest",
    "ChatResponse",
    "Client",
    "Config",
    "ConfigError",
    "ContentFilteredError",
    "ContextWindowExceededError",
    "CrossroadsError",
    "Deployment",
    "MissingKeyError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "UnknownModelError",
    "UpstreamTimeoutError",
    "UpstreamUnavailableError",
    "Usage",
    "__version__",
    "load_config",
]

if TYPE_CHECKING:
    from .backends.base import Backend, Capabilities, Deployment
    from .client import AsyncClient, Client
    from .config import Config, load_config
    from .errors import (
        APIError,
        AuthenticationError,
        BadRequestError,
        ConfigError,
        ContentFilteredError,
        ContextWindowExceededError,
        CrossroadsError,
        MissingKeyError,
        NotFoundError,
        PermissionDeniedError,
        RateLimitError,
        UnknownModelError,
        UpstreamTimeoutError,
        UpstreamUnavailableError,
    )
    from .types import ChatChunk, ChatRequest, ChatResponse, Usage


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'crossroads' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
