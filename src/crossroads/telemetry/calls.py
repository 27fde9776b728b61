"""Spans for Crossroads' own calls outside the gateway: one per Client call (kind
CLIENT) and one per eval item (kind INTERNAL, the parent of its Client call). Each
``open_*`` returns None when tracing is off, and the ``close_*`` then do nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import genai, tracing

if TYPE_CHECKING:
    from ..types import ChatRequest, ChatResponse, Usage
    from ._otel import SpanHandle

__all__ = ["close_chat_span", "close_eval_span", "open_chat_span", "open_eval_span"]


def open_chat_span(request: ChatRequest, *, stream: bool = False) -> SpanHandle | None:
    """A Client call's span, current until it is closed (its upstream request carries
    its ``traceparent``)."""
    active = tracing()
    if active is None:
        return None
    attributes = genai.request_attributes(request, capture_content=active.capture_content)
    attributes["crossroads.stream"] = stream
    return active.start(genai.span_name("chat", request.model), "client", attributes)


def close_chat_span(
    span: SpanHandle | None,
    *,
    backend: str | None = None,
    model: str | None = None,
    deployment: str | None = None,
    response: ChatResponse | None = None,
    usage: Usage | None = None,
    ttft_s: float | None = None,
    error: BaseException | None = None,
) -> None:
    if span is None:
        return
    attributes: dict[str, Any] = {
        "gen_ai.provider.name": genai.provider_name(backend),
        "crossroads.deployment": deployment,
        "gen_ai.server.time_to_first_token": ttft_s,
    }
    if response is not None:
        attributes.update(genai.response_attributes(response, capture_content=span.capture_content))
    attributes.update(genai.usage_attributes(usage))
    if model is not None:
        attributes["gen_ai.response.model"] = model
    span.set(attributes)
    span.end(error, restore=True)


def open_eval_span(run_id: str, suite: str, item_id: str, model: str) -> SpanHandle | None:
    """An eval item's span (``eval {model}``), the parent of the Client call it makes."""
    active = tracing()
    if active is None:
        return None
    return active.start(
        f"eval {model}",
        "internal",
        {
            "crossroads.eval.run_id": run_id,
            "crossroads.eval.suite": suite,
            "crossroads.eval.item_id": item_id,
            "gen_ai.request.model": model,
        },
    )


def close_eval_span(
    span: SpanHandle | None,
    *,
    score: float,
    passed: bool | None,
    cached: bool,
    error: str | None,
) -> None:
    if span is None:
        return
    span.set(
        {
            "crossroads.eval.score": score,
            "crossroads.eval.passed": passed,
            "crossroads.eval.cached": cached,
        }
    )
    span.end(error.split(":", 1)[0] if error else None, restore=True)
