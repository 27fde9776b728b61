"""Structured logs: ``crossroads serve --log-format json`` (default ``text``).

With ``json`` every log record of the gateway process (the gateway's own, uvicorn's
server and access lines, any library's) is one JSON object per line on stderr:
``ts``, ``level``, ``logger``, ``message``, the record's ``extra`` fields and, for an
exception, ``exc``. Every request the gateway answers on a model endpoint adds one line
(logger ``crossroads.gateway.requests``, level info) with ``request_id``, ``key`` (the
key's *name*, ``master`` or ``-``), ``model``, ``route``, ``status``, ``latency_ms``,
``cost_usd``, ``protocol``, ``stream``, ``deployment``, ``attempts``, ``ttft_ms`` and
``error`` (an error class name).

Never a key or a body: the request line is built from names and numbers only, and every
message and string field is passed through :func:`~.errors.redact` (API keys and
bearer tokens masked) in case a library logs one. ``serve`` passes the choice to its
workers in ``$CROSSROADS_LOG_FORMAT``; each worker applies it when its app is created.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import logging.config
import os
from typing import TYPE_CHECKING, Any

from .errors import redact

if TYPE_CHECKING:
    from .call import Call

__all__ = [
    "ENV",
    "LOG_FORMATS",
    "REQUEST_LOGGER",
    "JsonFormatter",
    "configure",
    "configure_from_env",
    "log_request",
]

ENV = "CROSSROADS_LOG_FORMAT"
LOG_FORMATS = ("text", "json")
REQUEST_LOGGER = "crossroads.gateway.requests"
_requests = logging.getLogger(REQUEST_LOGGER)

#: Attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD = frozenset(vars(logging.LogRecord("x", 0, "x", 0, "x", None, None))) | {
    "message", "asctime", "taskName", "color_message",
}
#: ``extra`` fields never written, whatever a caller puts there.
_NEVER = frozenset({"body", "request_body", "response_body", "api_key", "key_value",
                    "authorization", "headers", "messages", "prompt", "content"})


#: Substrings that every pattern of :func:`~.errors.redact` contains (lower-cased): most
#: strings (paths, model and key names) are passed through without running the patterns.
_SUSPECT = ("k-", "k_", "hf-", "hf_", "xai-", "xai_", "bearer", "basic", "aiza")


def _mask(text: str) -> str:
    low = text.lower()
    return redact(text) if any(s in low for s in _SUSPECT) else text


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return _mask(value)
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items() if str(k).lower() not in _NEVER}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return _mask(str(value))


class JsonFormatter(logging.Formatter):
    """One JSON object per record, secrets masked (a :class:`logging.Formatter`)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": _mask(record.getMessage()),
        }
        for name, value in vars(record).items():
            if name not in _STANDARD and name.lower() not in _NEVER and name not in out:
                out[name] = _clean(value)
        if record.exc_info:
            out["exc"] = _mask(self.formatException(record.exc_info))
        return json.dumps(out, ensure_ascii=False, default=str)


def configure(log_format: str, level: str = "info") -> None:
    """Apply ``log_format`` to this process: ``json`` sends every logger's records
    through :class:`JsonFormatter` on stderr; ``text`` changes nothing."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format {log_format!r}: choose one of {', '.join(LOG_FORMATS)}")
    if log_format == "text":
        return
    level_name = "DEBUG" if level.lower() in ("debug", "trace") else level.upper()
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    own = {"handlers": ["json"], "level": level_name, "propagate": False}
    logging.config.dictConfig({
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"json": handler},
        "loggers": {
            "uvicorn": own,
            "uvicorn.error": {"level": level_name},
            "uvicorn.access": {**own, "level": "INFO"},
            "crossroads": own,
        },
        "root": {"handlers": ["json"], "level": "WARNING"},
    })


def configure_from_env() -> None:
    """:func:`configure` with ``$CROSSROADS_LOG_FORMAT`` (and ``$CROSSROADS_LOG_LEVEL``)."""
    log_format = os.environ.get(ENV)
    if log_format:
        configure(log_format, os.environ.get("CROSSROADS_LOG_LEVEL") or "info")


def log_request(
    call: Call, status: int, *, cost_usd: float | None = None, error: str | None = None
) -> None:
    """The request's one line (names and numbers only; nothing when info is off)."""
    if not _requests.isEnabledFor(logging.INFO):
        return
    import time

    latency_ms = round((time.perf_counter() - call.started) * 1000, 3)
    target = call.target
    fields = {
        "request_id": call.request_id,
        "key": call.key_label,
        "model": call.model or "-",
        "route": call.endpoint,
        "status": status,
        "latency_ms": latency_ms,
        "cost_usd": cost_usd,
        "protocol": call.protocol,
        "stream": call.stream,
        "deployment": target.name if target is not None else None,
        "attempts": call.attempts,
        "ttft_ms": round(call.ttft_s * 1000, 3) if call.ttft_s is not None else None,
        "error": error,
    }
    _requests.info("%s %s %d %.1fms", call.endpoint, call.model or "-", status, latency_ms,
                   extra=fields)
