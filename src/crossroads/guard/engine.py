"""Policies compiled into checks, once per process, and chosen per key and model route."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..config.guardrails import (
    BannedCheck,
    CanaryCheck,
    CheckConfig,
    GuardrailsConfig,
    InjectionCheck,
    JSONSchemaCheck,
    JudgeCheck,
    PIICheck,
    Policy,
    SecretsCheck,
    SizeCheck,
    policy_version,
)
from ..errors import ConfigError
from ..types import ChatRequest, ChatResponse
from .findings import RuleCheck
from .injection import InjectionDetector
from .judge import Judge, JudgeCall
from .pii import PIIDetector
from .rules import BannedDetector, SchemaValidator, SizeLimit
from .secrets import SecretDetector

if TYPE_CHECKING:
    from .audit import AuditSink
    from .request import RequestGuard

__all__ = ["Guardrails", "Plan"]

#: Roles whose text each kind of rule looks at on input (system prompts are the
#: operator's and trusted, except by ``injection`` with ``include_system``; with
#: ``untrusted`` the rules that redact read every string).
_CONTENT_ROLES = frozenset({"user", "assistant", "tool"})
_INJECTION_ROLES = frozenset({"user", "tool"})


@dataclass
class Plan:
    """The checks that apply to one (key, model route), in policy order."""

    policies: list[Policy]
    version: str
    input_rules: list[RuleCheck] = field(default_factory=list)
    output_rules: list[RuleCheck] = field(default_factory=list)
    input_sizes: list[SizeLimit] = field(default_factory=list)
    output_sizes: list[SizeLimit] = field(default_factory=list)
    input_judges: list[Judge] = field(default_factory=list)
    output_judges: list[Judge] = field(default_factory=list)
    schemas: list[SchemaValidator] = field(default_factory=list)
    #: (policy, action, fixed token or None) for each output canary check
    canaries: list[tuple[str, str, str | None]] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return bool(self.policies) and any(
            (
                self.input_rules, self.output_rules, self.input_sizes, self.output_sizes,
                self.input_judges, self.output_judges, self.schemas, self.canaries,
            )
        )  # fmt: skip

    @property
    def needs_whole_answer(self) -> bool:
        """A check that blocks on the whole answer makes a stream wait for its end."""
        return any(s.action == "block" for s in self.schemas) or any(
            j.action == "block" or j.fail == "closed" for j in self.output_judges
        )


def _rule(spec: CheckConfig, policy: str, stage: str) -> RuleCheck | None:
    check: RuleCheck
    if isinstance(spec, PIICheck):
        check = PIIDetector(spec.action, policy, types=spec.types, phone_regions=spec.phone_regions)
        check.restorable = stage == "input" and spec.restore and spec.action == "redact"
    elif isinstance(spec, SecretsCheck):
        check = SecretDetector(spec.action, policy)
    elif isinstance(spec, InjectionCheck):
        check = InjectionDetector(spec.action, policy, decode=spec.decode)
        check.roles = _INJECTION_ROLES | (frozenset({"system"}) if spec.include_system else set())
        return check
    elif isinstance(spec, BannedCheck):
        check = BannedDetector(spec.action, policy, words=spec.words, topics=spec.topics)
    else:
        return None
    check.roles = _CONTENT_ROLES
    return check


class Guardrails:
    """All policies of ``guardrails:``; :meth:`for_request` picks those of one request.

    ``judge`` calls a model for ``check: judge``: the Client passes its own unguarded call
    and the gateway its router (the guard never builds a client of its own).
    ``audit`` receives every request's audit events (see :mod:`crossroads.guard.audit`).
    ``untrusted``: the caller is not the operator (the gateway's clients), so input
    checks read every string it sends — system prompt, tool definitions, ``stop``,
    ``response_format``, unknown fields — not just the user, assistant and tool turns
    (see :mod:`crossroads.guard.fields`).
    """

    def __init__(
        self,
        config: GuardrailsConfig,
        *,
        judge: JudgeCall | None = None,
        audit: AuditSink | None = None,
        cache_size: int = 4096,
        untrusted: bool = False,
    ) -> None:
        self.config = config
        self.audit = audit
        self.untrusted = untrusted
        self._judge = judge
        self._plans: OrderedDict[tuple[str, str], Plan] = OrderedDict()
        self._cache_size = cache_size

    @classmethod
    def from_config(
        cls,
        config: GuardrailsConfig,
        *,
        judge: JudgeCall | None = None,
        audit: AuditSink | None = None,
        untrusted: bool = False,
    ) -> Guardrails:
        """Compile ``config`` (cheap when it has no policies)."""
        return cls(config, judge=judge, audit=audit, untrusted=untrusted)

    @property
    def enabled(self) -> bool:
        return bool(self.config.policies)

    def plan(self, key: str | None, model: str) -> Plan:
        """The compiled checks for a key and model route (cached)."""
        cache_key = (key or "", model)
        found = self._plans.get(cache_key)
        if found is not None:
            self._plans.move_to_end(cache_key)
            return found
        found = self._compile(self.config.applicable(key, model))
        self._plans[cache_key] = found
        if len(self._plans) > self._cache_size:
            self._plans.popitem(last=False)
        return found

    def for_request(self, key: str | None = None, model: str = "") -> RequestGuard:
        """A fresh per-request guard (its own placeholders, canary and decisions)."""
        from .request import RequestGuard

        return RequestGuard(self, self.plan(key, model), key=key or None, model=model)

    def _compile(self, policies: list[Policy]) -> Plan:
        plan = Plan(policies, policy_version(policies))
        for policy in policies:
            for stage in ("input", "output"):
                for spec in getattr(policy, stage):
                    self._add(plan, policy, stage, spec)
        return plan

    def _add(self, plan: Plan, policy: Policy, stage: str, spec: CheckConfig) -> None:
        rule = _rule(spec, policy.name, stage)
        if rule is not None:
            (plan.input_rules if stage == "input" else plan.output_rules).append(rule)
        elif isinstance(spec, SizeCheck):
            size = SizeLimit(
                spec.action, policy.name, max_chars=spec.max_chars, max_messages=spec.max_messages
            )
            (plan.input_sizes if stage == "input" else plan.output_sizes).append(size)
        elif isinstance(spec, JudgeCheck):
            judge = Judge(spec, policy.name, policy.fail, self._call_judge)
            (plan.input_judges if stage == "input" else plan.output_judges).append(judge)
        elif isinstance(spec, JSONSchemaCheck):
            plan.schemas.append(SchemaValidator(spec.action, policy.name, spec.schema_))
        elif isinstance(spec, CanaryCheck):
            plan.canaries.append((policy.name, spec.action, spec.token))

    async def _call_judge(self, request: ChatRequest) -> ChatResponse:
        if self._judge is None:
            raise ConfigError(
                "A `check: judge` policy needs a model to call: run it through "
                "crossroads.Client or `crossroads serve`, which pass their own."
            )
        return await self._judge(request)

    async def aclose(self) -> None:
        if self.audit is not None:
            self.audit.close()
