"""What a check finds (:class:`Finding`), what the guard decided (:class:`Decision`), and
the base class of rule-based checks."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar

__all__ = ["STRIP_INVISIBLE", "Decision", "Finding", "RuleCheck", "fixed_tail", "word_tail"]

#: ``str.translate`` table that drops invisible characters (zero-width, soft hyphen,
#: Mongolian vowel separator, bidi controls) before matching words.
STRIP_INVISIBLE = dict.fromkeys(
    map(
        ord,
        "\u200b\u200c\u200d\u2060\ufeff\u180e\u00ad"  # zero-width, soft hyphen
        "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069",  # bidi controls
    )
)

#: Characters that end a "word" for the streaming hold-back rules.
_SPACES = (" ", "\n", "\t", "\r", "\u00a0")


@dataclass(frozen=True, slots=True)
class Finding:
    """A span of text a check objects to; ``category`` is e.g. ``email`` or ``aws_access_key``.
    Whole-text checks (size, judge, schema) report the span ``(0, len(text))``."""

    start: int
    end: int
    category: str


@dataclass(frozen=True, slots=True)
class Decision:
    """One guard decision, safe to log: it never carries the matched text."""

    check: str
    action: str  # block | redact | flag | allow (a failing check under fail: open)
    stage: str  # input | output
    category: str
    count: int = 1
    policy: str = ""
    #: Why a check could not run (fail open/closed), never user content.
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def word_tail(text: str) -> int:
    """Start of the trailing run of non-space characters (``len(text)`` if none)."""
    return max(text.rfind(s) for s in _SPACES) + 1


def fixed_tail(text: str, chars: int) -> int:
    """Hold back the last ``chars`` characters, widened to a word boundary."""
    start = max(0, len(text) - chars)
    if start == 0:
        return 0
    cut = max(text.rfind(s, 0, start) for s in _SPACES) + 1
    return cut


class RuleCheck:
    """A synchronous, rule-based check over one piece of text.

    ``scan`` returns findings; ``hold_from`` tells a stream how much of the text seen so
    far must wait because a match could still be growing at its end.
    """

    name: ClassVar[str] = ""
    #: The action applies to the span (redact) rather than the whole message.
    redactable: ClassVar[bool] = False

    def __init__(self, action: str, policy: str) -> None:
        self.action = action
        self.policy = policy
        #: Message roles whose text this check reads on input.
        self.roles: frozenset[str] = frozenset({"user", "assistant", "tool"})
        #: Input redactions of this check are put back into the answer.
        self.restorable = False

    def scan(self, text: str) -> list[Finding]:
        raise NotImplementedError

    def hold_from(self, text: str) -> int:
        return word_tail(text)

    def quiet(self, segment: str) -> bool:
        """True when nothing can be found in ``segment`` (a stream's next release, whose
        matches are whole by construction): lets a stream skip the full scan."""
        return False

    def explain(self, categories: list[str], stage: str) -> str:
        """What the user is told when this check blocks (no matched text)."""
        what = "input" if stage == "input" else "answer"
        return (
            f"the {what} was refused by the {self.name!r} check "
            f"({', '.join(sorted(set(categories)))})."
        )
