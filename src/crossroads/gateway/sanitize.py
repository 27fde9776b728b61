"""Upstream error text, cleaned before a client reads it.

A vendor's 4xx message is worth passing on ("max_tokens is too large"), but vendors echo
what they were sent: ``Incorrect API key provided: sk-…``, the URL that was called, the
host. The gateway's own credentials and the addresses of its upstreams are not the
client's to see, so:

* :func:`scrub` (used by :func:`~.errors.classify` on every vendor message) masks what
  looks like a credential — ``sk-…``/``fk-…`` style keys, ``Bearer …``/``Basic …``,
  ``api_key=…``/``key provided: …``, long mixed-case or long alphanumeric tokens, JWTs —
  and replaces URLs, IP addresses, ``localhost``, host names and file paths (a local
  model's weights, a server's working directory) with placeholders;
* :class:`UpstreamSecrets` also masks, verbatim, every credential the gateway itself holds
  (the configured deployments' keys and header values, and the values of environment
  variables named like credentials), whatever their shape, and the configured upstream
  hosts.

Both run only on the error path.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

from ..config import Config, expand_env
from ..errors import APIError

__all__ = ["HOST", "PATH", "SECRET", "URL", "UpstreamSecrets", "scrub"]

E = TypeVar("E", bound=BaseException)

SECRET = "***"
URL = "[upstream URL]"
HOST = "[upstream host]"
PATH = "[server path]"

_URL = re.compile(r"(?i)\b[a-z][a-z0-9+.-]{1,15}://[^\s\"'<>`]*[^\s\"'<>`.,;:)]")
_IPV4 = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?\b")
_IPV6 = re.compile(r"\[[0-9A-Fa-f:.]{2,}\](?::\d{1,5})?")
_LOCALHOST = re.compile(r"(?i)\blocalhost(?::\d{1,5})?\b")
_DOMAIN = re.compile(
    r"(?i)\b(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+"
    r"(?:com|net|org|io|ai|dev|app|cloud|co|us|eu|internal|local|localdomain|lan|corp|"
    r"svc|azure|aws|goog|google)\b(?::\d{1,5})?"
)
#: An absolute or home-relative file path of two segments or more (POSIX or Windows).
_FILE_PATH = re.compile(
    r"(?<![\w.:/\\-])(?:~|[A-Za-z]:)?[/\\][\w.@+~-]+(?:[/\\][\w.@+~-]+)+[/\\]?"
)
_CREDENTIAL_PATTERNS = (
    # `Authorization: Bearer …`, `Basic …`
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{6,}"), r"\1 " + SECRET),
    # `Incorrect API key provided: …`, `api_key=…`, `"x-api-key": "…"`, `token: …`
    (
        re.compile(
            r"(?i)\b((?:x-)?api[_ -]?key|key\s+provided|access[_ -]?token|auth[_ -]?token|"
            r"secret|password|token|credentials?)(\"?\s*[:=]\s*[\"']?)[^\s\"',;)]{3,}[^\s\"',;).]"
        ),
        r"\1\2" + SECRET,
    ),
    # Prefixed keys: sk-…, sk-proj-…, fk-…, pk_…, hf_…, gsk_…, xai-…, AKIA…, ghp_…
    (
        re.compile(
            r"\b(sk|fk|pk|rk|hf|gsk|xai|ghp|gho|ghs|glpat|xox[abpr])"
            r"([-_])[A-Za-z0-9._-]{6,}"
        ),
        r"\1\2" + SECRET,
    ),
    (re.compile(r"\bAIza[0-9A-Za-z_-]{20,}"), "AIza" + SECRET),
    (re.compile(r"\bAKIA[0-9A-Z]{12,}"), "AKIA" + SECRET),
    # JWTs
    (re.compile(r"\beyJ[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]{6,}(?:\.[A-Za-z0-9_-]*)?"), SECRET),
)
#: A run of token characters long enough to be a key.
_TOKEN = re.compile(r"[A-Za-z0-9_+/=.~-]{16,}")
_PIECES = re.compile(r"[-_./+=~]+")
#: Environment variables whose values are credentials.
_CREDENTIAL_ENV = re.compile(r"(?i)(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH)")
_HOST_ENV = re.compile(r"(?i)(BASE_URL|_HOST|_ENDPOINT|_URL)$")
_MIN_SECRET = 8


def _key_like(token: str) -> bool:
    """Random-looking: a piece (between ``-_./+=~``) of 16+ characters mixing upper and
    lower case and digits, or of 24+ letters and digits (hex, base32). Model ids
    (``Meta-Llama-3.1-70B-Instruct``, ``gpt-4o-mini-2024-07-18``) have no such piece."""
    for piece in _PIECES.split(token):
        if len(piece) < 16:
            continue
        digits = sum(ch.isdigit() for ch in piece)
        letters = len(piece) - digits
        if not (digits and letters):
            continue
        if digits >= 2 and not piece.islower() and not piece.isupper():
            return True
        if len(piece) >= 24 and digits >= 4:
            return True
    return False


def _mask_token(match: re.Match[str]) -> str:
    token = match.group(0)
    return SECRET if _key_like(token) else token


def scrub(text: str) -> str:
    """``text`` without anything that looks like a credential, a URL, a host or a file
    path."""
    text = _URL.sub(URL, text)
    text = _FILE_PATH.sub(PATH, text)
    for pattern, replacement in _CREDENTIAL_PATTERNS:
        text = pattern.sub(replacement, text)
    text = _TOKEN.sub(_mask_token, text)
    text = _IPV6.sub(HOST, text)
    text = _IPV4.sub(HOST, text)
    text = _LOCALHOST.sub(HOST, text)
    return _DOMAIN.sub(HOST, text)


def _host(url: str) -> str | None:
    try:
        parts = urlsplit(url if "://" in url else f"//{url}")
        return parts.hostname
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class UpstreamSecrets:
    """The credentials and upstream hosts one gateway holds, masked verbatim."""

    secrets: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, config: Config, environ: dict[str, str] | None = None) -> UpstreamSecrets:
        env = dict(os.environ) if environ is None else environ
        secrets: set[str] = set()
        urls: list[str] = []
        for entry in config.models:
            refs = [entry.api_key, *(r.api_key for r in entry.replicas)]
            for ref in refs:
                if ref:
                    value, _ = expand_env(ref)
                    if value:
                        secrets.add(value)
            secrets.update(v for v in entry.headers.values())
            urls += [u for u in (entry.base_url, *(r.base_url for r in entry.replicas)) if u]
        for name, value in env.items():
            if _CREDENTIAL_ENV.search(name):
                secrets.add(value)
            elif _HOST_ENV.search(name) and value:
                urls.append(value)
        hosts = {h for h in map(_host, urls) if h}
        return cls(
            secrets=_longest_first(s for s in secrets if len(s) >= _MIN_SECRET),
            hosts=_longest_first(h for h in hosts if len(h) >= 4),
        )

    def text(self, text: str) -> str:
        """``text`` with URLs, these credentials and hosts masked, then :func:`scrub`-bed."""
        text = _URL.sub(URL, text)
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, SECRET)
        for host in self.hosts:
            if host in text:
                text = re.sub(re.escape(host) + r"(?::\d{1,5})?", HOST, text)
        return scrub(text)

    def clean(self, exc: E) -> E:
        """``exc`` with its message cleaned, when it is an upstream's (in place)."""
        if isinstance(exc, APIError) and exc.vendor not in (None, "crossroads"):
            exc.message = self.text(exc.message)
            exc.args = (exc.message,)
        return exc


def _longest_first(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(set(values), key=len, reverse=True))
