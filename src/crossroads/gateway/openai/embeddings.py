"""OpenAI's embeddings wire format: https://platform.openai.com/docs/api-reference/embeddings.

``encoding_format: base64`` is the vector's little-endian float32 bytes in base64, as the
OpenAI SDK decodes it (``numpy.frombuffer(base64.b64decode(s), dtype="float32")``).
"""

from __future__ import annotations

import base64
import struct
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import ProtocolError, from_validation_error, json_type, load_json_object

__all__ = [
    "MAX_INPUTS",
    "EmbeddingsRequest",
    "embeddings_response",
    "encode_base64",
    "parse_embeddings_request",
]

#: OpenAI's limit on the number of inputs of one request.
MAX_INPUTS = 2048


class EmbeddingsRequest(BaseModel):
    """``POST /v1/embeddings``, fields in the order of the API reference."""

    model_config = ConfigDict(extra="ignore")

    input: str | list[str] | list[int] | list[list[int]]
    model: str = Field(min_length=1)
    dimensions: int | None = Field(default=None, ge=1)
    encoding_format: Literal["float", "base64"] = "float"
    user: str | None = None

    @property
    def is_tokens(self) -> bool:
        """Whether ``input`` is token ids rather than text."""
        return (
            isinstance(self.input, list) and bool(self.input) and not isinstance(self.input[0], str)
        )

    def texts(self) -> list[str]:
        """The inputs as a list of strings; token arrays are a 400."""
        if self.is_tokens:
            raise ProtocolError(
                "Token arrays are not supported for this model; send the text instead.",
                param="input",
                code="unsupported_parameter",
            )
        return [self.input] if isinstance(self.input, str) else [str(t) for t in self.input]


def parse_embeddings_request(
    body: bytes | str | dict[str, Any], *, allow_token_arrays: bool = False
) -> EmbeddingsRequest:
    """A validated embeddings request or a :class:`~.errors.ProtocolError` naming ``param``.

    Empty inputs are refused, as by OpenAI; token arrays (``[1, 2]`` or ``[[1, 2]]``) only
    pass with ``allow_token_arrays`` (for upstreams that take them).
    """
    data = load_json_object(body)
    for name in ("input", "model"):
        if data.get(name) is None:
            raise ProtocolError(f"Missing required parameter: '{name}'.", param=name)
    raw = data["input"]
    if isinstance(raw, list):
        if not raw:
            raise ProtocolError("'input' must not be an empty array.", param="input")
        if len(raw) > MAX_INPUTS:
            raise ProtocolError(
                f"'input' holds {len(raw)} items; the most is {MAX_INPUTS}.", param="input"
            )
        kinds = {json_type(item) for item in raw}
        if len(kinds) > 1:
            raise ProtocolError(
                "'input' must be a string, an array of strings or an array of token arrays, "
                "not a mix.",
                param="input",
            )
        for i, item in enumerate(raw):
            if isinstance(item, str | list) and not item:
                raise ProtocolError(f"'input[{i}]' must not be empty.", param=f"input[{i}]")
    elif isinstance(raw, str) and not raw:
        raise ProtocolError("'input' must not be an empty string.", param="input")
    try:
        request = EmbeddingsRequest.model_validate(data, strict=True)
    except ValidationError as exc:
        raise from_validation_error(exc, data, "openai") from exc
    if request.is_tokens and not allow_token_arrays:
        request.texts()  # raises the 400
    return request


def encode_base64(vector: list[float]) -> str:
    """A vector as base64 of little-endian float32, OpenAI's ``encoding_format=base64``."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


def embeddings_response(
    model: str,
    vectors: list[list[float]],
    prompt_tokens: int,
    encoding_format: Literal["float", "base64"] = "float",
) -> dict[str, Any]:
    """The ``POST /v1/embeddings`` answer body (a ``list`` of ``embedding`` objects)."""
    data = [
        {
            "object": "embedding",
            "index": i,
            "embedding": encode_base64(v) if encoding_format == "base64" else list(v),
        }
        for i, v in enumerate(vectors)
    ]
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }
