"""Span attributes by the OpenTelemetry GenAI semantic conventions, from Crossroads'
own request and answer types. Content (``gen_ai.input.messages`` /
``gen_ai.output.messages``) only when ``capture_content`` is on."""

from __future__ import annotations

import json
from typing import Any

from ..types import ChatRequest, ChatResponse, Usage

__all__ = [
    "PROVIDERS",
    "provider_name",
    "request_attributes",
    "response_attributes",
    "span_name",
    "usage_attributes",
]

#: Crossroads backend names → ``gen_ai.provider.name`` values of the conventions.
PROVIDERS = {"google": "gcp.gemini", "anthropic": "anthropic", "openai": "openai"}

Attributes = dict[str, Any]


def provider_name(backend: str | None) -> str | None:
    return None if backend is None else PROVIDERS.get(backend, backend)


def span_name(operation: str, model: str | None) -> str:
    """``"{gen_ai.operation.name} {gen_ai.request.model}"``, e.g. ``chat gpt-4o``."""
    return f"{operation} {model}" if model else operation


def request_attributes(request: ChatRequest, *, capture_content: bool) -> Attributes:
    attributes: Attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": request.model,
        "gen_ai.request.max_tokens": request.max_tokens,
        "gen_ai.request.temperature": request.temperature,
    }
    if capture_content:
        attributes["gen_ai.input.messages"] = json.dumps(
            [m.model_dump(mode="json", exclude_none=True) for m in request.messages],
            ensure_ascii=False,
        )
    return attributes


def usage_attributes(usage: Usage | None) -> Attributes:
    if usage is None:
        return {}
    return {
        "gen_ai.usage.input_tokens": usage.prompt_tokens,
        "gen_ai.usage.output_tokens": usage.completion_tokens,
    }


def response_attributes(response: ChatResponse, *, capture_content: bool) -> Attributes:
    attributes: Attributes = {
        "gen_ai.response.model": response.model,
        "gen_ai.response.finish_reasons": [
            str(c.finish_reason) for c in response.choices if c.finish_reason is not None
        ],
        **usage_attributes(response.usage),
    }
    if capture_content:
        attributes["gen_ai.output.messages"] = json.dumps(
            [c.message.model_dump(mode="json", exclude_none=True) for c in response.choices],
            ensure_ascii=False,
        )
    return attributes
