"""Dynamic batching for one in-process transformers model.

One :class:`BatchingEngine` serves every request for a loaded model. Requests become
:class:`Job` objects, queued from any event loop; a single daemon worker thread owns the
model and runs the decode loop:

1. **Gather**: take up to ``max_batch_size`` waiting jobs, waiting up to ``batch_wait_ms``
   for more while the batch is not full.
2. **Prefill**: left-pad the prompts into one tensor, with ``attention_mask`` (0 on padding)
   and ``position_ids = cumsum(attention_mask) - 1``, so every row sees the positions it
   would see alone (rotary models use ``position_ids``; BLOOM's ALiBi and Falcon derive
   them from the mask). Only the last position's logits are computed (``logits_to_keep``).
3. **Decode**: one shared forward pass per step for all active rows, feeding each row its
   last token and reusing the KV cache (``DynamicCache``); the 2-D mask grows by one column
   of ones per step. Each row applies its own sampling (greedy, or temperature/top-p with a
   per-request ``torch.Generator``, so a seed gives the same text whatever else is in the
   batch), stop sequences (:class:`StopMatcher` on decoded text), ``max_new_tokens`` and EOS.
4. **Prune**: finished and cancelled rows are removed from the batch at once, KV cache
   rows included (``batch_select_indices``); cache columns that became padding for every
   remaining row are cut from the left, so a long prompt that finished early stops
   costing attention time.
5. **Join** (continuous batching): between steps, jobs that arrived meanwhile are
   prefilled on their own and merged into the running batch (the shorter KV cache is
   left-padded with zeros and masked out). This needs plain full-attention
   ``DynamicLayer`` caches; otherwise (e.g. sliding-window layers) new jobs wait for the
   next batch.

Text goes back token by token through each job's ``asyncio.Queue`` with
``loop.call_soon_threadsafe``. Deltas come from decoding all generated ids and taking the
new suffix, holding back a trailing U+FFFD (a multi-byte character split across tokens).
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import threading
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from ..errors import APIError
from ..types import FinishReason
from ._local import StopMatcher

__all__ = ["BatchingEngine", "Done", "EngineStats", "GenerationParams", "Job"]


@dataclass(frozen=True, slots=True)
class GenerationParams:
    """What to generate for one request (prompt already tokenized)."""

    prompt_ids: Sequence[int]
    max_new_tokens: int
    temperature: float | None = None  # None or <= 0: greedy
    top_p: float | None = None
    seed: int | None = None
    stops: Sequence[str] = ()
    ignore_eos: bool = False


@dataclass(frozen=True, slots=True)
class Done:
    """The last event of a job."""

    finish_reason: FinishReason
    prompt_tokens: int
    completion_tokens: int


@dataclass(slots=True)
class EngineStats:
    """Counters for tests, benchmarks and metrics."""

    requests: int = 0
    prefills: int = 0
    steps: int = 0
    tokens: int = 0
    joined: int = 0  # jobs merged into a batch that was already decoding
    max_batch_seen: int = 0


_Event = str | Done | BaseException


class Job:
    """One request in the engine; its events flow back to the submitting event loop."""

    def __init__(self, params: GenerationParams, loop: asyncio.AbstractEventLoop) -> None:
        self.params = params
        self.done: Done | None = None
        self.cancelled = False
        self._loop = loop
        self._events: asyncio.Queue[_Event] = asyncio.Queue()

    def cancel(self) -> None:
        """Stop generating (the consumer went away); the worker drops the row."""
        self.cancelled = True

    def post(self, event: _Event) -> None:
        """Deliver an event from the worker thread."""
        try:
            self._loop.call_soon_threadsafe(self._events.put_nowait, event)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            self.cancelled = True

    async def deltas(self) -> AsyncIterator[str]:
        """Text deltas until the end; then :attr:`done` is set. Raises worker errors."""
        while True:
            event = await self._events.get()
            if isinstance(event, str):
                yield event
            elif isinstance(event, Done):
                self.done = event
                return
            else:
                raise event


class _Seq:
    """Worker-side state of one job."""

    def __init__(self, job: Job, device: torch.device) -> None:
        self.job = job
        self.params = job.params
        self.ids: list[int] = []
        self.text = ""  # decoded text already fed to the stop matcher
        self.matcher = StopMatcher(list(job.params.stops))
        self.finished: FinishReason | None = None
        self.generator: torch.Generator | None = None
        if self.params.temperature is not None and self.params.temperature > 0:
            self.generator = torch.Generator(device=device)
            if self.params.seed is None:
                self.generator.seed()
            else:
                self.generator.manual_seed(self.params.seed)


@dataclass(slots=True)
class _Batch:
    seqs: list[_Seq]
    cache: Any  # transformers Cache
    mask: torch.Tensor  # [rows, cached columns], 1 = real token
    next_pos: torch.Tensor  # [rows] position id of the token fed next
    mergeable: bool = field(default=False)


def _plain_layers(cache: Any) -> list[Any] | None:
    """The cache's layers when all are plain full-attention ``DynamicLayer``s."""
    layers = getattr(cache, "layers", None)
    if not layers or getattr(cache, "offloading", False):
        return None
    if any(type(layer).__name__ != "DynamicLayer" or layer.keys is None for layer in layers):
        return None
    return list(layers)


def _pad_left(tensor: torch.Tensor, width: int, dim: int) -> torch.Tensor:
    if width == 0:
        return tensor
    shape = list(tensor.shape)
    shape[dim] = width
    return torch.cat([tensor.new_zeros(shape), tensor], dim=dim)


class BatchingEngine:
    """Batches concurrent generation requests on one model (see the module docstring)."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        device: str | torch.device,
        eos_token_ids: frozenset[int],
        pad_token_id: int,
        max_batch_size: int = 8,
        batch_wait_ms: float = 5.0,
        continuous: bool = True,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.device = torch.device(device)
        self.eos_token_ids = eos_token_ids
        self.pad_token_id = pad_token_id
        self.max_batch_size = max(1, max_batch_size)
        self.batch_wait_s = max(0.0, batch_wait_ms) / 1000
        self.continuous = continuous
        self.stats = EngineStats()
        accepted = inspect.signature(model.forward).parameters
        self._cache_arg = "cache" if "cache" in accepted else "past_key_values"
        self._with_positions = "position_ids" in accepted
        self._keep_last = "logits_to_keep" in accepted
        self._pending: collections.deque[Job] = collections.deque()
        self._cv = threading.Condition()
        self._thread: threading.Thread | None = None
        self._live: list[_Seq] = []

    # --- the asyncio side ------------------------------------------------------------

    def submit(self, params: GenerationParams) -> Job:
        """Queue a request; call from a running event loop and iterate ``job.deltas()``."""
        job = Job(params, asyncio.get_running_loop())
        with self._cv:
            self._pending.append(job)
            self.stats.requests += 1
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._work, name="crossroads-transformers", daemon=True
                )
                self._thread.start()
            self._cv.notify()
        return job

    # --- the worker thread -----------------------------------------------------------

    def _take(self, limit: int, *, wait: bool) -> list[Job]:
        with self._cv:
            if wait:
                while not self._pending:
                    self._cv.wait()
                deadline = time.monotonic() + self.batch_wait_s
                while len(self._pending) < limit and (left := deadline - time.monotonic()) > 0:
                    self._cv.wait(left)
            jobs: list[Job] = []
            while self._pending and len(jobs) < limit:
                job = self._pending.popleft()
                if not job.cancelled:
                    jobs.append(job)
            return jobs

    def _work(self) -> None:
        with torch.inference_mode():
            while True:
                jobs = self._take(self.max_batch_size, wait=True)
                try:
                    self._run(jobs)
                except Exception as exc:  # a failed forward pass fails its batch only
                    for seq in self._live:
                        error = APIError(f"local generation failed: {exc!r}", vendor="transformers")
                        error.__cause__ = exc
                        seq.job.post(error)
                finally:
                    self._live = []

    def _run(self, jobs: list[Job]) -> None:
        batch = self._prune(self._prefill(jobs)) if jobs else None
        while batch is not None:
            self._step(batch)
            batch = self._prune(batch)
            room = self.max_batch_size - (len(batch.seqs) if batch else 0)
            if batch is not None and batch.mergeable and room > 0 and self._pending:
                newcomers = self._take(room, wait=False)
                fresh = self._prune(self._prefill(newcomers)) if newcomers else None
                if fresh is not None and fresh.mergeable:
                    self.stats.joined += len(fresh.seqs)
                    batch = self._merge(batch, fresh)
                elif fresh is not None:  # cannot merge: finish it on its own first
                    self._run_alone(fresh)

    def _run_alone(self, batch: _Batch | None) -> None:
        while batch is not None:
            self._step(batch)
            batch = self._prune(batch)

    def _forward(
        self, ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, cache: Any
    ) -> tuple[torch.Tensor, Any]:
        kwargs: dict[str, Any] = {
            "input_ids": ids,
            "attention_mask": mask,
            self._cache_arg: cache,
            "use_cache": True,
        }
        if self._with_positions:
            kwargs["position_ids"] = positions
        if self._keep_last:
            kwargs["logits_to_keep"] = 1
        out = self.model(**kwargs)
        new_cache = getattr(out, "cache", None) or getattr(out, "past_key_values", None)
        self.stats.max_batch_seen = max(self.stats.max_batch_seen, int(ids.shape[0]))
        return out.logits[:, -1, :], new_cache

    def _prefill(self, jobs: list[Job]) -> _Batch:
        seqs = [_Seq(job, self.device) for job in jobs]
        self._live.extend(seqs)
        prompts = [list(job.params.prompt_ids) for job in jobs]
        width = max(len(p) for p in prompts)
        ids = torch.tensor(
            [[self.pad_token_id] * (width - len(p)) + p for p in prompts], device=self.device
        )
        mask = torch.tensor(
            [[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=self.device
        )
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        logits, cache = self._forward(ids, mask, positions, None)
        self.stats.prefills += 1
        self._advance(seqs, self._choose(logits, seqs))
        lengths = torch.tensor([len(p) for p in prompts], device=self.device)
        mergeable = self.continuous and _plain_layers(cache) is not None
        return _Batch(seqs, cache, mask, lengths, mergeable)

    def _step(self, batch: _Batch) -> None:
        ids = torch.tensor([[seq.ids[-1]] for seq in batch.seqs], device=self.device)
        mask = torch.cat([batch.mask, batch.mask.new_ones((len(batch.seqs), 1))], dim=1)
        logits, batch.cache = self._forward(ids, mask, batch.next_pos[:, None], batch.cache)
        batch.mask = mask
        batch.next_pos = batch.next_pos + 1
        self.stats.steps += 1
        self._advance(batch.seqs, self._choose(logits, batch.seqs))

    def _choose(self, logits: torch.Tensor, seqs: list[_Seq]) -> list[int]:
        """Each row's next token: greedy, or sampled with the row's own generator."""
        logits = logits.float()
        tokens: list[int] = logits.argmax(dim=-1).tolist()
        for row, seq in enumerate(seqs):
            if seq.generator is None or seq.params.temperature is None:
                continue
            probs = torch.softmax(logits[row] / seq.params.temperature, dim=-1)
            top_p = seq.params.top_p
            if top_p is not None and 0 < top_p < 1:
                sorted_probs, order = probs.sort(descending=True)
                drop = sorted_probs.cumsum(0) - sorted_probs > top_p
                pick = torch.multinomial(
                    sorted_probs.masked_fill(drop, 0.0), 1, generator=seq.generator
                )
                tokens[row] = int(order[pick].item())
            else:
                tokens[row] = int(torch.multinomial(probs, 1, generator=seq.generator).item())
        return tokens

    def _decode(self, ids: list[int]) -> str:
        text: str = self.tokenizer.decode(
            ids, skip_special_tokens=True, clean_up_tokenization_spaces=False
        )
        return text

    def _advance(self, seqs: list[_Seq], tokens: list[int]) -> None:
        """Apply one new token per row: EOS, text deltas, stop sequences, max tokens."""
        for seq, token in zip(seqs, tokens, strict=True):
            if seq.job.cancelled:
                seq.finished = "stop"
                continue
            if token in self.eos_token_ids and not seq.params.ignore_eos:
                self._finish(seq, "stop")
                continue
            seq.ids.append(token)
            self.stats.tokens += 1
            stable = self._decode(seq.ids).rstrip("\ufffd")
            if len(stable) > len(seq.text):
                self._emit(seq, stable[len(seq.text) :])
                seq.text = stable
            if seq.matcher.stopped:
                self._finish(seq, "stop")
            elif len(seq.ids) >= seq.params.max_new_tokens:
                self._finish(seq, "length")

    def _emit(self, seq: _Seq, piece: str) -> None:
        out = seq.matcher.feed(piece)
        if out:
            seq.job.post(out)

    def _finish(self, seq: _Seq, reason: FinishReason) -> None:
        if not seq.matcher.stopped:
            tail = self._decode(seq.ids)[len(seq.text) :]
            out = seq.matcher.feed(tail) if tail else ""
            if seq.matcher.stopped:
                reason = "stop"
            else:
                out += seq.matcher.flush()
            if out:
                seq.job.post(out)
        seq.finished = reason
        seq.job.post(Done(reason, len(seq.params.prompt_ids), len(seq.ids)))

    # --- batch surgery ---------------------------------------------------------------

    def _prune(self, batch: _Batch) -> _Batch | None:
        """Drop finished/cancelled rows (KV cache included) and all-padding columns."""
        keep = [i for i, s in enumerate(batch.seqs) if s.finished is None and not s.job.cancelled]
        gone = [s for s in batch.seqs if s.finished is not None or s.job.cancelled]
        self._live = [s for s in self._live if s not in gone]
        if not keep:
            return None
        if len(keep) == len(batch.seqs):
            return batch
        index = torch.tensor(keep, device=self.device)
        batch.cache.batch_select_indices(index)
        batch.seqs = [batch.seqs[i] for i in keep]
        batch.mask = batch.mask[index]
        batch.next_pos = batch.next_pos[index]
        layers = _plain_layers(batch.cache) if batch.mergeable else None
        if layers is not None:
            first = int(batch.mask.any(dim=0).nonzero()[0].item())
            if first > 0:
                for layer in layers:
                    layer.keys = layer.keys[:, :, first:, :]
                    layer.values = layer.values[:, :, first:, :]
                batch.mask = batch.mask[:, first:]
        return batch

    def _merge(self, a: _Batch, b: _Batch) -> _Batch:
        """One batch from two, left-padding the shorter KV cache (masked out)."""
        width = max(a.mask.shape[1], b.mask.shape[1])
        pad_a, pad_b = width - a.mask.shape[1], width - b.mask.shape[1]
        layers_a, layers_b = _plain_layers(a.cache), _plain_layers(b.cache)
        assert layers_a is not None and layers_b is not None
        for la, lb in zip(layers_a, layers_b, strict=True):
            la.keys = torch.cat([_pad_left(la.keys, pad_a, 2), _pad_left(lb.keys, pad_b, 2)])
            la.values = torch.cat([_pad_left(la.values, pad_a, 2), _pad_left(lb.values, pad_b, 2)])
        a.mask = torch.cat([_pad_left(a.mask, pad_a, 1), _pad_left(b.mask, pad_b, 1)])
        a.next_pos = torch.cat([a.next_pos, b.next_pos])
        a.seqs = a.seqs + b.seqs
        return a
