"""One error hierarchy for every backend, the client, the CLI and the gateway.

    CrossroadsError
    ├── ConfigError                      bad or missing configuration (file, line)
    │   ├── UnknownModelError            a model name that resolves to nothing
    │   └── MissingKeyError              an API key whose env var is unset
    └── APIError                         a model call failed (vendor, status, request id)
        ├── BadRequestError              400/413/422: the request itself is wrong
        │   ├── ContextWindowExceededError   prompt too long for the model
        │   ├── ContentFilteredError     refused by the vendor's safety system
        │   └── GuardBlockedError        refused by a Crossroads guardrail policy
        ├── AuthenticationError          401: key missing, wrong or revoked
        ├── PermissionDeniedError        403: key valid, access not allowed
        ├── NotFoundError                404: model or endpoint does not exist
        ├── RateLimitError               429: slow down (``retry_after`` seconds)
        ├── UpstreamUnavailableError     5xx, 529 or connection failure
        └── UpstreamTimeoutError         408 or no answer in time

``retry_after`` (seconds the upstream asked to wait) and ``should_retry`` (the
upstream's ``x-should-retry`` verdict) ride on every :class:`APIError`, for the router's
one retry policy. ``TimeoutError`` is the old name of :class:`UpstreamTimeoutError`,
kept for one release (it shadowed Python's built-in).

Vendor errors are converted at the backend boundary with ``raise ... from exc``; the
gateway turns any of these into an OpenAI- or Anthropic-shaped body in one function.
"""

from __future__ import annotations

import warnings
from typing import Any

__all__ = [
    "APIError",
    "AuthenticationError",
    "BadRequestError",
    "ConfigDeprecationWarning",
    "ConfigError",
    "ContentFilteredError",
    "ContextWindowExceededError",
    "CrossroadsError",
    "GuardBlockedError",
    "MissingKeyError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "UnknownModelError",
    "UpstreamTimeoutError",
    "UpstreamUnavailableError",
    "error_for_status",
]


class ConfigDeprecationWarning(FutureWarning):
    """A setting still works but has moved; the message says where to (shown by the CLI
    as ``warning: …``)."""


class CrossroadsError(Exception):
    """Base of every error Crossroads raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(CrossroadsError):
    """Configuration is invalid; the message names the file (and line) and the fix."""


class UnknownModelError(ConfigError):
    def __init__(self, name: str, suggestions: list[str] | None = None) -> None:
        self.name = name
        self.suggestions = suggestions or []
        hint = f" Did you mean: {', '.join(self.suggestions)}?" if self.suggestions else ""
        super().__init__(
            f"Unknown model {name!r}.{hint} Run `crossroads models` for the catalog, "
            "or add it under `models:` in crossroads.yaml."
        )


class MissingKeyError(ConfigError):
    def __init__(self, model: str, env_var: str) -> None:
        self.model = model
        self.env_var = env_var
        super().__init__(
            f"No API key for {model!r}: set the environment variable {env_var} "
            f"(export {env_var}=...) or give `api_key: ${{{env_var}}}` in crossroads.yaml."
        )


class APIError(CrossroadsError):
    """A model call failed. ``status_code`` is the HTTP status (None for network errors)."""

    status_code: int | None = None
    #: OpenAI-style error type, used by the gateway's error bodies.
    error_type: str = "api_error"

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        vendor: str | None = None,
        request_id: str | None = None,
        code: str | None = None,
        body: Any = None,
        retry_after: float | None = None,
        should_retry: bool | None = None,
    ) -> None:
        prefix = f"[{vendor}] " if vendor else ""
        super().__init__(prefix + message)
        if status_code is not None:
            self.status_code = status_code
        self.vendor = vendor
        self.request_id = request_id
        self.code = code
        self.body = body
        #: Seconds the upstream asked to wait before a retry (``Retry-After``).
        self.retry_after = retry_after
        #: The upstream's own verdict (``x-should-retry``); None when it gave none.
        self.should_retry = should_retry


class BadRequestError(APIError):
    status_code = 400
    error_type = "invalid_request_error"


class ContextWindowExceededError(BadRequestError):
    """The prompt does not fit the model's context window; ``prompt_tokens`` and
    ``context_window`` when the one who refused it knows them (the gateway words its
    answer as each protocol's vendor does from them)."""

    code_name = "context_length_exceeded"

    def __init__(
        self,
        message: str,
        *,
        prompt_tokens: int | None = None,
        context_window: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.prompt_tokens = prompt_tokens
        self.context_window = context_window


class ContentFilteredError(BadRequestError):
    code_name = "content_filter"


class AuthenticationError(APIError):
    status_code = 401
    error_type = "authentication_error"


class PermissionDeniedError(APIError):
    status_code = 403
    error_type = "permission_error"


class NotFoundError(APIError):
    status_code = 404
    error_type = "not_found_error"


class RateLimitError(APIError):
    status_code = 429
    error_type = "rate_limit_error"



class UpstreamUnavailableError(APIError):
    status_code = 503
    error_type = "api_error"


class UpstreamTimeoutError(APIError):
    status_code = 408
    error_type = "timeout_error"


def __getattr__(name: str) -> Any:
    if name == "TimeoutError":
        warnings.warn(
            "crossroads.errors.TimeoutError is renamed UpstreamTimeoutError (it shadowed "
            "Python's built-in); the old name goes in the next release",
            DeprecationWarning,
            stacklevel=2,
        )
        return UpstreamTimeoutError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_CONTEXT_HINTS = (
    "context_length_exceeded",
    "context length",
    "context window",
    "maximum context",
    "prompt is too long",
    "too many tokens",
    "input token count",
)


def error_for_status(
    status: int,
    message: str,
    *,
    vendor: str,
    code: str | None = None,
    retry_after: float | None = None,
    request_id: str | None = None,
    body: Any = None,
) -> APIError:
    """Map an HTTP status and vendor message to the most specific Crossroads error."""
    kw: dict[str, Any] = {
        "status_code": status,
        "vendor": vendor,
        "request_id": request_id,
        "code": code,
        "body": body,
    }
    lowered = f"{code or ''} {message}".lower()
    if status in (400, 413, 422):
        if any(h in lowered for h in _CONTEXT_HINTS):
            return ContextWindowExceededError(message, **kw)
        if "content_filter" in lowered or "content_policy" in lowered or "safety" in lowered:
            return ContentFilteredError(message, **kw)
        return BadRequestError(message, **kw)
    if status == 401:
        return AuthenticationError(message, **kw)
    if status == 403:
        return PermissionDeniedError(message, **kw)
    if status == 404:
        return NotFoundError(message, **kw)
    if status == 408:
        return UpstreamTimeoutError(message, retry_after=retry_after, **kw)
    if status == 429:
        return RateLimitError(message, retry_after=retry_after, **kw)
    if status >= 500:
        return UpstreamUnavailableError(message, **kw)
    return APIError(message, **kw)


class GuardBlockedError(BadRequestError):
    """A guardrail policy refused the request (``stage="input"``) or the answer
    (``stage="output"``). The message names the policy and the check and says what to do;
    it never repeats the personal data or secret that was found."""

    code_name = "content_policy_violation"

    def __init__(
        self,
        message: str,
        *,
        check: str,
        stage: str,
        categories: list[str] | None = None,
        policy: str = "",
        decisions: list[Any] | None = None,
    ) -> None:
        super().__init__(message, code="content_policy_violation")
        self.check = check
        self.stage = stage
        self.categories = categories or []
        self.policy = policy
        #: Every decision taken for the request so far (``Decision`` objects).
        self.decisions = decisions or []
