"""A complete answer as an Anthropic Message object: https://docs.anthropic.com/en/api/messages.

Usage, stop reasons and ``tool_use`` blocks come from the translation the Anthropic
backend uses too (:mod:`crossroads.backends.anthropic_wire`): usage is Anthropic's
(``input_tokens`` counts only the uncached prompt), and an answer that calls tools has
stop reason ``tool_use`` even when the upstream said "stop".
"""

from __future__ import annotations

import uuid
from typing import Any

from ...backends.anthropic_wire import stop_reason_of, tool_input, tool_use_block
from ...backends.anthropic_wire import usage_to_anthropic as usage_json
from ...types import ChatResponse, FinishReason, ToolCall, text_of

__all__ = ["message_json", "new_message_id", "stop_reason_of", "usage_json"]


def new_message_id() -> str:
    """A fresh id in Anthropic's style (``msg_`` and 24 hex digits)."""
    return f"msg_{uuid.uuid4().hex[:24]}"


def _message_id(response_id: str) -> str:
    if response_id.startswith("msg_"):
        return response_id
    _, dash, rest = response_id.partition("-")
    return "msg_" + (rest if dash and rest else response_id)


def _tool_input(call: ToolCall) -> dict[str, Any]:
    """The parsed arguments; text that is not a JSON object is kept under ``_raw_arguments``
    so a broken call stays visible to the client instead of vanishing."""
    try:
        return tool_input(call.function.arguments)
    except ValueError:
        return {"_raw_arguments": call.function.arguments}


def message_json(resp: ChatResponse, model: str) -> dict[str, Any]:
    """The Message object for a complete answer; ``model`` is the name the client asked for."""
    content: list[dict[str, Any]] = []
    finish: FinishReason | None = None
    calls: list[ToolCall] = []
    if resp.choices:
        choice = resp.choices[0]
        finish = choice.finish_reason
        text = text_of(choice.message.content)
        if choice.message.refusal:
            text += choice.message.refusal
        if text:
            content.append({"type": "text", "text": text})
        calls = choice.message.tool_calls or []
        for call in calls:
            content.append(tool_use_block(call, _tool_input(call)))
    return {
        "id": _message_id(resp.id),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason_of(finish, called_tools=bool(calls)),
        "stop_sequence": None,
        "usage": usage_json(resp.usage),
    }
