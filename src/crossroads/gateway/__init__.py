"""The gateway: an OpenAI- and Anthropic-compatible server in front of every model."""

from ..config.gateway import GatewaySettings

__all__ = ["GatewaySettings"]
