"""The gateway: an OpenAI- and Anthropic-compatible server in front of every model."""

from .settings import GatewaySettings, Route, RouteTarget

__all__ = ["GatewaySettings", "Route", "RouteTarget"]
