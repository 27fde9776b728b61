"""Translation cost per request and per stream chunk, for each vendor, in one run.

Target: under 50 µs per stream chunk. The baseline is ``json.loads`` of the same chunk
payload (the work any client must do anyway), measured side by side.
Run: .venv/bin/python bench/translate.py
"""

from __future__ import annotations

import json
import timeit
from collections.abc import Callable
from typing import Any

from crossroads.backends.anthropic import (
    AnthropicStreamState,
    request_to_anthropic,
    response_from_anthropic,
)
from crossroads.backends.google import GeminiStreamState, request_to_gemini, response_from_gemini
from crossroads.backends.openai import chunk_from_openai, request_to_openai, response_from_openai
from crossroads.types import ChatRequest

REQUEST = ChatRequest.model_validate(
    {
        "model": "m",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "What is the weather in Paris? " * 5},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": '{"temp_c": 21}'},
        ],
        "temperature": 0.2,
        "max_tokens": 200,
        "stop": ["END"],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                },
            }
        ],
    }
)

OPENAI_RESPONSE = {
    "id": "c",
    "object": "chat.completion",
    "created": 1,
    "model": "gpt-4o",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "It is 21 °C in Paris."},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 80, "completion_tokens": 9, "total_tokens": 89},
}
OPENAI_CHUNK = json.dumps(
    {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o",
        "choices": [{"index": 0, "delta": {"content": " Paris"}, "finish_reason": None}],
    }
)
ANTHROPIC_RESPONSE = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5",
    "content": [{"type": "text", "text": "It is 21 °C in Paris."}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 80, "output_tokens": 9},
}
ANTHROPIC_CHUNK = json.dumps(
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": " Paris"}}
)
GEMINI_RESPONSE = {
    "candidates": [
        {
            "content": {"role": "model", "parts": [{"text": "It is 21 °C in Paris."}]},
            "finishReason": "STOP",
            "index": 0,
        }
    ],
    "usageMetadata": {"promptTokenCount": 80, "candidatesTokenCount": 9, "totalTokenCount": 89},
    "responseId": "r1",
}
GEMINI_CHUNK = json.dumps(
    {
        "candidates": [{"content": {"role": "model", "parts": [{"text": " Paris"}]}, "index": 0}],
        "responseId": "r1",
    }
)


def per_call_us(fn: Callable[[], Any], number: int = 5000) -> float:
    best = min(timeit.repeat(fn, number=number, repeat=5))
    return best / number * 1e6


def main() -> int:
    anthropic_state = AnthropicStreamState("m")
    anthropic_state.feed(
        "message_start",
        {
            "type": "message_start",
            "message": {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "content": [],
                "model": "claude-sonnet-4-5",
                "usage": {"input_tokens": 80, "output_tokens": 1},
            },
        },
    )
    anthropic_state.feed(
        "content_block_start",
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    )
    gemini_state = GeminiStreamState("m")
    gemini_state.feed(json.loads(GEMINI_CHUNK))

    rows = [
        (
            "openai",
            lambda: request_to_openai(REQUEST, "gpt-4o", stream=True),
            lambda: response_from_openai(OPENAI_RESPONSE, "m"),
            lambda: chunk_from_openai(json.loads(OPENAI_CHUNK), "m"),
            OPENAI_CHUNK,
        ),
        (
            "anthropic",
            lambda: request_to_anthropic(REQUEST, "claude-sonnet-4-5", stream=True),
            lambda: response_from_anthropic(ANTHROPIC_RESPONSE, "m"),
            lambda: anthropic_state.feed("content_block_delta", json.loads(ANTHROPIC_CHUNK)),
            ANTHROPIC_CHUNK,
        ),
        (
            "google",
            lambda: request_to_gemini(REQUEST),
            lambda: response_from_gemini(GEMINI_RESPONSE, "m"),
            lambda: gemini_state.feed(json.loads(GEMINI_CHUNK)),
            GEMINI_CHUNK,
        ),
    ]
    print(
        f"{'vendor':10} {'request µs':>11} {'response µs':>12} {'chunk µs':>9} "
        f"{'json.loads µs':>14} {'chunk/json':>11}"
    )
    worst = 0.0
    for vendor, req, resp, chunk, raw in rows:
        base = per_call_us(lambda raw=raw: json.loads(raw))  # type: ignore[misc]
        c = per_call_us(chunk)
        worst = max(worst, c)
        print(
            f"{vendor:10} {per_call_us(req, 2000):11.1f} {per_call_us(resp, 2000):12.1f} "
            f"{c:9.1f} {base:14.2f} {c / base:10.1f}x"
        )
    print(f"worst per-chunk cost: {worst:.1f} µs (target < 50 µs)")
    return 0 if worst < 50 else 1


if __name__ == "__main__":
    raise SystemExit(main())
