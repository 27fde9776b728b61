"""What the gateway tells a client when something fails, before either protocol renders it.

:func:`classify` turns any exception into one :class:`ErrorInfo` (status, kind, a message
safe to show a client, retry hints); ``openai.error_response`` and
``anthropic.error_response`` only render it. The rules:

* a :class:`ProtocolError` (the request is malformed) keeps its status, ``param`` and code;
* an error from an upstream vendor keeps its 4xx status and message (with anything that
  looks like a credential, a URL or a host masked: :func:`.sanitize.scrub`), except 401:
  the gateway's own credentials were refused, which the client cannot fix, so it reads
  as 502 without retry; and 429, whose vendor text (naming the gateway's organisation and
  limits) is replaced by a generic one;
* errors the gateway raises itself (``vendor`` None or ``"crossroads"``) keep their
  status, message and code: 401 gets code ``invalid_api_key``, a 429 with code
  ``insufficient_quota`` (a spent budget) says ``x-should-retry: false``;
* upstream 5xx, connection failures and timeouts become 502/503/504 (529: overloaded) with
  a generic message, as vendor messages and URLs are internals (the gateway's own such
  errors keep their message);
* configuration problems are 500 (503 without retry for a missing key) with a message
  that sends the client to the operator, naming no setting or environment variable of the
  server; any other exception is a 500 with a generic message.
"""

from __future__ import annotations

import builtins
import json
import math
import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from ..errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ConfigError,
    ContentFilteredError,
    ContextWindowExceededError,
    MissingKeyError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    UnknownModelError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from .sanitize import scrub

__all__ = [
    "GATEWAY_VENDOR",
    "GENERIC_SERVER_MESSAGE",
    "MAX_INT_DIGITS",
    "ErrorInfo",
    "ErrorKind",
    "ProtocolError",
    "classify",
    "format_path",
    "from_validation_error",
    "json_type",
    "load_json_object",
    "redact",
    "retry_headers",
]

ErrorKind = Literal[
    "invalid_request",  # 400
    "authentication",  # 401
    "permission",  # 403
    "not_found",  # 404
    "conflict",  # 409
    "too_large",  # 413
    "unprocessable",  # 422
    "rate_limit",  # 429, worth retrying later
    "quota",  # 429, not worth retrying (budget or quota spent)
    "server",  # 500
    "upstream",  # 502
    "unavailable",  # 503
    "overloaded",  # 503 (OpenAI) / 529 (Anthropic)
    "timeout",  # 504
]

#: The ``vendor`` of errors the gateway raises itself (also: ``vendor=None``).
GATEWAY_VENDOR = "crossroads"
GENERIC_SERVER_MESSAGE = "The server had an error while processing your request."

_KIND_OF_4XX: dict[int, ErrorKind] = {
    400: "invalid_request",
    401: "authentication",
    402: "quota",
    403: "permission",
    404: "not_found",
    409: "conflict",
    413: "too_large",
    422: "unprocessable",
    429: "rate_limit",
}

_SECRETS = (
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 ***"),
    (re.compile(r"\b(sk|pk|rk|hf|gsk|xai)([-_])[A-Za-z0-9_-]{8,}"), r"\1\2***"),
    (re.compile(r"\bAIza[0-9A-Za-z_-]{20,}"), "AIza***"),
)


class ProtocolError(BadRequestError):
    """A request the gateway refuses before calling a model; ``param`` names the field.

    ``param`` is written the way the client's protocol writes paths: ``messages[0].content``
    for OpenAI, ``messages.0.content`` for Anthropic.
    """

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        status_code: int = 400,
    ) -> None:
        super().__init__(message, status_code=status_code, code=code)
        self.param = param


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """A failure as the client should see it, in neither protocol yet."""

    status: int
    kind: ErrorKind
    message: str
    code: str | None = None
    param: str | None = None
    #: Seconds the client should wait before trying again, when known.
    retry_after: float | None = None
    #: False: tell SDKs not to retry (``x-should-retry: false``); None: let them decide.
    should_retry: bool | None = None
    #: The message in Anthropic's wording, where it differs (a prompt over the window).
    anthropic_message: str | None = None


def redact(text: str) -> str:
    """``text`` with anything that looks like an API key or bearer token masked."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


def retry_headers(info: ErrorInfo) -> dict[str, str]:
    """``retry-after`` / ``retry-after-ms`` / ``x-should-retry``, as both official SDKs read."""
    headers: dict[str, str] = {}
    if info.retry_after is not None:
        headers["retry-after"] = str(max(math.ceil(info.retry_after), 0))
        headers["retry-after-ms"] = str(max(int(info.retry_after * 1000), 0))
    if info.should_retry is not None:
        headers["x-should-retry"] = "true" if info.should_retry else "false"
    return headers


def _upstream(exc: APIError) -> ErrorInfo:
    status = exc.status_code
    own = exc.message if exc.vendor in (None, GATEWAY_VENDOR) else None  # written by us
    if isinstance(exc, UpstreamTimeoutError) or status == 504:
        message = "The model's upstream server did not answer in time."
        return ErrorInfo(504, "timeout", own or message)
    if status == 529:
        return ErrorInfo(503, "overloaded", own or "The model's upstream server is overloaded.")
    if status == 503:
        message = "The model's upstream server is unavailable."
        return ErrorInfo(503, "unavailable", own or message)
    detail = f" (HTTP {status})" if status is not None else ""
    return ErrorInfo(502, "upstream", own or f"The model's upstream server failed{detail}.")


def _context_overflow(exc: ContextWindowExceededError, message: str) -> ErrorInfo:
    """A prompt over the context window, in the words of each protocol's vendor, which
    clients match to raise their context-overflow errors (LangChain's
    ``ContextOverflowError``, LiteLLM's ``ContextWindowExceededError``). OpenAI: code
    ``context_length_exceeded`` and both of its wordings, "Input tokens exceed the
    configured limit of N tokens" (what LangChain looks for in the message) and "This
    model's maximum context length is N tokens"; Anthropic: "prompt is too long: M tokens
    > N maximum". The counts replace the refuser's own text (a local model's could name
    its weights' path)."""
    tokens, window = exc.prompt_tokens, exc.context_window
    if tokens is not None and window is not None:
        openai = (
            f"Input tokens exceed the configured limit of {window} tokens: this model's "
            f"maximum context length is {window} tokens, and your messages resulted in "
            f"{tokens} tokens. Please reduce the length of the messages."
        )
        anthropic = f"prompt is too long: {tokens} tokens > {window} maximum"
    else:
        lower = message.lower()
        openai = (
            message
            if "exceed the configured limit" in lower
            else f"Input tokens exceed the configured limit of this model: {message}"
        )
        anthropic = message if "prompt is too long" in lower else f"prompt is too long: {message}"
    return ErrorInfo(
        400,
        "invalid_request",
        openai,
        ContextWindowExceededError.code_name,
        "messages",
        anthropic_message=anthropic,
    )


def _api_error(exc: APIError) -> ErrorInfo:
    upstream = exc.vendor not in (None, GATEWAY_VENDOR)
    message = scrub(exc.message) if upstream else redact(exc.message)
    code = exc.code
    if isinstance(exc, ProtocolError):
        kind = _KIND_OF_4XX.get(exc.status_code or 400, "invalid_request")
        return ErrorInfo(exc.status_code or 400, kind, message, code, exc.param)
    if isinstance(exc, ContextWindowExceededError):
        return _context_overflow(exc, message)
    if isinstance(exc, ContentFilteredError):
        return ErrorInfo(400, "invalid_request", message, ContentFilteredError.code_name)
    if isinstance(exc, AuthenticationError):
        if exc.vendor in (None, GATEWAY_VENDOR):  # the gateway's own key check
            return ErrorInfo(401, "authentication", message, code or "invalid_api_key")
        return ErrorInfo(
            502,
            "upstream",
            f"The upstream provider ({exc.vendor}) refused the gateway's credentials; "
            "the gateway operator must check its API key.",
            "upstream_authentication_failed",
            should_retry=False,
        )
    if isinstance(exc, RateLimitError):
        own = exc.vendor in (None, GATEWAY_VENDOR)
        if code in ("insufficient_quota", "billing_error") or exc.status_code == 402:
            if not own:
                message = "The upstream provider's quota for this model is used up."
            return ErrorInfo(429, "quota", message, "insufficient_quota", should_retry=False)
        if not own:  # vendor texts name the gateway's organisation and limits
            message = "The model's upstream provider is rate limiting requests; try again later."
        return ErrorInfo(
            429, "rate_limit", message, code or "rate_limit_exceeded", None, exc.retry_after
        )
    if isinstance(exc, NotFoundError) and code in (None, "not_found_error", "NOT_FOUND"):
        code = "model_not_found"
    if isinstance(exc, UpstreamUnavailableError | UpstreamTimeoutError):
        return _upstream(exc)
    status = exc.status_code
    if isinstance(exc, BadRequestError | PermissionDeniedError | NotFoundError) or (
        status is not None and 400 <= status < 500 and status != 408
    ):
        status = status if status is not None and 400 <= status < 500 else 400
        kind = _KIND_OF_4XX.get(status, "invalid_request")
        if kind == "quota":
            return ErrorInfo(429, "quota", message, "insufficient_quota", should_retry=False)
        return ErrorInfo(status, kind, message, code)
    return _upstream(exc)


def classify(exc: BaseException) -> ErrorInfo:
    """How ``exc`` should look to a client; never exposes internals of unknown errors."""
    if isinstance(exc, APIError):
        return _api_error(exc)
    if isinstance(exc, UnknownModelError):
        hint = f" Did you mean: {', '.join(exc.suggestions)}?" if exc.suggestions else ""
        return ErrorInfo(
            404,
            "not_found",
            f"The model {exc.name!r} does not exist on this gateway.{hint} "
            "GET /v1/models lists the models it serves.",
            "model_not_found",
            "model",
        )
    if isinstance(exc, MissingKeyError):
        return ErrorInfo(
            503,
            "unavailable",
            f"The model {exc.model!r} is not available on this gateway right now; the "
            "gateway operator can find the details in its log.",
            "model_not_configured",
            should_retry=False,
        )
    if isinstance(exc, ConfigError):
        return ErrorInfo(
            500,
            "server",
            "The gateway is misconfigured for this request; the gateway operator can find "
            "the details in its log.",
            "gateway_misconfigured",
            should_retry=False,
        )
    if isinstance(exc, builtins.TimeoutError):
        return ErrorInfo(504, "timeout", "The request did not finish in time.")
    return ErrorInfo(500, "server", GENERIC_SERVER_MESSAGE)


# --- request parsing helpers -----------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


#: The most digits an integer in a request may have (int64 needs 19).
MAX_INT_DIGITS = 20


class _NumberOutOfRangeError(ValueError):
    pass


def _bounded_int(digits: str) -> int:
    if len(digits) > MAX_INT_DIGITS + (digits[0] == "-"):
        raise _NumberOutOfRangeError(
            f"an integer has {len(digits.lstrip('-'))} digits; the limit is {MAX_INT_DIGITS}"
        )
    return int(digits)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NumberOutOfRangeError(f"the number {text[:40]} is too large for a float")
    return value


#: One strict decoder for every request (json.loads with hooks builds one per call).
_DECODER = json.JSONDecoder(
    parse_constant=_reject_constant, parse_int=_bounded_int, parse_float=_finite_float
)


def load_json_object(body: bytes | str | dict[str, Any]) -> dict[str, Any]:
    """The request body as a JSON object, parsed strictly (no NaN/Infinity, no number too
    large for a float, integers of at most ``MAX_INT_DIGITS`` digits); a body already
    loaded (by :func:`crossroads.gateway.inputs.load_body`) is returned as it is."""
    if isinstance(body, dict):
        return body
    try:
        if not isinstance(body, str):  # as json.loads reads bytes (UTF-8, -16 or -32)
            body = body.decode(json.detect_encoding(body), "surrogatepass")
        data = _DECODER.decode(body)
    except UnicodeDecodeError as exc:
        raise ProtocolError("The request body is not valid UTF-8.") from exc
    except RecursionError:
        raise ProtocolError(
            "The request body nests JSON too deeply to be read; send a flatter body.",
            code="request_too_deep",
        ) from None
    except json.JSONDecodeError as exc:
        raise ProtocolError(
            f"The request body is not valid JSON: {exc.msg} "
            f"(line {exc.lineno}, column {exc.colno})."
        ) from exc
    except _NumberOutOfRangeError as exc:
        raise ProtocolError(
            f"The request body holds a number out of range: {exc}.", code="invalid_value"
        ) from None
    except ValueError as exc:
        raise ProtocolError(f"The request body is not valid JSON: {exc}.") from exc
    if not isinstance(data, dict):
        raise ProtocolError(f"The request body must be a JSON object, not {json_type(data)}.")
    return data


def json_type(value: Any) -> str:
    """The JSON name of a value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _child(container: Any, key: int | str) -> tuple[bool, Any]:
    """``(True, container[key])`` when the input has that key or index."""
    if isinstance(container, dict) and isinstance(key, str) and key in container:
        return True, container[key]
    if isinstance(container, list) and isinstance(key, int) and 0 <= key < len(container):
        return True, container[key]
    return False, None


def _path(loc: tuple[int | str, ...], data: Any, *, missing: bool) -> list[int | str]:
    """The part of a pydantic ``loc`` found in the input: drops union and tag labels, keeps
    the name of a missing field."""
    path: list[int | str] = []
    current = data
    for position, item in enumerate(loc):
        found, child = _child(current, item)
        if found:
            path.append(item)
            current = child
        elif missing and position == len(loc) - 1 and isinstance(current, dict):
            path.append(item)
    return path


def format_path(path: list[int | str], style: Literal["openai", "anthropic"]) -> str:
    """``messages[0].content`` (OpenAI) or ``messages.0.content`` (Anthropic)."""
    out = ""
    for item in path:
        if isinstance(item, int):
            out += f"[{item}]" if style == "openai" else f".{item}"
        else:
            out += f".{item}" if out else item
    return out


def from_validation_error(
    exc: ValidationError, data: Any, style: Literal["openai", "anthropic"]
) -> ProtocolError:
    """One 400 naming the most specific field pydantic complained about."""
    found: list[tuple[list[int | str], dict[str, Any]]] = [
        (_path(tuple(err["loc"]), data, missing=err["type"] == "missing"), dict(err))
        for err in exc.errors()
    ]
    depth = max(len(path) for path, _ in found)
    deepest = [(path, err) for path, err in found if len(path) == depth]
    path = deepest[0][0]
    param = format_path(path, style) or None
    missing = all(err["type"] == "missing" for _, err in deepest)
    messages: list[str] = []
    for _, err in deepest:
        text = str(err["msg"])
        if text not in messages:
            messages.append(text)
    detail = "; ".join(messages)
    if style == "anthropic":
        return ProtocolError(f"{param}: {detail}" if param else detail, param=param)
    if missing and param:
        return ProtocolError(f"Missing required parameter: '{param}'.", param=param)
    where = f" for '{param}'" if param else ""
    return ProtocolError(f"Invalid value{where}: {detail}.", param=param)
