"""The ``error`` label of ``crossroads_errors`` in ``/metrics``: what the client was told
(the error's code, else its kind), never a class name of the server's code or text from
an upstream.

The values form a fixed set — the codes below, :data:`~.errors.ErrorKind` and
``client_closed_request`` — so a client or an upstream cannot add series to the scrape.
The ledger keeps the class name (``error_class``) for the operator.
"""

from __future__ import annotations

from .call import ClientGoneError
from .errors import classify

__all__ = ["CODES", "error_label"]

#: The codes the gateway's own errors carry that are labels of their own.
CODES = frozenset(
    {
        "admin_only",
        "content_filter",
        "content_policy_violation",
        "context_length_exceeded",
        "gateway_misconfigured",
        "insufficient_quota",
        "invalid_api_key",
        "model_not_allowed",
        "model_not_configured",
        "model_not_found",
        "model_not_supported",
        "rate_limit_exceeded",
        "request_too_large",
        "unpriced_model",
        "upstream_authentication_failed",
    }
)


def error_label(error: BaseException | None) -> str | None:
    """The metric label of ``error`` (None: the request succeeded)."""
    if error is None:
        return None
    if isinstance(error, ClientGoneError):
        return "client_closed_request"
    info = classify(error)
    return info.code if info.code in CODES else info.kind
