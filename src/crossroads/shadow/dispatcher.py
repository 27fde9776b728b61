"""The shadow dispatcher: sampled production exchanges, copied to candidate models in
the background, scored and stored as eval-run items.

The gateway hands over an exchange once its answer is complete and its ledger row is
committed (:meth:`Dispatcher.select` then :meth:`Dispatcher.enqueue`, a hash and a
``put_nowait``): nothing here is awaited by a production request, a full queue drops the
exchange (counted in ``crossroads_shadow_dropped``) and every failure of a candidate is
an error item, never an exception for the client. Each rule has its own bounded queue
and ``max_concurrency`` worker tasks; :meth:`Dispatcher.aclose` cancels them and marks
the day runs complete.

What the gateway provides is an :class:`Upstream`: the candidate's guard policies, its
worst-case price, the call itself and the ledger row of its spend.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from ..config.shadow import ShadowRule
from ..errors import CrossroadsError
from ..evals.scoring import Answer, Scorer, ScoringContext
from ..evals.store import ResultRow
from ..store import Database
from ..types import ChatRequest, text_of
from .metrics import ShadowMetrics
from .runs import DayRun, PendingItem, ShadowRuns, shadow_spent
from .sampling import sampled
from .scoring import Scored, build_scorers, score_answer

__all__ = ["CandidateAnswer", "Dispatcher", "Exchange", "RuleState", "Upstream", "prompt_text"]

log = logging.getLogger("crossroads.shadow")

NOT_STORED = "(not stored: gateway.store_bodies is off)"
#: Stored items are written in batches: every ``FLUSH_INTERVAL_S``, or at once when
#: ``FLUSH_ITEMS`` are waiting (one transaction, off the event loop).
FLUSH_INTERVAL_S = 0.2
FLUSH_ITEMS = 100


@dataclass(frozen=True, slots=True)
class Exchange:
    """One production request and the answer its client got."""

    request_id: str
    created_at: datetime
    #: The model or route name the client asked for.
    model: str
    key_name: str | None
    #: The request as the production model received it (after its own guard).
    request: ChatRequest
    #: The production answer's text (a stream's assembled text).
    answer: str
    stream: bool = False
    latency_s: float | None = None
    ttft_s: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None


@dataclass(frozen=True, slots=True)
class CandidateAnswer:
    """What a candidate answered, and what it cost."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    latency_s: float = 0.0
    finish_reason: str | None = None
    #: The deployment that answered, its backend, and why its cost is what it is.
    deployment: str | None = None
    backend: str | None = None
    price_flag: str | None = None


class Upstream(Protocol):
    """What the gateway lends the dispatcher."""

    async def guard(self, request: ChatRequest, key: str | None, candidate: str) -> ChatRequest:
        """``request`` through ``candidate``'s input policies (raises when they block)."""

    def worst_usd(self, candidate: str, request: ChatRequest) -> float | None:
        """The most ``request`` can cost on ``candidate`` (None: unpriced)."""

    async def complete(self, candidate: str, request: ChatRequest) -> CandidateAnswer:
        """One answer of ``candidate`` (raises on failure)."""

    async def record(
        self,
        rule: ShadowRule,
        exchange: Exchange,
        candidate: str,
        index: int,
        answer: CandidateAnswer | None,
        error: BaseException | None,
    ) -> None:
        """The ledger row of one candidate call (key name ``shadow:RULE``)."""


def prompt_text(request: ChatRequest) -> str:
    """The conversation as one text: a lone user message as is, else ``role: text``
    paragraphs."""
    messages = request.messages
    if len(messages) == 1 and messages[0].role == "user":
        return text_of(messages[0].content)
    return "\n\n".join(f"{m.role}: {text_of(m.content)}" for m in messages)


@dataclass(eq=False)
class RuleState:
    """One rule at run time: its queue, workers, spend and day run."""

    rule: ShadowRule
    scorers: list[Scorer]
    queue: asyncio.Queue[Exchange] | None = None
    workers: list[asyncio.Task[None]] = field(default_factory=list)
    spent: float = 0.0
    #: Worst-case cost of the candidate calls in flight.
    reserved: float = 0.0
    paused: bool = False
    run: DayRun | None = None
    lock: asyncio.Lock | None = None
    #: Exchanges taken from the queue and not yet stored.
    busy: int = 0

    def matches(self, model: str) -> bool:
        return fnmatch.fnmatchcase(model, self.rule.match)


class Dispatcher:
    """Every shadow rule of one gateway process."""

    def __init__(
        self,
        rules: Sequence[ShadowRule],
        upstream: Upstream,
        db: Database,
        *,
        store_bodies: bool,
        metrics: ShadowMetrics | None = None,
        scoring: ScoringContext | None = None,
        manifest: dict[str, Any] | None = None,
    ) -> None:
        self.rules = [RuleState(r, build_scorers(r.scorers, r.name)) for r in rules]
        self.upstream = upstream
        self.db = db
        self.runs = ShadowRuns(db)
        self.store_bodies = store_bodies
        self.metrics = metrics or ShadowMetrics()
        self.scoring = scoring or ScoringContext()
        self.manifest = manifest or {}
        self._by_model: dict[str, tuple[RuleState, ...]] = {}
        self._closed = False
        self._pending: list[PendingItem] = []
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        for state in self.rules:
            state.spent = shadow_spent(db, state.rule.name)
            self.metrics.paused.labels(state.rule.name).set(0)
            self._check_budget(state, 0.0)

    # -- the gateway's side: a hash and a put_nowait ---------------------------------
    def select(self, request_id: str, model: str) -> tuple[RuleState, ...]:
        """The rules that copy this request (matching, sampled, not paused)."""
        states = self._by_model.get(model)
        if states is None:
            states = self._by_model[model] = tuple(s for s in self.rules if s.matches(model))
        if not states:
            return states
        return tuple(
            s for s in states if not s.paused and sampled(request_id, s.rule.seed, s.rule.sample)
        )

    def enqueue(self, states: Sequence[RuleState], exchange: Exchange) -> None:
        """Hand ``exchange`` to each rule's workers; never waits (a full queue drops it)."""
        if self._closed:
            return
        for state in states:
            if state.queue is None:
                self._start(state)
            assert state.queue is not None
            try:
                state.queue.put_nowait(exchange)
            except asyncio.QueueFull:
                self.metrics.dropped.labels(state.rule.name).inc()

    def _start(self, state: RuleState) -> None:
        if self._writer is None:
            self._wake = asyncio.Event()  # this loop's
            self._writer = asyncio.create_task(self._write_loop(), name="shadow:writer")
        state.queue = asyncio.Queue(maxsize=state.rule.max_queue)
        state.lock = asyncio.Lock()
        state.workers = [
            asyncio.create_task(self._worker(state), name=f"shadow:{state.rule.name}:{i}")
            for i in range(state.rule.max_concurrency)
        ]

    async def idle(self) -> None:
        """Wait until every queued exchange is processed and written."""
        for state in self.rules:
            if state.queue is not None:
                await state.queue.join()
        await self._flush()

    async def _flush(self) -> None:
        batch, self._pending = self._pending, []
        if batch:
            await asyncio.to_thread(self.runs.write, batch)

    async def _write_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), FLUSH_INTERVAL_S)
            self._wake.clear()
            try:
                await self._flush()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("shadow: could not store sampled requests")

    async def aclose(self) -> None:
        """Cancel the workers (exchanges still queued or in flight are dropped), write
        what they finished and mark the day runs complete."""
        self._closed = True
        tasks = [t for s in self.rules for t in s.workers]
        if self._writer is not None:
            tasks.append(self._writer)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        try:
            await self._flush()
        except Exception:
            log.exception("shadow: could not store sampled requests")
        for state in self.rules:
            if state.run is not None:
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(self.runs.close, state.run)

    # -- the background --------------------------------------------------------------
    async def _worker(self, state: RuleState) -> None:
        assert state.queue is not None
        while True:
            exchange = await state.queue.get()
            try:
                await self._process(state, exchange)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception(
                    "shadow rule %r: could not process request %s",
                    state.rule.name,
                    exchange.request_id,
                )
            finally:
                state.queue.task_done()

    def _check_budget(self, state: RuleState, worst: float) -> bool:
        """Whether a call of worst-case cost ``worst`` fits the rule's budget; pauses the
        rule (log line, ``crossroads_shadow_paused``) when it does not."""
        budget = state.rule.budget_usd
        if budget is None:
            return True
        if state.spent + state.reserved + worst <= budget and state.spent < budget:
            return True
        if not state.paused:
            state.paused = True
            self.metrics.paused.labels(state.rule.name).set(1)
            log.warning(
                "shadow rule %r paused: its candidates have spent $%.6f of budget_usd $%g "
                "(ledger key shadow:%s); raise budget_usd to resume",
                state.rule.name,
                state.spent,
                budget,
                state.rule.name,
            )
        return False

    async def _day_run(self, state: RuleState) -> DayRun:
        assert state.lock is not None
        today = datetime.now(UTC).date()
        async with state.lock:
            if state.run is None or state.run.day != today:
                state.run = await asyncio.to_thread(
                    self.runs.open_day, state.rule, today, self.manifest
                )
            return state.run

    async def _process(self, state: RuleState, exchange: Exchange) -> None:
        rows: list[ResultRow] = []
        sent: list[ChatRequest | None] = []  # what each candidate received (None: refused)
        for index, candidate in enumerate(state.rule.candidates):
            if state.paused:
                break
            answer, error, request = await self._one(state, exchange, candidate, index)
            if answer is None and error is None:
                break  # the budget paused the rule before this call
            sent.append(request)
            rows.append(await self._row(state, exchange, candidate, answer, error, request))
        if not rows:
            return
        item: dict[str, Any] = {
            "item_id": exchange.request_id,
            "tags": [exchange.model, *(["stream"] if exchange.stream else [])],
            "prompt": (
                await self._stored_prompt(state, exchange, sent)
                if self.store_bodies
                else NOT_STORED
            ),
            "expected": exchange.answer if self.store_bodies else None,
        }
        rows.insert(0, self._reference_row(state, exchange))
        run = await self._day_run(state)
        for row in rows:
            row["run_id"] = run.run_id
            if not self.store_bodies:
                row["output"] = ""
        models = None
        production = _production_name(state, exchange)
        if production not in run.models:  # the production model joins the run, first
            run.models = models = [production, *run.models]
        item.update(run_id=run.run_id, position=run.next_position)
        run.next_position += 1
        self._pending.append(PendingItem(run.run_id, item, rows, models))
        if len(self._pending) >= FLUSH_ITEMS:
            self._wake.set()

    async def _stored_prompt(
        self, state: RuleState, exchange: Exchange, sent: list[ChatRequest | None]
    ) -> str:
        """The prompt as the run keeps it: with every candidate's redactions (what the
        first received, through the others' policies), withheld if one refused it."""
        candidates = state.rule.candidates[: len(sent)]
        if any(r is None for r in sent):
            blocked = [c for c, r in zip(candidates, sent, strict=True) if r is None]
            return f"(withheld: refused by the guard policy of {', '.join(blocked)})"
        stored = sent[0]
        assert stored is not None
        for candidate in candidates[1:]:
            try:
                stored = await self.upstream.guard(stored, exchange.key_name, candidate)
            except CrossroadsError:
                return f"(withheld: refused by the guard policy of {candidate})"
        return prompt_text(stored)

    async def _one(
        self, state: RuleState, exchange: Exchange, candidate: str, index: int
    ) -> tuple[CandidateAnswer | None, BaseException | None, ChatRequest | None]:
        """One candidate call: its answer or its error, and the request it was sent
        (None when its guard refused it)."""
        rule = state.rule
        try:
            request = await self.upstream.guard(exchange.request, exchange.key_name, candidate)
        except CrossroadsError as exc:
            self.metrics.calls.labels(rule.name, candidate, "blocked").inc()
            return None, exc, None
        update: dict[str, Any] = {"model": candidate, "stream": False, "stream_options": None}
        if rule.max_tokens is not None and (request.max_tokens or 1 << 30) > rule.max_tokens:
            update["max_tokens"] = rule.max_tokens
        request = request.model_copy(update=update)
        try:
            worst = self.upstream.worst_usd(candidate, request) or 0.0
        except CrossroadsError as exc:  # e.g. the candidate is not served any more
            self.metrics.calls.labels(rule.name, candidate, "error").inc()
            return None, exc, request
        if not self._check_budget(state, worst):
            return None, None, request
        state.reserved += worst
        answer: CandidateAnswer | None = None
        error: BaseException | None = None
        try:
            answer = await self.upstream.complete(candidate, request)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a candidate's failure is an error item, never raised
            error = exc
        finally:
            state.reserved -= worst
        cost = (answer.cost_usd or 0.0) if answer is not None else 0.0
        state.spent += cost
        if cost:
            self.metrics.spend.labels(rule.name).inc(cost)
        self.metrics.calls.labels(rule.name, candidate, "ok" if error is None else "error").inc()
        try:
            await self.upstream.record(rule, exchange, candidate, index, answer, error)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("shadow rule %r: could not record the spend of %s", rule.name, candidate)
        self._check_budget(state, 0.0)
        return answer, error, request

    async def _row(
        self,
        state: RuleState,
        exchange: Exchange,
        candidate: str,
        answer: CandidateAnswer | None,
        error: BaseException | None,
        stored: ChatRequest | None,
    ) -> ResultRow:
        message = None
        if error is not None:
            detail = error.message if isinstance(error, CrossroadsError) else str(error)
            message = f"{type(error).__name__}: {detail}"
        scored_answer = Answer(
            text=answer.text if answer is not None else "",
            model=candidate,
            latency_s=answer.latency_s if answer is not None else None,
            prompt_tokens=answer.prompt_tokens if answer is not None else 0,
            completion_tokens=answer.completion_tokens if answer is not None else 0,
            cost_usd=answer.cost_usd if answer is not None else None,
            finish_reason=answer.finish_reason if answer is not None else None,
            error=message,
        )
        prompt = prompt_text(stored) if stored is not None else ""
        scored = await score_answer(
            state.scorers, scored_answer, exchange.answer, prompt, self.scoring
        )
        return _result_row(scored_answer, scored, exchange.request_id, datetime.now(UTC))

    def _reference_row(self, state: RuleState, exchange: Exchange) -> ResultRow:
        """The production answer: the reference every candidate is scored against."""
        reference = Answer(
            text=exchange.answer,
            model=_production_name(state, exchange),
            latency_s=exchange.latency_s,
            ttft_s=exchange.ttft_s,
            prompt_tokens=exchange.prompt_tokens,
            completion_tokens=exchange.completion_tokens,
            cost_usd=exchange.cost_usd,
        )
        parts = {
            s.name: {"value": 1.0, "passed": True, "detail": "the production answer (reference)"}
            for s in state.scorers
        }
        scored = Scored(1.0, True, False, parts)
        return _result_row(reference, scored, exchange.request_id, exchange.created_at)


def _production_name(state: RuleState, exchange: Exchange) -> str:
    """The production answer's model in the run: the name clients asked for, marked
    when a candidate has the same name."""
    if exchange.model in state.rule.candidates:
        return f"{exchange.model} (production)"
    return exchange.model


def _result_row(answer: Answer, scored: Scored, item_id: str, at: datetime) -> ResultRow:
    latency = answer.latency_s
    return {
        "run_id": "",
        "item_id": item_id,
        "model": answer.model,
        "repeat": 0,
        "output": answer.text,
        "score": scored.value,
        "passed": scored.passed,
        "format_error": scored.format_error,
        "scores": scored.scores,
        "latency_s": latency,
        "ttft_s": answer.ttft_s if answer.ttft_s is not None else latency,
        "tokens_per_s": None,
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": answer.completion_tokens,
        "cost_usd": answer.cost_usd,
        "cached": False,
        "error": answer.error,
        "finish_reason": answer.finish_reason,
        "created_at": at,
    }
