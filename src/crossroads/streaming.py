"""Assemble a stream of chunks into one complete response."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .types import (
    AssistantMessage,
    ChatChunk,
    ChatResponse,
    Choice,
    FinishReason,
    FunctionCall,
    ToolCall,
    Usage,
)

__all__ = ["StreamAccumulator"]


@dataclass
class _ToolCallParts:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)
    #: Vendor extensions on the call (e.g. Gemini's thought signature), kept verbatim.
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class _ChoiceParts:
    text: list[str] = field(default_factory=list)
    refusal: list[str] = field(default_factory=list)
    tools: dict[int, _ToolCallParts] = field(default_factory=dict)
    finish_reason: FinishReason | None = None


class StreamAccumulator:
    """Feed chunks with :meth:`add`; :meth:`response` gives the equivalent full answer."""

    def __init__(self) -> None:
        self.id = ""
        self.model = ""
        self.created = 0
        self.usage: Usage | None = None
        self._choices: dict[int, _ChoiceParts] = {}

    def add(self, chunk: ChatChunk) -> None:
        if not self.id:
            self.id = chunk.id
        if not self.model:
            self.model = chunk.model
        if not self.created:
            self.created = chunk.created
        if chunk.usage is not None:
            self.usage = chunk.usage
        for choice in chunk.choices:
            parts = self._choices.get(choice.index)
            if parts is None:  # not setdefault: it would build parts for every chunk
                parts = self._choices[choice.index] = _ChoiceParts()
            delta = choice.delta
            if delta.content:
                parts.text.append(delta.content)
            if delta.refusal:
                parts.refusal.append(delta.refusal)
            for call in delta.tool_calls if delta.tool_calls else ():
                tool = parts.tools.setdefault(call.index, _ToolCallParts())
                if call.id:
                    tool.id = call.id
                if call.model_extra:
                    tool.extra.update(call.model_extra)
                if call.function is not None:
                    if call.function.name:
                        tool.name = call.function.name
                    if call.function.arguments:
                        tool.arguments.append(call.function.arguments)
            if choice.finish_reason is not None:
                parts.finish_reason = choice.finish_reason

    def first_choice(self) -> tuple[str, FinishReason | None]:
        """The text and finish reason of :meth:`response` (its first choice's), without
        building the response: for callers that keep only those."""
        if not self._choices:
            return "", None
        parts = self._choices[min(self._choices)]
        return "".join(parts.text), parts.finish_reason

    def response(self) -> ChatResponse:
        choices = []
        for index in sorted(self._choices):
            parts = self._choices[index]
            calls = [
                ToolCall(
                    id=t.id or f"call_{i}",
                    function=FunctionCall(name=t.name, arguments="".join(t.arguments)),
                    **t.extra,
                )
                for i, t in sorted(parts.tools.items())
            ]
            message = AssistantMessage(
                content="".join(parts.text) if parts.text or not calls else None,
                refusal="".join(parts.refusal) or None,
                tool_calls=calls or None,
            )
            choices.append(Choice(index=index, message=message, finish_reason=parts.finish_reason))
        return ChatResponse(
            id=self.id or "chatcmpl-stream",
            created=self.created,
            model=self.model,
            choices=choices,
            usage=self.usage or Usage(),
        )
