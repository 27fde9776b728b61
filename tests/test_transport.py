"""SSE parsing, Retry-After parsing and backoff: pure, no network."""

from __future__ import annotations

import email.utils
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from crossroads.backends._http import SSEEvent, iter_sse, parse_retry_after
from crossroads.routing import RetryPolicy


async def _lines(*lines: str) -> AsyncIterator[str]:
    for line in lines:
        yield line


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
