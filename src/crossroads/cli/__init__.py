"""The ``crossroads`` command line (typer + rich).

Every command imports what it needs inside its body, so ``crossroads --help`` loads
neither the HTTP stack nor any local-model runtime (torch, transformers, llama_cpp).
"""

from __future__ import annotations

from .app import app, main

__all__ = ["app", "main"]
