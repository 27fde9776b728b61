"""Anthropic-shaped error answers: https://docs.anthropic.com/en/api/errors.

A failure after a stream began is one ``error`` event (:meth:`.sse.StreamEncoder.error`).
"""

from __future__ import annotations

from typing import Any

from ..errors import ErrorInfo, classify, retry_headers

__all__ = ["error_body", "error_response"]

_STATUS_AND_TYPE: dict[str, tuple[int, str]] = {
    "invalid_request": (400, "invalid_request_error"),
    "authentication": (401, "authentication_error"),
    "permission": (403, "permission_error"),
    "not_found": (404, "not_found_error"),
    "conflict": (409, "invalid_request_error"),
    "too_large": (413, "request_too_large"),
    "unprocessable": (422, "invalid_request_error"),
    "rate_limit": (429, "rate_limit_error"),
    "quota": (429, "rate_limit_error"),
    "server": (500, "api_error"),
    "upstream": (502, "api_error"),
    "unavailable": (503, "api_error"),
    "overloaded": (529, "overloaded_error"),
    "timeout": (504, "timeout_error"),
}



def _render(info: ErrorInfo) -> tuple[int, dict[str, Any]]:
    status, kind = _STATUS_AND_TYPE[info.kind]
    if info.kind in ("invalid_request", "not_found", "permission", "authentication"):
        status = info.status if 400 <= info.status < 500 else status
    message = info.anthropic_message or info.message
    return status, {"type": "error", "error": {"type": kind, "message": message}}


def error_body(exc: BaseException) -> dict[str, Any]:
    """``{"type": "error", "error": {"type", "message"}}`` for any exception."""
    return _render(classify(exc))[1]


def error_response(exc: BaseException) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Status, JSON body and headers of the error answer for ``exc``.

    Statuses are the ones the official SDK maps to its classes: 400 BadRequestError, 401
    AuthenticationError, 403 PermissionDeniedError, 404 NotFoundError, 413
    RequestTooLargeError, 429 RateLimitError, 529 OverloadedError, other >=500
    InternalServerError.
    """
    info = classify(exc)
    status, body = _render(info)
    return status, body, retry_headers(info)
