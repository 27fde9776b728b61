"""What in-process open-model backends (llama.cpp, transformers) share.

* :class:`StopMatcher` applies stop sequences to streamed text without ever emitting a
  partial stop string (text that could still become one is held back).
* :func:`plain_prompt` is the documented fallback chat template for models whose
  tokenizer has none (GPT-J, GPT-NeoX, BLOOM, base Falcon)::

      System: {system}

      User: {user}

      Assistant: {assistant}

      User: {user}

      Assistant:

  with ``Tool result ({tool_call_id}): {content}`` for tool messages; generation stops
  at ``"\\nUser:"`` (:data:`PLAIN_STOP`), so the model does not write the next turn.
* :func:`check_prompt_fits` gives the same context-window error for every local model.
* :class:`SharedModels` loads a model once per process and shares it between backend
  instances (keyed by path and load options).
* :func:`parse_options` validates a model entry's ``options:`` with the backend's
  pydantic model; a ConfigError names the model and each bad option.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from ..errors import ConfigError, ContextWindowExceededError
from ..types import (
    AssistantMessage,
    ChatRequest,
    SystemMessage,
    ToolMessage,
    UserMessage,
    text_of,
)

__all__ = [
    "LOCAL_DEFAULT_MAX_TOKENS",
    "PLAIN_STOP",
    "SharedModels",
    "StopMatcher",
    "chat_messages",
    "check_prompt_fits",
    "parse_options",
    "plain_prompt",
    "plain_text",
]

PLAIN_STOP = "\nUser:"

#: The output cap of a local model (llama.cpp, transformers) called without
#: ``max_tokens`` and without ``max_output_tokens`` in its entry: a small model left
#: to run until its context is full often repeats itself for thousands of tokens.
LOCAL_DEFAULT_MAX_TOKENS = 256

T = TypeVar("T")


class StopMatcher:
    """Cut streamed text at the first stop sequence; never leak part of one."""

    def __init__(self, stops: list[str]) -> None:
        self.stops = [s for s in stops if s]
        self._pending = ""
        self.stopped = False

    def feed(self, piece: str) -> str:
        """Text that is safe to emit now (empty once a stop sequence was seen)."""
        if self.stopped:
            return ""
        text = self._pending + piece
        cut = min((i for i in (text.find(s) for s in self.stops) if i >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            self._pending = ""
            return text[:cut]
        hold = 0
        for stop in self.stops:
            for size in range(min(len(stop) - 1, len(text)), 0, -1):
                if text.endswith(stop[:size]):
                    hold = max(hold, size)
                    break
        self._pending = text[len(text) - hold :] if hold else ""
        return text[: len(text) - hold]

    def flush(self) -> str:
        """What was held back, once generation ended without a stop sequence."""
        text, self._pending = ("" if self.stopped else self._pending), ""
        return text


def chat_messages(request: ChatRequest) -> list[dict[str, Any]]:
    """Messages as plain role/content dicts, the input of Jinja chat templates."""
    out: list[dict[str, Any]] = []
    for message in request.messages:
        if isinstance(message, SystemMessage):
            out.append({"role": "system", "content": text_of(message.content)})
        elif isinstance(message, UserMessage):
            out.append({"role": "user", "content": text_of(message.content)})
        elif isinstance(message, AssistantMessage):
            text = text_of(message.content)
            for call in message.tool_calls or []:
                text += f"\n[tool call {call.id}] {call.function.name}({call.function.arguments})"
            out.append({"role": "assistant", "content": text.strip()})
        elif isinstance(message, ToolMessage):
            out.append(
                {
                    "role": "user",
                    "content": f"Tool result ({message.tool_call_id}): {text_of(message.content)}",
                }
            )
    return out


_PLAIN_LABELS = {"system": "System", "user": "User", "assistant": "Assistant"}


def plain_text(messages: Sequence[Mapping[str, Any]], generation: bool = True) -> str:
    """The fallback template described in the module docstring, over role/content dicts
    (:func:`chat_messages`); ``generation`` adds the final ``Assistant:`` cue. Serving
    (:func:`plain_prompt`) and fine-tuning (:mod:`crossroads.tune.data`) both use it, so
    a tuned model is prompted exactly as it was trained."""
    turns = [f"{_PLAIN_LABELS[m['role']]}: {m['content']}" for m in messages]
    return "\n\n".join([*turns, "Assistant:"] if generation else turns)


def plain_prompt(request: ChatRequest) -> str:
    """The fallback template described in the module docstring."""
    return plain_text(chat_messages(request))


def check_prompt_fits(prompt_tokens: int, context_window: int, request: ChatRequest) -> None:
    """Refuse a prompt that leaves no room to generate within the context window."""
    if prompt_tokens >= context_window:
        # ``request.model`` is the weights' path here: never part of the message.
        raise ContextWindowExceededError(
            f"The prompt is {prompt_tokens:,} tokens but the model has a context "
            f"window of {context_window:,}. Shorten the prompt or raise the model's "
            "context size (`options: {n_ctx: ...}`) if the model supports it.",
            vendor="local",
            prompt_tokens=prompt_tokens,
            context_window=context_window,
        )


class SharedModels(Generic[T]):
    """Process-wide cache: each model is loaded once and shared; loads never race."""

    def __init__(self) -> None:
        self._models: dict[Hashable, T] = {}
        self._lock = threading.Lock()
        self._loading: dict[Hashable, threading.Lock] = {}

    def get(self, key: Hashable, load: Callable[[], T]) -> T:
        found = self._models.get(key)
        if found is not None:
            return found
        with self._lock:
            lock = self._loading.setdefault(key, threading.Lock())
        with lock:
            found = self._models.get(key)
            if found is None:
                found = load()
                self._models[key] = found
            return found

    async def aget(self, key: Hashable, load: Callable[[], T]) -> T:
        """:meth:`get` off the event loop (loading can take seconds)."""
        found = self._models.get(key)
        if found is not None:
            return found
        return await asyncio.to_thread(self.get, key, load)

    def clear(self) -> None:
        with self._lock:
            self._models.clear()


OptionsT = TypeVar("OptionsT", bound=BaseModel)


def parse_options(
    model: type[OptionsT],
    name: str,
    backend: str,
    options: Mapping[str, object],
    *,
    passthrough: str | None = None,
) -> OptionsT:
    """``options`` of the model entry ``name``, validated by ``model``.

    A ConfigError names the model and each bad option: an unknown one with the valid
    names, a bad value with what was wrong and the value given. ``passthrough`` is a
    field that gathers options written beside the named ones (named as written).
    """
    try:
        return model.model_validate(dict(options))
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = err["loc"][1:] if passthrough and err["loc"][:1] == (passthrough,) else err["loc"]
            option = ".".join(str(p) for p in loc) or "(all)"
            if err["type"] == "extra_forbidden":
                valid = ", ".join(sorted(set(model.model_fields) - {passthrough}))
                problems.append(f"unknown {backend} option {option} (valid: {valid})")
                continue
            ctx = err.get("ctx") or {}
            message = str(ctx["error"]) if err["type"] == "value_error" else err["msg"]
            problems.append(f"option {option}: {message} (got {err['input']!r})")
        raise ConfigError(f"Model {name!r}: " + "; ".join(problems) + ".") from exc
