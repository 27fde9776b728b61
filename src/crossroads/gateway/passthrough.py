"""Streams relayed as the upstream sent them: OpenAI client, OpenAI-format upstream, no
guardrails on the request.

When nothing rewrites a stream, translating every event into the canonical types and
back (parse, validate, re-encode, one write per chunk) is most of the CPU a gateway
spends on it. Here each event's bytes go to the client as they came, the events that
arrived together in one write; each is read once (a fast JSON decode, no validation) for
what the ledger, the limits and the metrics need: the usage, the content deltas counted
and the time to the first one. Two things differ from the upstream's bytes, as on the
translating path:

* the ``model`` field says the name the client asked for (one substitution per event,
  only when the upstream's differs);
* the end is the gateway's: the usage-only chunk (when the client asked for it with
  ``stream_options.include_usage``) and ``data: [DONE]`` go out once the ledger row is
  committed; a failure ends the stream with one error event and no ``[DONE]``.

Comment lines (keep-alives) are not relayed, and an upstream that ends its lines with CR
has them turned into LF. A request under guardrails (which may rewrite the text, and
unmask what the input check masked) takes the translating path, :meth:`Gateway._relay`.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING

import anyio

from ..errors import APIError
from ..routing import OpenRelay, close_stream
from ..types import ChatChunk, StreamOptions, Usage
from .billing import cut_stream_usage
from .call import Call, ClientGoneError
from .http import EventStream, until_disconnect

if TYPE_CHECKING:
    from fastapi import Request

    from ..backends.openai import RawEvent
    from .http import Linger
    from .protocol import ClientProtocol
    from .service import Gateway

__all__ = ["relayable", "stream_as_sent"]

#: The top-level ``"model": "..."`` member of a chunk (the first key named model that is
#: not inside a string: a quote inside a JSON string is escaped).
_MODEL = re.compile(rb'([{,]\s*"model"\s*:\s*)"(?:[^"\\]|\\.)*"')


def relayable(gateway: Gateway, call: Call, protocol: ClientProtocol) -> bool:
    """Whether ``call``'s stream goes out as the upstream sends it: only for OpenAI's
    chat completions (the Responses API also speaks "openai" but has its own events)."""
    from .openai import PROTOCOL as CHAT_COMPLETIONS

    reservation = call.reservation
    return (
        protocol is CHAT_COMPLETIONS
        and call.guard is None
        and reservation is not None
        and gateway.router.relays(reservation.targets)
    )


async def stream_as_sent(
    gateway: Gateway,
    call: Call,
    request: Request,
    protocol: ClientProtocol,
    linger: Linger | None,
) -> EventStream:
    """Open the upstream stream (with fallback until its first events) and relay it."""
    assert call.request is not None
    upstream = call.request.model_copy(
        update={"stream": True, "stream_options": StreamOptions(include_usage=True)}
    )
    opened = await until_disconnect(request, gateway.router.open_relay(upstream), linger)
    call.target, call.attempts = opened.target, opened.attempts
    options = call.request.stream_options
    include_usage = bool(options is not None and options.include_usage)

    async def abandon() -> None:
        """The client left before the relay began: close upstream, record once."""
        with anyio.CancelScope(shield=True):
            await close_stream(opened.rest)
            opened.end()
            if not call.recorded:
                gone = ClientGoneError("The client closed the connection during the stream.")
                await gateway.finish(call, 499, cut_stream_usage(call, None, 0), error=gone)

    return EventStream(
        call.headers,
        _relay(gateway, call, opened, include_usage),
        protocol.stream_encoder(call.request, call.model),
        abandon,
        linger,
    )


class _Reader:
    """What the relay reads off the events on their way: usage, content deltas counted,
    time to the first one, and each event's bytes with the client's model name."""

    __slots__ = ("call", "counted", "model", "swap", "usage", "usage_event")

    def __init__(self, call: Call) -> None:
        self.call = call
        self.usage: Usage | None = None
        #: The upstream's usage-only event, held back until the ledger row is written.
        self.usage_event: bytes | None = None
        self.counted = 0
        self.model = json.dumps(call.model).encode()
        #: The upstream's ``"model": "..."`` member as it wrote it, and ours for it.
        self.swap: tuple[bytes, bytes] = (b"", b"")

    def read(self, events: list[RawEvent]) -> bytes:
        """The bytes to send now for ``events``."""
        from ..backends.openai import usage_from_openai

        out: list[bytes] = []
        for event in events:
            data = event.data
            if data is None:
                continue  # [DONE]: the gateway's own goes out after the ledger row
            raw = event.raw
            model = data.get("model")
            if model is not None and model != self.call.model:
                raw = self._rename(raw)
            usage = data.get("usage")
            if usage:
                self.usage = usage_from_openai(usage)
            choices = data.get("choices")
            if not choices and usage:
                self.usage_event = raw
                continue
            for choice in choices or ():
                delta = choice.get("delta") if isinstance(choice, dict) else None
                if delta and (
                    delta.get("content") or delta.get("tool_calls") or delta.get("refusal")
                ):
                    self.counted += 1
                    if self.call.shadow_text is not None and delta.get("content"):
                        self.call.shadow_text.append(delta["content"])  # for shadow rules
                    if self.call.ttft_s is None:
                        self.call.ttft_s = time.perf_counter() - self.call.started
            out.append(raw)
        return b"".join(out)

    def _rename(self, raw: bytes) -> bytes:
        """``raw`` with the client's model name (the upstream writes its member the same
        way in every event: found once, then replaced as bytes)."""
        old, new = self.swap
        if old and old in raw:
            return raw.replace(old, new, 1)
        found = _MODEL.search(raw)
        if found is None:
            return raw
        self.swap = (found.group(0), found.group(1) + self.model)
        return raw.replace(self.swap[0], self.swap[1], 1)


async def _relay(
    gateway: Gateway, call: Call, opened: OpenRelay, include_usage: bool
) -> AsyncGenerator[bytes | ChatChunk | APIError, None]:
    """The events as they arrive; at the end (ledger row committed first) the usage and
    the encoder's end, or the error event of a failed stream. Mirrors ``Gateway._relay``
    for what is recorded when."""
    reader = _Reader(call)
    gateway.shadow.mark(call)  # a sampled stream's text, for shadow rules
    rest = opened.rest
    status, error = 200, None
    try:
        events: list[RawEvent] | None = opened.first
        while events is not None:
            data = reader.read(events)
            if data:
                yield data
            events = await anext(rest, None)
    except APIError as exc:
        status, error = exc.status_code or 502, gateway.upstream_secrets.clean(exc)
    except BaseException as exc:  # client gone (cancelled) or a bug
        status = 499 if _is_cancel(exc) else 500
        await close_stream(rest)
        opened.end(reader.counted)
        final = cut_stream_usage(call, reader.usage, reader.counted)
        with anyio.CancelScope(shield=True):
            await gateway.finish(call, status, final, error=exc)
        raise
    finally:
        await close_stream(rest)
    final = cut_stream_usage(call, reader.usage, reader.counted)  # as the translating path
    opened.end(final.total_tokens)
    if error is not None:
        await gateway.finish(call, status, final, error=error)
        yield error
        return
    await gateway.finish(call, 200, final)
    if not include_usage:
        return
    if reader.usage_event is not None:
        yield reader.usage_event
    elif reader.usage is None:  # the upstream sent none: the gateway's count
        first = opened.first[0].data if opened.first and opened.first[0].data else {}
        yield ChatChunk(id=str(first.get("id") or "chatcmpl-unknown"), model=call.model,
                        usage=final)


def _is_cancel(exc: BaseException) -> bool:
    import asyncio

    return isinstance(exc, asyncio.CancelledError | ClientGoneError | GeneratorExit)
