"""The gateway's OpenAI wire format: parsing, outputs read by the official SDK, errors."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import openai
import pytest
from openai.types import Model
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from crossroads import errors
from crossroads.gateway.errors import ProtocolError, classify, redact
from crossroads.gateway.openai import (
    DONE,
    chunk_sse,
    embeddings_response,
    error_response,
    models_list,
    parse_chat_request,
    parse_embeddings_request,
    response_json,
    stream_error_sse,
)
from crossroads.types import (
    AssistantMessage,
    ChatChunk,
    ChatResponse,
    Choice,
    ChunkChoice,
    Delta,
    FunctionCall,
    FunctionCallDelta,
    Timings,
    ToolCall,
    ToolCallDelta,
    Usage,
)

from .fakes.replay import Replay, replay_fixture

USER = [{"role": "user", "content": "Hi"}]
TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}


replay = replay_fixture("GET", "POST")


@pytest.fixture
def client(replay: Replay) -> Iterator[openai.OpenAI]:
    replay.answers.clear()
    replay.requests.clear()
    with openai.OpenAI(base_url=replay.url + "/v1", api_key="k", max_retries=0) as c:
        yield c


def body(**fields: Any) -> bytes:
    return json.dumps({"model": "m", "messages": USER, **fields}).encode()


# --- parsing -------------------------------------------------------------------------


def test_parse_keeps_supported_fields() -> None:
    request = parse_chat_request(
        body(
            temperature=0.5,
            top_p=1,
            max_tokens=20,
            stop=["\n"],
            seed=3,
            stream=True,
            stream_options={"include_usage": True},
            tools=[TOOL],
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
            parallel_tool_calls=False,
            response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {}}},
            user="u1",
            logprobs=True,
            top_logprobs=2,
        )
    )
    assert request.model == "m" and request.temperature == 0.5 and request.max_tokens == 20
    assert request.stream is True and request.stream_options is not None
    assert request.tools is not None and request.tools[0].function.name == "get_weather"
    assert request.tool_choice is not None and not isinstance(request.tool_choice, str)
    assert request.response_format is not None and request.response_format.json_schema
    assert request.user == "u1" and request.stop_list() == ["\n"]


def test_parse_drops_documented_unsupported_and_unknown_fields() -> None:
    request = parse_chat_request(
        body(
            store=True,
            metadata={"a": "b"},
            service_tier="priority",
            reasoning_effort="low",
            logit_bias={"50256": -100},
            modalities=["text"],
            prediction={"type": "content", "content": "x"},
            max_completion_tokens=77,
            top_k=5,
            made_up_field=1,
            n=1,
        )
    )
    assert request.max_tokens == 77
    assert request.model_extra == {"top_k": 5}  # only the declared extension survives


def test_parse_max_completion_tokens_wins_over_max_tokens() -> None:
    assert parse_chat_request(body(max_tokens=5, max_completion_tokens=9)).max_tokens == 9


def test_parse_messages_of_every_role() -> None:
    messages = [
        {"role": "developer", "content": [{"type": "text", "text": "Be brief."}]},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "42"},
        {"role": "assistant", "content": [{"type": "refusal", "refusal": "No."}]},
    ]
    request = parse_chat_request(json.dumps({"model": "m", "messages": messages}))
    assert [m.role for m in request.messages] == [
        "developer",
        "user",
        "assistant",
        "tool",
        "assistant",
    ]
    last = request.messages[-1]
    assert isinstance(last, AssistantMessage) and last.refusal == "No."


BAD = [
    (b"{not json", None, "not valid JSON"),
    (b"[1, 2]", None, "must be a JSON object"),
    (b'{"model": "m", "messages": [], "temperature": NaN}', None, "not valid JSON"),
    (json.dumps({"messages": USER}).encode(), "model", "Missing required parameter"),
    (json.dumps({"model": 3, "messages": USER}).encode(), "model", "expected a non-empty"),
    (json.dumps({"model": "m"}).encode(), "messages", "Missing required"),
    (json.dumps({"model": "m", "messages": []}).encode(), "messages", "at least one"),
    (json.dumps({"model": "m", "messages": {}}).encode(), "messages", "expected an array"),
    (body(messages=[{"role": "user", "content": 5}]), "messages[0].content", "valid string"),
    (body(messages=[{"role": "user"}]), "messages[0].content", "Missing required"),
    (body(messages=[{"content": "x"}]), "messages[0].role", "Missing required"),
    (body(messages=[{"role": "robot", "content": "x"}]), "messages[0].role", "'robot'"),
    (
        body(messages=[{"role": "function", "name": "f", "content": "x"}]),
        "messages[0].role",
        "deprecated",
    ),
    (
        body(messages=[{"role": "user", "content": [{"type": "text"}]}]),
        "messages[0].content[0].text",
        "Missing required",
    ),
    (
        body(messages=[{"role": "user", "content": [{"type": "input_audio"}]}]),
        "messages[0].content[0].type",
        "not supported",
    ),
    (body(messages=[{"role": "tool", "content": "x"}]), "messages[0].tool_call_id", "Missing"),
    (body(temperature="hot"), "temperature", "valid number"),
    (body(temperature=2.5), "temperature", "range"),
    (body(top_p=-1), "top_p", "range"),
    (body(max_tokens=0), "max_tokens", "at least 1"),
    (body(max_tokens=1.5), "max_tokens", "valid integer"),
    (body(max_completion_tokens="9"), "max_completion_tokens", "an integer"),
    (body(stream="yes"), "stream", "valid boolean"),
    (body(stop=[1]), "stop[0]", "valid string"),
    (body(n=2), "n", "one choice"),
    (body(tools=[{"type": "function"}]), "tools[0].function", "Missing required"),
    (body(tool_choice={"type": "function"}), "tool_choice.function", "Missing required"),
    (body(tool_choice="sometimes"), "tool_choice", "'none', 'auto' or 'required'"),
    (body(response_format={"type": "yaml"}), "response_format.type", "Input should be"),
    (body(stream_options={"include_usage": True}), "stream_options", "only allowed"),
    (
        body(response_format={"type": "json_schema"}),
        "response_format.json_schema",
        "Missing required",
    ),
    (body(store="yes"), "store", "expected a boolean"),
    (body(audio={"voice": "alloy", "format": "mp3"}), "audio", "not supported"),
    (body(functions=[{"name": "f"}]), "functions", "not supported"),
    (body(modalities=["text", "audio"]), "modalities", "not supported"),
]


@pytest.mark.parametrize(("raw", "param", "fragment"), BAD)
def test_parse_rejects_with_param(raw: bytes, param: str | None, fragment: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_chat_request(raw)
    assert info.value.status_code == 400
    assert info.value.param == param
    assert fragment in info.value.message


# --- outputs read by the SDK ---------------------------------------------------------

USAGE = Usage.of(100, 20, cached=60, reasoning=5, cache_creation=7).model_copy(
    update={"timings": Timings(total_s=1.0)}
)


def test_response_json_is_a_chat_completion() -> None:
    resp = ChatResponse(
        id="chatcmpl-1",
        model="gw-model",
        choices=[
            Choice(
                message=AssistantMessage(
                    content=None,
                    tool_calls=[
                        ToolCall(id="c1", function=FunctionCall(name="f", arguments='{"a":1}'))
                    ],
                ),
                finish_reason="tool_calls",
            )
        ],
        usage=USAGE,
    )
    raw = response_json(resp)
    parsed = ChatCompletion.model_validate_json(raw)
    assert parsed.model == "gw-model" and parsed.choices[0].finish_reason == "tool_calls"
    call = parsed.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.function.arguments == '{"a":1}'  # type: ignore[union-attr]
    assert parsed.usage is not None and parsed.usage.total_tokens == 120
    assert parsed.usage.prompt_tokens_details.cached_tokens == 60  # type: ignore[union-attr]
    assert parsed.usage.completion_tokens_details.reasoning_tokens == 5  # type: ignore[union-attr]
    assert b"timings" not in raw and b"cache_creation" not in raw


def test_response_json_maps_the_error_finish_reason_to_stop() -> None:
    resp = ChatResponse(
        model="m",
        choices=[Choice(message=AssistantMessage(content="x"), finish_reason="error")],
    )
    assert (
        ChatCompletion.model_validate_json(response_json(resp)).choices[0].finish_reason == "stop"
    )


def _chunk(delta: Delta | None = None, finish: Any = None, usage: Usage | None = None) -> ChatChunk:
    choices = [] if delta is None else [ChunkChoice(delta=delta, finish_reason=finish)]
    return ChatChunk(id="chatcmpl-9", model="gw", choices=choices, usage=usage)


def test_chunk_sse_is_a_chat_completion_chunk() -> None:
    raw = chunk_sse(_chunk(Delta(content="Hel")))
    assert raw.startswith(b"data: ") and raw.endswith(b"\n\n")
    parsed = ChatCompletionChunk.model_validate_json(raw[6:])
    assert parsed.choices[0].delta.content == "Hel" and parsed.usage is None
    last = ChatCompletionChunk.model_validate_json(chunk_sse(_chunk(usage=USAGE))[6:])
    assert last.choices == [] and last.usage is not None
    assert last.usage.prompt_tokens_details.cached_tokens == 60  # type: ignore[union-attr]
    assert b"timings" not in chunk_sse(_chunk(usage=USAGE))


def _stream_chunks() -> list[ChatChunk]:
    def call(index: int, **kw: Any) -> Delta:
        return Delta(tool_calls=[ToolCallDelta(index=index, **kw)])

    return [
        _chunk(Delta(role="assistant", content="")),
        _chunk(Delta(content="Checking ")),
        _chunk(Delta(content="both.")),
        _chunk(
            call(0, id="c0", type="function", function=FunctionCallDelta(name="f", arguments=""))
        ),
        _chunk(call(0, function=FunctionCallDelta(arguments='{"city": '))),
        _chunk(call(0, function=FunctionCallDelta(arguments='"Oslo"}'))),
        _chunk(
            call(
                1,
                id="c1",
                type="function",
                function=FunctionCallDelta(name="f", arguments='{"city": "Rome"}'),
            )
        ),
        _chunk(Delta(), finish="tool_calls"),
        _chunk(usage=Usage.of(30, 12)),
    ]


def test_sdk_accumulates_a_streamed_answer(client: openai.OpenAI, replay: Replay) -> None:
    sse = b"".join(chunk_sse(c) for c in _stream_chunks()) + DONE
    replay.answers.append((200, {"content-type": "text/event-stream"}, sse))
    with client.chat.completions.stream(model="gw", messages=USER) as stream:  # type: ignore[arg-type]
        final = stream.get_final_completion()
    message = final.choices[0].message
    assert message.content == "Checking both."
    assert [json.loads(c.function.arguments) for c in message.tool_calls or []] == [  # type: ignore[union-attr]
        {"city": "Oslo"},
        {"city": "Rome"},
    ]
    assert final.choices[0].finish_reason == "tool_calls"
    assert final.usage is not None and final.usage.total_tokens == 42


def test_sdk_raises_a_mid_stream_error(client: openai.OpenAI, replay: Replay) -> None:
    failure = errors.UpstreamUnavailableError("connection reset by 10.0.0.7", vendor="vllm")
    sse = chunk_sse(_chunk(Delta(content="Hel"))) + stream_error_sse(failure)
    assert b"[DONE]" not in sse
    replay.answers.append((200, {"content-type": "text/event-stream"}, sse))
    seen: list[str] = []
    with pytest.raises(openai.APIError) as info:
        for chunk in client.chat.completions.create(model="gw", messages=USER, stream=True):  # type: ignore[arg-type]
            seen.extend(c.delta.content or "" for c in chunk.choices)
    assert seen == ["Hel"]
    assert "upstream" in info.value.message and "10.0.0.7" not in info.value.message
    assert info.value.type == "server_error"


# --- errors --------------------------------------------------------------------------

ERRORS: list[tuple[BaseException, int, type[openai.APIStatusError], str, str | None]] = [
    (
        ProtocolError("bad", param="messages"),
        400,
        openai.BadRequestError,
        "invalid_request_error",
        None,
    ),
    (
        errors.BadRequestError("nope", vendor="openai", code="invalid_value"),
        400,
        openai.BadRequestError,
        "invalid_request_error",
        "invalid_value",
    ),
    (
        errors.ContextWindowExceededError("too long", vendor="anthropic"),
        400,
        openai.BadRequestError,
        "invalid_request_error",
        "context_length_exceeded",
    ),
    (
        errors.ContentFilteredError("blocked", vendor="google"),
        400,
        openai.BadRequestError,
        "invalid_request_error",
        "content_filter",
    ),
    (
        errors.AuthenticationError("Invalid gateway key"),
        401,
        openai.AuthenticationError,
        "invalid_request_error",
        "invalid_api_key",
    ),
    (
        errors.PermissionDeniedError("Not for this key"),
        403,
        openai.PermissionDeniedError,
        "invalid_request_error",
        None,
    ),
    (
        errors.NotFoundError("no such model", vendor="openai"),
        404,
        openai.NotFoundError,
        "invalid_request_error",
        "model_not_found",
    ),
    (
        errors.UnknownModelError("gpt-5o", ["gpt-4o", "gpt-5"]),
        404,
        openai.NotFoundError,
        "invalid_request_error",
        "model_not_found",
    ),
    (
        errors.APIError("busy", status_code=409, vendor="openai"),
        409,
        openai.ConflictError,
        "invalid_request_error",
        None,
    ),
    (
        errors.BadRequestError("unprocessable", status_code=422, vendor="x"),
        422,
        openai.UnprocessableEntityError,
        "invalid_request_error",
        None,
    ),
    (
        errors.RateLimitError("slow down", retry_after=2.5, vendor="openai"),
        429,
        openai.RateLimitError,
        "requests",
        "rate_limit_exceeded",
    ),
    (
        errors.RateLimitError("budget spent", code="insufficient_quota"),
        429,
        openai.RateLimitError,
        "insufficient_quota",
        "insufficient_quota",
    ),
    (
        errors.AuthenticationError("bad upstream key sk-abcdefghijkl", vendor="anthropic"),
        502,
        openai.InternalServerError,
        "server_error",
        "upstream_authentication_failed",
    ),
    (
        errors.UpstreamUnavailableError("boom", status_code=500, vendor="openai"),
        502,
        openai.InternalServerError,
        "server_error",
        None,
    ),
    (
        errors.UpstreamUnavailableError("down", vendor="vllm"),
        503,
        openai.InternalServerError,
        "server_error",
        None,
    ),
    (
        errors.UpstreamUnavailableError("overloaded", status_code=529, vendor="anthropic"),
        503,
        openai.InternalServerError,
        "server_error",
        None,
    ),
    (
        errors.UpstreamTimeoutError("slow", vendor="openai"),
        504,
        openai.InternalServerError,
        "server_error",
        None,
    ),
    (
        errors.MissingKeyError("gpt-4o", "OPENAI_API_KEY"),
        503,
        openai.InternalServerError,
        "server_error",
        "model_not_configured",
    ),
    (
        errors.ConfigError("crossroads.yaml line 3: bad"),
        500,
        openai.InternalServerError,
        "server_error",
        "gateway_misconfigured",
    ),
    (
        RuntimeError("secret internals at /srv/app.py"),
        500,
        openai.InternalServerError,
        "server_error",
        None,
    ),
]


@pytest.mark.parametrize(("exc", "status", "sdk_class", "kind", "code"), ERRORS)
def test_sdk_raises_the_mapped_class(
    client: openai.OpenAI,
    replay: Replay,
    exc: BaseException,
    status: int,
    sdk_class: type[openai.APIStatusError],
    kind: str,
    code: str | None,
) -> None:
    got_status, payload, headers = error_response(exc)
    assert got_status == status
    assert set(payload["error"]) == {"message", "type", "param", "code"}
    assert "sk-abcdefghijkl" not in payload["error"]["message"]
    assert "/srv/app.py" not in payload["error"]["message"]
    replay.answers.append((status, dict(headers), json.dumps(payload).encode()))
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="gw", messages=USER)  # type: ignore[arg-type]
    assert type(info.value) is sdk_class
    assert info.value.status_code == status
    assert info.value.type == kind and info.value.code == code


def test_error_details_worth_a_client_reading() -> None:
    _, payload, _ = error_response(errors.UnknownModelError("gpt-5o", ["gpt-4o"]))
    assert "Did you mean: gpt-4o?" in payload["error"]["message"]
    assert payload["error"]["param"] == "model"
    _, payload, _ = error_response(ProtocolError("bad", param="messages[0].content"))
    assert payload["error"]["param"] == "messages[0].content"
    _, payload, _ = error_response(errors.MissingKeyError("gpt-4o", "OPENAI_API_KEY"))
    # The client learns the model is not available; the server's environment stays inside.
    assert "not available" in payload["error"]["message"]
    assert "OPENAI_API_KEY" not in payload["error"]["message"]
    _, _, headers = error_response(errors.RateLimitError("slow", retry_after=2.5))
    assert headers == {"retry-after": "3", "retry-after-ms": "2500"}
    assert classify(errors.RateLimitError("x", code="insufficient_quota")).should_retry is False


def message_for(exc: BaseException) -> str:
    return str(error_response(exc)[1]["error"]["message"])


def test_vendor_texts_that_describe_the_gateway_account_stay_inside() -> None:
    upstream_429 = errors.RateLimitError("Limit reached for org-SECRET on TPM", vendor="openai")
    assert "org-SECRET" not in message_for(upstream_429)
    assert "rate limiting" in message_for(upstream_429)
    unreachable = errors.UpstreamUnavailableError(
        "cannot reach http://10.1.2.3:8000", vendor="vllm"
    )
    assert "10.1.2.3" not in message_for(unreachable)
    # The gateway's own messages are written for clients and pass unchanged.
    own = errors.UpstreamUnavailableError("All 3 deployments of 'fast' failed.", status_code=502)
    assert message_for(own) == "All 3 deployments of 'fast' failed."
    assert message_for(errors.RateLimitError("Key 'ci' is over 10 rpm.")) == (
        "Key 'ci' is over 10 rpm."
    )
    # A 4xx from upstream is about the request, so its text helps the client fix it.
    bad = errors.BadRequestError("messages.1: roles must alternate", vendor="anthropic")
    assert message_for(bad) == "[anthropic] messages.1: roles must alternate"


def test_redact_masks_keys_and_tokens() -> None:
    text = redact(
        "key sk-proj-abcdefghijklmnop and Bearer abc.def.ghijkl, AIzaSyA1234567890abcdefghijk"
    )
    assert "abcdefghijklmnop" not in text and "abc.def" not in text and "1234567890" not in text
    assert "sk-***" in text


def test_sdk_does_not_retry_a_spent_quota(replay: Replay) -> None:
    replay.answers.clear()
    replay.requests.clear()
    status, payload, headers = error_response(errors.RateLimitError("x", code="insufficient_quota"))
    assert headers["x-should-retry"] == "false"
    for _ in range(3):
        replay.answers.append((status, dict(headers), json.dumps(payload).encode()))
    with (
        openai.OpenAI(base_url=replay.url + "/v1", api_key="k", max_retries=2) as c,
        pytest.raises(openai.RateLimitError),
    ):
        c.chat.completions.create(model="gw", messages=USER)  # type: ignore[arg-type]
    assert len(replay.requests) == 1


# --- models and embeddings -----------------------------------------------------------


def test_models_list_items_are_sdk_models() -> None:
    listing = models_list([("gpt-4o", "openai"), ("local/smollm2", "crossroads")], created=7)
    assert listing["object"] == "list"
    models = [Model.model_validate(item) for item in listing["data"]]
    assert [(m.id, m.owned_by, m.created) for m in models] == [
        ("gpt-4o", "openai", 7),
        ("local/smollm2", "crossroads", 7),
    ]


def test_parse_embeddings_request() -> None:
    req = parse_embeddings_request(json.dumps({"model": "e", "input": "hi", "user": "u"}))
    assert req.texts() == ["hi"] and req.encoding_format == "float"
    req = parse_embeddings_request(
        json.dumps(
            {"model": "e", "input": ["a", "b"], "encoding_format": "base64", "dimensions": 8}
        )
    )
    assert req.texts() == ["a", "b"] and req.dimensions == 8
    tokens = parse_embeddings_request(
        json.dumps({"model": "e", "input": [[1, 2], [3]]}), allow_token_arrays=True
    )
    assert tokens.is_tokens


@pytest.mark.parametrize(
    ("payload", "param", "fragment"),
    [
        ({"input": "x"}, "model", "Missing"),
        ({"model": "e"}, "input", "Missing"),
        ({"model": "e", "input": ""}, "input", "empty"),
        ({"model": "e", "input": []}, "input", "empty"),
        ({"model": "e", "input": ["a", ""]}, "input[1]", "empty"),
        ({"model": "e", "input": ["a", 1]}, "input", "mix"),
        ({"model": "e", "input": [1, 2]}, "input", "Token arrays"),
        ({"model": "e", "input": [[1, 2]]}, "input", "Token arrays"),
        ({"model": "e", "input": 5}, "input", "valid"),
        ({"model": "e", "input": "x", "encoding_format": "int8"}, "encoding_format", "'float'"),
        ({"model": "e", "input": "x", "dimensions": 0}, "dimensions", "greater than"),
    ],
)
def test_parse_embeddings_rejects(payload: dict[str, Any], param: str, fragment: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_embeddings_request(json.dumps(payload))
    assert info.value.param == param and fragment in info.value.message


def test_embeddings_base64_is_little_endian_float32() -> None:
    vectors = [[0.25, -1.5, 3.0], [1e-3, 2.0, -0.5]]
    out = embeddings_response("e", vectors, 4, "base64")
    decoded = np.frombuffer(base64.b64decode(out["data"][1]["embedding"]), dtype="<f4")
    assert decoded.tolist() == pytest.approx(vectors[1], rel=1e-6)
    assert out["usage"] == {"prompt_tokens": 4, "total_tokens": 4}


@pytest.mark.parametrize("encoding", [None, "float"])
def test_sdk_reads_embeddings(client: openai.OpenAI, replay: Replay, encoding: str | None) -> None:
    vectors = [[0.5, -0.25, 0.125], [1.0, 0.0, -1.0]]
    fmt: Any = encoding or "base64"  # the SDK asks for base64 unless told, and decodes it
    replay.answers.append((200, {}, json.dumps(embeddings_response("e", vectors, 3, fmt)).encode()))
    kw: dict[str, Any] = {"encoding_format": encoding} if encoding else {}
    result = client.embeddings.create(model="e", input=["a", "b"], **kw)
    sent = parse_embeddings_request(json.dumps(replay.requests[-1].body))
    assert sent.encoding_format == fmt and sent.texts() == ["a", "b"]
    assert [d.embedding for d in result.data] == vectors
    assert result.usage.prompt_tokens == 3
