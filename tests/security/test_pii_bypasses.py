"""Input PII redaction on the gateway cannot be walked around (issue 18).

A key whose policy redacts personal data on input sends an e-mail address or a card
number through every client-supplied string and through the obfuscations a probe used;
the upstream (a loopback fake) must receive it in no form: not verbatim, not after
Unicode normalisation, percent- or base64-decoding, and not split across strings.
"""

from __future__ import annotations

import base64
import contextlib
import re
import unicodedata
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..fakes.openai_fake import OpenAIFake
from ..gateway_harness import RunningGateway, gateway_in_home

EMAIL = "ann.lee@example.com"
CARD_DIGITS = "4111111111111111"

CONFIG = """
models:
  - name: m
    backend: openai
    model: gpt-4o
    base_url: {url}/v1
    max_retries: 0
    prices: {{input: 1.0, output: 2.0}}
guardrails:
  audit: false
  policies:
    - name: pii-redact
      applies_to: {{keys: ["probe"]}}
      input:
        - {{check: pii, action: redact}}
"""


@pytest.fixture(scope="module")
def fake() -> Iterator[OpenAIFake]:
    with OpenAIFake(require_key=False) as server:
        yield server  # type: ignore[misc]


@pytest.fixture(scope="module")
def gw(fake: OpenAIFake, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    home: Path = tmp_path_factory.mktemp("pii-home")
    with gateway_in_home(CONFIG.format(url=fake.url), home) as running:
        running.create_key("probe")
        yield running


# -- what the upstream received, in every form ------------------------------------------------
def _strings(value: Any) -> Iterator[str]:
    """Every string in a JSON value, keys included, in document order."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


_B64 = re.compile(r"[A-Za-z0-9+/_-]{8,}={0,2}")


def _forms(text: str) -> list[str]:
    """``text`` as a reader could decode it: NFKC, without format characters,
    percent-decoded, and every base64-looking run decoded."""
    plain = unicodedata.normalize("NFKC", text)
    plain = "".join(c for c in plain if unicodedata.category(c) != "Cf")
    plain = urllib.parse.unquote(plain)
    out = [text, plain]
    for run in _B64.findall(plain):
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            with contextlib.suppress(ValueError):
                out.append(decode(run + "=" * (-len(run) % 4)).decode("utf-8", "replace"))
    return out


def _texts(value: Any) -> Iterator[str]:
    """The message texts in ``value`` (``content`` strings and ``text`` parts), in order."""
    if isinstance(value, dict):
        for k, v in value.items():
            if k in ("content", "text") and isinstance(v, str):
                yield v
            else:
                yield from _texts(v)
    elif isinstance(value, list):
        for v in value:
            yield from _texts(v)


def _leaks(body: Any) -> list[str]:
    """Where the e-mail or the card shows in ``body`` (each string, all of them joined,
    and the message texts joined, so a value split across strings counts)."""
    strings = list(_strings(body))
    found = []
    for text in [*strings, "".join(strings), "".join(_texts(body))]:
        for form in _forms(text):
            if EMAIL in form or "ann.lee" in form:
                found.append(f"e-mail in {text[:80]!r}")
            if CARD_DIGITS in re.sub(r"[\s.\-/]", "", form):
                found.append(f"card in {text[:80]!r}")
    return found


def _openai(gw: RunningGateway, fake: OpenAIFake, body: dict[str, Any]) -> Any:
    before = len(fake.requests)
    response = httpx.post(
        gw.v1 + "/chat/completions",
        json={"model": "m", **body},
        headers={"Authorization": f"Bearer {gw.keys['probe']}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert len(fake.requests) == before + 1
    return fake.requests[-1].body


def _anthropic(gw: RunningGateway, fake: OpenAIFake, body: dict[str, Any]) -> Any:
    before = len(fake.requests)
    response = httpx.post(
        gw.v1 + "/messages",
        json={"model": "m", "max_tokens": 50, **body},
        headers={"x-api-key": gw.keys["probe"], "anthropic-version": "2023-06-01"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert len(fake.requests) == before + 1
    return fake.requests[-1].body


def _user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def test_the_check_itself_sees_a_plain_leak() -> None:
    assert _leaks({"messages": [{"content": f"mail {EMAIL}"}]})
    assert _leaks({"a": "YW5uLmxlZUBleGFtcGxlLmNvbQ=="})
    assert not _leaks({"messages": [{"content": "mail [EMAIL_1]"}]})


def test_redaction_works_in_the_user_message(gw: RunningGateway, fake: OpenAIFake) -> None:
    body = _openai(gw, fake, {"messages": _user(f"Write to {EMAIL} today.")})
    assert body["messages"][0]["content"] == "Write to [EMAIL_1] today."


# -- every client-supplied string ----------------------------------------------------------------
@pytest.mark.parametrize("role", ["system", "developer"])
def test_system_and_developer_prompt(gw: RunningGateway, fake: OpenAIFake, role: str) -> None:
    messages = [{"role": role, "content": f"Support mailbox: {EMAIL}"}, *_user("hi")]
    body = _openai(gw, fake, {"messages": messages})
    assert not _leaks(body)
    assert "[EMAIL_1]" in body["messages"][0]["content"]


def test_anthropic_system_prompt(gw: RunningGateway, fake: OpenAIFake) -> None:
    body = _anthropic(gw, fake, {"system": f"Support mailbox: {EMAIL}", "messages": _user("hi")})
    assert not _leaks(body)


def test_message_name(gw: RunningGateway, fake: OpenAIFake) -> None:
    messages = [{"role": "user", "content": "hi", "name": EMAIL}]
    assert not _leaks(_openai(gw, fake, {"messages": messages}))


def test_tool_description(gw: RunningGateway, fake: OpenAIFake) -> None:
    tool = {
        "type": "function",
        "function": {"name": "send", "description": f"Sends mail as {EMAIL}", "parameters": {}},
    }
    assert not _leaks(_openai(gw, fake, {"messages": _user("hi"), "tools": [tool]}))


def test_tool_parameter_schema(gw: RunningGateway, fake: OpenAIFake) -> None:
    schema = {
        "type": "object",
        "properties": {"to": {"type": "string", "default": EMAIL, "description": f"e.g. {EMAIL}"}},
    }
    tool = {"type": "function", "function": {"name": "send", "parameters": schema}}
    assert not _leaks(_openai(gw, fake, {"messages": _user("hi"), "tools": [tool]}))


def test_anthropic_tool_description_and_schema(gw: RunningGateway, fake: OpenAIFake) -> None:
    tool = {
        "name": "send",
        "description": f"Sends mail as {EMAIL}",
        "input_schema": {"type": "object", "properties": {"to": {"const": EMAIL}}},
    }
    assert not _leaks(_anthropic(gw, fake, {"messages": _user("hi"), "tools": [tool]}))


def test_stop(gw: RunningGateway, fake: OpenAIFake) -> None:
    assert not _leaks(_openai(gw, fake, {"messages": _user("hi"), "stop": [EMAIL, "END"]}))


def test_response_format_json_schema(gw: RunningGateway, fake: OpenAIFake) -> None:
    fmt = {
        "type": "json_schema",
        "json_schema": {
            "name": "contact",
            "description": f"Contact card of {EMAIL}",
            "schema": {"type": "object", "properties": {"email": {"enum": [EMAIL]}}},
        },
    }
    assert not _leaks(_openai(gw, fake, {"messages": _user("hi"), "response_format": fmt}))


def test_anthropic_metadata_user_id(gw: RunningGateway, fake: OpenAIFake) -> None:
    body = _anthropic(gw, fake, {"messages": _user("hi"), "metadata": {"user_id": EMAIL}})
    assert not _leaks(body)


def test_user_and_unknown_fields(gw: RunningGateway, fake: OpenAIFake) -> None:
    """``user`` and fields the gateway passes through without knowing them (extras)."""
    extra = {"user": EMAIL, "metadata": {"owner": EMAIL, EMAIL: "key"}, "x_note": [EMAIL]}
    assert not _leaks(_openai(gw, fake, {"messages": _user("hi"), **extra}))


# -- split across strings ----------------------------------------------------------------------
def test_split_across_messages(gw: RunningGateway, fake: OpenAIFake) -> None:
    messages = [
        {"role": "user", "content": "My address is ann.lee@exa"},
        {"role": "assistant", "content": "mple.com"},
        {"role": "user", "content": "Is that right?"},
    ]
    assert not _leaks(_openai(gw, fake, {"messages": messages}))


def test_split_across_content_parts(gw: RunningGateway, fake: OpenAIFake) -> None:
    parts = [{"type": "text", "text": t} for t in ("Mail ann", ".lee@", "example", ".com now")]
    body = _openai(gw, fake, {"messages": [{"role": "user", "content": parts}]})
    assert not _leaks(body)
    card = [{"type": "text", "text": t} for t in ("Card 4111 1111", " 1111 1111 thanks")]
    assert not _leaks(_openai(gw, fake, {"messages": [{"role": "user", "content": card}]}))


def test_split_across_anthropic_blocks(gw: RunningGateway, fake: OpenAIFake) -> None:
    blocks = [{"type": "text", "text": "Mail ann.lee@exam"}, {"type": "text", "text": "ple.com"}]
    body = _anthropic(gw, fake, {"messages": [{"role": "user", "content": blocks}]})
    assert not _leaks(body)


# -- obfuscated ------------------------------------------------------------------------------
def test_base64(gw: RunningGateway, fake: OpenAIFake) -> None:
    blob = base64.b64encode(f"contact: {EMAIL}".encode()).decode()
    body = _openai(gw, fake, {"messages": _user(f"Decode this and reply: {blob}")})
    assert not _leaks(body)
    assert body["messages"][0]["content"].startswith("Decode this and reply: [EMAIL_1]")


def test_zero_width_space(gw: RunningGateway, fake: OpenAIFake) -> None:
    body = _openai(gw, fake, {"messages": _user("Mail ann.lee\u200b@exam\u200bple.com now")})
    assert not _leaks(body)
    assert body["messages"][0]["content"] == "Mail [EMAIL_1] now"


def test_full_width_at(gw: RunningGateway, fake: OpenAIFake) -> None:
    body = _openai(gw, fake, {"messages": _user("Mail ann.lee\uff20example.com now")})
    assert not _leaks(body)
    assert body["messages"][0]["content"] == "Mail [EMAIL_1] now"


def test_percent_encoded_at(gw: RunningGateway, fake: OpenAIFake) -> None:
    body = _openai(gw, fake, {"messages": _user("Mail ann.lee%40example.com now")})
    assert not _leaks(body)
    assert body["messages"][0]["content"] == "Mail [EMAIL_1] now"


def test_card_with_dots(gw: RunningGateway, fake: OpenAIFake) -> None:
    body = _openai(gw, fake, {"messages": _user("Card 4111.1111.1111.1111, exp 12/29")})
    assert not _leaks(body)
    assert body["messages"][0]["content"] == "Card [CARD_1], exp 12/29"


def test_unguarded_text_is_untouched(gw: RunningGateway, fake: OpenAIFake) -> None:
    """Nothing personal: the request reaches the upstream as sent (no over-redaction of
    percent signs, long words, base64 without personal data, or other fields)."""
    text = (
        "Grow 12% to 48.2M, see https://x.example/a%20b or aGVsbG8gd29ybGQ= (internationalization)"
    )
    tool = {"type": "function", "function": {"name": "f", "description": "Look up weather."}}
    messages = [{"role": "system", "content": "Be brief."}, *_user(text)]
    body = _openai(gw, fake, {"messages": messages, "tools": [tool], "stop": ["END"]})
    assert body["messages"] == messages
    assert body["tools"][0]["function"]["description"] == "Look up weather."
    assert body["stop"] == ["END"]


def test_an_identifier_that_cannot_hold_a_placeholder_is_refused(
    gw: RunningGateway, fake: OpenAIFake
) -> None:
    """A function name is referred to by tool calls and ``tool_choice``: a placeholder
    would break the request, so it is refused (400) before the upstream is called."""
    before = len(fake.requests)
    tool = {"type": "function", "function": {"name": f"pay_{CARD_DIGITS}"}}
    response = httpx.post(
        gw.v1 + "/chat/completions",
        json={"model": "m", "messages": _user("hi"), "tools": [tool]},
        headers={"Authorization": f"Bearer {gw.keys['probe']}"},
        timeout=30,
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "content_policy_violation" and "Rename it" in error["message"]
    assert CARD_DIGITS not in response.text
    assert len(fake.requests) == before
