"""The gateway's side of shadow evaluation (``shadow:`` in crossroads.yaml): which
finished exchanges go to the :class:`~crossroads.shadow.Dispatcher`, and what it
borrows from the gateway (the candidate's guard policies, the router, prices, the
ledger).

:meth:`GatewayShadow.offer` runs once a request's ledger row is committed, so the
client's answer is complete: for a whole answer it is the response the client gets, for
a stream the text :meth:`GatewayShadow.tap` assembled from the chunks relayed to the
client. It costs one dictionary lookup for a model no rule matches and a hash per
matching request; the copy, the scoring and the storing happen in the dispatcher's
background tasks. Candidate spend is a ledger row of key name ``shadow:NAME`` (no key
id: never charged to a key's budget or limits).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import TYPE_CHECKING, Any

from ..config import Config
from ..config.shadow import ShadowRule
from ..routing import close_stream
from ..shadow import CandidateAnswer, Dispatcher, Exchange, ShadowMetrics
from ..types import ChatChunk, ChatRequest, ChatResponse
from .billing import prompt_bound
from .call import Call
from .costing import price_of, reserve_usd
from .ledger import UsageRecord

if TYPE_CHECKING:
    from ..client import AsyncClient
    from .service import Gateway

__all__ = ["NO_SHADOW", "GatewayShadow", "ShadowHook", "check_shadow_rules"]

log = logging.getLogger("crossroads.gateway")


class ShadowHook:
    """What the request pipeline calls: nothing to do without shadow rules."""

    def tap(
        self, call: Call, stream: AsyncIterator[ChatChunk]
    ) -> AsyncIterator[ChatChunk]:
        return stream

    def mark(self, call: Call) -> None:
        """For a relayed (pass-through) stream: start ``call.shadow_text`` when sampled."""
        return None

    def offer(self, call: Call, record: UsageRecord, response: ChatResponse | None) -> None:
        return None

    async def aclose(self) -> None:
        return None


NO_SHADOW = ShadowHook()


class GatewayShadow(ShadowHook):
    """The shadow rules of one gateway process."""

    def __init__(self, gateway: Gateway, client: AsyncClient | None = None) -> None:
        from ..evals.scoring import ScoringContext

        config = gateway.config
        self.gateway = gateway
        self.client = client
        self.dispatcher = Dispatcher(
            config.shadow,
            _Upstream(gateway),
            gateway.db,
            store_bodies=config.gateway.store_bodies,
            metrics=ShadowMetrics(gateway.metrics.registry),
            scoring=ScoringContext(client=client),
            manifest={"source": "gateway shadow rules", "config": str(config.path or "")},
        )

    @classmethod
    def install(cls, gateway: Gateway) -> None:
        """Give ``gateway`` its shadow rules (none: it keeps :data:`NO_SHADOW`)."""
        if gateway.config.shadow:
            gateway.shadow = cls(gateway, _judge_client(gateway.config))

    def tap(
        self, call: Call, stream: AsyncIterator[ChatChunk]
    ) -> AsyncIterator[ChatChunk]:
        """``stream`` as relayed, its text kept for the shadow when the request is
        sampled (else ``stream`` itself)."""
        self.mark(call)
        if call.shadow_text is None:
            return stream
        return _assembled(stream, call.shadow_text)

    def mark(self, call: Call) -> None:
        if self.dispatcher.select(call.request_id, call.model):
            call.shadow_text = []

    def offer(self, call: Call, record: UsageRecord, response: ChatResponse | None) -> None:
        """Hand a finished exchange to the rules that sample it (never raises)."""
        if record.status != 200 or call.request is None:
            return
        try:
            if call.stream and call.shadow_text is None:
                return  # not sampled (tap said so)
            states = self.dispatcher.select(call.request_id, call.model)
            if not states:
                return
            if call.shadow_text is not None:
                answer = "".join(call.shadow_text)
            else:
                answer = response.text if response is not None else ""
            if not answer:  # tool calls only: nothing to compare
                return
            exchange = Exchange(
                request_id=call.request_id,
                created_at=call.created_at,
                model=call.model,
                key_name=call.key.name if call.key is not None else None,
                request=call.request,
                answer=answer,
                stream=call.stream,
                latency_s=record.latency_s,
                ttft_s=record.ttft_s,
                prompt_tokens=record.prompt_tokens,
                completion_tokens=record.completion_tokens,
                cost_usd=record.cost_usd,
            )
            self.dispatcher.enqueue(states, exchange)
        except Exception:  # the production answer never pays for a shadow bug
            log.exception("shadow: could not take request %s", call.request_id)

    async def aclose(self) -> None:
        await self.dispatcher.aclose()
        if self.client is not None:
            await self.client.aclose()


async def _assembled(
    stream: AsyncIterator[ChatChunk], parts: list[str]
) -> AsyncGenerator[ChatChunk, None]:
    try:
        async for chunk in stream:
            for choice in chunk.choices:
                if choice.index == 0 and choice.delta.content:
                    parts.append(choice.delta.content)
            yield chunk
    finally:
        await close_stream(stream)


def check_shadow_rules(config: Config) -> list[str]:
    """Every rule's scorers and candidates, before the gateway listens: a bad scorer or
    an unknown candidate is a configuration error naming the rule; a candidate without
    its API key a warning (its calls are error items until the key is set)."""
    from ..errors import ConfigError, MissingKeyError, UnknownModelError
    from ..routing import resolve_all
    from ..shadow.scoring import build_scorers

    warnings: list[str] = []
    for rule in config.shadow:
        build_scorers(rule.scorers, rule.name)
        for candidate in rule.candidates:
            if config.route(candidate) is not None:
                continue
            try:
                resolve_all(candidate, config)
            except MissingKeyError as exc:
                warnings.append(f"shadow rule {rule.name!r}: {exc.message}")
            except UnknownModelError as exc:
                raise ConfigError(
                    f"shadow rule {rule.name!r}: candidate {candidate!r}: {exc.message}"
                ) from None
    return warnings


def _judge_client(config: Config) -> AsyncClient | None:
    """A client for model-graded scorers (``type: judge``), when a rule has one."""
    if not any(s.get("type") == "judge" for r in config.shadow for s in r.scorers):
        return None
    from ..client import AsyncClient

    return AsyncClient(config)


class _Upstream:
    """What the dispatcher borrows from the gateway."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.default_max_tokens = gateway.config.gateway.default_max_tokens

    async def guard(self, request: ChatRequest, key: str | None, candidate: str) -> ChatRequest:
        guardrails = self.gateway.guardrails
        if guardrails is None:
            return request
        return await guardrails.for_request(key=key, model=candidate).check_input(request)

    def _bounded(self, request: ChatRequest) -> ChatRequest:
        if request.max_tokens is not None:
            return request
        return request.model_copy(update={"max_tokens": self.default_max_tokens})

    def worst_usd(self, candidate: str, request: ChatRequest) -> float | None:
        targets = self.gateway.router.plan(candidate).targets
        request = self._bounded(request)
        assert request.max_tokens is not None
        return reserve_usd(targets, prompt_bound(request, targets), request.max_tokens)

    async def complete(self, candidate: str, request: ChatRequest) -> CandidateAnswer:
        started = time.perf_counter()
        response, target, _ = await self.gateway.router.complete(self._bounded(request))
        price = price_of(target, response.usage)
        choice = response.choices[0] if response.choices else None
        return CandidateAnswer(
            text=response.text,
            prompt_tokens=response.usage.prompt_tokens,
            completion_tokens=response.usage.completion_tokens,
            cost_usd=price.usd,
            latency_s=time.perf_counter() - started,
            finish_reason=choice.finish_reason if choice is not None else None,
            deployment=target.name,
            backend=target.deployment.backend,
            price_flag=price.flag,
        )

    async def record(
        self,
        rule: ShadowRule,
        exchange: Exchange,
        candidate: str,
        index: int,
        answer: CandidateAnswer | None,
        error: BaseException | None,
    ) -> None:
        status = 200
        if error is not None:
            status = getattr(error, "status_code", None) or 502
        fields: dict[str, Any] = {}
        if answer is not None:
            fields = {
                "deployment": answer.deployment,
                "backend": answer.backend,
                "prompt_tokens": answer.prompt_tokens,
                "completion_tokens": answer.completion_tokens,
                "cost_usd": answer.cost_usd,
                "price_flag": answer.price_flag,
                "latency_s": answer.latency_s,
            }
        await self.gateway.ledger.record(
            UsageRecord(
                request_id=f"{exchange.request_id}.shadow{index}",
                key_name=rule.suite,
                model=candidate,
                endpoint="shadow",
                status=status,
                error_class=type(error).__name__ if error is not None else None,
                cost_usd=fields.pop("cost_usd", 0.0),
                **fields,
            )
        )


