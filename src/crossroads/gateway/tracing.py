"""One OpenTelemetry span per gateway chat request (tracing on; docs/telemetry.md).

:func:`start` opens it when the request arrives (kind SERVER, child of the client's W3C
``traceparent`` when it sends one) and makes it current, so the upstream request carries
its ``traceparent``; :func:`end` closes it when the request's ledger row is recorded,
with the GenAI attributes, the route, deployment, time to first chunk and guard
decisions. Off, both return at once and nothing of OpenTelemetry is imported.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from .. import telemetry
from ..telemetry import genai

if TYPE_CHECKING:
    from ..types import ChatResponse, Usage
    from .call import Call

__all__ = ["end", "start"]


def start(call: Call, headers: Mapping[str, str]) -> None:
    """Open the request's span (tracing on)."""
    active = telemetry.tracing()
    if active is None:
        return
    call.span = active.start(
        "chat",
        "server",
        {"gen_ai.operation.name": "chat", "crossroads.request_id": call.request_id},
        traceparent=headers.get("traceparent"),
    )


def end(
    call: Call,
    status: int,
    usage: Usage,
    error: BaseException | None,
    response: ChatResponse | None,
) -> None:
    """Close the request's span with what the ledger row says."""
    span = call.span
    if span is None:
        return
    call.span = None
    span.rename(genai.span_name("chat", call.model or None))
    target = call.target
    # Few attributes: encoding each costs the gateway CPU (BENCHMARKS.md, issue 15).
    attributes: dict[str, object] = {
        "crossroads.route": call.model or None,
        "gen_ai.server.time_to_first_token": call.ttft_s,
        **genai.usage_attributes(usage),
    }
    if call.request is not None:
        capture = span.capture_content
        attributes.update(genai.request_attributes(call.request, capture_content=capture))
    if target is not None:
        attributes["crossroads.deployment"] = target.name
        attributes["gen_ai.provider.name"] = genai.provider_name(target.deployment.backend)
    if response is not None:
        attributes.update(genai.response_attributes(response, capture_content=span.capture_content))
        attributes.update(genai.usage_attributes(usage))  # what was recorded wins
    if target is not None:  # the vendor's model id, not the public name the answer carries
        attributes["gen_ai.response.model"] = target.deployment.model
    if call.guard is not None and call.guard.decisions:
        attributes["crossroads.guard.decisions"] = [
            f"{d.stage}:{d.check}:{d.action}:{d.category}" for d in call.guard.decisions
        ]
    span.set(attributes)  # type: ignore[arg-type]
    span.end(error if error is not None or status < 400 else f"http_{status}")
