"""Model backends: one module per family, registered through entry points."""

from .base import Backend, Capabilities, Deployment, Prices, available_backends, load_backend

__all__ = ["Backend", "Capabilities", "Deployment", "Prices", "available_backends", "load_backend"]
