"""``/v1/responses`` (create, get, delete): the OpenAI Responses API on the gateway.

A ``POST`` goes through :meth:`~.service.Gateway.handle` like ``/v1/chat/completions``
(the same keys, limits, budget reservation, guardrails, ledger row and audit record),
with a :class:`~.protocol.ClientProtocol` made for the one request
(:class:`ResponsesExchange`): it reads the Responses body (:mod:`.openai.responses`),
prepends the stored conversation of ``previous_response_id`` once the key is known, and
writes the ``response`` object or its events (:mod:`.openai.responses_sse`). With
``store: true`` the answer is kept (:mod:`.responses_store`) for its key only, and
committed before the client receives the end of it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import Response

from ..errors import APIError
from ..types import AssistantMessage, ChatChunk, ChatRequest, ChatResponse, FunctionCall, ToolCall
from . import openai
from .call import Call
from .errors import ProtocolError
from .http import JSON, EventStream, error_response
from .openai.chat import dumps
from .openai.responses import (
    ResponsesOptions,
    new_response_id,
    parse_responses_request,
    render_response,
)
from .openai.responses_sse import ResponsesEncoder
from .protocol import ClientProtocol
from .responses_store import ResponseStore, owner_of

if TYPE_CHECKING:
    from .service import Gateway

__all__ = ["ResponsesExchange", "create_response", "delete_response", "get_response"]

log = logging.getLogger("crossroads.gateway")

ENDPOINT = "/v1/responses"


def _not_found(response_id: str, param: str | None = None) -> ProtocolError:
    return ProtocolError(
        f"Response with id '{response_id}' not found.",
        param=param,
        code="previous_response_not_found" if param else "response_not_found",
        status_code=404,
    )


class ResponsesExchange:
    """One ``POST /v1/responses``: its protocol object, options and answer."""

    def __init__(self, store: ResponseStore, max_messages: int = 0) -> None:
        self.store = store
        #: The most messages a continued conversation may reach (0: no limit), as the
        #: body of any request (``gateway.max_messages``).
        self.max_messages = max_messages
        self.id = new_response_id()
        self.options = ResponsesOptions()
        self.call: Call | None = None
        self.answer: dict[str, Any] | None = None
        self.message: AssistantMessage | None = None
        self.encoder: ResponsesEncoder | None = None
        self.protocol = ClientProtocol(
            name="openai",
            parse_request=self.parse,
            render_response=self.render,
            stream_encoder=self.encode,
            error_response=openai.error_response,
            prepare=self.prepare,
        )

    def parse(self, body: bytes | dict[str, Any]) -> ChatRequest:
        request, self.options = parse_responses_request(body)
        return request

    async def prepare(self, call: Call, request: ChatRequest) -> ChatRequest:
        """The request with the stored conversation of ``previous_response_id`` (the
        key's own) before its new input, after its instructions."""
        self.call = call
        previous = self.options.previous_response_id
        if previous is None:
            return request
        stored = await self.store.get(owner_of(call), previous)
        if stored is None:
            raise _not_found(previous, "previous_response_id")
        history = ChatRequest.model_validate(
            {"model": request.model, "messages": stored.conversation}
        ).messages
        head = 1 if self.options.instructions is not None else 0
        messages = request.messages[:head] + history + request.messages[head:]
        if self.max_messages and len(messages) > self.max_messages:
            raise ProtocolError(
                f"The conversation of 'previous_response_id' would hold {len(messages)} "
                f"messages; the limit is {self.max_messages} (gateway.max_messages). "
                "Start a new conversation, or send a summary as input.",
                param="previous_response_id",
                code="conversation_too_long",
            )
        return request.model_copy(update={"messages": messages})

    def render(self, response: ChatResponse) -> bytes:
        self.answer = render_response(response, self.id, self.options)
        self.message = response.choices[0].message if response.choices else None
        return dumps(self.answer)

    def encode(self, request: ChatRequest | None, model: str) -> ResponsesEncoder:
        self.encoder = ResponsesEncoder(self.id, model, self.options)
        return self.encoder

    def conversation(self, answer: AssistantMessage | None) -> list[dict[str, Any]]:
        """What ``previous_response_id`` continues: the messages the model saw (after the
        input guard), without the instructions, then the answer."""
        call = self.call
        assert call is not None and call.request is not None
        messages = list(call.request.messages)
        if self.options.instructions is not None and messages:
            messages = messages[1:]
        if answer is not None:
            messages.append(answer)
        return [m.model_dump(mode="json", exclude_none=True) for m in messages]

    async def save(self, answer: dict[str, Any], message: AssistantMessage | None) -> None:
        assert self.call is not None
        try:
            await self.store.put(owner_of(self.call), answer, self.conversation(message))
        except Exception:  # the client still gets the answer it paid for
            log.exception("could not store response %s (%s)", self.id, self.call.request_id)

    def streamed_message(self) -> AssistantMessage:
        """The answer an encoder has streamed, as an assistant message."""
        assert self.encoder is not None
        text, calls = "", []
        for item in self.encoder.items:
            data = item.item()
            if data["type"] == "message":
                text += data["content"][0]["text"]
            else:
                calls.append(ToolCall(
                    id=data["call_id"],
                    function=FunctionCall(name=data["name"], arguments=data["arguments"]),
                ))
        return AssistantMessage(content=text or None, tool_calls=calls or None)

    async def storing(
        self, items: AsyncGenerator[ChatChunk | APIError | bytes, None]
    ) -> AsyncGenerator[ChatChunk | APIError | bytes, None]:
        """The relay's items; the completed response is stored before its last event."""
        async with aclosing(items) as relay:
            async for item in relay:
                if (
                    isinstance(item, ChatChunk)
                    and item.usage is not None
                    and not item.choices
                    and self.encoder is not None
                ):
                    await self.save(self.encoder.completed(item.usage), self.streamed_message())
                yield item


async def create_response(gateway: Gateway, request: Request, store: ResponseStore) -> Response:
    """``POST /v1/responses``."""
    exchange = ResponsesExchange(store, gateway.config.gateway.max_messages)
    response = await gateway.handle(request, exchange.protocol, ENDPOINT)
    if not exchange.options.store or response.status_code != 200:
        return response
    if isinstance(response, EventStream):
        response.items = exchange.storing(response.items)
    elif exchange.answer is not None:
        await exchange.save(exchange.answer, exchange.message)
    return response


async def _owner(gateway: Gateway, request: Request, endpoint: str) -> tuple[Call, str]:
    call = Call(protocol="openai", endpoint=endpoint)
    await gateway.authenticate(call, request.headers)
    return call, owner_of(call)


async def get_response(
    gateway: Gateway, request: Request, store: ResponseStore, response_id: str
) -> Response:
    """``GET /v1/responses/{id}``: a response its key stored (not a ledger row)."""
    call = Call(protocol="openai", endpoint=ENDPOINT)
    try:
        call, owner = await _owner(gateway, request, ENDPOINT)
        stored = await store.get(owner, response_id)
        if stored is None:
            raise _not_found(response_id)
    except Exception as exc:
        return error_response(call, exc, openai.PROTOCOL)
    return Response(json.dumps(stored.response), media_type=JSON, headers=call.headers)


async def delete_response(
    gateway: Gateway, request: Request, store: ResponseStore, response_id: str
) -> Response:
    """``DELETE /v1/responses/{id}``."""
    call = Call(protocol="openai", endpoint=ENDPOINT)
    try:
        call, owner = await _owner(gateway, request, ENDPOINT)
        if not await store.delete(owner, response_id):
            raise _not_found(response_id)
    except Exception as exc:
        return error_response(call, exc, openai.PROTOCOL)
    body = {"id": response_id, "object": "response", "deleted": True}
    return Response(json.dumps(body), media_type=JSON, headers=call.headers)
