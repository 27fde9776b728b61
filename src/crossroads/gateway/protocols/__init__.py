"""The gateway's wire formats: client-facing JSON and SSE to and from the canonical types.

Pure functions, no I/O: ``openai`` (Chat Completions, models, embeddings) and
``anthropic`` (Messages). Both render failures through :func:`errors.classify`, so one
exception reads the same in either protocol.
"""

from .errors import ErrorInfo, ProtocolError, classify

__all__ = ["ErrorInfo", "ProtocolError", "classify"]
