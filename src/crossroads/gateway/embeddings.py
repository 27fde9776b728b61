"""``POST /v1/embeddings``: the local all-MiniLM-L6-v2 model, or an OpenAI-compatible upstream.

The local model is the one the semantic-similarity scorer uses
(:func:`crossroads.backends.embedding_model.embed`): 384 dimensions, L2-normalised, inputs
truncated to 256 tokens, run in a worker thread. Its usage counts the word-piece tokens
the model read (special tokens left out, as OpenAI counts), from the model's own tokenizer.
"""

from __future__ import annotations

import asyncio
import math
import threading
from typing import Any

from ..backends import embedding_model
from ..backends.openai import OpenAIBackend
from ..errors import UpstreamUnavailableError
from .errors import ProtocolError
from .openai.embeddings import EmbeddingsRequest, embeddings_response

__all__ = [
    "LOCAL_EMBEDDING_DIM",
    "LOCAL_MODEL",
    "count_tokens",
    "is_local_model",
    "local_embeddings",
    "local_embeddings_response",
    "openai_embeddings",
]

#: The name the gateway serves the local model under.
LOCAL_MODEL = "local/all-minilm-l6-v2"
LOCAL_EMBEDDING_DIM = embedding_model.EMBEDDING_DIM
_LOCAL_NAMES = frozenset(
    {LOCAL_MODEL, "all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}
)
_CONTENT_TOKENS = embedding_model.MAX_TOKENS - 2  # [CLS] and [SEP] take two of the 256

_tokenizer_lock = threading.Lock()
_tokenizer: Any = None


def is_local_model(name: str) -> bool:
    """Whether ``name`` asks for the local model (``local/all-minilm-l6-v2``,
    ``all-MiniLM-L6-v2``, any case)."""
    return name.lower() in _LOCAL_NAMES


def _load_tokenizer() -> Any:
    global _tokenizer
    if _tokenizer is None:
        from transformers import AutoTokenizer

        folder = str(embedding_model.model_dir())
        _tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    return _tokenizer


def count_tokens(texts: list[str]) -> int:
    """Tokens the local model reads for ``texts`` (blocking). Without the tokenizer it
    falls back to an estimate of one token per four characters."""
    try:
        with _tokenizer_lock:  # fast tokenizers are not safe across threads
            ids = _load_tokenizer()(texts, add_special_tokens=False)["input_ids"]
        return sum(min(len(row), _CONTENT_TOKENS) for row in ids)
    except Exception:  # tokenizer missing or unloadable: the count is informative only
        return sum(min(math.ceil(len(t) / 4), _CONTENT_TOKENS) for t in texts)


def _embed_and_count(texts: list[str]) -> tuple[list[list[float]], int]:
    return embedding_model.embed(texts), count_tokens(texts)


async def local_embeddings(texts: list[str]) -> tuple[list[list[float]], int]:
    """Vectors of ``texts`` from the local model and the prompt tokens they took.

    Raises :class:`~crossroads.errors.ConfigError` when the model package, torch or
    transformers is not installed.
    """
    if not texts:
        return [], 0
    return await asyncio.to_thread(_embed_and_count, texts)


async def local_embeddings_response(request: EmbeddingsRequest) -> dict[str, Any]:
    """The whole ``/v1/embeddings`` answer from the local model (``dimensions`` may only
    be 384: the model has no shortened form)."""
    if request.dimensions is not None and request.dimensions != LOCAL_EMBEDDING_DIM:
        raise ProtocolError(
            f"{request.model!r} only makes {LOCAL_EMBEDDING_DIM}-dimensional embeddings; "
            f"'dimensions' must be {LOCAL_EMBEDDING_DIM} or left out.",
            param="dimensions",
            code="unsupported_value",
        )
    vectors, tokens = await local_embeddings(request.texts())
    return embeddings_response(request.model, vectors, tokens, request.encoding_format)


async def openai_embeddings(backend: OpenAIBackend, request: EmbeddingsRequest) -> dict[str, Any]:
    """Forward to the backend's OpenAI-compatible ``/embeddings``, with its transport's
    retries and error mapping. The upstream sees the deployment's model id; the answer
    names the model the client asked for."""
    body = request.model_dump(exclude_none=True)
    body["model"] = backend.deployment.model
    data = await backend.embeddings(body)
    if not isinstance(data.get("data"), list):
        raise UpstreamUnavailableError("embeddings answer has no 'data' list", vendor=backend.name)
    return {**data, "model": request.model}
