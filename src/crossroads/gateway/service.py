"""The gateway's request pipeline: one :meth:`Gateway.handle` per call.

authenticate → read and parse (the client's protocol) → allow-list → route → reserve
budget and rate limits → input guard → call with fallback → output guard → settle →
ledger (committed before the client gets its last byte) → metrics. The routes in
``app.py`` only hand requests over; the client protocol is a
:class:`~.protocol.ClientProtocol` value, so nothing here depends on which one it is.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio
from fastapi import Request
from fastapi.responses import Response

from .. import telemetry
from ..config import Config
from ..errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    CrossroadsError,
    PermissionDeniedError,
    UnknownModelError,
)
from ..guard.stream import guarded_stream
from ..routing import REQUEST_ID, OpenStream, Router, Target, close_stream
from ..store import Database, open_database
from ..types import ChatChunk, ChatRequest, ChatResponse, StreamOptions, Usage
from . import json_log, openai, tracing
from .audit_trail import AuditTrail
from .billing import Billing, cut_charge, cut_stream_usage, prompt_bound
from .call import Call, ClientGoneError, Reservation, new_request_id
from .costing import Price, price_of, reserve_usd
from .error_labels import error_label
from .exposure import Exposure
from .http import JSON, EventStream, error_response, read_body, until_disconnect
from .inputs import check_chat_names, check_name, load_body
from .keys import KeyRecord, KeyStore, is_master
from .ledger import Ledger, LedgerUnavailableError, UsageRecord, spent_by_key
from .limits import Limiter, make_limiter
from .metrics import Metrics
from .metrics_access import MetricsAccess
from .passthrough import relayable, stream_as_sent
from .protocol import ClientProtocol, ProtocolName
from .sanitize import UpstreamSecrets
from .shadowing import NO_SHADOW, ShadowHook
from .sizing import output_cap
from .startup import master_key

if TYPE_CHECKING:
    from ..guard import Guardrails
    from .openai.embeddings import EmbeddingsRequest

__all__ = ["Call", "ClientGoneError", "Gateway", "new_request_id"]

log = logging.getLogger("crossroads.gateway")


@dataclass
class Gateway:
    """Everything one gateway process holds: routes, keys, limits, ledger, metrics."""

    config: Config
    db: Database
    router: Router
    keys: KeyStore
    limiter: Limiter
    ledger: Ledger
    metrics: Metrics
    guardrails: Guardrails | None
    master_key: str | None
    audit: AuditTrail
    #: The model names served (``gateway.serve_unconfigured``) and labelled in metrics.
    exposure: Exposure
    #: Upstream credentials and hosts, masked in error messages to clients.
    upstream_secrets: UpstreamSecrets
    billing: Billing
    shadow: ShadowHook = NO_SHADOW  # ``shadow:`` rules (set by app.py)

    @classmethod
    def create(cls, config: Config) -> Gateway:
        settings = config.gateway
        telemetry.configure(config.telemetry)  # off unless configured: imports nothing
        db = open_database(config=config)
        master = master_key(settings)
        router = Router(config)
        guardrails = None
        if config.guardrails.model_dump(exclude_defaults=True):
            from ..guard import Guardrails

            async def judge(request: ChatRequest) -> ChatResponse:
                # Model-graded checks call their judge through the gateway's own routes.
                response, _, _ = await router.complete(request)
                return response

            # Clients write their own system prompts: every string they send is checked.
            guardrails = Guardrails.from_config(config.guardrails, judge=judge, untrusted=True)
            if not guardrails.enabled:
                guardrails = None
        audit = AuditTrail()
        exposure = Exposure.from_config(config)
        return cls(
            config=config,
            db=db,
            router=router,
            keys=KeyStore(db),
            limiter=make_limiter(settings, spent_by_key(db)),
            ledger=Ledger(db, on_commit=audit.append),
            metrics=Metrics(exposure, MetricsAccess.from_settings(settings, master)),
            guardrails=guardrails,
            master_key=master,
            audit=audit,
            exposure=exposure,
            upstream_secrets=UpstreamSecrets.from_config(config),
            billing=Billing(settings),
        )

    async def aclose(self) -> None:
        """Flush the ledger, then let go of upstream connections and stores."""
        await self.ledger.aclose()
        if self.guardrails is not None:
            await self.guardrails.aclose()
        await self.limiter.aclose()
        await self.router.aclose()
        self.db.dispose()

    # -- one call, start to end --------------------------------------------------------

    async def handle(self, request: Request, protocol: ClientProtocol, endpoint: str) -> Response:
        """A chat call in ``protocol``: authenticate → read and parse → admit → call
        upstream → settle and record. A whole answer is settled and recorded before it is
        returned; a stream is, by its relay, before its last event. Any failure is the
        protocol's error response, recorded."""
        call = Call(protocol=protocol.name, endpoint=endpoint)
        tracing.start(call, request.headers)
        try:
            await self.authenticate(call, request.headers)
            body = await read_body(request, self.config.gateway.max_request_bytes)
            await self._admit(call, await self._parse(call, body, protocol))
            wait = self.billing.wait_for(call)  # a budgeted key is charged even if it hangs up
            if call.stream:
                if relayable(self, call, protocol):  # as the upstream sent it
                    return await stream_as_sent(self, call, request, protocol, wait)
                opened = await until_disconnect(request, self._open_stream(call), wait)
                return EventStream(
                    call.headers,
                    self._relay(call, opened),
                    protocol.stream_encoder(call.request, call.model),
                    partial(self._abandon, call, opened),
                    wait,
                )
            response = await until_disconnect(request, self._complete(call), wait)
        except Exception as exc:
            return await self._failed(call, exc, protocol)
        return Response(protocol.render_response(response), media_type=JSON, headers=call.headers)

    async def handle_embeddings(self, request: Request) -> Response:
        """``POST /v1/embeddings`` (OpenAI protocol), from authentication to ledger row."""
        call = Call(protocol="openai", endpoint="/v1/embeddings")
        try:
            await self.authenticate(call, request.headers)
            body = await read_body(request, self.config.gateway.max_request_bytes)
            parsed = openai.parse_embeddings_request(
                await self._load(call, body, "openai", min_items=openai.MAX_EMBEDDING_INPUTS)
            )
            check_name(parsed.model, "model", "the model name")
            result = await until_disconnect(request, self._embed(call, parsed))
        except Exception as exc:
            return await self._failed(call, exc, openai.PROTOCOL)
        return Response(json.dumps(result), media_type=JSON, headers=call.headers)

    async def handle_models(self, request: Request) -> Response:
        """``GET /v1/models``: the models the caller's key may use (not recorded)."""
        call = Call(protocol="openai", endpoint="/v1/models")
        try:
            await self.authenticate(call, request.headers)
            body = openai.models_list(self._model_names(call.key))
        except Exception as exc:
            return error_response(call, exc, openai.PROTOCOL)
        return Response(json.dumps(body), media_type=JSON, headers=call.headers)

    async def _failed(self, call: Call, exc: Exception, protocol: ClientProtocol) -> Response:
        """The protocol's error response, once the failed request is recorded."""
        failure = error_response(call, self.upstream_secrets.clean(exc), protocol)
        try:
            await self._record_failure(call, exc, failure.status_code)
        except Exception:  # the client still gets its own error, not a bare 500
            log.exception("could not record failed request %s", call.request_id)
        tracing.end(call, failure.status_code, call.spent or Usage(), exc, None)  # 401s too
        return failure

    def _model_names(self, key: KeyRecord | None) -> list[tuple[str, str]]:
        names: list[tuple[str, str]] = [(r, "crossroads-route") for r in self.router.route_names()]
        names += [(e.name, e.backend) for e in self.config.models]
        names += self.exposure.extra_listed()
        unique: dict[str, str] = {}
        for n, o in names:
            unique.setdefault(n, o)  # the first owner of each name
        return [(n, o) for n, o in unique.items() if key is None or key.allows(n)]

    # -- the steps -----------------------------------------------------------------------

    async def authenticate(self, call: Call, headers: Mapping[str, str]) -> None:
        """``Authorization: Bearer KEY`` or Anthropic's ``x-api-key: KEY``."""
        raw = headers.get("x-api-key") or ""
        bearer = headers.get("authorization") or ""
        if not raw and bearer[:7].lower() == "bearer ":
            raw = bearer[7:].strip()
        if not raw:
            raise AuthenticationError(
                "No API key. Send `Authorization: Bearer KEY` (or `x-api-key: KEY`); create "
                "a key with `crossroads keys create --name NAME`.",
                code="missing_api_key",
            )
        if is_master(raw, self.master_key):
            call.admin = True
            return
        record = await self.keys.authenticate(raw)
        if record is None:
            raise AuthenticationError(
                "Invalid API key. Check the key, or create one with "
                "`crossroads keys create --name NAME`.",
                code="invalid_api_key",
            )
        now = dt.datetime.now(dt.UTC)
        if not record.active(now):
            why = "revoked" if record.revoked_at is not None else "expired"
            raise AuthenticationError(
                f"The API key {record.prefix}… ({record.name}) has been {why}; "
                "create a new one with `crossroads keys create`.",
                code="invalid_api_key",
            )
        call.key = record

    async def _load(
        self, call: Call, body: bytes, style: ProtocolName, *, min_items: int = 0
    ) -> dict[str, Any]:
        """The body as JSON within the limits (``gateway.max_json_depth``,
        ``gateway.max_messages``); first, without parsing, the key's limits that refuse
        any request (an RPM window that is full, a budget that is spent)."""
        if call.key is not None:
            await self.limiter.precheck(call.key)
        settings = self.config.gateway
        return load_body(
            body,
            max_depth=settings.max_json_depth,
            max_items=max(settings.max_messages, min_items),
            style=style,
        )

    async def _parse(self, call: Call, body: bytes, protocol: ClientProtocol) -> ChatRequest:
        """The canonical request, its names (``model``, ``user``) fit for labels and rows."""
        parsed = protocol.parse_request(await self._load(call, body, protocol.name))
        check_chat_names(parsed, protocol.name)
        return parsed if protocol.prepare is None else await protocol.prepare(call, parsed)

    def require_admin(self, call: Call) -> None:
        if not call.admin:
            raise PermissionDeniedError(
                "This endpoint needs the gateway's master key (gateway.master_key).",
                code="admin_only",
            )

    async def _admit(self, call: Call, request: ChatRequest) -> None:
        """Allow-list, route, budget and rate-limit reservation, input guard."""
        call.request, call.model, call.stream = request, request.model, bool(request.stream)
        REQUEST_ID.set(call.request_id)  # named in the router's log lines
        key = call.key
        _check_allowed(key, request.model)
        self.exposure.check(request.model, key.allows if key else None)  # → 404
        try:
            targets = self.router.plan(request.model).targets
        except UnknownModelError as exc:  # 404, suggesting only what the key may use
            raise _unknown_for(key, exc) from None
        request, max_tokens = output_cap(request, targets, self.config.gateway.default_max_tokens)
        call.request = request  # the upstream is held to the max_tokens reserved
        prompt_tokens = prompt_bound(request, targets)  # every byte the upstream receives
        # Limits first: a key over its rate or budget must not cost model-graded checks.
        await self._reserve(call, targets, prompt_tokens, max_tokens)
        if self.guardrails is not None:
            call.guard = self.guardrails.for_request(
                key=key.name if key else None, model=request.model
            )
            call.guard.request_id = call.request_id
            call.request = await call.guard.check_input(request)

    async def _reserve(
        self, call: Call, targets: list[Target], prompt_tokens: int, max_tokens: int
    ) -> None:
        """Hold the worst-case cost and the tokens against the key's budget and limits
        (an unpriced model is refused unless configured to be flagged)."""
        settings = self.config.gateway
        key = call.key
        worst = reserve_usd(targets, prompt_tokens, max_tokens)
        call.reservation = Reservation(prompt_tokens, max_tokens, worst, targets)
        if worst is None and (settings.unpriced_models == "block" or _budgeted(key)):
            raise PermissionDeniedError(
                f"{call.model!r} has no known price, so its cost cannot be recorded"
                + (" or held against the key's budget" if _budgeted(key) else "")
                + ". Add `prices: {input: …, output: …}` (US$ per 1M tokens) or "
                "`gpu_hour_usd:` to its entry in crossroads.yaml, or set "
                "`gateway.unpriced_models: flag`.",
                code="unpriced_model",
            )
        if key is not None:
            call.admission = await self.limiter.admit(
                key, tokens=prompt_tokens + max_tokens, max_cost_usd=worst or 0.0
            )

    async def _embed(self, call: Call, request: EmbeddingsRequest) -> dict[str, Any]:
        """``/v1/embeddings``: the same allow-list, budget, limits, ledger row and metrics
        as a chat request. The local model is free (and self-hosted); an upstream must be
        OpenAI-compatible."""
        from ..backends.openai import OpenAIBackend
        from .embeddings import is_local_model, local_embeddings_response, openai_embeddings

        call.model = request.model
        _check_allowed(call.key, request.model)
        self.exposure.check(request.model, call.key.allows if call.key else None)  # → 404
        texts = request.texts()
        estimate = sum(len(text) // 4 + 1 for text in texts)
        if is_local_model(request.model):
            await self._reserve(call, [], estimate, 0)  # free, but rate limits still count
            result = await local_embeddings_response(request)
        else:
            try:
                target = self.router.order(request.model)[0]
            except UnknownModelError as exc:  # 404, suggesting only what the key may use
                raise _unknown_for(call.key, exc) from None
            backend = target.backend
            if not isinstance(backend, OpenAIBackend):
                raise BadRequestError(
                    f"{request.model!r} is served by the {backend.name} backend, which has "
                    "no embeddings endpoint here. Use an OpenAI-compatible deployment or "
                    "local/all-minilm-l6-v2.",
                    code="model_not_supported",
                )
            await self._reserve(call, [target], estimate, 0)
            result = await openai_embeddings(backend, request)
            call.target = target
        tokens = int((result.get("usage") or {}).get("prompt_tokens") or estimate)
        call.spent = Usage(prompt_tokens=tokens, total_tokens=tokens)
        await self.finish(call, 200, call.spent)
        return result

    async def _complete(self, call: Call) -> ChatResponse:
        assert call.request is not None
        response, target, attempts = await self.router.complete(call.request)
        call.target, call.attempts = target, attempts
        call.spent = response.usage
        response.model = call.model
        if call.guard is not None:
            response = await call.guard.check_output(response)
        await self.finish(call, 200, response.usage, response=response)
        return response

    async def _open_stream(self, call: Call) -> OpenStream:
        assert call.request is not None
        upstream = call.request.model_copy(
            update={"stream": True, "stream_options": StreamOptions(include_usage=True)}
        )
        opened = await self.router.open_stream(upstream)
        call.target, call.attempts = opened.target, opened.attempts
        return opened

    async def _relay(
        self, call: Call, opened: OpenStream
    ) -> AsyncGenerator[ChatChunk | APIError, None]:
        """The stream's chunks as they arrive (through the output guard), then its usage;
        an upstream failure ends it with the error (never a fake end). The ledger row is
        committed before the last item is handed out."""
        tally = _StreamTally()
        upstream = _metered(call, opened, tally)
        stream = guarded_stream(upstream, call.guard.stream_filter() if call.guard else None)
        stream = self.shadow.tap(call, stream)  # a sampled stream's text, for shadow rules
        status, error = 200, None
        try:
            async for chunk in stream:
                yield chunk
        except APIError as exc:
            status, error = exc.status_code or 502, self.upstream_secrets.clean(exc)
        except BaseException as exc:  # client gone (cancelled) or a bug
            status = 499 if _is_cancel(exc) else 500
            await close_stream(stream)
            await close_stream(upstream)
            opened.end(tally.counted)
            final = cut_stream_usage(call, tally.usage, tally.counted)
            await self._finish_shielded(call, status, final, exc)
            raise
        final = _streamed(tally.usage, call, tally.counted)
        opened.end(final.total_tokens)
        if error is not None:
            await self.finish(call, status, final, error=error)
            yield error
            return
        await self.finish(call, 200, final)
        yield ChatChunk(id=opened.first.id, model=call.model, usage=final)

    async def _abandon(self, call: Call, opened: OpenStream) -> None:
        """The client left before or during the relay: close upstream, release, record once."""
        with anyio.CancelScope(shield=True):
            await close_stream(opened.rest)
            opened.end()
            if not call.recorded:
                gone = ClientGoneError("The client closed the connection during the stream.")
                await self.finish(call, 499, cut_stream_usage(call, None, 0), error=gone)

    async def _finish_shielded(
        self, call: Call, status: int, usage: Usage, exc: BaseException
    ) -> None:
        with anyio.CancelScope(shield=True):
            await self.finish(call, status, usage, error=exc)

    async def _record_failure(self, call: Call, exc: BaseException, status: int) -> None:
        """Record a request that ended in an error (401s: only counted), with what it spent."""
        if call.recorded:
            return  # its row and metrics are written (the error came after)
        if status == 401:
            self.metrics.count(model=call.model or "-", key=call.key_label, status=status)
            json_log.log_request(call, status, error=type(exc).__name__)
            return
        if isinstance(exc, ClientGoneError) and call.spent is None:
            usage, price = cut_charge(call)  # the upstream had the prompt: never free
            await self.finish(call, status, usage, error=exc, price=price)
            return
        await self.finish(call, status, call.spent or Usage(), error=exc)

    async def finish(
        self,
        call: Call,
        status: int,
        usage: Usage,
        *,
        error: BaseException | None = None,
        response: ChatResponse | None = None,
        price: Price | None = None,
    ) -> None:
        """Settle the reservation, commit the ledger row, observe metrics (once).
        ``price`` is the cost when no deployment answered (a request cut before it did)."""
        if call.recorded:
            return
        call.recorded = True
        if call.gone and status < 400:  # answered after its client left
            status = 499
            error = ClientGoneError("The client closed the connection before the answer.")
        latency = time.perf_counter() - call.started
        target = call.target
        cost: float | None = 0.0  # refused before any upstream call: nothing spent
        flag = None
        if target is not None:
            price = price_of(target, usage)
        if price is not None:
            cost, flag = price.usd, price.flag
        cancelled: asyncio.CancelledError | None = None
        if call.admission is not None:
            try:
                await self.limiter.settle(
                    call.admission, tokens=usage.total_tokens, cost_usd=cost or 0.0
                )
            except CrossroadsError as exc:  # the ledger still records the spend
                log.warning("could not settle %s: %s", call.request_id, exc.message)
            except asyncio.CancelledError as exc:  # the client left: the row still goes in
                cancelled = exc
        settings = self.config.gateway
        record = UsageRecord(
            request_id=call.request_id,
            created_at=call.created_at,
            key_id=call.key.id if call.key else None,
            key_name=call.key.name if call.key else ("master" if call.admin else None),
            model=call.model or "-",
            deployment=target.name if target else None,
            backend=target.deployment.backend if target else None,
            protocol=call.protocol,
            endpoint=call.endpoint,
            stream=call.stream,
            status=status,
            error_class=type(error).__name__ if error is not None else None,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cached_tokens=usage.cached_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            cost_usd=cost,
            price_flag=flag,
            latency_s=latency,
            ttft_s=call.ttft_s,
            guard_decisions=[d.as_dict() for d in call.guard.decisions] if call.guard else [],
            request_body=(
                call.request.model_dump(mode="json", exclude_none=True)
                if settings.store_bodies and call.request is not None
                else None
            ),
            response_body=(
                response.model_dump(mode="json", exclude_none=True)
                if settings.store_bodies and response is not None
                else None
            ),
        )
        self.metrics.observe(
            model=call.model or "-",
            key=call.key_label,
            status=status,
            error=error_label(error),
            latency_s=latency,
            ttft_s=call.ttft_s,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cost_usd=cost,
            attempts=call.attempts,
        )
        json_log.log_request(call, status, cost_usd=cost, error=record.error_class)
        tracing.end(call, status, usage, error, response)
        self.audit.expect(call, record)
        try:
            await self.ledger.record(record)
        except LedgerUnavailableError:
            raise  # the row is kept and written later: its audit events must wait with it
        except BaseException:
            self.audit.forget(record.request_id)
            raise
        self.audit.forget(record.request_id)
        self.shadow.offer(call, record, response)  # answered: a copy for shadow candidates
        if cancelled is not None:
            raise cancelled


def _check_allowed(key: KeyRecord | None, model: str) -> None:
    if key is not None and not key.allows(model):
        allowed = ", ".join(key.models)
        raise PermissionDeniedError(
            f"The key {key.name!r} may not use {model!r}; it allows: {allowed}.",
            code="model_not_allowed",
        )


def _unknown_for(key: KeyRecord | None, exc: UnknownModelError) -> UnknownModelError:
    """``exc`` with only the suggestions ``key`` may use (the master key: all)."""
    if key is None:
        return exc
    return UnknownModelError(exc.name, [s for s in exc.suggestions if key.allows(s)])


def _budgeted(key: KeyRecord | None) -> bool:
    return key is not None and key.budget_usd is not None


def _streamed(usage: Usage | None, call: Call, counted: int) -> Usage:
    """A stream's usage: the upstream's, else one token per content delta with the
    prompt's upper bound (as a cut stream)."""
    return cut_stream_usage(call, usage, counted)


def _is_cancel(exc: BaseException) -> bool:
    return isinstance(exc, asyncio.CancelledError | ClientGoneError | GeneratorExit)


@dataclass(slots=True)
class _StreamTally:
    """What a stream's upstream reported (usage) and sent (content deltas)."""

    usage: Usage | None = None
    counted: int = 0


async def _metered(
    call: Call, opened: OpenStream, tally: _StreamTally
) -> AsyncGenerator[ChatChunk, None]:
    """The upstream's chunks counted into ``tally`` (TTFT on ``call``), usage taken off."""
    rest = opened.rest
    chunk: ChatChunk | None = opened.first
    try:
        while chunk is not None:
            if chunk.usage is not None:
                tally.usage = chunk.usage
                chunk.usage = None
            for choice in chunk.choices:
                delta = choice.delta
                if delta.content or delta.tool_calls or delta.refusal:
                    tally.counted += 1
                    if call.ttft_s is None:
                        call.ttft_s = time.perf_counter() - call.started
            if chunk.choices:
                chunk.model = call.model
                yield chunk
            chunk = await anext(rest, None)
    finally:
        await close_stream(rest)
