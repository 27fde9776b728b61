"""Checks run before the gateway starts listening, so misconfiguration shows at once."""

from __future__ import annotations

from ..config import Config
from ..errors import MissingKeyError
from ..routing import resolve_all

__all__ = ["check_routes"]


def check_routes(config: Config) -> list[str]:
    """Resolve every route's deployments. Configuration errors raise; a missing API key
    only warns (that deployment fails, and its route falls back, until the key is set)."""
    warnings: list[str] = []
    for route in config.gateway.routes:
        for target in route.deployments:
            try:
                resolve_all(target.model, config)
            except MissingKeyError as exc:
                warnings.append(f"route {route.name!r}: {exc.message}")
    return warnings
