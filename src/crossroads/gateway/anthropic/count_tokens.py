"""``POST /v1/messages/count_tokens``'s wire format:
https://docs.anthropic.com/en/api/messages-count-tokens.

The body is a Messages request without ``max_tokens`` (``model``, ``messages``,
``system``, ``tools``, ``tool_choice``…); the answer is ``{"input_tokens": N}``.
"""

from __future__ import annotations

from typing import Any

from ...types import ChatRequest
from ..errors import load_json_object
from .messages import parse_messages_request

__all__ = ["count_tokens_body", "parse_count_tokens_request"]


def parse_count_tokens_request(body: bytes | str | dict[str, Any]) -> ChatRequest:
    """The canonical request to count, or a 400 naming the field (as ``/v1/messages``)."""
    data = dict(load_json_object(body))
    data.pop("stream", None)
    data["max_tokens"] = 1  # not part of a count_tokens request
    return parse_messages_request(data)


def count_tokens_body(input_tokens: int) -> dict[str, Any]:
    return {"input_tokens": input_tokens}
