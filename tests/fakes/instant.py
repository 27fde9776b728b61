"""A backend that answers at once, in process, with no network: for runner tests and
benchmarks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable

from crossroads.backends.base import Backend, Deployment
from crossroads.types import ChatChunk, ChatRequest, ChatResponse, ChunkChoice, Delta, Usage

#: The chunks of one answer, computed from the request.
Answer = Callable[[ChatRequest], Iterable[ChatChunk]]


def fixed_answer(text: str = "The answer is 42.", usage: Usage | None = None) -> Answer:
    """Always ``text`` in one chunk (finish ``stop``), then a usage chunk (12 + 5 tokens)."""
    usage = usage or Usage.of(12, 5)

    def answer(request: ChatRequest) -> list[ChatChunk]:
        return [
            ChatChunk(
                id="c",
                model=request.model,
                choices=[ChunkChoice(delta=Delta(content=text), finish_reason="stop")],
            ),
            ChatChunk(id="c", model=request.model, usage=usage),
        ]

    return answer


class InstantBackend(Backend):
    """Streams ``answer(request)`` at once, without yielding to the event loop (the worst
    case for the runner's writes)."""

    name = "instant"
    requires_key = False

    def __init__(self, deployment: Deployment, answer: Answer | None = None) -> None:
        super().__init__(deployment)
        self.answer = answer or fixed_answer()

    async def complete(self, request: ChatRequest) -> ChatResponse:
        raise NotImplementedError

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        for chunk in self.answer(request):
            yield chunk
