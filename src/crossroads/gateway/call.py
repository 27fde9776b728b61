"""One request on its way through the gateway, and its request id."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..errors import CrossroadsError
from ..routing import Target
from ..types import ChatRequest, Usage
from .keys import KeyRecord
from .limits import Admission
from .protocol import ProtocolName

if TYPE_CHECKING:
    from ..guard import RequestGuard
    from ..telemetry import SpanHandle

__all__ = ["Call", "ClientGoneError", "Reservation", "new_request_id"]

_ID_PREFIX = ""
_ID_COUNTER = itertools.count(1)


def _new_id_prefix() -> None:
    global _ID_PREFIX, _ID_COUNTER
    _ID_PREFIX = f"req_{uuid.uuid4().hex[:12]}"
    _ID_COUNTER = itertools.count(1)


_new_id_prefix()
os.register_at_fork(after_in_child=_new_id_prefix)


def new_request_id() -> str:
    """Unique per request and process: a random per-process prefix and a counter (a
    uuid4 per request reads /dev/urandom, a measurable cost at thousands per second)."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER):012x}"


class ClientGoneError(CrossroadsError):
    """The client disconnected before the answer was complete (HTTP 499 in the ledger)."""


@dataclass(frozen=True, slots=True)
class Reservation:
    """What a request was admitted with: its prompt's upper bound, the most output tokens
    it may produce, the worst case of its cost (None: unpriced) and the deployments it may
    go to; a request cut short without the upstream's usage is charged from it."""

    prompt_tokens: int
    max_tokens: int
    usd: float | None
    targets: list[Target]


@dataclass
class Call:
    """One request on its way through the gateway."""

    protocol: ProtocolName
    endpoint: str
    request_id: str = field(default_factory=lambda: new_request_id())
    started: float = field(default_factory=time.perf_counter)
    created_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    key: KeyRecord | None = None
    admin: bool = False
    model: str = ""
    stream: bool = False
    request: ChatRequest | None = None
    admission: Admission | None = None
    reservation: Reservation | None = None
    #: The request's guardrails (input checks done, output checks to come), when any apply.
    guard: RequestGuard | None = None
    target: Target | None = None
    attempts: int = 0
    ttft_s: float | None = None
    #: What the upstream reported having spent, once it answered (recorded even when
    #: the answer is then refused, e.g. by the output guard).
    spent: Usage | None = None
    recorded: bool = False
    #: The client left while the upstream's answer was still being read for its usage
    #: (the ledger row says 499).
    gone: bool = False
    #: A stream sampled by a shadow rule: its text as relayed (``shadowing.py``).
    shadow_text: list[str] | None = None
    #: Its OpenTelemetry span, while open (tracing on; ``tracing.py``).
    span: SpanHandle | None = None

    @property
    def key_label(self) -> str:
        if self.key is not None:
            return self.key.name
        return "master" if self.admin else "-"

    @property
    def headers(self) -> dict[str, str]:
        headers = {"x-request-id": self.request_id}
        if self.admission is not None:
            headers.update(self.admission.headers)
        return headers
