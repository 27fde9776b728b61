"""OpenAI-shaped error answers: https://platform.openai.com/docs/guides/error-codes.

An error in the middle of a stream is one ``data: {"error": {...}}`` event, never
followed by ``[DONE]``; the official SDK raises it as ``openai.APIError``.
"""

from __future__ import annotations

from typing import Any

from ..errors import ErrorInfo, classify, retry_headers

__all__ = ["error_body", "error_response"]

_TYPES = {
    "rate_limit": "requests",
    "quota": "insufficient_quota",
    "server": "server_error",
    "upstream": "server_error",
    "unavailable": "server_error",
    "overloaded": "server_error",
    "timeout": "server_error",
}


def _render(info: ErrorInfo) -> dict[str, Any]:
    return {
        "error": {
            "message": info.message,
            "type": _TYPES.get(info.kind, "invalid_request_error"),
            "param": info.param,
            "code": info.code,
        }
    }


def error_body(exc: BaseException) -> dict[str, Any]:
    """``{"error": {"message", "type", "param", "code"}}`` for any exception."""
    return _render(classify(exc))


def error_response(exc: BaseException) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Status, JSON body and headers of the error answer for ``exc``.

    Statuses are the ones the official SDK maps to its classes: 400 BadRequestError, 401
    AuthenticationError, 403 PermissionDeniedError, 404 NotFoundError, 409 ConflictError,
    422 UnprocessableEntityError, 429 RateLimitError, >=500 InternalServerError.
    """
    info = classify(exc)
    return info.status, _render(info), retry_headers(info)
