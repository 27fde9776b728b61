"""Output checks on streams: PII split across chunks never reaches the client unmasked."""

from __future__ import annotations

from typing import Any

import pytest

from crossroads.config import parse_config
from crossroads.guard import Guardrails, RequestGuard
from crossroads.streaming import StreamAccumulator
from crossroads.types import ChatChunk, ChatRequest, ChunkChoice, Delta, Usage

POLICY = """
guardrails:
  audit: false
  policies:
    - name: default
      input:  [{check: pii, action: redact, restore: true}]
      output: [{check: pii, action: redact}, {check: secrets, action: redact},
               {check: canary, action: block}]
"""
CARD = "4111 1111 1111 1111"
EMAIL = "ann.lee@example.com"
TEXT = f"Your card {CARD} is on file; we will write to {EMAIL} tomorrow."
EXPECTED = "Your card [CARD_1] is on file; we will write to [EMAIL_1] tomorrow."


def guard(yaml_text: str = POLICY) -> RequestGuard:
    return Guardrails.from_config(parse_config(yaml_text).guardrails).for_request(model="m")


def chunk(content: str | None = None, finish: str | None = None, **delta: Any) -> ChatChunk:
    choice = ChunkChoice(delta=Delta(content=content, **delta), finish_reason=finish)  # type: ignore[arg-type]
    return ChatChunk(id="chatcmpl-1", model="m", choices=[choice])


def run(rg: RequestGuard, pieces: list[str], *, usage: bool = True) -> tuple[str, list[ChatChunk]]:
    f = rg.stream_filter()
    out: list[ChatChunk] = []
    out += f.feed(chunk(role="assistant", content=""))
    for piece in pieces:
        out += f.feed(chunk(piece))
    out += f.feed(chunk(finish="stop"))
    out += f.finish()
    if usage:
        out += f.feed(ChatChunk(id="chatcmpl-1", model="m", usage=Usage.of(3, 4)))
    acc = StreamAccumulator()
    for c in out:
        acc.add(c)
    return acc.response().text, out


def sent_so_far(chunks: list[ChatChunk]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


@pytest.mark.parametrize("value", [CARD, EMAIL])
def test_every_split_position_is_masked(value: str) -> None:
    start = TEXT.index(value)
    for cut in range(start, start + len(value) + 1):
        text, chunks = run(guard(), [TEXT[:cut], TEXT[cut:]])
        assert text == EXPECTED, cut
        for c in chunks:  # no single chunk and no prefix of the stream leaks it
            assert value not in sent_so_far(chunks[: chunks.index(c) + 1])
        assert CARD.replace(" ", "")[:8] not in text.replace(" ", "")


def test_three_way_splits_and_single_characters() -> None:
    start, end = TEXT.index(CARD), TEXT.index(EMAIL) + len(EMAIL)
    for a in range(start, end, 3):
        for b in range(a + 1, min(end, a + 9)):
            assert run(guard(), [TEXT[:a], TEXT[a:b], TEXT[b:]])[0] == EXPECTED
    assert run(guard(), list(TEXT))[0] == EXPECTED


def test_safe_text_flows_with_at_most_a_word_of_delay() -> None:
    f = guard().stream_filter()
    fed = released = ""
    for piece in ["the qu", "ick brown f", "ox jumps ", "over the la", "zy dog", " and sleeps"]:
        fed += piece
        for c in f.feed(chunk(piece)):
            released += c.choices[0].delta.content or ""
        assert released == fed[: fed.rfind(" ") + 1]  # only the unfinished word waits


def test_placeholders_are_restored_across_chunks() -> None:
    rg = guard()
    import asyncio

    asyncio.run(
        rg.check_input(ChatRequest(model="m", messages=[{"role": "user", "content": EMAIL}]))
    )
    answer = "I will mail [EMAIL_1] now, and bob@corp.io too."
    for cut in range(len(answer)):
        text, _ = run(rg, [answer[:cut], answer[cut:]])
        assert text == f"I will mail {EMAIL} now, and [EMAIL_2] too."


def test_block_ends_the_stream_with_content_filter() -> None:
    rg = guard(
        POLICY.replace("{check: secrets, action: redact}", "{check: secrets, action: block}")
    )
    token = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
    text, chunks = run(rg, ["Here is a token: ", token[:10], token[10:], " and more text"])
    assert token[:10] not in text and "more text" not in text
    assert chunks[-2].choices[0].finish_reason == "content_filter"
    assert chunks[-1].usage is not None, "the usage chunk still goes out"
    assert rg.blocked is not None and rg.blocked.check == "secrets"


def test_private_key_split_over_many_chunks_is_masked() -> None:
    key = "-----BEGIN PRIVATE KEY-----\n" + "\n".join(["MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"] * 5)
    key += "\n-----END PRIVATE KEY-----"
    body = f"Key:\n{key}\nDone."
    text, _ = run(guard(), [body[i : i + 7] for i in range(0, len(body), 7)])
    assert text == "Key:\n[PRIVATE_KEY_1]\nDone."


def test_whole_answer_checks_hold_the_stream() -> None:
    rg = guard(
        """
guardrails:
  audit: false
  policies:
    - name: json
      output: [{check: json_schema, action: block}]
"""
    )
    f = rg.stream_filter()
    assert f.feed(chunk('{"a": ')) == [] and f.feed(chunk("1}")) == []
    assert f.feed(chunk(finish="stop")) == []
    (done,) = f.finish()
    assert done.choices[0].delta.content == '{"a": 1}' and done.choices[0].finish_reason == "stop"

    bad = guard(
        """
guardrails:
  audit: false
  policies:
    - name: json
      output: [{check: json_schema, action: block}]
"""
    )
    text, chunks = run(bad, ["not ", "json"])
    assert text == "" and chunks[-2].choices[0].finish_reason == "content_filter"


def test_tool_call_arguments_are_filtered_too() -> None:
    from crossroads.types import FunctionCallDelta, ToolCallDelta

    f = guard().stream_filter()
    args = '{"to": "ann.lee@example.com"}'
    out: list[ChatChunk] = []
    out += f.feed(
        chunk(
            tool_calls=[
                ToolCallDelta(
                    index=0,
                    id="c1",
                    type="function",
                    function=FunctionCallDelta(name="send", arguments=args[:12]),
                )
            ]
        )
    )
    out += f.feed(
        chunk(tool_calls=[ToolCallDelta(index=0, function=FunctionCallDelta(arguments=args[12:]))])
    )
    out += f.feed(chunk(finish="tool_calls"))
    out += f.finish()
    acc = StreamAccumulator()
    for c in out:
        acc.add(c)
    (call,) = acc.response().tool_calls
    assert call.function.name == "send" and call.function.arguments == '{"to": "[EMAIL_1]"}'


def test_output_judge_cannot_run_in_sync_finish_and_fails_closed() -> None:
    rg = guard(
        """
guardrails:
  audit: false
  policies:
    - name: judged
      output: [{check: judge, model: some/model, action: block}]
      fail: closed
"""
    )
    text, chunks = run(rg, ["hello ", "world"])
    assert text == "" and chunks[-2].choices[0].finish_reason == "content_filter"
    assert rg.decisions[0].error == "not run: synchronous finish()"


async def test_filter_made_before_the_input_check_sees_the_planted_canary() -> None:
    rg = guard(
        """
guardrails:
  audit: false
  policies:
    - name: c
      output: [{check: canary, action: block}]
"""
    )
    f = rg.stream_filter()  # before check_input plants the token
    messages = [{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}]
    request = ChatRequest.model_validate({"model": "m", "messages": messages})
    await rg.check_input(request)
    (token,) = rg._canary_tokens
    out = f.feed(chunk(f"leak {token} done "))
    out += f.feed(chunk(finish="stop"))
    out += await f.afinish()
    assert f.blocked and token not in sent_so_far(out)
    assert rg.blocked is not None and rg.blocked.check == "canary"


@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_digitless_ipv6_split_into_chunks_is_masked(size: int) -> None:
    body = "the host is fdab::abcd:ef so connect there"
    text, chunks = run(guard(), [body[i : i + size] for i in range(0, len(body), size)])
    assert text == "the host is [IP_1] so connect there"
    assert "abcd" not in sent_so_far(chunks)


@pytest.mark.parametrize("sync", [True, False])
async def test_streamed_schema_failure_is_refused_with_the_same_message(sync: bool) -> None:
    policy = """
guardrails:
  audit: false
  policies:
    - name: json
      output: [{check: json_schema, action: block}]
"""
    from crossroads.errors import GuardBlockedError
    from crossroads.types import ChatResponse

    whole = guard(policy)
    response = ChatResponse.model_validate(
        {
            "id": "r",
            "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "not json"}}],
        }
    )
    with pytest.raises(GuardBlockedError) as caught:
        await whole.check_output(response)
    expected = str(caught.value)
    assert "not valid JSON for the required schema (" in expected
    assert expected.endswith("Try again, or relax the schema.")

    rg = guard(policy)
    f = rg.stream_filter()
    out = f.feed(chunk("not ")) + f.feed(chunk("json")) + f.feed(chunk(finish="stop"))
    out += f.finish() if sync else await f.afinish()
    assert f.blocked and out[-1].choices[0].finish_reason == "content_filter"
    assert f.error is not None and str(f.error) == expected
    assert rg.blocked is not None and rg.blocked.check == "json_schema"


def test_sync_finish_judge_failure_says_the_policy_fails_closed() -> None:
    rg = guard(
        """
guardrails:
  audit: false
  policies:
    - name: judged
      output: [{check: judge, model: some/model, action: block}]
      fail: closed
"""
    )
    f = rg.stream_filter()
    f.feed(chunk("hello"))
    f.feed(chunk(finish="stop"))
    f.finish()
    assert f.error is not None
    assert "not run: synchronous finish(), and the policy fails closed" in str(f.error)


def test_stream_block_by_a_rule_keeps_its_refusal() -> None:
    rg = guard(
        POLICY.replace("{check: secrets, action: redact}", "{check: secrets, action: block}")
    )
    token = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
    f = rg.stream_filter()
    f.feed(chunk(f"Here is a token: {token} and more"))
    f.feed(chunk(finish="stop"))
    f.finish()
    assert f.blocked and f.error is not None and "secrets check" in str(f.error)
