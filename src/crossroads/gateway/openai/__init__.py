"""The OpenAI protocol of the gateway: ``/v1/chat/completions``, ``/v1/models`` and
``/v1/embeddings``, as pure functions (no I/O).

:mod:`.chat` reads requests and writes answers, :mod:`.sse` streams them, :mod:`.errors`
writes error bodies, :mod:`.embeddings` is the embeddings wire format. ``PROTOCOL`` is
what :meth:`crossroads.gateway.service.Gateway.handle` uses.
"""

from __future__ import annotations

from ..protocol import ClientProtocol
from .chat import (
    EXTENSION_FIELDS,
    IGNORED_FIELDS,
    REFUSED_FIELDS,
    chunk_json,
    models_list,
    parse_chat_request,
    response_json,
    usage_json,
)
from .embeddings import MAX_INPUTS as MAX_EMBEDDING_INPUTS
from .embeddings import EmbeddingsRequest, embeddings_response, parse_embeddings_request
from .errors import error_body, error_response
from .sse import DONE, ChunkEncoder, chunk_sse, stream_error_sse

__all__ = [
    "DONE",
    "EXTENSION_FIELDS",
    "IGNORED_FIELDS",
    "MAX_EMBEDDING_INPUTS",
    "PROTOCOL",
    "REFUSED_FIELDS",
    "ChunkEncoder",
    "EmbeddingsRequest",
    "chunk_json",
    "chunk_sse",
    "embeddings_response",
    "error_body",
    "error_response",
    "models_list",
    "parse_chat_request",
    "parse_embeddings_request",
    "response_json",
    "stream_error_sse",
    "usage_json",
]

PROTOCOL = ClientProtocol(
    name="openai",
    parse_request=parse_chat_request,
    render_response=response_json,
    stream_encoder=ChunkEncoder,
    error_response=error_response,
)
