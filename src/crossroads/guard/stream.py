"""Output checks on a stream of chunks, with a sliding window.

Each text field of each choice (content, refusal, each tool call's arguments) is a
*lane*. A lane releases text as soon as no check can still find something that starts in
it: every check says, through ``hold_from``, where a match could still be growing at the
end of the text seen so far (the trailing word; a run of capitalised words or numbers for
addresses, names and spaced card/phone numbers; an unterminated private-key block...).
Everything before that point is scanned together with a little released context, then
redacted, restored and sent. So a card number or an e-mail address split across chunks
is masked exactly as in a complete answer, while ordinary words flow with a delay of at
most one word.

When a check *blocks*, the stream ends with a chunk whose ``finish_reason`` is
``content_filter`` (what OpenAI sends when its own filter stops a stream); nothing after
the offending text is sent. Checks that need the whole answer to block (``json_schema``,
``judge``) make the filter hold the answer until the end.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from typing import TYPE_CHECKING

from ..errors import GuardBlockedError
from ..types import ChatChunk, ChunkChoice, Delta, FinishReason, FunctionCallDelta, ToolCallDelta
from .findings import Finding, RuleCheck

if TYPE_CHECKING:
    from .request import Hit, RequestGuard

__all__ = ["StreamFilter", "guarded_stream"]

#: Released text kept as context for the next scan (cues such as "my name is").
CONTEXT_CHARS = 64


class _Blocked(Exception):
    """A check blocked; ``hits`` are its findings (empty when the refusal is recorded,
    and then ``error`` is that refusal)."""

    def __init__(self, hits: list[Hit], error: GuardBlockedError | None = None) -> None:
        super().__init__("blocked")
        self.hits = hits
        self.error = error


class _Lane:
    """One text field of one choice."""

    def __init__(
        self, guard: RequestGuard, rules: list[RuleCheck], *, max_hold: int, hold_all: bool
    ):
        self.guard = guard
        self.rules = rules
        self.max_hold = max_hold
        self.hold_all = hold_all
        self.buf = ""
        self.ctx = ""
        self._seen: set[tuple[int, str]] = set()

    def _hold(self, buf: str) -> int:
        cut = len(buf)
        for rule in self.rules:
            cut = min(cut, rule.hold_from(buf))
        vault = self.guard.vault
        if vault.restorable:
            at = buf.rfind("[", max(0, len(buf) - vault.longest()))
            if at >= 0 and "]" not in buf[at:]:
                cut = min(cut, at)
        return max(cut, len(buf) - self.max_hold)

    def push(self, text: str, *, final: bool = False) -> str:
        """Add ``text``; returns what is safe to send now (redacted and restored).
        Raises _Blocked when a blocking check fires."""
        buf = self.buf + text
        if not buf:
            return ""
        if final:
            cut = len(buf)
        elif self.hold_all:
            self.buf = buf
            return ""
        else:
            cut = self._hold(buf)
        if cut > 0 and all(rule.quiet(buf[:cut]) for rule in self.rules):
            segment = buf[:cut]  # nothing to find: skip the scan
            self.ctx = (self.ctx + segment)[-CONTEXT_CHARS:]
            self.buf = buf[cut:]
            return self.guard.vault.restore(segment)
        offset = len(self.ctx)
        subject = self.ctx + buf
        spans: list[Hit] = []
        whole: list[Hit] = []
        for rule in self.rules:
            for f in rule.scan(subject):
                if rule.redactable:
                    spans.append((Finding(f.start - offset, f.end - offset, f.category), rule))
                elif (id(rule), f.category) not in self._seen:
                    whole.append((Finding(0, 0, f.category), rule))
        if not final:
            moved = True
            while moved:
                moved = False
                for f, _ in spans:
                    if f.start < cut < f.end:
                        cut, moved = max(0, f.start), True
        hits = [
            (Finding(max(0, f.start), f.end, f.category), r) for f, r in spans if 0 < f.end <= cut
        ]
        if whole:
            self._seen.update((id(r), f.category) for f, r in whole)
            hits += whole
        if cut <= 0 and not whole:
            self.buf = buf
            return ""
        segment = buf[:cut]
        new, blocks = self.guard.apply(segment, hits, "output")
        if blocks:
            self.buf = ""
            raise _Blocked(blocks)
        self.ctx = (self.ctx + segment)[-CONTEXT_CHARS:]
        self.buf = buf[cut:]
        return self.guard.vault.restore(new)


class StreamFilter:
    """Feed every chunk of a streamed answer to :meth:`feed` and send what it returns; at
    the end call :meth:`afinish` (or :meth:`finish` in synchronous code) before the usage
    chunk. ``blocked`` is set when a check stopped the stream, and ``error`` is then its
    refusal (the message a complete answer would have been refused with)."""

    def __init__(self, guard: RequestGuard) -> None:
        self.guard = guard
        plan = guard.plan
        #: Read on first use, not here: ``check_input`` may plant a canary token after
        #: the filter is made, and its rule must be part of the stream's checks.
        self._rules: list[RuleCheck] | None = None
        self.hold_all = plan.needs_whole_answer
        self.max_hold = guard.owner.config.stream_max_hold
        self._lanes: dict[tuple[int, str, int], _Lane] = {}
        self._template: ChatChunk | None = None
        self._answers: dict[int, list[str]] = {}
        self._chars: dict[int, int] = {}
        self._pending: dict[int, FinishReason] = {}
        self._seen_choices: list[int] = []
        self._unsent: dict[int, str] = {}
        self._over: set[tuple[str, str, int]] = set()
        self._stopped = False
        self._finished = False
        self.error: GuardBlockedError | None = None

    @property
    def rules(self) -> list[RuleCheck]:
        """The output checks, fixed at the first chunk (canary tokens planted by then)."""
        if self._rules is None:
            self._rules = self.guard.output_rules()
        return self._rules

    @property
    def blocked(self) -> bool:
        return self._stopped

    # -- lanes ------------------------------------------------------------------------------------
    def _lane(self, index: int, field: str, sub: int = 0) -> _Lane:
        key = (index, field, sub)
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = _Lane(
                self.guard, self.rules, max_hold=self.max_hold, hold_all=self.hold_all
            )
        return lane

    def _release(self, index: int, field: str, sub: int, text: str, *, final: bool = False) -> str:
        out = self._lane(index, field, sub).push(text, final=final)
        if out and field == "content":
            self._answers.setdefault(index, []).append(out)
            self._count(index, len(out))
        return out

    def _count(self, index: int, n: int) -> None:
        total = self._chars[index] = self._chars.get(index, 0) + n
        for limit in self.guard.plan.output_sizes:
            category = limit.check(total)
            if category and (limit.policy, category, index) not in self._over:
                self._over.add((limit.policy, category, index))
                self.guard.note("size", limit.action, "output", category, limit.policy)
                if limit.action == "block":
                    raise _Blocked([], self.guard.refusal(
                        "output", "size", limit.policy, [category],
                        limit.explain(category, "output", total, 1),
                    ))  # fmt: skip

    # -- chunks -----------------------------------------------------------------------------------
    def _chunk(self, choices: list[ChunkChoice], like: ChatChunk | None = None) -> ChatChunk:
        base = like or self._template
        assert base is not None
        return ChatChunk(
            id=base.id,
            created=base.created,
            model=base.model,
            choices=choices,
            system_fingerprint=base.system_fingerprint,
        )

    def _stop(self, blocked: _Blocked | None = None) -> list[ChatChunk]:
        if blocked is not None:
            if blocked.hits and self.guard.blocked is None:
                self.error = self.guard.refuse("output", blocked.hits)
            elif blocked.error is not None:
                self.error = blocked.error
        self._stopped = True
        self._lanes.clear()
        if self._template is None:
            return []
        ended = [
            ChunkChoice(index=i, delta=Delta(), finish_reason="content_filter")
            for i in (self._seen_choices or [0])
        ]
        return [self._chunk(ended)]

    def feed(self, chunk: ChatChunk) -> list[ChatChunk]:
        """The chunks that can be sent now for ``chunk`` (often one, sometimes none)."""
        if self._stopped or self._finished:
            return [chunk] if chunk.usage is not None and not chunk.choices else []
        if self._template is None:
            self._template = chunk
        if not chunk.choices:
            return [*self.finish(), chunk] if chunk.usage is not None else [chunk]
        out: list[ChunkChoice] = []
        try:
            for choice in chunk.choices:
                filtered = self._choice(choice)
                if filtered is not None:
                    out.append(filtered)
        except _Blocked as blocked:
            return self._stop(blocked)
        if not out and chunk.usage is None:
            return []
        result = self._chunk(out, chunk)
        result.usage = chunk.usage
        return [result]

    def _choice(self, choice: ChunkChoice) -> ChunkChoice | None:
        i = choice.index
        if i not in self._seen_choices:
            self._seen_choices.append(i)
        d = choice.delta
        content = self._release(i, "content", 0, d.content) if d.content else ""
        refusal = self._release(i, "refusal", 0, d.refusal) if d.refusal else ""
        calls: list[ToolCallDelta] = []
        for call in d.tool_calls or []:
            args = call.function.arguments if call.function is not None else None
            if args:
                released = self._release(i, "tool", call.index, args)
                assert call.function is not None
                call = call.model_copy(
                    update={"function": call.function.model_copy(update={"arguments": released})}
                )
            calls.append(call)
        finish = choice.finish_reason
        if finish is not None:
            if self.hold_all:
                self._pending[i] = finish
                finish = None
            else:
                more, more_calls = self._flush_choice(i)
                content += more
                calls += more_calls
        if not (content or refusal or calls or finish or d.role):
            return None
        return ChunkChoice(
            index=i,
            delta=Delta(
                role=d.role,
                content=content or (None if d.content is None else ""),
                refusal=refusal or None,
                tool_calls=calls or None,
            ),
            finish_reason=finish,
            logprobs=choice.logprobs,
        )

    def _flush_choice(self, index: int) -> tuple[str, list[ToolCallDelta]]:
        content, calls = "", []
        for (i, field, sub), lane in list(self._lanes.items()):
            if i != index or not lane.buf:
                continue
            text = self._release(i, field, sub, "", final=True)
            if field == "content":
                content += text
            elif field == "tool" and text:
                calls.append(ToolCallDelta(index=sub, function=FunctionCallDelta(arguments=text)))
        return content, calls

    # -- end of stream -----------------------------------------------------------------------------
    def finish(self) -> list[ChatChunk]:
        """Flush what is held (synchronous: output judges cannot run here, so they count
        as failed and the policy's ``fail`` mode applies; prefer :meth:`afinish`)."""
        if self._closed():
            return []
        try:
            for i in self._choices_to_close():
                self._sync_answer_checks(self._held_text(i), self._has_calls(i))
        except _Blocked as blocked:
            return self._stop(blocked)
        return self._close()

    async def afinish(self) -> list[ChatChunk]:
        """Flush what is held, after the whole-answer checks (JSON schema, judges)."""
        if self._closed():
            return []
        try:
            for i in self._choices_to_close():
                text = self._held_text(i)
                try:
                    await self.guard.check_answer(text, self._has_calls(i))
                except GuardBlockedError as exc:
                    raise _Blocked([], exc) from None
        except _Blocked as blocked:
            return self._stop(blocked)
        return self._close()

    def _has_calls(self, index: int) -> bool:
        return any(i == index and field == "tool" for (i, field, _) in self._lanes)

    def _closed(self) -> bool:
        if self._stopped or self._finished or self._template is None:
            self._finished = True
            return True
        return False

    def _choices_to_close(self) -> list[int]:
        return sorted({i for (i, _, _) in self._lanes} | set(self._pending) | set(self._answers))

    def _held_text(self, index: int) -> str:
        """The whole answer of a choice as it will be sent (its content lane flushed)."""
        lane = self._lanes.get((index, "content", 0))
        if lane is not None and lane.buf:
            rest = self._release(index, "content", 0, "", final=True)
            self._unsent[index] = self._unsent.get(index, "") + rest
        return "".join(self._answers.get(index, []))

    def _close(self) -> list[ChatChunk]:
        self._finished = True
        out: list[ChunkChoice] = []
        try:
            for i in self._choices_to_close():
                more, calls = self._flush_choice(i)
                content = self._unsent.pop(i, "") + more
                finish = self._pending.get(i)
                if content or calls or finish:
                    delta = Delta(content=content or None, tool_calls=calls or None)
                    out.append(ChunkChoice(index=i, delta=delta, finish_reason=finish))
        except _Blocked as blocked:
            return self._stop(blocked)
        return [self._chunk(out)] if out else []

    def _sync_answer_checks(self, text: str, has_calls: bool) -> None:
        """Schema checks; output judges cannot run synchronously and count as failed."""
        guard = self.guard
        try:
            guard._check_schemas(text, has_calls)
            for judge in guard.plan.output_judges:
                guard._judge_failed(judge, "output", "not run: synchronous finish()")
        except GuardBlockedError as exc:
            raise _Blocked([], exc) from None


def guarded_stream(
    chunks: AsyncIterator[ChatChunk], stream_filter: StreamFilter | None
) -> AsyncIterator[ChatChunk]:
    """``chunks`` as they may be sent under the guard's output checks: the one loop that
    feeds a stream through a :class:`StreamFilter` (``RequestGuard.stream_filter()``).

    Each chunk goes through :meth:`StreamFilter.feed`; what the filter holds is released
    through :meth:`StreamFilter.afinish` (after the whole-answer checks: JSON schema,
    judges) before a usage-only chunk, so usage still comes last, and once more when
    ``chunks`` ends. A blocked stream ends with a ``content_filter`` chunk and the
    filter's ``error`` says why. With ``stream_filter`` None it returns ``chunks`` itself,
    adding no step per chunk.

    Exceptions from ``chunks`` pass through unchanged. Closing the returned iterator does
    not close ``chunks``: the caller that opened them closes them.
    """
    if stream_filter is None:
        return chunks
    return _guarded(chunks, stream_filter)


async def _guarded(
    chunks: AsyncIterator[ChatChunk], stream_filter: StreamFilter
) -> AsyncGenerator[ChatChunk, None]:
    async for chunk in chunks:
        if chunk.usage is not None and not chunk.choices:
            for held in await stream_filter.afinish():
                yield held
        for out in stream_filter.feed(chunk):
            yield out
    for held in await stream_filter.afinish():
        yield held
