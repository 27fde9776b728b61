"""Checks run before the gateway starts listening, so misconfiguration shows at once."""

from __future__ import annotations

import os

from ..config import Config, secret_setting
from ..config.gateway import GatewaySettings
from ..errors import MissingKeyError
from ..routing import resolve_all
from .metrics_access import metrics_token

__all__ = ["MASTER_ENV", "check_routes", "master_key"]

MASTER_ENV = "CROSSROADS_MASTER_KEY"


def master_key(settings: GatewaySettings) -> str | None:
    """The admin key: ``gateway.master_key`` (``${VAR}`` expanded), else
    ``$CROSSROADS_MASTER_KEY``; None (no admin API) when empty. A reference to an unset
    variable is a configuration error, not a silently disabled admin API."""
    if not settings.master_key:
        return os.environ.get(MASTER_ENV) or None
    return secret_setting(
        "gateway.master_key", settings.master_key, "or write ${VAR:-} to run without the admin API"
    )



def check_routes(config: Config) -> list[str]:
    """Resolve the master key and every route's deployments. Configuration errors raise;
    a missing API key only warns (that deployment fails, and its route falls back, until
    the key is set)."""
    master_key(config.gateway)
    metrics_token(config.gateway)
    warnings: list[str] = []
    for route in config.routes:
        for target in route.deployments:
            try:
                resolve_all(target.model, config)
            except MissingKeyError as exc:
                warnings.append(f"route {route.name!r}: {exc.message}")
    return warnings
