"""End to end through ``Client`` against loopback fakes of all three vendor APIs."""

from __future__ import annotations

import json

import pytest

from crossroads import Client, errors
from crossroads.streaming import StreamAccumulator

from .fakes.server import DEFAULT_TEXT, Reply
from .vendors import WEATHER_TOOL, VendorSetup


def test_plain_answer_with_usage_and_timings(vendor: VendorSetup) -> None:
    with Client(vendor.config_path) as client:
        reply = client.chat("m", "Say hello", temperature=0, max_tokens=50)
    assert reply.text == DEFAULT_TEXT
    assert reply.finish_reason == "stop"
    assert reply.usage.prompt_tokens == 11
    assert reply.usage.completion_tokens == 7
    assert reply.usage.timings is not None and reply.usage.timings.total_s is not None
    assert len(vendor.fake.requests) == 1


def test_streamed_answer_reassembles_and_ends_with_usage(vendor: VendorSetup) -> None:
    vendor.fake.script(Reply(text="One two three four five six"))
    with Client(vendor.config_path) as client:
        chunks = list(client.stream_chat("m", [{"role": "user", "content": "count"}]))
    pieces = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    assert len(pieces) > 1, "the answer must arrive in several chunks"
    acc = StreamAccumulator()
    for chunk in chunks:
        acc.add(chunk)
    response = acc.response()
    assert response.text == "One two three four five six"
    assert response.finish_reason == "stop"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 7
    timings = chunks[-1].usage.timings
    assert timings is not None and timings.time_to_first_token_s is not None
    assert timings.time_to_first_token_s <= (timings.total_s or 0)


@pytest.mark.parametrize("stream", [False, True])
def test_tool_call(vendor: VendorSetup, stream: bool) -> None:
    vendor.fake.script(Reply.tool("get_weather", {"city": "Paris"}))
    with Client(vendor.config_path) as client:
        messages = [{"role": "user", "content": "Weather in Paris?"}]
        if stream:
            acc = StreamAccumulator()
            for chunk in client.stream_chat("m", messages, tools=[WEATHER_TOOL]):
                acc.add(chunk)
            response = acc.response()
        else:
            response = client.chat("m", messages, tools=[WEATHER_TOOL], tool_choice="auto")
    assert response.finish_reason == "tool_calls"
    (call,) = response.tool_calls
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    assert call.id


def test_tool_result_round_trip(vendor: VendorSetup) -> None:
    """A conversation holding a tool call and its result is accepted by every vendor."""
    messages = [
        {"role": "user", "content": "Weather in Paris?"},
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
    ]
    vendor.fake.script(Reply(text="It is 21 °C."))
    with Client(vendor.config_path) as client:
        reply = client.chat("m", messages, tools=[WEATHER_TOOL])
    assert reply.text == "It is 21 °C."
    sent = json.dumps(vendor.fake.requests[-1].body)
    assert "21" in sent and "get_weather" in sent


def test_json_schema_response(vendor: VendorSetup) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    }
    vendor.fake.script(Reply(text='{"city": "Paris"}'))
    with Client(vendor.config_path) as client:
        reply = client.chat(
            "m",
            "Capital of France as JSON",
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "city_answer", "schema": schema, "strict": True},
            },
        )
    assert json.loads(reply.text) == {"city": "Paris"}
    assert reply.finish_reason == "stop"
    assert "city" in json.dumps(vendor.fake.requests[-1].body)


ERROR_CASES = [
    (400, errors.BadRequestError),
    (401, errors.AuthenticationError),
    (403, errors.PermissionDeniedError),
    (404, errors.NotFoundError),
    (429, errors.RateLimitError),
    (500, errors.UpstreamUnavailableError),
    (503, errors.UpstreamUnavailableError),
]


@pytest.mark.parametrize(("status", "error_class"), ERROR_CASES)
def test_each_error_class(
    vendor: VendorSetup, status: int, error_class: type[errors.APIError]
) -> None:
    # Enough failures to outlast the retries of retryable statuses.
    vendor.fake.script(*[Reply.error(status, "nope", retry_after="0") for _ in range(3)])
    with Client(vendor.config_path) as client, pytest.raises(error_class) as info:
        client.chat("m", "hi")
    assert info.value.status_code == status
    assert info.value.vendor == vendor.vendor
    assert "nope" in str(info.value)


def test_retry_on_429_honours_retry_after(vendor: VendorSetup) -> None:
    vendor.fake.script(Reply.error(429, "slow down", retry_after="0"), Reply(text="finally"))
    with Client(vendor.config_path) as client:
        assert client.chat("m", "hi").text == "finally"
    assert len(vendor.fake.requests) == 2


def test_no_retry_on_400(vendor: VendorSetup) -> None:
    vendor.fake.script(Reply.error(400, "bad field"), Reply(text="never sent"))
    with Client(vendor.config_path) as client, pytest.raises(errors.BadRequestError):
        client.chat("m", "hi")
    assert len(vendor.fake.requests) == 1


def test_mid_stream_error_is_raised_not_truncated(vendor: VendorSetup) -> None:
    vendor.fake.script(Reply(text="a long answer that will break", fail_after_chunks=2))
    received: list[str] = []
    with Client(vendor.config_path) as client, pytest.raises(errors.APIError):
        for chunk in client.stream_chat("m", "hi"):
            received.extend(c.delta.content or "" for c in chunk.choices)
    assert "".join(received), "chunks before the error are delivered"
    assert "".join(received) != "a long answer that will break"


def test_cut_stream_is_an_error(vendor: VendorSetup) -> None:
    vendor.fake.script(Reply(text="a long answer that will be cut", truncate_after_chunks=2))
    with Client(vendor.config_path) as client, pytest.raises(errors.UpstreamUnavailableError):
        list(client.stream_chat("m", "hi"))


def test_prompt_over_context_window_is_rejected_before_any_call(vendor: VendorSetup) -> None:
    text = vendor.config_path.read_text() + "    context_window: 1000\n"
    vendor.config_path.write_text(text)
    with (
        Client(vendor.config_path) as client,
        pytest.raises(errors.ContextWindowExceededError, match="1,000"),
    ):
        client.chat("m", "word " * 5000)
    assert vendor.fake.requests == []
