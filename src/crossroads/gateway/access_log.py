"""Query strings out of the access log: a client that puts a key in the URL
(``/v1/models?api_key=sk-cr-…``) must not leave it in the server's logs.

The gateway reads no query string from clients except ``/admin/usage``'s ``by`` and
``since``; every value is logged as ``[redacted]`` and the parameter names are kept when
they look like names (else the whole query is redacted).
"""

from __future__ import annotations

import logging
import re

__all__ = ["ACCESS_LOGGER", "RedactQueryFilter", "install", "redact_query"]

#: uvicorn's access logger: ``'%s - "%s %s HTTP/%s" %d'`` with the path (and query) third.
ACCESS_LOGGER = "uvicorn.access"
REDACTED = "[redacted]"
_NAME = re.compile(r"[A-Za-z0-9_.\-\[\]]{1,64}")


def redact_query(target: str) -> str:
    """``target`` (a path with its query string) with every query value redacted."""
    path, sep, query = target.partition("?")
    if not sep:
        return target
    names = [part.partition("=")[0] for part in query.split("&") if part]
    if not all(_NAME.fullmatch(name) for name in names):
        return f"{path}?{REDACTED}"
    return f"{path}?" + "&".join(f"{name}={REDACTED}" for name in names)


class RedactQueryFilter(logging.Filter):
    """Rewrites the path argument of uvicorn's access records (never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3:
            target = args[2]
            if isinstance(target, str) and "?" in target:
                record.args = (*args[:2], redact_query(target), *args[3:])
        return True


def install() -> None:
    """Add the filter to uvicorn's access logger (once per process)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, RedactQueryFilter) for f in logger.filters):
        logger.addFilter(RedactQueryFilter())
