"""Secrets: vendor API keys and tokens, private keys, passwords in connection strings and
assignments.

Each rule has literal hints (``sk-``, ``AKIA``, ``ghp_``...) checked with a substring
search before its regex runs, so a prompt without any hint costs a few microseconds.
Values that are obviously placeholders (``YOUR_API_KEY``, ``xxxx``, ``<token>``,
``${VAR}``, AWS's documented ``...EXAMPLE`` keys) are not secrets.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

from .findings import Finding, RuleCheck, word_tail

__all__ = ["SecretDetector", "shannon_entropy"]


@dataclass(frozen=True, slots=True)
class _Rule:
    category: str
    pattern: re.Pattern[str]
    hints: tuple[str, ...]
    #: Regex group holding the secret itself (0: the whole match).
    group: int = 0
    #: Minimum Shannon entropy (bits per character) of the secret.
    min_entropy: float = 0.0
    #: Hints are matched on the lower-cased text.
    lower_hints: bool = False
    #: How far a match may start before / end after a hint (None: to the end).
    back: int = 2
    fwd: int | None = 300


def _r(
    category: str,
    pattern: str,
    *hints: str,
    group: int = 0,
    min_entropy: float = 0.0,
    lower_hints: bool = False,
    back: int = 2,
    fwd: int | None = 300,
) -> _Rule:
    return _Rule(category, re.compile(pattern), hints, group, min_entropy, lower_hints, back, fwd)


_B = r"(?<![A-Za-z0-9_\-])"  # not glued to a longer token
_E = r"(?![A-Za-z0-9_\-])"
_RULES: tuple[_Rule, ...] = (
    _r(
        "private_key",
        r"-----BEGIN[A-Z0-9 ]{0,30}PRIVATE KEY(?: BLOCK)?-----[\s\S]*?"
        r"(?:-----END[A-Z0-9 ]{0,30}PRIVATE KEY(?: BLOCK)?-----|\Z)",
        "PRIVATE KEY",
        back=48,
        fwd=None,
    ),
    _r("anthropic_api_key", _B + r"sk-ant-(?:api|admin)\d{2}-[A-Za-z0-9_\-]{32,}", "sk-ant-"),
    _r(
        "openai_api_key",
        _B + r"sk-(?:proj-|svcacct-|admin-|None-)?[A-Za-z0-9_\-]{32,}" + _E,
        "sk-",
        min_entropy=3.5,
    ),
    _r(
        "aws_access_key_id",
        _B + r"(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}" + _E,
        "AKIA",
        "ASIA",
        "ABIA",
        "ACCA",
    ),
    _r(
        "aws_secret_access_key",
        r"(?i)aws.{0,20}?(?:secret|private)[\w ]{0,20}?[\"'\s:=]{1,5}"
        r"([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])",
        "aws",
        group=1,
        min_entropy=3.5,
        lower_hints=True,
        fwd=120,
    ),
    _r(
        "github_token",
        _B + r"gh[pousr]_[A-Za-z0-9]{36,255}" + _E,
        "ghp_",
        "gho_",
        "ghu_",
        "ghs_",
        "ghr_",
    ),
    _r("github_token", _B + r"github_pat_[A-Za-z0-9_]{50,255}" + _E, "github_pat_"),
    _r("gitlab_token", _B + r"glpat-[A-Za-z0-9_\-]{20,}" + _E, "glpat-"),
    _r("slack_token", _B + r"xox[abposr]-[A-Za-z0-9\-]{10,}" + _E, "xox"),
    _r(
        "slack_webhook",
        r"https://hooks\.slack\.com/services/T[A-Z0-9]+/B[A-Z0-9]+/[A-Za-z0-9]{16,}",
        "hooks.slack.com",
        back=10,
    ),
    _r(
        "discord_webhook",
        r"https://(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/\d+/[A-Za-z0-9_\-]{40,}",
        "discord",
        back=20,
    ),
    _r("google_api_key", _B + r"AIza[0-9A-Za-z_\-]{35}" + _E, "AIza"),
    _r(
        "stripe_secret_key",
        _B + r"(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{20,}" + _E,
        "_live_",
        "_test_",
    ),
    _r("sendgrid_api_key", _B + r"SG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}" + _E, "SG."),
    _r("huggingface_token", _B + r"hf_[A-Za-z0-9]{30,}" + _E, "hf_", min_entropy=3.5),
    _r("npm_token", _B + r"npm_[A-Za-z0-9]{36}" + _E, "npm_"),
    _r("pypi_token", _B + r"pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\-]{50,}", "pypi-AgEIcHlwaS5vcmc"),
    _r("twilio_api_key", _B + r"SK[0-9a-fA-F]{32}" + _E, "SK"),
    _r("mailgun_api_key", _B + r"key-[0-9a-f]{32}" + _E, "key-"),
    _r("shopify_token", _B + r"shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}" + _E, "shp"),
    _r("digitalocean_token", _B + r"do[opr]_v1_[a-f0-9]{64}" + _E, "_v1_"),
    _r("databricks_token", _B + r"dapi[a-f0-9]{32}(?:-\d)?" + _E, "dapi"),
    _r("groq_api_key", _B + r"gsk_[A-Za-z0-9]{48,}" + _E, "gsk_"),
    _r("replicate_token", _B + r"r8_[A-Za-z0-9]{37}" + _E, "r8_"),
    _r("telegram_bot_token", _B + r"\d{8,10}:AA[A-Za-z0-9_\-]{33}" + _E, ":AA", back=12),
    _r(
        "jwt",
        _B + r"eyJ[A-Za-z0-9_\-]{10,}\.eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}" + _E,
        "eyJ",
    ),
    _r(
        "azure_storage_key",
        r"(?i)AccountKey=([A-Za-z0-9+/]{80,}={0,2})",
        "accountkey=",
        group=1,
        lower_hints=True,
    ),
    _r(
        "connection_string_password",
        r"\b[a-zA-Z][a-zA-Z0-9+.\-]{1,20}://[^\s:/@'\"]{1,100}:([^\s@/'\"]{3,200})@[\w.\-\[\]]+",
        "://",
        group=1,
        back=24,
    ),
    _r(
        "bearer_token",
        r"(?i)\bauthorization\s*:\s*(?:bearer|token|basic)\s+([A-Za-z0-9._\-~+/]{20,}=*)",
        "authorization",
        group=1,
        min_entropy=3.0,
        lower_hints=True,
    ),
    _r(
        "password_assignment",
        r"(?i)(?<![\w-])[\w-]{0,24}?(?:password|passwd|pwd|passwort|mot\s+de\s+passe|contraseña|senha|"
        r"wachtwoord|client_secret|secret_key|api_key|apikey|api-key|access_token|auth_token)"
        r"[\"']?\s*(?:[:=]|=>|\bis\b|\bist\b|\best\b|\bes\b|\bé\b)\s*[\"']?"
        r"([^\s\"',;]{6,128})",
        "pass",
        "pwd",
        "secret",
        "key",
        "token",
        "mot de passe",
        "contraseña",
        "senha",
        "wachtwoord",
        group=1,
        lower_hints=True,
        back=40,
        fwd=200,
    ),
)

_PLACEHOLDER = re.compile(
    r"(?i)^(?:<.*>|\$\{.*\}|\$[A-Z_]+|\{\{.*\}\}|%\(?\w+\)?s?|\*+|x+|\.+|-+|"
    r".*(?:your|example|placeholder|dummy|changeme|redacted|xxxx|\*\*\*|\.\.\.|here|"
    r"replace|insert|fake|sample|secret_?key$|getenv|environ|process\.env|null|none|"
    r"undefined|\[[A-Z_]+_\d+\]).*|.*\(.*|[a-z_]+(?:\.[a-z_]+)+)$"
)


def shannon_entropy(value: str) -> float:
    """Bits per character; random base64 is ~5-6, English words ~3-4, ``aaaa`` 0."""
    if not value:
        return 0.0
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in Counter(value).values())


class SecretDetector(RuleCheck):
    """Finds credentials; the span is the secret itself (for a connection string, the
    password only)."""

    name = "secrets"
    redactable = True

    def scan(self, text: str) -> list[Finding]:
        found: list[Finding] = []
        lowered = text.lower()
        tokens = [t for t in _long_tokens(text) if any(h in t[1] for h in _TOKEN_HINTS)]
        for rule in _RULES:
            if rule.category in _SPACED:
                hay = lowered if rule.lower_hints else text
                positions = [p for h in rule.hints for p in _find_all(hay, h)]
            elif tokens:  # the secret is one long token: look only inside long tokens
                positions = [
                    start + at
                    for start, token in tokens
                    for h in rule.hints
                    if (at := token.find(h)) >= 0
                ]
            else:
                continue
            if not positions:
                continue
            for m in _matches(rule, text, sorted(positions)):
                start, end = m.span(rule.group)
                value = m.group(rule.group)
                if _PLACEHOLDER.match(value) or (
                    rule.min_entropy and shannon_entropy(value) < rule.min_entropy
                ):
                    continue
                if not any(start < f.end and f.start < end for f in found):
                    found.append(Finding(start, end, rule.category))
        found.sort(key=lambda f: f.start)
        return found

    def quiet(self, segment: str) -> bool:
        words = segment.split()
        if words and max(map(len, words)) >= _MIN_TOKEN:
            return False
        lowered = segment.lower()
        return not any(h in lowered for h in _SPACED_HINTS)

    def hold_from(self, text: str) -> int:
        cut = word_tail(text)
        begin = text.rfind("-----BEGIN")
        if begin >= 0 and "-----END" not in text[begin:]:
            cut = min(cut, begin)
        else:
            # "Authorization: Bearer" and "password is" put a space before the secret.
            lowered = text[-48:].lower()
            for cue in ("authorization", "password", "passwort", "senha", "pwd", "secret"):
                at = lowered.rfind(cue)
                if at >= 0:
                    cut = min(cut, len(text) - len(lowered) + at)
                    break
        return cut

    def explain(self, categories: list[str], stage: str) -> str:
        what = "input" if stage == "input" else "answer"
        kinds = ", ".join(sorted(set(categories)))
        return (
            f"the {what} contains a secret ({kinds}). Remove it (and rotate it if it is "
            "real), then try again."
        )


#: Secrets that may contain or follow a space; every other rule matches inside one token.
_SPACED = frozenset({"private_key", "aws_secret_access_key", "bearer_token", "password_assignment"})
_MIN_TOKEN = 16
_TOKEN_HINTS = tuple({h for r in _RULES if r.category not in _SPACED for h in r.hints})
_SPACED_HINTS = frozenset(h.lower() for r in _RULES if r.category in _SPACED for h in r.hints)


def _long_tokens(text: str) -> list[tuple[int, str]]:
    """(offset, token) of whitespace-separated tokens long enough to hold a key."""
    out: list[tuple[int, str]] = []
    words = text.split()
    if not words or max(map(len, words)) < _MIN_TOKEN:
        return out
    cursor = 0
    # A word of lower- or mixed-case letters only (Datenschutzgrundverordnung) is no key.
    long = [w for w in words if len(w) >= _MIN_TOKEN and not (w.isalpha() and not w.isupper())]
    for token in long:
        cursor = text.find(token, cursor)
        out.append((cursor, token))
        cursor += len(token)
    return out


def _find_all(hay: str, needle: str) -> list[int]:
    out = []
    at = hay.find(needle)
    while at >= 0:
        out.append(at)
        at = hay.find(needle, at + 1)
    return out


def _matches(rule: _Rule, text: str, positions: list[int]) -> list[re.Match[str]]:
    """Matches of ``rule`` in windows around its hints (merged), checked to the real end
    of the text when a match touches the end of its window."""
    n = len(text)
    windows: list[list[int]] = []
    for p in positions:
        lo, hi = max(0, p - rule.back), n if rule.fwd is None else min(n, p + rule.fwd)
        if windows and lo <= windows[-1][1]:
            windows[-1][1] = max(windows[-1][1], hi)
        else:
            windows.append([lo, hi])
    out: list[re.Match[str]] = []
    for lo, hi in windows:
        for m in rule.pattern.finditer(text, lo, hi):
            if m.end() == hi < n:
                full = rule.pattern.match(text, m.start())
                if full is None:
                    continue
                m = full
            out.append(m)
    return out
