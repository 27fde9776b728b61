"""A broken JSON schema in a client's ``response_format`` is the client's mistake: a 400
that says what is wrong, never a traceback (or a 500 from the gateway)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from crossroads.config import parse_config
from crossroads.errors import BadRequestError, GuardBlockedError
from crossroads.guard import Guardrails, RequestGuard
from crossroads.types import ChatRequest

from .fakes.openai_fake import OpenAIFake
from .fakes.server import Reply
from .gateway_harness import RunningGateway, gateway_thread

POLICY = """
guardrails:
  audit: false
  policies:
    - name: json
      output: [{check: json_schema, action: block}]
"""

BROKEN = [
    ({"type": "strng"}, "type"),
    (
        {"type": "object", "properties": {"a": {"type": "string", "pattern": "(unclosed"}}},
        "pattern",
    ),
    ({"type": "object", "patternProperties": {"[a-": {"type": "string"}}}, "patternProperties"),
    ({"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}}, "#/$defs/missing"),
    ({"$ref": "https://schemas.invalid/nothing.json"}, "schemas.invalid"),
    (
        {"$schema": "http://json-schema.org/draft-04/schema#", "patternProperties": {"[b-": {}}},
        "[b-",
    ),
]


def guard() -> RequestGuard:
    return Guardrails.from_config(parse_config(POLICY).guardrails).for_request(model="m")


def request(schema: dict[str, Any]) -> ChatRequest:
    return ChatRequest.model_validate(
        {
            "model": "m",
            "messages": [{"role": "user", "content": "hi"}],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "out", "schema": schema},
            },
        }
    )


@pytest.mark.parametrize(("schema", "named"), BROKEN, ids=[b[1] for b in BROKEN])
async def test_broken_response_format_schema_is_a_bad_request(
    schema: dict[str, Any], named: str
) -> None:
    rg = guard()
    with pytest.raises(BadRequestError) as caught:
        await rg.check_input(request(schema))
    assert not isinstance(caught.value, GuardBlockedError)
    assert caught.value.status_code == 400
    assert "response_format" in caught.value.message and named in caught.value.message


async def test_valid_schema_with_refs_still_checks_the_answer() -> None:
    schema = {
        "$defs": {"n": {"type": "integer"}},
        "type": "object",
        "properties": {"a": {"$ref": "#/$defs/n"}, "b": {"type": "string", "pattern": "^x"}},
        "required": ["a"],
    }
    rg = guard()
    await rg.check_input(request(schema))
    await rg.check_answer('{"a": 1, "b": "xy"}')
    with pytest.raises(GuardBlockedError):
        await guard_checked(schema, '{"a": "one"}')


async def guard_checked(schema: dict[str, Any], answer: str) -> None:
    rg = guard()
    await rg.check_input(request(schema))
    await rg.check_answer(answer)


def test_a_policy_schema_that_cannot_be_used_is_a_config_error() -> None:
    from crossroads.errors import ConfigError
    from crossroads.guard.rules import SchemaValidator

    bad = {"$schema": "http://json-schema.org/draft-04/schema#", "patternProperties": {"[b-": {}}}
    with pytest.raises(ConfigError, match="policy 'p': json_schema: error"):
        SchemaValidator("block", "p", bad).check('{"bc": 1}')
    with pytest.raises(BadRequestError, match="response_format"):
        SchemaValidator("block", "p", None).check('{"bc": 1}', bad)


# -- through the gateway ------------------------------------------------------------------------
CONFIG = """
models:
  - name: m
    backend: openai
    model: gpt-4o
    base_url: {url}/v1
    max_retries: 0
guardrails:
  audit: false
  policies:
    - name: json
      output: [{{check: json_schema, action: block}}]
"""


@pytest.fixture(scope="module")
def upstream() -> Iterator[OpenAIFake]:
    with OpenAIFake(require_key=False) as fake:
        yield fake


@pytest.fixture(scope="module")
def gw(upstream: OpenAIFake, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    mp = pytest.MonkeyPatch()
    mp.setenv("CROSSROADS_HOME", str(tmp_path_factory.mktemp("schema-home")))
    with gateway_thread(CONFIG.format(url=upstream.url)) as running:
        running.create_key("k")
        yield running
    mp.undo()


@pytest.mark.parametrize("stream", [False, True])
def test_gateway_answers_400_for_a_broken_schema(
    gw: RunningGateway, upstream: OpenAIFake, stream: bool
) -> None:
    upstream.script(Reply('{"a": 1}'))
    before = len(upstream.requests)
    body = request({"type": "strng"}).model_dump(mode="json", by_alias=True, exclude_none=True)
    response = httpx.post(
        gw.v1 + "/chat/completions",
        json={**body, "stream": stream},
        headers={"Authorization": f"Bearer {gw.keys['k']}"},
        timeout=30,
    )
    assert response.status_code == 400, response.text
    assert "response_format" in response.json()["error"]["message"]
    assert len(upstream.requests) == before, "the model is not called"
