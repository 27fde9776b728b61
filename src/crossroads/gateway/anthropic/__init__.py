"""The Anthropic protocol of the gateway: ``POST /v1/messages``, as pure functions (no I/O).

:mod:`.messages` holds the request's wire models and their translation to the canonical
request, :mod:`.answer` writes Message objects, :mod:`.sse` streams them, :mod:`.errors`
writes error bodies. What the Anthropic backend translates too (stop reasons, usage,
tool calls, images) comes from :mod:`crossroads.backends.anthropic_wire`, one translation
for both. ``PROTOCOL`` is what :meth:`crossroads.gateway.service.Gateway.handle` uses.
"""

from __future__ import annotations

import json

from ...types import ChatResponse
from ..protocol import ClientProtocol
from .answer import message_json, new_message_id, stop_reason_of, usage_json
from .errors import error_body, error_response
from .messages import JSON_SCHEMA_NAME, MessagesRequest, parse_messages_request, to_chat_request
from .sse import EventEncoder, StreamEncoder

__all__ = [
    "JSON_SCHEMA_NAME",
    "PROTOCOL",
    "EventEncoder",
    "MessagesRequest",
    "StreamEncoder",
    "error_body",
    "error_response",
    "message_json",
    "new_message_id",
    "parse_messages_request",
    "stop_reason_of",
    "to_chat_request",
    "usage_json",
]


def _render_response(response: ChatResponse) -> bytes:
    return json.dumps(message_json(response, response.model)).encode()


PROTOCOL = ClientProtocol(
    name="anthropic",
    parse_request=parse_messages_request,
    render_response=_render_response,
    stream_encoder=EventEncoder,
    error_response=error_response,
)
