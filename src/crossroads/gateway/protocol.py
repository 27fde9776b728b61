"""What the gateway needs from a client protocol, one value per protocol package.

``crossroads.gateway.openai.PROTOCOL`` and ``crossroads.gateway.anthropic.PROTOCOL`` fill
it in; :meth:`crossroads.gateway.service.Gateway.handle` is written against it alone, so
the pipeline does not know which protocol a client speaks.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from ..errors import APIError
from ..types import ChatChunk, ChatRequest, ChatResponse

if TYPE_CHECKING:
    from .call import Call

__all__ = ["ClientProtocol", "ErrorResponse", "ProtocolName", "StreamEncoder"]

ProtocolName = Literal["openai", "anthropic"]

#: Status, JSON body and headers of an error answer.
ErrorResponse = tuple[int, dict[str, Any], dict[str, str]]


class StreamEncoder(Protocol):
    """Turns one answer's stream into server-sent events (bytes ready to send)."""

    def __call__(self, item: ChatChunk | APIError) -> bytes:
        """The events for one chunk, for the usage-only last chunk, or for the error that
        ends a failed stream."""
        ...

    def close(self) -> bytes:
        """What ends the stream (``[DONE]``, ``message_stop``); may be empty."""
        ...


@dataclass(frozen=True, slots=True)
class ClientProtocol:
    """One client protocol: how its requests are read and its answers written."""

    name: ProtocolName
    #: A canonical request from the body (raw, or loaded by ``inputs.load_body``), or a
    #: 400 ``ProtocolError`` naming the field.
    parse_request: Callable[[bytes | dict[str, Any]], ChatRequest]
    #: The body of a complete answer (its ``model`` is already the name the client used).
    render_response: Callable[[ChatResponse], bytes]
    #: A fresh encoder for one streamed answer: ``(request, model the client asked for)``.
    stream_encoder: Callable[[ChatRequest | None, str], StreamEncoder]
    #: Status, body and headers of the error answer for any exception.
    error_response: Callable[[BaseException], ErrorResponse]
    #: Once the key is known, the request as the gateway admits it (the Responses API
    #: prepends a stored conversation here); None: the parsed request as it is.
    prepare: Callable[[Call, ChatRequest], Awaitable[ChatRequest]] | None = None
