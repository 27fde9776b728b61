"""The ``guardrails:`` section of crossroads.yaml: policies, their checks and actions.

Only pydantic and the standard library are imported here: ``crossroads.config`` imports
this module, and the checks themselves (``crossroads.guard.*``) import the config.
(``phonenumbers`` is imported when a config with a ``pii`` check is validated.)

    guardrails:
      policies:
        - name: default
          applies_to: {keys: ["*"], models: ["*"]}
          input:  [{check: pii, action: redact, restore: true}, {check: injection}]
          output: [{check: pii, action: redact}, {check: canary}]
          fail: closed

Every check has an ``action``: ``block`` (refuse with a ``content_policy_violation``
error), ``redact`` (replace what was found with a typed placeholder such as
``[EMAIL_1]``) or ``flag`` (let it through, record the decision). See
docs/guardrails.md for each check's options.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

__all__ = [
    "PII_TYPES",
    "Action",
    "AppliesTo",
    "BannedCheck",
    "CanaryCheck",
    "CheckConfig",
    "FailMode",
    "GuardrailsConfig",
    "InjectionCheck",
    "JSONSchemaCheck",
    "JudgeCheck",
    "PIICheck",
    "Policy",
    "SecretsCheck",
    "SizeCheck",
    "phone_region_problem",
]

Action = Literal["block", "redact", "flag"]
FailMode = Literal["open", "closed"]
Stage = Literal["input", "output"]
PIIType = Literal["email", "phone", "card", "iban", "ssn", "ip", "address", "name"]
PII_TYPES: tuple[str, ...] = ("email", "phone", "card", "iban", "ssn", "ip", "address", "name")

#: Regions tried for phone numbers written without a ``+country`` prefix.
DEFAULT_PHONE_REGIONS = [
    "US", "GB", "DE", "FR", "ES", "IT", "NL", "PT", "BR", "CA", "AU", "IE", "CH", "AT",
    "BE", "MX", "IN", "PL", "SE",
]  # fmt: skip
#: Codes people write for a region that ``phonenumbers`` knows by another (ISO 3166).
PHONE_REGION_ALIASES = {"UK": "GB", "EL": "GR"}


def phone_region_problem(region: str) -> str | None:
    """Why ``region`` (upper case) is not a region code ``phonenumbers`` knows; None
    when it is. ``phonenumbers`` is imported only here, when a config is checked."""
    import phonenumbers

    if region in phonenumbers.SUPPORTED_REGIONS:
        return None
    alias = PHONE_REGION_ALIASES.get(region)
    hint = f"use {alias}" if alias else "use a two-letter ISO 3166 code such as US or GB"
    return f"phone_regions: {region!r} is not a region code ({hint})"


class _Check(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    action: Action = "block"

    #: Actions this check can take (``redact`` needs something to cut out).
    allowed_actions: ClassVar[frozenset[str]] = frozenset({"block", "flag"})
    #: Stages where the check means something.
    stages: ClassVar[frozenset[str]] = frozenset({"input", "output"})

    @model_validator(mode="after")
    def _action_allowed(self) -> _Check:
        if self.action not in self.allowed_actions:
            name = getattr(self, "check", "?")
            raise ValueError(
                f"check {name!r} cannot {self.action}; use one of "
                f"{', '.join(sorted(self.allowed_actions))}"
            )
        return self


class PIICheck(_Check):
    """Personal data: e-mail, phone, payment card, IBAN, US SSN, IP, address, name."""

    check: Literal["pii"]
    action: Action = "redact"
    allowed_actions: ClassVar[frozenset[str]] = frozenset({"block", "redact", "flag"})
    types: list[PIIType] = Field(default_factory=lambda: list(PII_TYPES))  # type: ignore[arg-type]
    #: Input only: put the originals back into the answer (reversible pseudonymisation).
    restore: bool = False
    phone_regions: list[str] = Field(default_factory=lambda: list(DEFAULT_PHONE_REGIONS))

    @field_validator("phone_regions")
    @classmethod
    def _known_regions(cls, regions: list[str], info: ValidationInfo) -> list[str]:
        """Refuse an unknown region code when the config is read (as the detector would
        when the policy is first used), if phone numbers are checked at all."""
        if "phone" not in info.data.get("types", PII_TYPES):
            return regions
        for region in regions:
            problem = phone_region_problem(region.upper())
            if problem is not None:
                raise PydanticCustomError("phone_region", "{problem}", {"problem": problem})
        return regions


class SecretsCheck(_Check):
    """API keys and tokens of common vendors, private keys, passwords in URLs/assignments."""

    check: Literal["secrets"]
    allowed_actions: ClassVar[frozenset[str]] = frozenset({"block", "redact", "flag"})


class InjectionCheck(_Check):
    """Prompt-injection and jailbreak heuristics, including hidden/encoded payloads."""

    check: Literal["injection"]
    #: Also decode base64 / rot13 / Unicode tag payloads and look inside.
    decode: bool = True
    #: Scan system messages too (by default only user and tool messages).
    include_system: bool = False


class CanaryCheck(_Check):
    """System-prompt leakage: a canary token placed in the system prompt must never
    appear in an answer."""

    check: Literal["canary"]
    allowed_actions: ClassVar[frozenset[str]] = frozenset({"block", "redact", "flag"})
    stages: ClassVar[frozenset[str]] = frozenset({"output"})
    #: A fixed token you placed in your system prompt yourself; when unset, a fresh
    #: random token is added to the system prompt of every request.
    token: str | None = Field(default=None, min_length=8)


class BannedCheck(_Check):
    """Banned words and topics (word lists), matched on normalised text."""

    check: Literal["banned"]
    allowed_actions: ClassVar[frozenset[str]] = frozenset({"block", "redact", "flag"})
    words: list[str] = Field(default_factory=list)
    #: topic name -> words or phrases that signal it
    topics: dict[str, list[str]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _has_words(self) -> BannedCheck:
        if not self.words and not any(self.topics.values()):
            raise ValueError("check 'banned' needs `words` or `topics`")
        return self


class SizeCheck(_Check):
    """Input (or output) size limits."""

    check: Literal["size"]
    max_chars: int | None = Field(default=None, gt=0)
    max_messages: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _has_limit(self) -> SizeCheck:
        if self.max_chars is None and self.max_messages is None:
            raise ValueError("check 'size' needs `max_chars` or `max_messages`")
        return self


class JudgeCheck(_Check):
    """A model graded check: any configured model answers safe / unsafe."""

    check: Literal["judge"]
    model: str = Field(min_length=1)
    #: ``llama_guard``: the conversation is sent as is (the model's chat template builds
    #: the Llama Guard prompt) and the answer is ``safe`` or ``unsafe\nS1,S2``.
    #: ``json``: a documented system prompt asks for ``{"verdict": ..., "categories": ...}``.
    format: Literal["llama_guard", "json"] = "llama_guard"
    #: Replaces the ``json`` format's system prompt (``{policy}`` is filled in).
    prompt: str | None = None
    #: Only these categories block/flag (None: any ``unsafe`` verdict).
    categories: list[str] | None = None
    timeout_s: float = Field(default=30.0, gt=0)
    #: What to do when the judge cannot answer; defaults to the policy's ``fail``.
    fail: FailMode | None = None


class JSONSchemaCheck(_Check):
    """The answer must be JSON valid against a schema (default: the request's
    ``response_format.json_schema``)."""

    check: Literal["json_schema"]
    stages: ClassVar[frozenset[str]] = frozenset({"output"})
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")


CheckConfig = Annotated[
    PIICheck
    | SecretsCheck
    | InjectionCheck
    | CanaryCheck
    | BannedCheck
    | SizeCheck
    | JudgeCheck
    | JSONSchemaCheck,
    Field(discriminator="check"),
]


class AppliesTo(BaseModel):
    """Which requests a policy covers: shell-style patterns on the virtual key name and
    the requested model (route). ``*`` also matches requests made without a key."""

    model_config = ConfigDict(extra="forbid")
    keys: list[str] = Field(default_factory=lambda: ["*"])
    models: list[str] = Field(default_factory=lambda: ["*"])

    def matches(self, key: str | None, model: str) -> bool:
        key_ok = any(p == "*" or (key and fnmatch.fnmatchcase(key, p)) for p in self.keys)
        return key_ok and any(fnmatch.fnmatchcase(model, p) for p in self.models)


class Policy(BaseModel):
    """A named set of input and output checks."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    applies_to: AppliesTo = Field(default_factory=AppliesTo)
    input: list[CheckConfig] = Field(default_factory=list)
    output: list[CheckConfig] = Field(default_factory=list)
    #: For checks that can fail (model graded): ``closed`` blocks, ``open`` lets through.
    fail: FailMode = "closed"

    @model_validator(mode="after")
    def _stages(self) -> Policy:
        for stage in ("input", "output"):
            for check in getattr(self, stage):
                if stage not in check.stages:
                    raise ValueError(f"check {check.check!r} only works on output")
                if stage == "output" and getattr(check, "restore", False):
                    raise ValueError("`restore` applies to input checks (their originals)")
        return self


class GuardrailsConfig(BaseModel):
    """All policies. Several may apply to one request; their checks all run."""

    model_config = ConfigDict(extra="forbid")
    policies: list[Policy] = Field(default_factory=list)
    #: Record every request and decision in the hash-chained audit log (the Client
    #: writes to the configured database; the gateway to its ledger database).
    audit: bool = True
    #: Streaming: the most characters held back while a match may still be growing.
    stream_max_hold: int = Field(default=1024, ge=64)

    @field_validator("policies")
    @classmethod
    def _unique_names(cls, policies: list[Policy]) -> list[Policy]:
        names = [p.name for p in policies]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"policy names must be unique: {', '.join(dupes)}")
        return policies

    def applicable(self, key: str | None, model: str) -> list[Policy]:
        return [p for p in self.policies if p.applies_to.matches(key, model)]


def policy_version(policies: list[Policy]) -> str:
    """A stable hash of a set of policies (order matters: checks run in order)."""
    blob = json.dumps(
        [p.model_dump(mode="json", by_alias=True) for p in policies],
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
