"""The OpenAI Responses API wire format (``POST /v1/responses``), as pure functions.

Requests: https://platform.openai.com/docs/api-reference/responses/create. A request is
translated to the equivalent Chat Completions body and read by
:func:`~.chat.parse_chat_request`, so both endpoints accept, check and refuse the same
things; what is particular to Responses:

* ``input`` is a string (one user message) or a list of items: messages (``role`` with a
  string or ``input_text`` / ``input_image`` / ``output_text`` / ``refusal`` parts),
  ``function_call`` items (an earlier tool call of the model) and
  ``function_call_output`` items (its result); ``reasoning`` items are dropped;
* ``instructions`` is the system message; ``tools`` are ``{"type": "function", "name",
  "description", "parameters", "strict"}`` (other tool types: 400);
  ``text.format`` (``text`` / ``json_object`` / ``json_schema``) is the response format;
  ``max_output_tokens`` is ``max_tokens``;
* ``store`` (default **false** here: stateless unless asked) and
  ``previous_response_id`` are :class:`ResponsesOptions`, handled by the gateway;
* ignored (type-checked, then dropped): ``IGNORED_FIELDS``; refused: ``REFUSED_FIELDS``.

Answers are ``response`` objects whose ``output`` holds a ``message`` item (an
``output_text`` part) and one ``function_call`` item per tool call; usage is
``input_tokens`` / ``output_tokens`` / ``total_tokens``. The stream is in
:mod:`.responses_sse`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from ...types import AssistantMessage, ChatRequest, ChatResponse, FinishReason, Usage, now, text_of
from ..errors import ProtocolError, json_type
from ..errors import load_json_object as _load
from .chat import parse_chat_request

__all__ = [
    "IGNORED_FIELDS",
    "REFUSED_FIELDS",
    "ResponsesOptions",
    "function_call_item",
    "message_item",
    "new_item_id",
    "new_response_id",
    "output_items",
    "parse_responses_request",
    "render_response",
    "response_object",
    "usage_object",
]

#: Documented request fields the gateway accepts and drops, with their JSON types.
IGNORED_FIELDS: dict[str, type | tuple[type, ...]] = {
    "metadata": dict,
    "include": list,
    "truncation": str,
    "reasoning": dict,
    "service_tier": str,
    "prompt_cache_key": str,
    "prompt_cache_retention": str,
    "safety_identifier": str,
    "top_logprobs": int,
    "stream_options": dict,
    "max_tool_calls": int,
    "context_management": (dict, list),
    "prompt_cache_options": dict,
}
#: Documented request fields the gateway cannot honour: a 400 unless null.
REFUSED_FIELDS = ("background", "conversation", "prompt")
_PASSED = ("temperature", "top_p", "stream", "parallel_tool_calls", "user", "seed")


def new_response_id() -> str:
    """A fresh ``resp_…`` id (random: ids are what a client asks for later)."""
    return "resp_" + uuid.uuid4().hex + uuid.uuid4().hex[:8]


def new_item_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


@dataclass
class ResponsesOptions:
    """What a Responses request says beyond the chat request it becomes."""

    store: bool = False
    previous_response_id: str | None = None
    instructions: str | None = None
    max_output_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    parallel_tool_calls: bool = True
    tool_choice: Any = "auto"
    tools: list[dict[str, Any]] = field(default_factory=list)
    text: dict[str, Any] = field(default_factory=lambda: {"format": {"type": "text"}})
    metadata: dict[str, Any] = field(default_factory=dict)
    user: str | None = None


def _type_error(param: str, expected: str, value: Any) -> ProtocolError:
    return ProtocolError(
        f"Invalid type for '{param}': expected {expected}, but got {json_type(value)} instead.",
        param=param,
        code="invalid_type",
    )


def _unsupported(param: str, what: str) -> ProtocolError:
    return ProtocolError(
        f"{what} is not supported by this gateway.", param=param, code="unsupported_parameter"
    )


def _parts(where: str, role: str, content: Any) -> str | list[dict[str, Any]]:
    """A message's content as Chat Completions content."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _type_error(f"{where}.content", "a string or an array", content)
    parts: list[dict[str, Any]] = []
    for j, part in enumerate(content):
        param = f"{where}.content[{j}]"
        if not isinstance(part, dict):
            raise _type_error(param, "an object", part)
        kind = part.get("type")
        if kind in ("input_text", "output_text", "text"):
            text = part.get("text")
            if not isinstance(text, str):
                raise _type_error(f"{param}.text", "a string", text)
            parts.append({"type": "text", "text": text})
        elif kind == "refusal":
            refusal = part.get("refusal")
            if not isinstance(refusal, str):
                raise _type_error(f"{param}.refusal", "a string", refusal)
            parts.append({"type": "text", "text": refusal})
        elif kind == "input_image" and role == "user":
            url = part.get("image_url")
            if not isinstance(url, str):
                raise _unsupported(param, "An input_image without an image_url (file_id)")
            image: dict[str, Any] = {"url": url}
            if part.get("detail") in ("auto", "low", "high"):
                image["detail"] = part["detail"]
            parts.append({"type": "image_url", "image_url": image})
        elif kind in ("input_image", "input_file", "input_audio"):
            raise _unsupported(f"{param}.type", f"A {kind!r} content part in a {role} message")
        else:
            raise ProtocolError(
                f"Invalid value for '{param}.type': {kind!r}; expected 'input_text', "
                "'input_image', 'output_text' or 'refusal'.",
                param=f"{param}.type",
            )
    return parts


def _text_output(where: str, output: Any) -> str:
    if isinstance(output, str):
        return output
    if isinstance(output, list):
        texts = [p.get("text") for p in output if isinstance(p, dict)]
        if all(isinstance(t, str) for t in texts):
            return "".join(t for t in texts if isinstance(t, str))
    raise _type_error(f"{where}.output", "a string or an array of text parts", output)


def _messages(value: Any) -> list[dict[str, Any]]:
    """``input`` as Chat Completions messages (consecutive function calls form one
    assistant message, as the Chat Completions API expects)."""
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if not isinstance(value, list):
        raise _type_error("input", "a string or an array", value)
    messages: list[dict[str, Any]] = []
    for i, item in enumerate(value):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise _type_error(where, "an object", item)
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            if role not in ("user", "assistant", "system", "developer"):
                raise ProtocolError(
                    f"Invalid value for '{where}.role': {role!r}; expected one of 'user', "
                    "'assistant', 'system', 'developer'.",
                    param=f"{where}.role",
                )
            messages.append({"role": role, "content": _parts(where, role, item.get("content"))})
        elif kind == "function_call":
            call_id, name, arguments = (item.get(k) for k in ("call_id", "name", "arguments"))
            for key, got in (("call_id", call_id), ("name", name), ("arguments", arguments)):
                if not isinstance(got, str):
                    raise _type_error(f"{where}.{key}", "a string", got)
            tool_call = {"id": call_id, "type": "function",
                         "function": {"name": name, "arguments": arguments}}
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant" and "tool_calls" in last:
                last["tool_calls"].append(tool_call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [tool_call]})
        elif kind == "function_call_output":
            call_id = item.get("call_id")
            if not isinstance(call_id, str):
                raise _type_error(f"{where}.call_id", "a string", call_id)
            messages.append({"role": "tool", "tool_call_id": call_id,
                             "content": _text_output(where, item.get("output"))})
        elif kind == "reasoning":
            continue  # another model's reasoning: nothing to send upstream
        else:
            raise _unsupported(f"{where}.type", f"An input item of type {kind!r}")
    return messages


def _tools(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise _type_error("tools", "an array", value)
    tools = []
    for i, tool in enumerate(value):
        if not isinstance(tool, dict):
            raise _type_error(f"tools[{i}]", "an object", tool)
        if tool.get("type") != "function":
            raise _unsupported(f"tools[{i}].type", f"A {tool.get('type')!r} tool (only 'function')")
        name = tool.get("name")
        if not isinstance(name, str) or not name:
            raise _type_error(f"tools[{i}].name", "a non-empty string", name)
        function = {k: tool[k] for k in ("name", "description", "parameters", "strict")
                    if tool.get(k) is not None}
        tools.append({"type": "function", "function": function})
    return tools


def _tool_choice(value: Any) -> Any:
    if isinstance(value, str) or value is None:
        return value
    if isinstance(value, dict) and value.get("type") == "function":
        return {"type": "function", "function": {"name": value.get("name")}}
    raise _unsupported("tool_choice", "This tool_choice (use 'auto', 'none', 'required' or a "
                       "function)")


def _response_format(text: Any) -> dict[str, Any] | None:
    if not isinstance(text, dict):
        raise _type_error("text", "an object", text)
    fmt = text.get("format")
    if fmt is None:
        return None
    if not isinstance(fmt, dict):
        raise _type_error("text.format", "an object", fmt)
    kind = fmt.get("type")
    if kind in ("text", "json_object"):
        return {"type": kind}
    if kind == "json_schema":
        if not isinstance(fmt.get("name"), str) or not isinstance(fmt.get("schema"), dict):
            raise ProtocolError(
                "A 'json_schema' text.format needs 'name' (a string) and 'schema' (an object).",
                param="text.format",
            )
        schema = {k: fmt[k] for k in ("name", "description", "schema", "strict")
                  if fmt.get(k) is not None}
        return {"type": "json_schema", "json_schema": schema}
    raise ProtocolError(
        f"Invalid value for 'text.format.type': {kind!r}; expected 'text', 'json_object' "
        "or 'json_schema'.",
        param="text.format.type",
    )


def _chat_body(data: dict[str, Any], options: ResponsesOptions) -> dict[str, Any]:
    model = data.get("model")
    if model is None:
        raise ProtocolError("Missing required parameter: 'model'.", param="model")
    if data.get("input") is None:
        raise ProtocolError("Missing required parameter: 'input'.", param="input")
    messages = _messages(data["input"])
    instructions = data.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise _type_error("instructions", "a string", instructions)
        options.instructions = instructions
        messages.insert(0, {"role": "system", "content": instructions})
    if not messages:
        raise ProtocolError("Invalid value for 'input': it holds no message.", param="input")
    body: dict[str, Any] = {"model": model, "messages": messages}
    for name in _PASSED:
        if data.get(name) is not None:
            body[name] = data[name]
    if data.get("max_output_tokens") is not None:
        body["max_tokens"] = data["max_output_tokens"]
    if data.get("tools"):
        body["tools"] = _tools(data["tools"])
        options.tools = data["tools"]
    if data.get("tool_choice") is not None:
        body["tool_choice"] = _tool_choice(data["tool_choice"])
        options.tool_choice = data["tool_choice"]
    if data.get("text") is not None:
        fmt = _response_format(data["text"])
        if fmt is not None:
            body["response_format"] = fmt
            options.text = {"format": data["text"]["format"]}
    return body


def _options(data: dict[str, Any]) -> ResponsesOptions:
    options = ResponsesOptions()
    store = data.get("store")
    if store is not None:
        if not isinstance(store, bool):
            raise _type_error("store", "a boolean", store)
        options.store = store
    previous = data.get("previous_response_id")
    if previous is not None:
        if not isinstance(previous, str) or not previous or len(previous) > 64:
            raise _type_error("previous_response_id", "a response id (resp_…)", previous)
        options.previous_response_id = previous
    for name in REFUSED_FIELDS:
        if data.get(name) not in (None, False):
            raise _unsupported(name, f"{name!r}")
    for name, kind in IGNORED_FIELDS.items():
        value = data.get(name)
        if value is not None and not isinstance(value, kind):
            raise _type_error(name, "a " + getattr(kind, "__name__", "value"), value)
    if isinstance(data.get("metadata"), dict):
        options.metadata = data["metadata"]
    return options


def parse_responses_request(
    body: bytes | str | dict[str, Any],
) -> tuple[ChatRequest, ResponsesOptions]:
    """The canonical request and the Responses-only options of a ``POST /v1/responses``
    body, or a :class:`~..errors.ProtocolError` (400) naming the offending ``param``."""
    data = _load(body)
    options = _options(data)
    chat_body = _chat_body(data, options)
    try:
        request = parse_chat_request(chat_body)
    except ProtocolError as exc:
        if exc.param == "max_tokens":
            exc.param = "max_output_tokens"
            exc.message = exc.message.replace("'max_tokens'", "'max_output_tokens'")
        raise
    options.max_output_tokens = request.max_tokens
    options.temperature = request.temperature
    options.top_p = request.top_p
    options.user = request.user
    if request.parallel_tool_calls is not None:
        options.parallel_tool_calls = request.parallel_tool_calls
    return request, options


# --- outputs -------------------------------------------------------------------------


def usage_object(usage: Usage) -> dict[str, Any]:
    """Usage in the Responses layout."""
    total = usage.total_tokens or usage.prompt_tokens + usage.completion_tokens
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_tokens},
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": total,
    }


def message_item(item_id: str, text: str, *, status: str = "completed") -> dict[str, Any]:
    """An assistant ``message`` output item with one ``output_text`` part."""
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
    }


def function_call_item(
    item_id: str, call_id: str, name: str, arguments: str, *, status: str = "completed"
) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


def _status(reason: FinishReason | None) -> tuple[str, dict[str, Any] | None]:
    if reason == "length":
        return "incomplete", {"reason": "max_output_tokens"}
    if reason == "content_filter":
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def response_object(
    response_id: str,
    model: str,
    options: ResponsesOptions,
    output: list[dict[str, Any]],
    *,
    usage: Usage | None,
    finish_reason: FinishReason | None = None,
    status: str | None = None,
    created_at: int | None = None,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A ``response`` object (``status`` from the finish reason unless given)."""
    final, incomplete = _status(finish_reason)
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at if created_at is not None else now(),
        "status": status or final,
        "error": error,
        "incomplete_details": incomplete if status is None else None,
        "instructions": options.instructions,
        "max_output_tokens": options.max_output_tokens,
        "model": model,
        "output": output,
        "parallel_tool_calls": options.parallel_tool_calls,
        "previous_response_id": options.previous_response_id,
        "reasoning": {"effort": None, "summary": None},
        "store": options.store,
        "temperature": options.temperature,
        "text": options.text,
        "tool_choice": options.tool_choice,
        "tools": options.tools,
        "top_p": options.top_p,
        "truncation": "disabled",
        "usage": usage_object(usage) if usage is not None else None,
        "user": options.user,
        "metadata": options.metadata,
    }


def output_items(message: AssistantMessage) -> list[dict[str, Any]]:
    """The output items of one assistant message: its text, then its tool calls."""
    items: list[dict[str, Any]] = []
    text = text_of(message.content) + (message.refusal or "")
    if text or not message.tool_calls:
        items.append(message_item(new_item_id("msg"), text))
    for call in message.tool_calls or []:
        items.append(function_call_item(
            new_item_id("fc"), call.id, call.function.name, call.function.arguments
        ))
    return items


def render_response(
    response: ChatResponse, response_id: str, options: ResponsesOptions
) -> dict[str, Any]:
    """The ``response`` object of a whole answer."""
    choice = response.choices[0] if response.choices else None
    output = output_items(choice.message) if choice is not None else []
    return response_object(
        response_id,
        response.model,
        options,
        output,
        usage=response.usage,
        finish_reason=choice.finish_reason if choice is not None else None,
    )
