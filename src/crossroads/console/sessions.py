"""Console sessions and the failed-login limit, held in this process's memory.

A session id is a random token (never the key); the key it was opened with stays on the
server, so the playground can call the gateway as that key. Sessions end on logout, after
:data:`IDLE_S` without a request, after :data:`MAX_AGE_S` in all, and when their key is
revoked or expires.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import deque
from dataclasses import dataclass, field

__all__ = [
    "IDLE_S",
    "LOGIN_FAILURES",
    "LOGIN_WINDOW_S",
    "MAX_AGE_S",
    "LoginLimiter",
    "Session",
    "SessionStore",
]

#: A session ends after this long without a request (seconds).
IDLE_S = 30 * 60
#: ... and after this long in all, however busy.
MAX_AGE_S = 12 * 3600
#: Failed logins allowed from one client address within :data:`LOGIN_WINDOW_S`.
LOGIN_FAILURES = 5
LOGIN_WINDOW_S = 300.0
_MAX_SESSIONS = 10_000
_MAX_ADDRESSES = 10_000


@dataclass
class Session:
    """Who is logged in: the master key (``admin``) or one virtual key."""

    id: str
    admin: bool
    #: The key's name ("master" for the master key) and id (None for the master key).
    name: str
    key_id: str | None
    #: The key itself, kept server-side only (the playground calls the gateway with it).
    secret: str = field(repr=False)
    csrf_token: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    # looked up at each call (not bound once at import), so one clock serves every reading
    created: float = field(default_factory=lambda: time.monotonic())
    seen: float = field(default_factory=lambda: time.monotonic())

    def expired(self, now: float) -> bool:
        return now - self.seen > IDLE_S or now - self.created >= MAX_AGE_S  # ends at 12 h

    def csrf_ok(self, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(str(token), self.csrf_token)


class SessionStore:
    """The open sessions of this process, by id."""

    def __init__(self) -> None:
        self._sessions: dict[str, Session] = {}

    def open(self, *, admin: bool, name: str, key_id: str | None, secret: str) -> Session:
        now = time.monotonic()
        if len(self._sessions) >= _MAX_SESSIONS:
            self._prune(now)
            if len(self._sessions) >= _MAX_SESSIONS:  # drop the least recently used
                oldest = min(self._sessions.values(), key=lambda s: s.seen)
                self._sessions.pop(oldest.id, None)
        session = Session(
            id=secrets.token_urlsafe(32), admin=admin, name=name, key_id=key_id, secret=secret
        )
        self._sessions[session.id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        """The live session ``session_id`` (its idle clock restarted), or None."""
        if not session_id:
            return None
        session = self._sessions.get(session_id)
        if session is None:
            return None
        now = time.monotonic()
        if session.expired(now):
            self._sessions.pop(session_id, None)
            return None
        session.seen = now
        return session

    def close(self, session_id: str | None) -> None:
        if session_id:
            self._sessions.pop(session_id, None)

    def close_key(self, key_id: str) -> None:
        """End every session opened with the key ``key_id`` (it was revoked)."""
        for sid in [s.id for s in self._sessions.values() if s.key_id == key_id]:
            self._sessions.pop(sid, None)

    def __len__(self) -> int:
        return len(self._sessions)

    def _prune(self, now: float) -> None:
        for sid in [s.id for s in self._sessions.values() if s.expired(now)]:
            self._sessions.pop(sid, None)


class LoginLimiter:
    """At most :data:`LOGIN_FAILURES` failed logins per client address per
    :data:`LOGIN_WINDOW_S` seconds (a sliding window)."""

    def __init__(
        self, failures: int = LOGIN_FAILURES, window_s: float = LOGIN_WINDOW_S
    ) -> None:
        self.failures, self.window_s = failures, window_s
        self._seen: dict[str, deque[float]] = {}

    def retry_after(self, address: str) -> int:
        """Seconds until ``address`` may try again; 0 when it may now."""
        times = self._recent(address, time.monotonic())
        if len(times) < self.failures:
            return 0
        return max(1, int(times[0] + self.window_s - time.monotonic()) + 1)

    def remaining(self, address: str) -> int:
        """Failed logins ``address`` may still make before it must wait."""
        return max(0, self.failures - len(self._recent(address, time.monotonic())))

    def failed(self, address: str) -> None:
        if address not in self._seen and len(self._seen) >= _MAX_ADDRESSES:
            now = time.monotonic()
            for stale in [a for a in self._seen if not self._recent(a, now)]:
                self._seen.pop(stale, None)
        self._seen.setdefault(address, deque()).append(time.monotonic())

    def succeeded(self, address: str) -> None:
        self._seen.pop(address, None)

    def _recent(self, address: str, now: float) -> deque[float]:
        times = self._seen.get(address, deque())
        while times and now - times[0] > self.window_s:
            times.popleft()
        return times
