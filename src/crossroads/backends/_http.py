"""The thin transport shared by HTTP backends: pooled httpx client, error mapping, SSE.

A backend makes exactly one attempt per call: a failure is raised as the mapped
:class:`~crossroads.errors.APIError` carrying the upstream's ``Retry-After`` /
``retry-after-ms`` and ``x-should-retry`` hints, and :mod:`crossroads.routing` decides
whether, where and when to try again.

Streams are parsed by the one SSE parser, :mod:`._sse` (re-exported here for the backends).
"""

from __future__ import annotations

import email.utils
import json
import time
from abc import abstractmethod
from collections.abc import AsyncIterator, Callable
from typing import Any, ClassVar

import httpx

from .. import __version__
from .._trace import TRACEPARENT
from ..errors import APIError, UpstreamTimeoutError, UpstreamUnavailableError
from ._fasthttp import FastTransport, fast_transport_enabled
from ._sse import SSEEvent, decode_event, iter_sse, json_loads
from .base import Backend, Deployment

__all__ = [
    "DEFAULT_HEADERS",
    "HTTPBackend",
    "HTTPTransport",
    "SSEEvent",
    "decode_event",
    "iter_sse",
    "parse_retry_after",
]

#: Headers of the default client, so of every request it sends.
DEFAULT_HEADERS = {
    "accept": "application/json",
    "accept-encoding": "gzip, deflate",
    "user-agent": f"crossroads/{__version__}",
}

ErrorMapper = Callable[[int, Any, httpx.Headers], APIError]


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


def _traced(headers: dict[str, str]) -> dict[str, str]:
    """``headers`` plus the current span's ``traceparent`` (tracing on)."""
    traceparent = TRACEPARENT.get()
    return headers if traceparent is None else {**headers, "traceparent": traceparent}


def _body_bytes(response: httpx.Response) -> AsyncIterator[bytes]:
    """The answer's body as it arrives: straight from the transport's stream when there
    is no ``Content-Encoding`` to undo (``aiter_bytes`` would hand each chunk on
    unchanged through two more generators), else ``response.aiter_bytes()``."""
    stream = response.stream
    if (
        "content-encoding" in response.headers
        or response.is_stream_consumed
        or response.is_closed
        or not isinstance(stream, httpx.AsyncByteStream)
    ):
        return response.aiter_bytes()
    response.is_stream_consumed = True
    return stream.__aiter__()


def _body_of(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


class HTTPTransport:
    """One pooled ``httpx.AsyncClient`` per backend, with error mapping (one try per call).

    Every POST, with the default client or an injected one (a ``MockTransport`` in the
    tests), takes one path, :meth:`_send_direct`: the request is built here, with the
    client's headers under ours as ``AsyncClient.build_request`` merges them, and handed
    to the client's transport for its URL. ``AsyncClient.send`` is used only for an
    injected client with auth, event hooks, redirects or default params, which only it
    carries out; no client's cookies are kept for POSTs (API keys are headers).
    """

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
            client = httpx.AsyncClient(
                transport=FastTransport(limits=limits) if fast_transport_enabled() else None,
                timeout=self.timeout,
                limits=limits,
                headers=DEFAULT_HEADERS,
            )
        self.client = client
        #: ``_send_direct`` serves this client (see the class docstring).
        self._direct = not (
            client.auth is not None
            or any(client.event_hooks.values())
            or client.follow_redirects
            or client.params
        )
        self._request_headers = httpx.Headers(client.headers)
        self._request_headers.update(headers)
        self._request_headers["content-type"] = "application/json"
        self._timeouts = self.timeout.as_dict()
        self._routes: dict[str, tuple[httpx.URL, httpx.AsyncBaseTransport]] = {}

    def _url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else self.base_url + path

    def _route(self, path: str) -> tuple[httpx.URL, httpx.AsyncBaseTransport]:
        """``_url(path)`` parsed, and the client's transport for it, found once per path
        (httpx parses a string URL and looks up its transport on every request)."""
        route = self._routes.get(path)
        if route is None:
            url = httpx.URL(self._url(path))
            route = url, self.client._transport_for_url(url)
            if len(self._routes) < 64:
                self._routes[path] = route
        return route

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
            if self._direct:
                response = await self._send_direct(path, body, params, stream)
            else:
                request = self.client.build_request(
                    "POST",
                    self._url(path),
                    json=body,
                    params=params,
                    headers=_traced(self.headers),
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

    async def _send_direct(
        self, path: str, body: dict[str, Any], params: dict[str, str] | None, stream: bool
    ) -> httpx.Response:
        """One POST handed straight to the client's transport (what ``AsyncClient.send``
        does for it, minus the layers an API call never needs)."""
        url, transport = self._route(path)
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        request = httpx.Request(
            "POST",
            url.copy_merge_params(params) if params else url,
            headers=self._request_headers,
            content=content.encode(),
            extensions={"timeout": self._timeouts},
        )
        traceparent = TRACEPARENT.get()
        if traceparent is not None:  # tracing on: the upstream call joins the trace
            request.headers["traceparent"] = traceparent
        response = await transport.handle_async_request(request)
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
            return json_loads(response.content), response.headers
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

    async def stream_bytes(
        self, path: str, body: dict[str, Any], params: dict[str, str] | None = None
    ) -> AsyncIterator[bytes]:
        """POST and yield the answer's body as it arrives, one piece per read from the
        connection (what arrived together stays together); read it to the end, as
        :meth:`stream_sse` says."""
        response = await self._send(path, body, params, stream=True)
        try:
            async for part in _body_bytes(response):
                yield part
        except httpx.HTTPError as exc:
            raise self._network_error(exc) from exc
        finally:
            await response.aclose()

    async def stream_sse(
        self, path: str, body: dict[str, Any], params: dict[str, str] | None = None
    ) -> AsyncIterator[SSEEvent]:
        """POST and yield the server-sent events of the answer.

        Consumers should read to the end of the stream, not stop at the final event: a
        response closed with unread bytes (even the last chunk terminator) loses its
        connection instead of going back to the pool.
        """
        response = await self._send(path, body, params, stream=True)
        events = iter_sse(_body_bytes(response))
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


class HTTPBackend(Backend):
    """A backend over HTTP: one :class:`HTTPTransport` built from the deployment.

    Subclasses give ``default_base_url``, :meth:`auth_headers` and :meth:`map_error`,
    and may adjust :meth:`base_url`.
    """

    allowed_options: ClassVar[frozenset[str] | None] = frozenset()

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
