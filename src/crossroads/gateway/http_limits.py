"""Limits on the HTTP connection itself, below the ASGI app: header size and count,
header and body read deadlines (slow-loris), for ``crossroads serve``.

uvicorn's httptools protocol has none of these: llhttp buffers a header of any size,
and nothing closes a connection whose request never finishes arriving. They cannot be
enforced in the app either, which only sees a request once its header is complete, so
:class:`LimitedHttpToolsProtocol` adds them to the protocol, with one timer per
connection that is armed only while a request is *incomplete after a read*: the usual
request, whose header and body arrive in one read, arms none. Idle keep-alive is
uvicorn's own ``timeout_keep_alive`` (see :func:`uvicorn_options`).

Refusals are answered in the OpenAI error shape with ``connection: close``: 431 for a
header over ``gateway.max_header_bytes`` or with more than ``gateway.max_headers``
fields, 408 for a header not complete within ``gateway.header_timeout_s`` or a body not
complete within ``gateway.body_timeout_s`` of its header. A connection that sent nothing
is closed without an answer.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from functools import partial
from typing import Any, cast

from uvicorn.config import Config as UvicornConfig
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from ..config.gateway import GatewaySettings

__all__ = ["HttpLimits", "LimitedHttpToolsProtocol", "uvicorn_options"]

log = logging.getLogger("crossroads.gateway")

_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


@dataclass(frozen=True)
class HttpLimits:
    """The per-connection limits (``gateway:`` settings of the same names)."""

    max_header_bytes: int = 64 * 1024
    max_headers: int = 100
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0

    @classmethod
    def from_settings(cls, settings: GatewaySettings) -> HttpLimits:
        return cls(
            max_header_bytes=settings.max_header_bytes,
            max_headers=settings.max_headers,
            header_timeout_s=settings.header_timeout_s,
            body_timeout_s=settings.body_timeout_s,
        )


class _Refused(Exception):
    """Raised in a parser callback to stop parsing a refused request."""


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with :class:`HttpLimits` enforced."""

    def __init__(
        self,
        config: UvicornConfig,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        limits: HttpLimits | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = limits or HttpLimits()
        self._in_header = False  # a request has begun and its header is incomplete
        self._in_body = False  # its header is complete, its body is not
        self._header_bytes = 0
        self._completed_in_read = False
        self._refusal: tuple[int, str] | None = None
        self._deadline: asyncio.TimerHandle | None = None

    # -- connection ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # A connection that never sends a request is closed as a slow header would be.
        self._arm("header")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refusal is not None:
            return
        self._completed_in_read = False
        super().data_received(data)
        if self._refusal is not None or self.transport.is_closing():
            return
        if self._in_header:
            if not self._completed_in_read:  # else part of ``data`` was the last request
                self._header_bytes += len(data)
            if self._header_bytes > self.limits.max_header_bytes:
                self._refuse(431, self._header_too_large())
                return
            if len(self.headers) > self.limits.max_headers:
                self._refuse(431, self._too_many_headers())
                return
            if self._deadline is None:
                self._arm("header")
        elif self._in_body:
            if self._deadline is None:
                self._arm("body")
        elif self._deadline is None and (self.cycle is None or self.cycle.response_complete):
            # Bytes that began no request (blank lines) cancelled the keep-alive timer.
            self._arm("header")

    def send_400_response(self, msg: str) -> None:
        # uvicorn's answer to a parser error, which a callback's _Refused also is.
        if self._refusal is not None:
            self._write_refusal(*self._refusal)
        else:
            super().send_400_response(msg)

    # -- parser callbacks ----------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_header, self._in_body = True, False
        self._header_bytes = 0

    def on_headers_complete(self) -> None:
        if len(self.headers) > self.limits.max_headers:
            self._refusal = (431, self._too_many_headers())
            raise _Refused  # a parser error: uvicorn calls send_400_response
        self._in_header, self._in_body = False, True
        if self._deadline is not None:
            self._disarm()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_body = False
        self._completed_in_read = True
        if self._deadline is not None:
            self._disarm()
        super().on_message_complete()

    # -- deadlines and refusals ----------------------------------------------------------

    def _arm(self, phase: str) -> None:
        limits = self.limits
        delay = limits.body_timeout_s if phase == "body" else limits.header_timeout_s
        self._deadline = self.loop.call_later(delay, self._expired, phase)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self, phase: str) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self.flow.read_paused:  # the server stopped reading (pipelining), not the client
            self._arm(phase)
            return
        if phase == "body":
            limit = self.limits.body_timeout_s
            self._refuse(408, f"The request body was not complete within {limit:g} s of its "
                              "header (gateway.body_timeout_s). Send the body without pauses.")
        elif self._in_header:
            limit = self.limits.header_timeout_s
            self._refuse(408, f"The request header was not complete within {limit:g} s "
                              "(gateway.header_timeout_s). Send the header without pauses.")
        else:
            self.transport.close()  # nothing sent: no answer

    def _too_many_headers(self) -> str:
        return (
            f"The request has more than {self.limits.max_headers} header fields "
            "(gateway.max_headers). Send fewer headers."
        )

    def _header_too_large(self) -> str:
        return (
            f"The request header is larger than {self.limits.max_header_bytes:,} bytes "
            "(gateway.max_header_bytes). Send fewer or smaller headers."
        )

    def _refuse(self, status: int, message: str) -> None:
        self._refusal = (status, message)
        self._write_refusal(status, message)

    def _write_refusal(self, status: int, message: str) -> None:
        self._disarm()
        log.warning("HTTP %d from %s: %s", status, _peer(self.client), message)
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            # The app still holds a request on this connection: it sees a disconnect.
            cycle.disconnected = True
            cycle.message_event.set()
            if cycle.response_started:
                self.transport.close()
                return
        body = json.dumps({"error": {
            "message": message, "type": "invalid_request_error", "param": None,
            "code": "request_timeout" if status == 408 else "header_too_large",
        }}).encode()
        head = [b"HTTP/1.1 %d %s\r\n" % (status, _REASONS[status])]
        head += [k + b": " + v + b"\r\n" for k, v in self.server_state.default_headers]
        head += [b"content-type: application/json\r\n",
                 b"content-length: %d\r\n" % len(body), b"connection: close\r\n\r\n"]
        self.transport.write(b"".join(head) + body)
        self.transport.close()


def _peer(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "unknown"


def uvicorn_options(settings: GatewaySettings) -> dict[str, Any]:
    """The ``uvicorn.run`` options that enforce ``settings``' HTTP limits: the protocol
    (a picklable factory, so ``--workers`` processes get it too) and idle keep-alive."""
    protocol = partial(LimitedHttpToolsProtocol, limits=HttpLimits.from_settings(settings))
    return {
        "http": cast("type[asyncio.Protocol]", protocol),
        "timeout_keep_alive": settings.keep_alive_timeout_s,
    }
