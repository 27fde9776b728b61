"""Shadow evaluation: sampled production traffic copied to candidate models in the
background, scored against the production answer, stored as eval runs (suite
``shadow:NAME``); and replay of stored traffic as a suite. See docs/shadow.md."""

from .dispatcher import CandidateAnswer, Dispatcher, Exchange, RuleState, Upstream, prompt_text
from .metrics import ShadowMetrics
from .sampling import sampled, share_of

__all__ = [
    "CandidateAnswer",
    "Dispatcher",
    "Exchange",
    "RuleState",
    "ShadowMetrics",
    "Upstream",
    "prompt_text",
    "sampled",
    "share_of",
]
