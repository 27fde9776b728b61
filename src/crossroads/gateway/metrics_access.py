"""Who may read ``GET /metrics``: a bearer token, on by default when a master key is set.

The scrape names every key and what it spent, so it is not public on a gateway with an
admin: it takes ``Authorization: Bearer TOKEN`` with ``gateway.metrics_token`` (an env
reference) or the master key. Without a master key and a metrics token (a local, single
user gateway) it is open, as is any gateway with ``gateway.metrics_public: true``.
Prometheus sends the token with ``authorization: {type: Bearer, credentials_file: …}``.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass

from fastapi.responses import Response

from ..config import secret_setting
from ..config.gateway import GatewaySettings

__all__ = ["MetricsAccess", "metrics_token"]

_REFUSAL = {
    "error": {
        "message": "GET /metrics needs a token: send `Authorization: Bearer TOKEN` with the "
        "gateway's metrics token (gateway.metrics_token) or its master key.",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_api_key",
    }
}


def metrics_token(settings: GatewaySettings) -> str | None:
    """``gateway.metrics_token`` with ``${VAR}`` expanded; None when unset or empty. A
    reference to an unset variable is a configuration error (not an open endpoint)."""
    if not settings.metrics_token:
        return None
    return secret_setting(
        "gateway.metrics_token", settings.metrics_token, "or remove gateway.metrics_token"
    )


@dataclass(frozen=True, slots=True)
class MetricsAccess:
    """The tokens that open ``/metrics``; none: open to anyone."""

    tokens: tuple[bytes, ...] = ()

    @classmethod
    def from_settings(cls, settings: GatewaySettings, master: str | None) -> MetricsAccess:
        if settings.metrics_public:
            return cls()
        tokens = [t for t in (metrics_token(settings), master) if t]
        return cls(tuple(t.encode() for t in tokens))

    @property
    def open(self) -> bool:
        return not self.tokens

    def allows(self, headers: Mapping[str, str]) -> bool:
        if not self.tokens:
            return True
        bearer = headers.get("authorization") or ""
        if bearer[:7].lower() != "bearer ":
            return False
        given = bearer[7:].strip().encode()
        found = False
        for token in self.tokens:  # compare with each, in constant time
            found |= hmac.compare_digest(given, token)
        return found

    def refusal(self) -> Response:
        """401 in the OpenAI error shape, with the challenge of RFC 6750."""
        return Response(
            json.dumps(_REFUSAL),
            status_code=401,
            media_type="application/json",
            headers={"www-authenticate": 'Bearer realm="crossroads-metrics"'},
        )
