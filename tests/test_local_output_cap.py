"""A local model called without ``max_tokens`` (the OpenAI Agents SDK does this) stops at
the documented default cap instead of running until its context is full (issue 15, 9),
and the gateway reserves and sends ``default_max_tokens`` for other models (issue 17)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from crossroads.backends._local import LOCAL_DEFAULT_MAX_TOKENS
from crossroads.backends.llamacpp import request_to_llamacpp
from crossroads.types import ChatRequest, prompt_token_bound

from .conftest import require
from .fakes.openai_fake import OpenAIFake
from .gateway_harness import MASTER, gateway_thread

USER = [{"role": "user", "content": "Write the numbers from 1 to 2000."}]


def test_llamacpp_gets_the_default_cap_or_the_entrys() -> None:
    bare = ChatRequest.model_validate({"model": "m", "messages": USER})
    assert request_to_llamacpp(bare)["max_tokens"] == LOCAL_DEFAULT_MAX_TOKENS == 256
    assert request_to_llamacpp(bare, 1000)["max_tokens"] == 1000  # max_output_tokens
    asked = ChatRequest.model_validate({"model": "m", "messages": USER, "max_tokens": 9})
    assert request_to_llamacpp(asked, 1000)["max_tokens"] == 9


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require("transformers", "pip install torch==2.13.0 && pip install -e '.[dev]'")
    from .local_models import build_model, build_tokenizer

    return build_model("llama", tmp_path_factory.mktemp("tiny") / "llama", build_tokenizer())


@pytest.mark.parametrize(("max_output", "expected"), [(None, 256), (40, 40)])
def test_gateway_caps_a_local_model_called_without_max_tokens(
    tiny_llama: Path, max_output: int | None, expected: int
) -> None:
    entry = (
        f"models:\n  - name: tiny\n    backend: transformers\n    model: {tiny_llama}\n"
        # ignore_eos: the random model never stops on its own
        "    options: {ignore_eos: true, device: cpu}\n    prices: {input: 0, output: 0}\n"
        + (f"    max_output_tokens: {max_output}\n" if max_output else "")
        + "gateway:\n  master_key: ${CROSSROADS_MASTER_KEY}\n"
    )
    with gateway_thread(entry) as gw:
        response = httpx.post(
            gw.v1 + "/chat/completions", json={"model": "tiny", "messages": USER},
            headers={"Authorization": f"Bearer {MASTER}"}, timeout=300,
        )
    assert response.status_code == 200, response.text
    assert response.json()["usage"]["completion_tokens"] == expected
    assert response.json()["choices"][0]["finish_reason"] == "length"


# -- issue 17: a request without max_tokens reserves default_max_tokens -----------------


@pytest.fixture
def upstream() -> Iterator[OpenAIFake]:
    with OpenAIFake(require_key=False) as fake:
        yield fake  # type: ignore[misc]


def _config(url: str, gateway: str = "") -> str:
    # gpt-4o-mini: the catalog's maximum output is 16,384 tokens
    return (
        "models:\n  - name: mini\n    backend: openai\n    model: gpt-4o-mini\n"
        f"    base_url: {url}/v1\n    max_retries: 0\n"
        "    prices: {input: 0.15, output: 0.60}\n"
        "gateway:\n  master_key: ${CROSSROADS_MASTER_KEY}\n" + gateway
    )


def _tokens_held(body: dict[str, Any]) -> int:
    """What the docs say a request holds: the prompt's bound plus max_tokens, with
    ``default_max_tokens`` when the request sets none (the upstream is sent that)."""
    sent = {**body, "max_tokens": body.get("max_tokens", 4096)}
    return prompt_token_bound(ChatRequest.model_validate(sent)) + sent["max_tokens"]


def test_no_max_tokens_reserves_and_sends_default_max_tokens(upstream: OpenAIFake) -> None:
    body = {"model": "mini", "messages": USER}
    held = _tokens_held(body)
    with gateway_thread(_config(upstream.url)) as gw:
        exact = gw.create_key("exact", tpm=held)
        short = gw.create_key("short", tpm=held - 1)
        fits = httpx.post(gw.v1 + "/chat/completions", json=body,
                          headers={"Authorization": f"Bearer {exact}"}, timeout=30)
        refused = httpx.post(gw.v1 + "/chat/completions", json=body,
                             headers={"Authorization": f"Bearer {short}"}, timeout=30)
    assert fits.status_code == 200, fits.text
    assert fits.headers["x-ratelimit-remaining-tokens"] == "0"
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "request_too_large"
    assert f"needs up to {held} tokens" in refused.json()["error"]["message"]
    assert [r.body["max_tokens"] for r in upstream.requests] == [4096]


def test_budget_sized_from_the_docs_arithmetic_is_enough(upstream: OpenAIFake) -> None:
    """A budget of exactly the documented worst case (prompt bound × input price +
    4,096 × output price) admits the request; 16,384 output tokens would not fit."""
    body = {"model": "mini", "messages": USER}
    prompt = _tokens_held(body) - 4096
    worst = (prompt * 0.15 + 4096 * 0.60) / 1e6
    with gateway_thread(_config(upstream.url)) as gw:
        key = gw.create_key("planned", budget_usd=worst * 1.000001)
        response = httpx.post(gw.v1 + "/chat/completions", json=body,
                              headers={"Authorization": f"Bearer {key}"}, timeout=30)
    assert response.status_code == 200, response.text
    assert (prompt * 0.15 + 16_384 * 0.60) / 1e6 > worst * 1.000001
    assert upstream.requests[0].body["max_tokens"] == 4096


def test_default_is_lowered_to_the_models_output_limit(upstream: OpenAIFake) -> None:
    config = _config(upstream.url, "  default_max_tokens: 100000\n")
    with gateway_thread(config) as gw:
        response = httpx.post(gw.v1 + "/chat/completions", json={"model": "mini", "messages": USER},
                              headers={"Authorization": f"Bearer {MASTER}"}, timeout=30)
    assert response.status_code == 200, response.text
    assert upstream.requests[0].body["max_tokens"] == 16_384
