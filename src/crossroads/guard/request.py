"""One request under guard: input checks, output checks, decisions and audit events."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import BadRequestError, GuardBlockedError
from ..types import (
    AssistantMessage,
    ChatRequest,
    ChatResponse,
    Message,
    SystemMessage,
    TextPart,
    text_of,
)
from .fields import FIELD, IDENTIFIER, rewrite
from .findings import Decision, Finding, RuleCheck
from .judge import Judge, JudgeError
from .pieces import merge_spans, render, scan_folded, scan_pieces
from .redaction import Vault, resolve_overlaps
from .rules import (
    CanaryDetector,
    SizeLimit,
    invalid_response_format,
    new_canary,
    schema_problem,
)

if TYPE_CHECKING:
    from .engine import Guardrails, Plan
    from .stream import StreamFilter

__all__ = ["Hit", "RequestGuard"]

Hit = tuple[Finding, RuleCheck]

#: What the redacting rules read besides the turns when the caller is not trusted.
_UNTRUSTED_KINDS = frozenset({"system", FIELD, IDENTIFIER})


def _map_text(message: Message, fn: Callable[[str], str]) -> Message:
    """``message`` with ``fn`` applied to each piece of its text (content, text parts,
    tool-call arguments)."""
    update: dict[str, Any] = {}
    content = message.content
    if isinstance(content, str):
        update["content"] = fn(content)
    elif isinstance(content, list):
        update["content"] = [
            p.model_copy(update={"text": fn(p.text)}) if isinstance(p, TextPart) else p
            for p in content
        ]
    if isinstance(message, AssistantMessage) and message.tool_calls:
        update["tool_calls"] = [
            c.model_copy(
                update={
                    "function": c.function.model_copy(
                        update={"arguments": fn(c.function.arguments)}
                    )
                }
            )
            for c in message.tool_calls
        ]
    return message.model_copy(update=update) if update else message


class RequestGuard:
    """The policies of one request (``Guardrails.for_request``). Keeps the placeholders of
    reversible redaction, the canary token and every :class:`Decision` taken."""

    def __init__(self, owner: Guardrails, plan: Plan, *, key: str | None, model: str) -> None:
        self.owner = owner
        self.plan = plan
        self.key = key
        self.model = model
        self.request_id = uuid.uuid4().hex
        self.vault = Vault()
        self.blocked: Decision | None = None
        self._counts: dict[tuple[str, str, str, str, str, str | None], int] = {}
        self._canary_tokens = [t for _, _, t in plan.canaries if t]
        self._conversation: list[Message] = []
        self._kind_rules: dict[str, list[RuleCheck]] = {}
        self.schema: dict[str, Any] | None = None
        self._recorded = False

    # -- what the caller reads ---------------------------------------------------------------
    @property
    def active(self) -> bool:
        return self.plan.active

    @property
    def policy_version(self) -> str:
        return self.plan.version

    @property
    def decisions(self) -> list[Decision]:
        return [
            Decision(check, action, stage, category, n, policy, error)
            for (policy, check, stage, category, action, error), n in self._counts.items()
        ]

    def note(
        self,
        check: str,
        action: str,
        stage: str,
        category: str,
        policy: str,
        *,
        count: int = 1,
        error: str | None = None,
    ) -> None:
        key = (policy, check, stage, category, action, error)
        self._counts[key] = self._counts.get(key, 0) + count

    # -- rule-based text scanning ----------------------------------------------------------------
    def scan(self, text: str, rules: Sequence[RuleCheck]) -> list[Hit]:
        return [(f, rule) for rule in rules for f in rule.scan(text)]

    def apply(self, text: str, hits: list[Hit], stage: str) -> tuple[str, list[Hit]]:
        """Record decisions for ``hits`` in ``text``; returns the redacted text and the
        blocking hits (the caller refuses when there are any)."""
        counts: dict[tuple[RuleCheck, str], int] = {}
        for f, rule in hits:
            counts[(rule, f.category)] = counts.get((rule, f.category), 0) + 1
        for (rule, category), n in counts.items():
            self.note(rule.name, rule.action, stage, category, rule.policy, count=n)
        blocks = [(f, r) for f, r in hits if r.action == "block"]
        if blocks:
            return text, blocks
        redactions = resolve_overlaps((f, r) for f, r in hits if r.action == "redact")
        if not redactions:
            return text, []
        out, last = [], 0
        for f, rule in redactions:
            out.append(text[last : f.start])
            out.append(
                self.vault.placeholder(
                    f.category, text[f.start : f.end], restorable=rule.restorable
                )
            )
            last = f.end
        out.append(text[last:])
        return "".join(out), []

    def refuse(self, stage: str, blocks: list[Hit]) -> GuardBlockedError:
        first_rule = blocks[0][1]
        categories = [f.category for f, r in blocks if r is first_rule]
        return self.refusal(
            stage, first_rule.name, first_rule.policy, categories,
            first_rule.explain(categories, stage),
        )  # fmt: skip

    def refusal(
        self, stage: str, check: str, policy: str, categories: list[str], explanation: str
    ) -> GuardBlockedError:
        """The error for a block, remembered in :attr:`blocked`."""
        self.blocked = Decision(check, "block", stage, ",".join(sorted(set(categories))), 1, policy)
        return GuardBlockedError(
            f"Blocked by guardrail policy {policy!r} ({check} check): {explanation}",
            check=check,
            stage=stage,
            categories=sorted(set(categories)),
            policy=policy,
            decisions=self.decisions,
        )

    def check_text(self, text: str, stage: str = "input", role: str = "user") -> str:
        """Rule-based checks on one piece of text (no judge); raises GuardBlockedError.
        For the CLI and the evaluations; requests go through check_input/check_output."""
        if stage == "input":
            self._sizes(self.plan.input_sizes, "input", len(text), 1)
            return self._check_pieces([role], [text])[0]
        else:
            rules = self.output_rules()
            self._sizes(self.plan.output_sizes, "output", len(text), 1)
        return self._checker(rules, stage)(text)

    def _checker(self, rules: list[RuleCheck], stage: str) -> Callable[[str], str]:
        """Apply ``rules`` to one piece of text: redactions made (and, on output,
        placeholders restored); raises GuardBlockedError on a block."""

        def check(text: str) -> str:
            if not text:
                return text
            new, blocks = self.apply(text, self.scan(text, rules), stage)
            if blocks:
                raise self.refuse(stage, blocks)
            return self.vault.restore(new) if stage == "output" else new

        return check

    def _sizes(self, limits: list[SizeLimit], stage: str, chars: int, messages: int) -> None:
        for limit in limits:
            category = limit.check(chars, messages)
            if category is None:
                continue
            self.note("size", limit.action, stage, category, limit.policy)
            if limit.action == "block":
                raise self.refusal(
                    stage, "size", limit.policy, [category],
                    limit.explain(category, stage, chars, messages),
                )  # fmt: skip

    def _canary_rules(self) -> list[RuleCheck]:
        out: list[RuleCheck] = []
        for policy, action, _ in self.plan.canaries:
            if self._canary_tokens:
                out.append(CanaryDetector(action, policy, self._canary_tokens))
        return out

    # -- input ---------------------------------------------------------------------------------
    async def check_input(self, request: ChatRequest) -> ChatRequest:
        """The request with redactions applied; raises GuardBlockedError on a block."""
        plan = self.plan
        if not plan.active:
            return request
        self._take_schema(request)
        messages = list(request.messages)
        chars = sum(len(text_of(m.content)) for m in messages)
        self._sizes(plan.input_sizes, "input", chars, len(messages))
        if plan.input_rules:
            request = self._check_strings(request)
        out = list(request.messages)
        self._conversation = out
        for judge in plan.input_judges:
            await self._judge(judge, out, "input")
        if any(t is None for _, _, t in plan.canaries):
            out = self._plant_canary(out)
        return request.model_copy(update={"messages": out})

    # -- input strings ---------------------------------------------------------------------------
    def _rules_for(self, kind: str) -> list[RuleCheck]:
        """The input rules that read strings of ``kind`` (a role, ``field`` or
        ``identifier``). For an untrusted caller (the gateway's clients) the rules that
        redact read every string, system prompt included; ``injection`` reads fields
        only where it reads the system prompt (``include_system``)."""
        found = self._kind_rules.get(kind)
        if found is None:
            untrusted = self.owner.untrusted
            found = []
            for rule in self.plan.input_rules:
                roles = rule.roles
                if untrusted and rule.redactable:
                    roles = roles | _UNTRUSTED_KINDS
                elif untrusted and "system" in roles:
                    roles = roles | {FIELD}
                if kind in roles:
                    found.append(rule)
            self._kind_rules[kind] = found
        return found

    def _check_strings(self, request: ChatRequest) -> ChatRequest:
        """Every string of ``request`` the caller may not be trusted with, checked as
        the model reads it (decoded, and across adjacent strings); the request with
        redactions made. Raises GuardBlockedError on a block."""
        kinds: list[str] = []
        texts: list[str] = []

        def collect(kind: str, text: str) -> str:
            kinds.append(kind)
            texts.append(text)
            return text

        everything = self.owner.untrusted
        rewrite(request, collect, everything=everything)
        new = self._check_pieces(kinds, texts)
        if all(n is o for n, o in zip(new, texts, strict=True)):
            return request
        replacements = iter(new)
        return rewrite(request, lambda _kind, text: next(replacements), everything=everything)

    def _check_pieces(self, kinds: list[str], texts: list[str]) -> list[str]:
        """``texts`` (strings of ``kinds``, in request order) with redactions made;
        raises GuardBlockedError on a block."""
        flow = [
            i for i, k in enumerate(kinds) if k != IDENTIFIER and texts[i] and self._rules_for(k)
        ]
        hits = scan_pieces([texts[i] for i in flow], [self._rules_for(kinds[i]) for i in flow])
        identifiers = "\n".join(t for k, t in zip(kinds, texts, strict=True) if k == IDENTIFIER)
        names = scan_folded(identifiers, self._rules_for(IDENTIFIER)) if identifiers else []
        self._tally(hits + names, "input")
        blocks = [(f, r) for f, r in hits + names if r.action == "block"]
        if blocks:
            raise self.refuse("input", blocks)
        named = [(f, r) for f, r in names if r.action == "redact"]
        if named:
            rule = named[0][1]
            categories = [f.category for f, r in named if r is rule]
            raise self.refusal(
                "input", rule.name, rule.policy, categories,
                f"a function name, tool-call id or schema name contains what the "
                f"{rule.name!r} check redacts ({', '.join(sorted(set(categories)))}), and a "
                "placeholder there would break the request. Rename it, then try again.",
            )  # fmt: skip
        spans = merge_spans([(f, r) for f, r in hits if r.action == "redact"])
        if not spans:
            return texts
        done = render(
            [texts[i] for i in flow],
            spans,
            lambda hit, value: self.vault.placeholder(
                hit[0].category, value, restorable=hit[1].restorable
            ),
        )
        out = list(texts)
        for i, text in zip(flow, done, strict=True):
            out[i] = text
        return out

    def _tally(self, hits: list[Hit], stage: str) -> None:
        counts: dict[tuple[RuleCheck, str], int] = {}
        for f, rule in hits:
            counts[(rule, f.category)] = counts.get((rule, f.category), 0) + 1
        for (rule, category), n in counts.items():
            self.note(rule.name, rule.action, stage, category, rule.policy, count=n)

    def _take_schema(self, request: ChatRequest) -> None:
        """Keep the schema of ``response_format`` for the ``json_schema`` checks; a schema
        they would use but cannot (unknown type, bad regex, unresolvable ``$ref``) is the
        client's mistake, refused before the model is called."""
        fmt = request.response_format
        if fmt is None or fmt.json_schema is None:
            return
        schema = fmt.json_schema.schema_
        if schema is not None and any(s.schema is None for s in self.plan.schemas):
            problem = schema_problem(schema)
            if problem is not None:
                raise BadRequestError(invalid_response_format(problem))
        self.schema = schema

    def _plant_canary(self, messages: list[Message]) -> list[Message]:
        """Add a fresh canary token to the system prompt (there is nothing to leak
        without one)."""
        if not any(isinstance(m, SystemMessage) for m in messages):
            return messages
        token = new_canary()
        self._canary_tokens.append(token)
        marker = f"\n\n<!-- {token} -->"
        planted = []
        for m in messages:
            if isinstance(m, SystemMessage):
                if isinstance(m.content, str):
                    m = m.model_copy(update={"content": m.content + marker})
                else:
                    m = m.model_copy(update={"content": [*m.content, TextPart(text=marker)]})
            planted.append(m)
        return planted

    async def _judge(self, judge: Judge, messages: Sequence[Message], stage: str) -> None:
        try:
            verdict = await judge.verdict(messages, stage)
        except JudgeError as exc:
            self._judge_failed(judge, stage, exc.message, cause=exc)
            return
        if not verdict.unsafe:
            return
        categories = list(verdict.categories) or ["unsafe"]
        for category in categories:
            self.note("judge", judge.action, stage, category, judge.policy)
        if judge.action == "block":
            raise self.refusal(
                stage, "judge", judge.policy, categories, judge.explain(categories, stage)
            )

    def _judge_failed(
        self, judge: Judge, stage: str, error: str, *, cause: BaseException | None = None
    ) -> None:
        """A judge that could not give a verdict: noted; raises GuardBlockedError when
        its policy fails closed."""
        if judge.fail == "closed":
            self.note("judge", "block", stage, "judge_error", judge.policy, error=error)
            raise self.refusal(
                stage, "judge", judge.policy, ["judge_error"],
                f"{error}, and the policy fails closed. Try again later.",
            ) from cause  # fmt: skip
        self.note("judge", "allow", stage, "judge_error", judge.policy, error=error)

    # -- output --------------------------------------------------------------------------------
    def output_rules(self) -> list[RuleCheck]:
        return list(self.plan.output_rules) + self._canary_rules()

    async def check_output(self, response: ChatResponse) -> ChatResponse:
        """The answer with redactions applied and placeholders restored; raises
        GuardBlockedError on a block."""
        plan = self.plan
        if not plan.active:
            return response
        piece = self._checker(self.output_rules(), "output")
        choices = []
        for choice in response.choices:
            message = choice.message
            self._sizes(plan.output_sizes, "output", len(text_of(message.content)), 1)
            update: dict[str, Any] = {}
            if message.refusal:
                update["refusal"] = piece(message.refusal)
            checked = _map_text(message, piece)
            assert isinstance(checked, AssistantMessage)
            if update:
                checked = checked.model_copy(update=update)
            await self.check_answer(text_of(checked.content), bool(checked.tool_calls))
            choices.append(choice.model_copy(update={"message": checked}))
        return response.model_copy(update={"choices": choices})

    async def check_answer(self, text: str, has_tool_calls: bool = False) -> None:
        """Whole-answer checks: JSON schema and the output judges."""
        self._check_schemas(text, has_tool_calls)
        if self.plan.output_judges:
            answer: list[Message] = [*self._conversation, AssistantMessage(content=text)]
            for judge in self.plan.output_judges:
                await self._judge(judge, answer, "output")

    def _check_schemas(self, text: str, has_tool_calls: bool = False) -> None:
        """The ``json_schema`` checks on a whole answer (synchronous: streams run them
        too); raises GuardBlockedError on a block."""
        for schema in self.plan.schemas:
            if has_tool_calls and not text:
                continue
            problem = schema.check(text, self.schema)
            if problem is None:
                continue
            category, where = problem
            self.note("json_schema", schema.action, "output", category, schema.policy)
            if schema.action == "block":
                raise self.refusal(
                    "output", "json_schema", schema.policy, [category],
                    f"the answer is not valid JSON for the required schema ({where}). "
                    "Try again, or relax the schema.",
                )  # fmt: skip

    def stream_filter(self) -> StreamFilter:
        """A filter for a streamed answer (see :class:`~crossroads.guard.stream.StreamFilter`)."""
        from .stream import StreamFilter

        return StreamFilter(self)

    # -- audit ---------------------------------------------------------------------------------
    def audit_events(self) -> list[dict[str, Any]]:
        """The request, its decisions and the policy version, for the audit log. Nothing
        here is user content: only names, counts and categories."""
        decisions = self.decisions
        events: list[dict[str, Any]] = [
            {
                "kind": "policy",
                "ref": self.plan.version,
                "payload": {
                    "version": self.plan.version,
                    "policies": [
                        p.model_dump(mode="json", by_alias=True) for p in self.plan.policies
                    ],
                },
            },
            {
                "kind": "request",
                "ref": self.request_id,
                "payload": {
                    "request_id": self.request_id,
                    "key": self.key,
                    "model": self.model,
                    "policy_version": self.plan.version,
                    "blocked": self.blocked.as_dict() if self.blocked else None,
                    "decisions": len(decisions),
                },
            },
        ]
        events += [
            {"kind": "decision", "ref": self.request_id, "payload": d.as_dict()} for d in decisions
        ]
        return events

    async def record(self) -> None:
        """Send this request's audit events to the configured sink (once)."""
        sink = self.owner.audit
        if sink is None or self._recorded or not self.plan.active:
            return
        self._recorded = True
        await asyncio.to_thread(sink.write, self.audit_events())
