"""How many tokens a gateway request may generate, decided before its budget is reserved.

* A ``max_tokens`` above what the model can produce — its maximum output
  (``max_output_tokens``, from crossroads.yaml or the catalog) or its context window — is
  refused with a 400 naming the limit, whoever asks (the master key, a $0 local model
  included) and before any budget or rate limit is counted.
* A request without ``max_tokens`` gets one, and the upstream is sent it: the gateway's
  ``default_max_tokens`` (4096), or for a local model (llama.cpp, transformers) its
  entry's ``max_output_tokens``, else :data:`~crossroads.backends._local.LOCAL_DEFAULT_MAX_TOKENS`
  (256) — never more than any deployment of the route accepts. The reservation and the
  tokens-per-minute count use that number, and since the upstream is held to it the bill
  cannot exceed the reservation.
"""

from __future__ import annotations

from ..backends._local import LOCAL_DEFAULT_MAX_TOKENS
from ..catalog.local import LOCAL_BACKENDS
from ..routing import Target
from ..types import ChatRequest
from .errors import ProtocolError

__all__ = ["output_cap"]


def _largest(values: list[int | None]) -> int | None:
    """The largest of ``values`` when every one is known (an unknown limit might be any)."""
    return max(v for v in values if v) if values and all(values) else None


def _default_for(target: Target, default_max_tokens: int) -> int:
    deployment = target.deployment
    if deployment.backend in LOCAL_BACKENDS:
        wanted = deployment.max_output_tokens or LOCAL_DEFAULT_MAX_TOKENS
    else:
        wanted = default_max_tokens
    for limit in (deployment.max_output_tokens, deployment.context_window):
        if limit:
            wanted = min(wanted, limit)
    return wanted


def output_cap(
    request: ChatRequest, targets: list[Target], default_max_tokens: int
) -> tuple[ChatRequest, int]:
    """``request`` with its ``max_tokens`` checked (or filled in), and that number."""
    asked = request.max_tokens
    if asked is None:
        cap = min(
            (_default_for(t, default_max_tokens) for t in targets), default=default_max_tokens
        )
        return request.model_copy(update={"max_tokens": cap}), cap
    output = _largest([t.deployment.max_output_tokens for t in targets])
    window = _largest([t.deployment.context_window for t in targets])
    if output is not None and asked > output:
        raise ProtocolError(
            f"max_tokens is too large: {asked}. {request.model} supports at most {output} "
            f"completion tokens, whereas you provided {asked}.",
            param="max_tokens",
            code="invalid_value",
        )
    if window is not None and asked > window:
        raise ProtocolError(
            f"max_tokens is too large: {asked}. {request.model} has a context window of "
            f"{window} tokens (prompt and completion together), whereas you provided "
            f"{asked}.",
            param="max_tokens",
            code="invalid_value",
        )
    return request, asked
