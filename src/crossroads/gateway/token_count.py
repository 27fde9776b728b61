"""``POST /v1/messages/count_tokens`` for Anthropic clients.

The count is the model's own where the model runs here: a llama.cpp model renders its
chat template and tokenizes the prompt exactly as a completion would (nothing is
generated); a transformers model does the same with its tokenizer. For any other model
(a vendor API) the answer is an **upper bound**, never an under-count: one token per
UTF-8 byte of everything the upstream would receive (what budget reservations use,
:func:`~.billing.prompt_bound`), capped at the model's context window when known.
Vendors' tokenizers give about a quarter of that for English text.

Same authentication, allow-list and model names as ``/v1/messages``; nothing is billed,
so nothing is written to the ledger.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import Response

from ..errors import BadRequestError, UnknownModelError
from ..types import ChatRequest
from . import anthropic
from .anthropic.count_tokens import count_tokens_body, parse_count_tokens_request
from .billing import prompt_bound
from .call import Call
from .http import JSON, error_response, read_body

if TYPE_CHECKING:
    from ..routing import Target
    from .service import Gateway

__all__ = ["count_tokens", "local_prompt_tokens"]

ENDPOINT = "/v1/messages/count_tokens"


class _Counted(Exception):
    def __init__(self, tokens: int) -> None:
        self.tokens = tokens


class _Counter:
    """Stands in for ``llama_cpp.Llama`` in its own ``create_chat_completion``: the
    template is rendered and tokenized, then the count is taken instead of a completion."""

    def __init__(self, llama: Any) -> None:
        self._llama = llama

    def __getattr__(self, name: str) -> Any:
        return getattr(self._llama, name)

    def create_completion(self, prompt: list[int], **kwargs: Any) -> Any:
        raise _Counted(len(prompt))


def _llamacpp_count(llama: Any, request: ChatRequest) -> int:
    from ..backends._local import chat_messages

    try:
        type(llama).create_chat_completion(
            _Counter(llama), messages=chat_messages(request), max_tokens=1
        )
    except _Counted as counted:
        return counted.tokens
    raise RuntimeError("llama.cpp produced a completion without a prompt")


async def local_prompt_tokens(target: Target, request: ChatRequest) -> int | None:
    """The prompt's exact token count on a local model (None for a vendor API)."""
    from ..backends.hf import TransformersBackend
    from ..backends.llamacpp import LlamaCppBackend

    backend = target.backend
    if isinstance(backend, LlamaCppBackend):
        loaded = await backend.load()
        loop = asyncio.get_running_loop()  # the model's own thread: llama.cpp is not safe
        return await loop.run_in_executor(loaded.worker, _llamacpp_count, loaded.llama, request)
    if isinstance(backend, TransformersBackend):
        from ..backends._local import chat_messages, plain_prompt

        hf = await backend.load()
        tokenizer = hf.tokenizer
        try:
            if hf.chat_template:
                text = tokenizer.apply_chat_template(
                    chat_messages(request), add_generation_prompt=True, tokenize=False
                )
                return len(tokenizer(text, add_special_tokens=False)["input_ids"])
            return len(tokenizer(plain_prompt(request))["input_ids"])
        except Exception as exc:  # jinja errors, e.g. a role the template refuses
            raise BadRequestError(f"Could not build the prompt: {exc}") from exc
    return None


async def count_tokens(gateway: Gateway, request: Request) -> Response:
    """``POST /v1/messages/count_tokens``: the prompt's size on the model asked for."""
    call = Call(protocol="anthropic", endpoint=ENDPOINT)
    try:
        await gateway.authenticate(call, request.headers)
        body = await read_body(request, gateway.config.gateway.max_request_bytes)
        parsed = parse_count_tokens_request(
            await gateway._load(call, body, "anthropic")  # the same limits
        )
        call.model = parsed.model
        key = call.key
        if key is not None and not key.allows(parsed.model):
            from .service import _check_allowed

            _check_allowed(key, parsed.model)  # the same 403 as /v1/messages
        gateway.exposure.check(parsed.model, key.allows if key else None)
        try:
            targets = gateway.router.plan(parsed.model).targets
        except UnknownModelError as exc:
            from .service import _unknown_for

            raise _unknown_for(key, exc) from None
        counts = [await local_prompt_tokens(t, parsed) for t in targets[:1]]
        tokens = counts[0] if counts and len(targets) == 1 else None  # one local model
        if tokens is None:
            tokens = prompt_bound(parsed, targets)
    except Exception as exc:
        return error_response(call, exc, anthropic.PROTOCOL)
    return Response(json.dumps(count_tokens_body(tokens)), media_type=JSON, headers=call.headers)
