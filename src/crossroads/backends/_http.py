"""The thin transport shared by HTTP backends: pooled httpx client, error mapping, SSE.

A backend makes exactly one attempt per call: a failure is raised as the mapped
:class:`~crossroads.errors.APIError` carrying the upstream's ``Retry-After`` /
``retry-after-ms`` and ``x-should-retry`` hints, and :mod:`crossroads.routing` decides
whether, where and when to try again.

SSE parsing follows https://html.spec.whatwg.org/multipage/server-sent-events.html.
"""

from __future__ import annotations

import codecs
import email.utils
import http.cookiejar
import json
import re
import time
import urllib.request
from abc import abstractmethod
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from http.client import HTTPResponse
from typing import Any

import httpx

from .. import __version__
from ..errors import APIError, UpstreamTimeoutError, UpstreamUnavailableError
from ._fasthttp import FastTransport, fast_transport_enabled
from ._fasthttp import _Body as FastBody
from .base import Backend, Deployment

__all__ = [
    "HTTPBackend",
    "HTTPTransport",
    "SSEEvent",
    "decode_event",
    "iter_sse",
    "parse_retry_after",
]

ErrorMapper = Callable[[int, Any, httpx.Headers], APIError]


@dataclass(frozen=True, slots=True)
class SSEEvent:
    event: str
    data: str
    id: str | None = None

    def json(self) -> Any:
        return json.loads(self.data)


def parse_retry_after(headers: httpx.Headers) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or HTTP date)."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(float(ms) / 1000.0, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


#: What ``str.splitlines`` (and so ``httpx.Response.aiter_lines``) ends a line at.
_NEWLINES = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
_UTF8_CHARSET = re.compile(r'charset\s*=\s*"?utf-8"?\s*(;|$)', re.IGNORECASE)


class _Lines:
    """Splits a UTF-8 byte stream into lines exactly as ``httpx.Response.aiter_lines``
    does (``str.splitlines``, a ``\\r\\n`` split across chunks counted once)."""

    def __init__(self) -> None:
        self._decode = codecs.getincrementaldecoder("utf-8")("replace").decode
        self._pending = ""

    def feed(self, chunk: bytes) -> list[str]:
        text = self._decode(chunk)
        if self._pending:
            text, self._pending = self._pending + text, ""
        if not text:
            return []
        lines = text.splitlines()
        last = text[-1]
        if last == "\r":  # a "\n" may follow in the next chunk
            self._pending = lines.pop() + "\r"
        elif last not in _NEWLINES:
            self._pending = lines.pop()
        return lines

    def close(self) -> list[str]:
        return (self._pending + self._decode(b"", True)).splitlines()


async def _utf8_lines(chunks: AsyncIterator[bytes]) -> AsyncGenerator[str, None]:
    """Lines of a UTF-8 byte stream, split exactly as ``httpx.Response.aiter_lines`` does."""
    lines = _Lines()
    async for chunk in chunks:
        for line in lines.feed(chunk):
            yield line
    for line in lines.close():
        yield line


def _is_utf8(response: httpx.Response) -> bool:
    """Whether the answer's text is UTF-8: its charset says so, or it names none and the
    default encoding is UTF-8 (what ``response.aiter_lines()`` would decode it with)."""
    content_type = response.headers.get("content-type", "")
    if "charset" in content_type.lower():
        return _UTF8_CHARSET.search(content_type) is not None
    return response.default_encoding == "utf-8"


def _lines(response: httpx.Response) -> AsyncIterator[str]:
    """``response.aiter_lines()``, without its charset detection when the text is UTF-8."""
    if _is_utf8(response):
        return _utf8_lines(response.aiter_bytes())
    return response.aiter_lines()


class _SSEDecoder:
    """The server-sent events state machine, fed lines (terminators removed) in batches."""

    __slots__ = ("data", "event", "last_id")

    def __init__(self) -> None:
        self.event = ""
        self.last_id: str | None = None
        self.data: list[str] = []

    def feed(self, lines: Iterable[str]) -> list[SSEEvent]:
        """The events that these lines complete."""
        events: list[SSEEvent] = []
        for line in lines:
            if not line:
                if self.data:
                    events.append(
                        SSEEvent(self.event or "message", "\n".join(self.data), self.last_id)
                    )
                self.event, self.data = "", []
                continue
            if line[0] == ":":
                continue
            name, _, value = line.partition(":")
            if value.startswith(" "):
                value = value[1:]
            if name == "data":
                self.data.append(value)
            elif name == "event":
                self.event = value
            elif name == "id":
                self.last_id = value
        return events

    def close(self) -> SSEEvent | None:
        """The last event, when the stream ended without the blank line that ends it."""
        if self.data:
            return SSEEvent(self.event or "message", "\n".join(self.data), self.last_id)
        return None


async def iter_sse(lines: AsyncIterator[str]) -> AsyncGenerator[SSEEvent, None]:
    """Server-sent events from a stream of lines (line terminators already removed)."""
    decoder = _SSEDecoder()
    async for line in lines:
        for event in decoder.feed((line,)):
            yield event
    last = decoder.close()
    if last is not None:
        yield last


async def _utf8_sse(chunks: AsyncIterator[bytes]) -> AsyncGenerator[SSEEvent, None]:
    """``iter_sse(_utf8_lines(chunks))`` in one generator: each chunk's lines are split
    exactly as :func:`_utf8_lines` splits them and parsed as one batch, instead of
    passing one at a time through a second generator. Same lines, same events."""
    lines = _Lines()
    decoder = _SSEDecoder()
    async for chunk in chunks:
        for event in decoder.feed(lines.feed(chunk)):
            yield event
    for event in decoder.feed(lines.close()):
        yield event
    final = decoder.close()
    if final is not None:
        yield final


def _body_bytes(response: httpx.Response) -> AsyncIterator[bytes]:
    """The answer's body as it arrives: straight from :class:`FastTransport`'s stream when
    there is no ``Content-Encoding`` to undo (``aiter_bytes`` would hand each chunk on
    unchanged through two more generators), else ``response.aiter_bytes()``."""
    stream = response.stream
    if isinstance(stream, FastBody) and "content-encoding" not in response.headers:
        if response.is_stream_consumed:
            raise httpx.StreamConsumed()
        response.is_stream_consumed = True
        return stream.__aiter__()
    return response.aiter_bytes()


def _sse_events(response: httpx.Response) -> AsyncGenerator[SSEEvent, None]:
    """The server-sent events of a streamed answer."""
    if _is_utf8(response):
        return _utf8_sse(_body_bytes(response))
    return iter_sse(response.aiter_lines())


def _body_of(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


class _CookieJar(http.cookiejar.CookieJar):
    """httpx hands every answer to the jar, which parses its headers into an email
    message; answers that set no cookie are skipped before that."""

    def extract_cookies(self, response: HTTPResponse, request: urllib.request.Request) -> None:
        answer = getattr(response, "response", None)  # httpx's cookie-compat wrapper
        if (
            isinstance(answer, httpx.Response)
            and not answer.headers.get_list("set-cookie")
            and not answer.headers.get_list("set-cookie2")
        ):
            return
        super().extract_cookies(response, request)


class HTTPTransport:
    """One pooled ``httpx.AsyncClient`` per backend, with error mapping (one try per call)."""

    def __init__(
        self,
        *,
        vendor: str,
        base_url: str,
        headers: dict[str, str],
        error_mapper: ErrorMapper,
        timeout: float = 60.0,
        connect_timeout: float = 10.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.vendor = vendor
        self.base_url = base_url.rstrip("/")
        self.headers = headers
        self.error_mapper = error_mapper
        self.timeout = httpx.Timeout(timeout, connect=connect_timeout)
        self._owns_client = client is None
        if client is None:
            limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
            client = (
                httpx.AsyncClient(
                    transport=FastTransport(limits=limits),
                    timeout=self.timeout,
                    cookies=_CookieJar(),
                )
                if fast_transport_enabled()
                else httpx.AsyncClient(timeout=self.timeout, limits=limits, cookies=_CookieJar())
            )
        self.client = client
        self._urls: dict[str, httpx.URL] = {}
        #: Our own transport, called directly on the hot path (no cookies, auth or
        #: redirects to handle for a JSON POST to an API), else None.
        self._direct: FastTransport | None = None
        if self._owns_client and isinstance(client._transport, FastTransport):
            self._direct = client._transport
            self._direct_headers = {
                "accept": "application/json",
                "accept-encoding": "gzip, deflate",
                "user-agent": f"crossroads/{__version__}",
                **{k.lower(): v for k, v in headers.items()},
            }
            self._timeouts = self.timeout.as_dict()

    def _url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else self.base_url + path

    def _parsed_url(self, path: str) -> httpx.URL:
        """``_url(path)`` parsed once (httpx parses a string URL on every request)."""
        url = self._urls.get(path)
        if url is None:
            url = httpx.URL(self._url(path))
            if len(self._urls) < 64:
                self._urls[path] = url
        return url

    def _network_error(self, exc: httpx.HTTPError) -> APIError:
        if isinstance(exc, httpx.TimeoutException):
            return UpstreamTimeoutError(
                f"no answer in time ({exc.__class__.__name__})", vendor=self.vendor
            )
        return UpstreamUnavailableError(
            f"cannot reach {self.base_url}: {exc.__class__.__name__}: {exc}", vendor=self.vendor
        )

    async def _send(
        self, path: str, body: dict[str, Any], params: dict[str, str] | None, stream: bool
    ) -> httpx.Response:
        """Send once; returns a response with a 2xx status (unread when streaming), or
        raises the mapped error carrying the upstream's retry hints (the router retries)."""
        try:
            if self._direct is not None and not params:
                response = await self._send_direct(path, body, stream)
            else:
                request = self.client.build_request(
                    "POST",
                    self._parsed_url(path),
                    json=body,
                    params=params,
                    headers=self.headers,
                    timeout=self.timeout,
                )
                response = await self.client.send(request, stream=stream)
        except httpx.HTTPError as exc:
            raise self._network_error(exc) from exc
        if response.is_success:
            return response
        await response.aread()
        error = self.error_mapper(response.status_code, _body_of(response), response.headers)
        hint = parse_retry_after(response.headers)
        if hint is not None:  # else keep the vendor's body hint (Gemini RetryInfo)
            error.retry_after = hint
        should = response.headers.get("x-should-retry")
        if should in ("true", "false"):
            error.should_retry = should == "true"
        await response.aclose()
        raise error

    async def _send_direct(self, path: str, body: dict[str, Any], stream: bool) -> httpx.Response:
        """One POST straight through :class:`FastTransport` (what ``AsyncClient.send``
        does for it, minus the layers an API call never needs)."""
        assert self._direct is not None
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        request = httpx.Request(
            "POST",
            self._parsed_url(path),
            headers={**self._direct_headers, "content-type": "application/json"},
            content=content.encode(),
            extensions={"timeout": self._timeouts},
        )
        response = await self._direct.handle_async_request(request)
        response.request = request
        if not stream:
            try:
                await response.aread()
            finally:
                await response.aclose()
        return response

    async def post_json(
        self, path: str, body: dict[str, Any], params: dict[str, str] | None = None
    ) -> tuple[Any, httpx.Headers]:
        """POST a JSON body and return the decoded JSON answer and its headers."""
        response = await self._send(path, body, params, stream=False)
        try:
            return response.json(), response.headers
        except ValueError as exc:
            raise UpstreamUnavailableError(
                f"answer was not JSON (status {response.status_code})", vendor=self.vendor
            ) from exc

    async def get_json(self, path: str, *, probe_timeout_s: float | None = None) -> Any:
        """One GET without retries (used to probe that an upstream is reachable)."""
        try:
            response = await self.client.get(
                self._url(path),
                headers=self.headers,
                timeout=httpx.Timeout(probe_timeout_s) if probe_timeout_s else self.timeout,
            )
        except httpx.HTTPError as exc:
            raise self._network_error(exc) from exc
        if not response.is_success:
            raise self.error_mapper(response.status_code, _body_of(response), response.headers)
        return _body_of(response)

    async def stream_sse(
        self, path: str, body: dict[str, Any], params: dict[str, str] | None = None
    ) -> AsyncIterator[SSEEvent]:
        """POST and yield the server-sent events of the answer.

        Consumers should read to the end of the stream, not stop at the final event: a
        response closed with unread bytes (even the last chunk terminator) loses its
        connection instead of going back to the pool.
        """
        response = await self._send(path, body, params, stream=True)
        events = _sse_events(response)
        try:
            async for event in events:
                yield event
        except httpx.HTTPError as exc:
            raise self._network_error(exc) from exc
        finally:
            await events.aclose()
            await response.aclose()

    async def aclose(self) -> None:
        if self._owns_client:
            await self.client.aclose()


def decode_event(event: SSEEvent, vendor: str) -> Any:
    """The JSON payload of a stream event; a malformed one is an upstream failure."""
    try:
        return json.loads(event.data)
    except ValueError as exc:
        raise UpstreamUnavailableError(
            f"malformed stream event: {event.data[:200]!r}", vendor=vendor
        ) from exc


class HTTPBackend(Backend):
    """A backend over HTTP: one :class:`HTTPTransport` built from the deployment.

    Subclasses give ``default_base_url``, :meth:`auth_headers` and :meth:`map_error`,
    and may adjust :meth:`base_url`.
    """

    def __init__(self, deployment: Deployment, *, http: httpx.AsyncClient | None = None) -> None:
        super().__init__(deployment, http=http)
        self.transport = HTTPTransport(
            vendor=self.name,
            base_url=self.base_url(),
            headers={"content-type": "application/json", **self.auth_headers()}
            | deployment.headers,
            error_mapper=self.map_error,
            timeout=deployment.timeout,
            connect_timeout=deployment.connect_timeout,
            client=http,
        )

    def base_url(self) -> str:
        return (self.deployment.base_url or self.default_base_url or "").rstrip("/")

    @abstractmethod
    def auth_headers(self) -> dict[str, str]:
        """Headers that carry the key (and any required version header)."""

    @abstractmethod
    def map_error(self, status: int, body: Any, headers: httpx.Headers) -> APIError:
        """The Crossroads error for an HTTP error answer."""

    async def aclose(self) -> None:
        await self.transport.aclose()
