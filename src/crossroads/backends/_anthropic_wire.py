"""Small tables of Anthropic's Messages API shared by the backend and the gateway.

Stop reasons: https://docs.anthropic.com/en/api/handling-stop-reasons; error types and
their HTTP statuses: https://docs.anthropic.com/en/api/errors.
"""

from __future__ import annotations

from ..types import FinishReason

__all__ = ["ERROR_TYPE_STATUS", "FINISH_TO_STOP_REASON", "STOP_REASON_TO_FINISH"]

#: Anthropic ``stop_reason`` -> canonical finish reason.
STOP_REASON_TO_FINISH: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

#: Canonical finish reason -> Anthropic ``stop_reason`` (the reverse, one answer each;
#: "error" has no counterpart and reads as an ordinary end of turn).
FINISH_TO_STOP_REASON: dict[FinishReason, str] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
    "error": "end_turn",
}

#: HTTP status of each documented error type.
ERROR_TYPE_STATUS: dict[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
