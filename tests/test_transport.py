"""SSE parsing, Retry-After parsing and backoff: pure, no network."""

from __future__ import annotations

import email.utils
import random
import re
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from crossroads.backends._http import (
    HTTPTransport,
    SSEEvent,
    iter_sse,
    parse_retry_after,
)
from crossroads.backends._sse import SSEParser
from crossroads.errors import APIError
from crossroads.routing import RetryPolicy


async def _lines(*lines: str) -> AsyncIterator[bytes]:
    """The lines as a stream, one chunk each, the last one left unterminated."""
    for i, line in enumerate(lines):
        yield (line if i == len(lines) - 1 else line + "\n").encode()


async def _chunks(*chunks: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


async def _events(*chunks: bytes) -> list[SSEEvent]:
    return [e async for e in iter_sse(_chunks(*chunks))]


async def test_sse_events_names_multiline_data_comments() -> None:
    events = [
        e
        async for e in iter_sse(
            _lines(
                ": keep-alive comment",
                "event: message_start",
                'data: {"a": 1}',
                "",
                "data: line one",
                "data: line two",
                "",
                "event: ping",
                "data:{}",
                "",
                "data: [DONE]",
            )
        )
    ]
    assert events == [
        SSEEvent("message_start", '{"a": 1}'),
        SSEEvent("message", "line one\nline two"),
        SSEEvent("ping", "{}"),
        SSEEvent("message", "[DONE]"),
    ]


async def test_sse_lines_end_at_crlf_lf_or_cr_only() -> None:
    # U+2028 and the other characters str.splitlines breaks at are data, not line ends
    # (https://html.spec.whatwg.org/multipage/server-sent-events.html#parsing-an-event-stream).
    assert await _events(
        b"data: a\r\n\r\n",
        b"data: b\r\rdata: c\n\n",
        'data: {"t": "x\u2028y\x0cz\x85"}\n\n'.encode(),
    ) == [
        SSEEvent("message", "a"),
        SSEEvent("message", "b"),
        SSEEvent("message", "c"),
        SSEEvent("message", '{"t": "x\u2028y\x0cz\x85"}'),
    ]


async def test_sse_crlf_split_across_chunks_ends_one_line() -> None:
    # the CR ends the line at once, and the LF that follows in the next chunk ends none
    parser = SSEParser()
    assert parser.feed(b"data: a\r\n\r") == [SSEEvent("message", "a")]
    assert parser.feed(b"\ndata: b\r") == []
    assert parser.feed(b"\n") == []
    assert parser.feed(b"\r\n") == [SSEEvent("message", "b")]
    assert parser.close() == []


async def test_sse_bom_ids_empty_events_and_unknown_fields() -> None:
    assert await _events(
        "\ufeffid: 1\ndata: one\n\n".encode(),
        b"event: lost\n\n",  # no data: nothing dispatched, and the type is reset
        b"retry: 10\nfoo: bar\ndata\n\n",  # a field with no colon has an empty value
        b"id: x\x00y\ndata: two\n\n",  # an id holding NUL is ignored
        b"id\ndata: three\n\n",  # an empty id clears it
    ) == [
        SSEEvent("message", "one", "1"),
        SSEEvent("message", "", "1"),
        SSEEvent("message", "two", "1"),
        SSEEvent("message", "three", ""),
    ]


async def test_sse_is_utf8_whatever_the_chunking() -> None:
    encoded = "data: é€😀\n\n".encode()
    for cut in range(len(encoded) + 1):
        assert await _events(encoded[:cut], encoded[cut:]) == [SSEEvent("message", "é€😀")]
    assert await _events(b"data: \xff\n\ndata: \xe2\x82") == [
        SSEEvent("message", "\ufffd"),
        SSEEvent("message", "\ufffd"),
    ]


def _spec_events(data: bytes) -> list[SSEEvent]:
    """The spec's algorithm written out line by line on the whole stream: the reference
    the chunked parser must match (plus its one leniency, the unterminated last event)."""
    text = data.decode("utf-8", "replace").removeprefix("\ufeff")
    events: list[SSEEvent] = []
    event, lines, last_id = "", list[str](), None
    for line in re.split(r"\r\n|\r|\n", text):
        if not line:
            if lines:
                events.append(SSEEvent(event or "message", "\n".join(lines), last_id))
            event, lines = "", []
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                lines.append(value)
            elif name == "event":
                event = value
            elif name == "id" and "\0" not in value:
                last_id = value
    if lines:
        events.append(SSEEvent(event or "message", "\n".join(lines), last_id))
    return events


async def test_sse_events_are_the_same_however_the_stream_is_cut() -> None:
    # Moved from tests/test_fasthttp.py, where it compared the per-chunk reader with the
    # line-by-line one; the per-chunk reader is now the only one, checked against the spec.
    rng = random.Random(11)
    pieces = [
        "data: é",
        "data: {}",
        "event: ping",
        "id: 7",
        "id: a\0b",
        ": comment",
        "data:x",
        "data",
        "retry: 5",
        "\r\n",
        "\n",
        "\r",
        "\n\n",
        "\u2028",
        "\x85",
        "€",
        "\ufeff",
        "data: [DONE]",
    ]
    for _ in range(600):
        data = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 16))).encode()
        data = rng.choice([b"", b"\xef\xbb\xbf"]) + data  # sometimes a byte order mark
        data += rng.choice([b"", b"\xe2\x82"])  # sometimes a truncated character at the end
        cuts = sorted(rng.sample(range(len(data) + 1), min(len(data), rng.randint(0, 5))))
        chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
        assert await _events(*chunks) == _spec_events(data), chunks


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "3"}, 3.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({}, None),
        ({"retry-after": "soon"}, None),
    ],
)
def test_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(httpx.Headers(headers)) == expected


def test_retry_after_http_date() -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    value = parse_retry_after(httpx.Headers({"retry-after": when}))
    assert value is not None and 25 <= value <= 31


def test_backoff_grows_is_jittered_and_capped() -> None:
    policy = RetryPolicy(initial_delay_s=1, max_delay_s=4)
    for attempt, ceiling in [(0, 1), (1, 2), (2, 4), (5, 4)]:
        samples = {policy.backoff(attempt) for _ in range(50)}
        assert all(ceiling / 2 <= s <= ceiling for s in samples)
        assert len(samples) > 1, "delays are jittered"


async def test_an_injected_client_sends_its_headers_under_ours() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=dict(request.headers))

    client = httpx.AsyncClient(
        transport=httpx.MockTransport(handler), headers={"x-org": "client", "x-team": "t"}
    )
    transport = HTTPTransport(
        vendor="v",
        base_url="http://up.test",
        headers={"x-org": "deployment"},
        error_mapper=lambda *a: APIError("x"),
        client=client,
    )
    sent, _ = await transport.post_json("/x", {"a": 1})
    assert (sent["x-org"], sent["x-team"]) == ("deployment", "t")
    assert sent["content-type"] == "application/json"
    assert sent["content-length"] == "7"
    await client.aclose()


async def test_an_injected_client_with_auth_or_hooks_is_served_by_its_own_send() -> None:
    # Only AsyncClient.send runs auth flows and event hooks: such a client keeps them.
    hooked: list[str] = []

    async def hook(request: httpx.Request) -> None:
        hooked.append(str(request.url))

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"authorization": request.headers.get("authorization")})

    client = httpx.AsyncClient(
        transport=httpx.MockTransport(handler), auth=("u", "p"), event_hooks={"request": [hook]}
    )
    transport = HTTPTransport(
        vendor="v",
        base_url="http://up.test",
        headers={},
        error_mapper=lambda *a: APIError("x"),
        client=client,
    )
    sent, _ = await transport.post_json("/x", {}, params={"k": "1"})
    assert hooked == ["http://up.test/x?k=1"]
    assert sent["authorization"].startswith("Basic ")
    await client.aclose()
