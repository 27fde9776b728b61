"""Guardrails: safety and privacy policies applied alike to every model.

    guard = Guardrails.from_config(config.guardrails)      # once per process
    rg = guard.for_request(key="demo", model="gpt-4o")     # per request
    request = await rg.check_input(request)                 # redacted; GuardBlockedError on block
    response = await rg.check_output(response)              # redacted and restored
    f = rg.stream_filter()                                  # f.feed(chunk); await f.afinish()
    rg.decisions, rg.policy_version, rg.audit_events()

The same code runs in the Python ``Client`` (and so in the eval runner) and in the
gateway. See docs/guardrails.md for the configuration and each check.
"""

from ..config.guardrails import GuardrailsConfig, Policy
from ..errors import GuardBlockedError
from .engine import Guardrails, Plan
from .findings import Decision, Finding
from .request import RequestGuard
from .stream import StreamFilter

__all__ = [
    "Decision",
    "Finding",
    "GuardBlockedError",
    "Guardrails",
    "GuardrailsConfig",
    "Plan",
    "Policy",
    "RequestGuard",
    "StreamFilter",
]
