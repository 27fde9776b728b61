"""The evaluation runner: every (item, model, repeat) once, concurrently, resumably.

* Bounded concurrency overall (``concurrency`` workers) and per model.
* Each call goes through the same :class:`~crossroads.client.AsyncClient` as everything
  else, streamed when the backend can, recording output, tokens, cost, end-to-end
  latency, time to first token and output tokens/s after the first token.
* Retries (429s honouring ``Retry-After``, 5xx, timeouts) and fallbacks are the
  router's, the same as for every other caller (``routing:`` in crossroads.yaml).
* Results are written to the :class:`~crossroads.evals.store.RunStore` as they arrive
  (batched every 100 ms, sooner once 200 are waiting), so a run interrupted by Ctrl-C or
  a crash resumes with ``resume=RUN_ID`` without redoing finished items; nothing but
  counters (and at most ``MAX_PENDING`` unwritten rows) is kept in memory. One write is
  in flight at a time: rows that finish meanwhile go into the next batch, and calls go on
  while it is written (they only wait for the store when ``MAX_PENDING`` rows are
  waiting).
* Identical requests at temperature 0 are served from the response cache unless
  ``use_cache=False``; cached results are marked and left out of latency statistics.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from ..backends.base import Prices
from ..client import AsyncClient
from ..errors import APIError, ConfigError, CrossroadsError
from ..store import Database
from ..streaming import StreamAccumulator
from ..telemetry.calls import close_eval_span, open_eval_span
from ..types import FinishReason, Usage
from .manifest import build_manifest
from .options import RunOptions
from .scoring import Answer, Score, ScoringContext
from .store import ResultRow, RunStatus, RunStore, response_key
from .suite import Suite, SuiteItem

__all__ = ["ProgressEvent", "RunOptions", "Runner"]

FLUSH_INTERVAL_S = 0.1
#: Rows waiting that make the writer write at once instead of at its next tick.
FLUSH_ROWS = 200
#: Rows waiting that make the calls wait for the store (bounds memory when the store is
#: slower than the calls).
MAX_PENDING = 5 * FLUSH_ROWS


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    model: str
    done: int
    total: int
    passed: bool | None
    error: bool


@dataclass
class _Counters:
    total: dict[str, int] = field(default_factory=dict)
    done: dict[str, int] = field(default_factory=dict)


def _now() -> datetime:
    return datetime.now(UTC)


class Runner:
    """Runs one suite on several models and stores every result."""

    def __init__(
        self,
        client: AsyncClient,
        db: Database,
        suite: Suite,
        options: RunOptions,
        *,
        progress: Callable[[ProgressEvent], None] | None = None,
    ) -> None:
        if not options.models:
            raise ConfigError("Give at least one model (--models a,b).")
        self.client = client
        self.store = RunStore(db)
        self.suite = suite
        self.options = options
        self.progress = progress
        self.counters = _Counters()
        self._pending: list[ResultRow] = []
        #: One write at a time: concurrent writers would only queue for SQLite's write
        #: lock (sleeping in its busy handler) and for the GIL.
        self._write_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._ctx = ScoringContext(client=client)
        self._facts: dict[str, tuple[bool, Prices | None]] = {}

    # -- run bookkeeping ---------------------------------------------------------------
    def _call_options(self) -> dict[str, Any]:
        opts = dict(self.suite.spec.defaults)
        if self.options.seed is not None:
            opts.setdefault("seed", self.options.seed)
        return opts

    def _create_run(self) -> str:
        call_options = self._call_options()
        manifest = build_manifest(self.client, self.suite, self.options, call_options)
        return self.store.create_run(
            self.suite, self.options.models, self.options.repeat, call_options, manifest
        )

    def _resume(self, run_id: str) -> set[tuple[str, str, int]]:
        resumed = self.store.resume_run(run_id, self.suite)
        if resumed.models != self.options.models or resumed.repeat != self.options.repeat:
            self.options = replace(self.options, models=resumed.models, repeat=resumed.repeat)
        return resumed.done

    def _tasks(self, done: set[tuple[str, str, int]]) -> Iterator[tuple[SuiteItem, str, int]]:
        for item in self.suite.items:
            for model in self.options.models:
                for repeat in range(self.options.repeat):
                    if (item.id, model, repeat) not in done:
                        yield item, model, repeat

    # -- one call ----------------------------------------------------------------------
    def _backend_facts(self, model: str) -> tuple[bool, Prices | None]:
        """Whether ``model``'s backend streams, and its prices (looked up once per run:
        ``Backend.capabilities`` builds a new dataclass on every access)."""
        facts = self._facts.get(model)
        if facts is None:
            backend = self.client.backend(model)
            facts = self._facts[model] = (
                backend.capabilities.streaming,
                backend.deployment.prices,
            )
        return facts

    async def _call(
        self, model: str, messages: list[dict[str, str]], opts: dict[str, Any]
    ) -> tuple[Answer, float | None]:
        """The model's answer and its output tokens/s after the first token."""
        streaming, prices = self._backend_facts(model)
        start = time.perf_counter()
        if streaming:
            text, usage, finish_reason, first = await self._streamed(model, messages, opts, start)
        else:
            response = await self.client.chat(model, messages, **opts)
            text, usage, finish_reason = response.text, response.usage, response.finish_reason
            first = None
        total = time.perf_counter() - start
        tokens_per_s = None
        if first is not None and usage.completion_tokens > 1 and total > first:
            tokens_per_s = (usage.completion_tokens - 1) / (total - first)
        cost = (
            prices.cost(usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens)
            if prices is not None
            else None
        )
        answer = Answer(
            text=text,
            model=model,
            latency_s=total,
            ttft_s=first if first is not None else total,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cost_usd=cost,
            finish_reason=finish_reason,
        )
        return answer, tokens_per_s

    async def _streamed(
        self, model: str, messages: list[dict[str, str]], opts: dict[str, Any], start: float
    ) -> tuple[str, Usage, FinishReason | None, float | None]:
        """One streamed call: the text, usage and finish reason of its answer (as
        :meth:`StreamAccumulator.response` gives them), and the time to the first
        content."""
        acc = StreamAccumulator()
        first: float | None = None
        async for chunk in self.client.stream_chat(model, messages, **opts):
            if first is None:
                for choice in chunk.choices:
                    if choice.delta.content:
                        first = time.perf_counter() - start
                        break
            acc.add(chunk)
        text, finish_reason = acc.first_choice()
        return text, acc.usage or Usage(), finish_reason, first

    async def _score(self, item: SuiteItem, answer: Answer, prompt: str) -> list[tuple[str, Score]]:
        variables = {**item.vars, "_prompt": prompt}
        scored = []
        for scorer in self.suite.scorers:
            try:
                score = await scorer.score(answer, item.expected, variables, self._ctx)
            except CrossroadsError as exc:
                score = Score(0.0, False, True, f"scorer failed: {exc.message}")
            scored.append((scorer.name, score))
        return scored

    async def _one(self, run_id: str, item: SuiteItem, model: str, repeat: int) -> None:
        span = open_eval_span(run_id, self.suite.name, item.id, model)  # None: tracing off
        try:
            row = await self._item(run_id, item, model, repeat)
        except BaseException as exc:
            close_eval_span(span, score=0.0, passed=None, cached=False, error=type(exc).__name__)
            raise
        close_eval_span(
            span, score=row["score"], passed=row["passed"], cached=row["cached"], error=row["error"]
        )

    async def _item(self, run_id: str, item: SuiteItem, model: str, repeat: int) -> ResultRow:
        messages = self.suite.render(item)
        opts = self._call_options()
        cached = False
        tokens_per_s: float | None = None
        error: str | None = None
        key = None
        if self.options.use_cache and opts.get("temperature") == 0:
            key = response_key(self.client.deployment(model), messages, opts)
            found = await asyncio.to_thread(self.store.cached_answer, key)
        else:
            found = None
        if found is not None:
            answer, cached = found, True
        else:
            try:
                answer, tokens_per_s = await self._call(model, messages, opts)
            except APIError as exc:
                error = f"{exc.__class__.__name__}: {exc.message}"
                answer = Answer(text="", model=model, error=error)
            if key is not None and error is None:
                await asyncio.to_thread(self.store.cache_answer, key, answer)
        if error is None:
            scored = await self._score(item, answer, messages[-1]["content"])
        else:
            scored = [(s.name, Score(0.0, False, False, "no answer")) for s in self.suite.scorers]
        weights = [s.params.weight for s in self.suite.scorers]
        value = sum(w * sc.value for w, (_, sc) in zip(weights, scored, strict=True)) / max(
            sum(weights), 1e-9
        )
        binary = [sc.passed for _, sc in scored if sc.passed is not None]
        passed = all(binary) if binary else None
        row: ResultRow = {
            "run_id": run_id,
            "item_id": item.id,
            "model": model,
            "repeat": repeat,
            "output": answer.text,
            "score": value,
            "passed": passed,
            "format_error": any(sc.format_error for _, sc in scored),
            "scores": {
                name: {"value": sc.value, "passed": sc.passed, "detail": sc.detail}
                for name, sc in scored
            },
            "latency_s": None if cached else answer.latency_s,
            "ttft_s": None if cached else answer.ttft_s,
            "tokens_per_s": None if cached else tokens_per_s,
            "prompt_tokens": answer.prompt_tokens,
            "completion_tokens": answer.completion_tokens,
            "cost_usd": 0.0 if cached else answer.cost_usd,
            "cached": cached,
            "error": error,
            "finish_reason": answer.finish_reason,
            "created_at": _now(),
        }
        self._pending.append(row)
        self.counters.done[model] = self.counters.done.get(model, 0) + 1
        if self.progress is not None:
            self.progress(
                ProgressEvent(
                    model,
                    self.counters.done[model],
                    self.counters.total[model],
                    passed,
                    error is not None,
                )
            )
        return row

    # -- writing -------------------------------------------------------------------------
    async def _flush(self) -> None:
        """Write every row waiting (after the write in flight, if any)."""
        async with self._write_lock:
            if self._pending:
                rows, self._pending = self._pending, []
                await asyncio.to_thread(self.store.write_results, rows)

    async def _flusher(self, stop: asyncio.Event) -> None:
        """Write what is waiting every ``FLUSH_INTERVAL_S``, or as soon as woken."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), FLUSH_INTERVAL_S)
            self._wake.clear()
            await self._flush()

    def _model_limit(self, model: str) -> int:
        """Calls in flight for one model: the option, capped by what the backend can
        serve at once (so latency never includes time spent queueing in front of it)."""
        cap = self.client.backend(model).capabilities.max_concurrency
        return min(self.options.per_model_concurrency, cap or self.options.per_model_concurrency)

    # -- the run -------------------------------------------------------------------------
    async def run(self, resume: str | None = None) -> str:
        """Run (or finish) the evaluation; returns the run id."""
        for model in self.options.models:
            self.client.deployment(model)  # unknown models / missing keys fail up front
        if resume:
            run_id, done = resume, await asyncio.to_thread(self._resume, resume)
        else:
            run_id, done = await asyncio.to_thread(self._create_run), set()
        per_item = self.options.repeat
        for model in self.options.models:
            finished = sum(1 for (_, m, _) in done if m == model)
            self.counters.total[model] = len(self.suite.items) * per_item
            self.counters.done[model] = finished
        tasks = self._tasks(done)
        limits = {m: asyncio.Semaphore(self._model_limit(m)) for m in self.options.models}
        self._write_lock, self._wake = asyncio.Lock(), asyncio.Event()  # this loop's

        async def worker() -> None:
            for item, model, repeat in tasks:
                async with limits[model]:
                    await self._one(run_id, item, model, repeat)
                waiting = len(self._pending)
                if waiting >= MAX_PENDING:
                    await self._flush()  # the store is behind: wait for it
                elif waiting >= FLUSH_ROWS and not self._wake.is_set():
                    self._wake.set()
                    await asyncio.sleep(0)  # let the writer start; this worker goes on

        stop = asyncio.Event()
        flusher = asyncio.create_task(self._flusher(stop))
        status: RunStatus = "interrupted"
        try:
            await asyncio.gather(*(worker() for _ in range(max(1, self.options.concurrency))))
            status = "complete"
        finally:
            stop.set()
            self._wake.set()
            await asyncio.shield(flusher)
            await asyncio.shield(self._flush())
            await asyncio.to_thread(self.store.finish_run, run_id, status)
        return run_id
