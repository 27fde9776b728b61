"""Virtual keys: what a gateway client presents instead of a vendor key.

A raw key (``sk-cr-`` + 43 URL-safe characters) is shown once, by ``create``; the
database keeps only its SHA-256 and a 12-character display prefix. ``authenticate``
caches positive and negative answers for ``cache_ttl_s`` seconds, so a revocation
reaches every gateway process within that time; it returns revoked and expired keys
too (so the gateway can say why), and callers check ``KeyRecord.active()``. Raw keys
never appear in logs or exception messages.

    NotFoundError
    └── UnknownKeyError          no key with that name or id
    BadRequestError
    ├── InvalidKeySettingsError  a negative budget, a zero rpm, an expiry in the past …
    └── DuplicateKeyNameError    409: an active key already has that name
"""

from __future__ import annotations

import asyncio
import builtins
import fnmatch
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from .._time import as_utc
from ..errors import BadRequestError, NotFoundError
from ..store import Database, api_keys
from .inputs import name_problem

__all__ = [
    "KEY_PREFIX",
    "DuplicateKeyNameError",
    "InvalidKeySettingsError",
    "KeyRecord",
    "KeyStore",
    "UnknownKeyError",
    "hash_key",
    "is_master",
]

KEY_PREFIX = "sk-cr-"
_RAW_LENGTH = len(KEY_PREFIX) + 43
_DISPLAY_CHARS = 12
_CACHE_MAX = 10_000


class UnknownKeyError(NotFoundError):
    """No virtual key has that name or id."""


class DuplicateKeyNameError(BadRequestError):
    """An active key already uses the name."""

    status_code = 409


class InvalidKeySettingsError(BadRequestError):
    """A key's limits or expiry make no sense."""


def _utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every datetime here is aware UTC."""
    return None if value is None else as_utc(value)


def hash_key(raw: str) -> str:
    """The stored form of a key: SHA-256, hex."""
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def is_master(raw: str, master: str | None) -> bool:
    """True when ``raw`` is the admin key (constant time; False when none is set)."""
    if not master:
        return False
    return hmac.compare_digest(hash_key(raw), hash_key(master))


@dataclass(frozen=True)
class KeyRecord:
    """One virtual key as stored (never the raw key, never the hash)."""

    id: str
    name: str
    prefix: str
    budget_usd: float | None
    rpm: int | None
    tpm: int | None
    #: Model names or globs (``openai/*``) the key may call; empty = every model.
    models: tuple[str, ...]
    expires_at: datetime | None
    revoked_at: datetime | None
    created_at: datetime

    def allows(self, model: str) -> bool:
        """Whether the key may call ``model`` (the name the client asked for)."""
        return not self.models or any(
            model == allowed or fnmatch.fnmatchcase(model, allowed) for allowed in self.models
        )

    def active(self, now: datetime | None = None) -> bool:
        """Not revoked and not expired at ``now`` (default: the current time)."""
        now = now or datetime.now(UTC)
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or now < self.expires_at

    def status(self, now: datetime | None = None) -> str:
        """``active``, ``expired`` or ``revoked``."""
        if self.revoked_at is not None:
            return "revoked"
        return "active" if self.active(now) else "expired"

    @property
    def has_limits(self) -> bool:
        return self.budget_usd is not None or self.rpm is not None or self.tpm is not None

    def public(self) -> dict[str, Any]:
        """The key as the CLI and the admin API show it: never the key, never its hash."""
        return {
            "id": self.id,
            "name": self.name,
            "prefix": self.prefix,
            "budget_usd": self.budget_usd,
            "rpm": self.rpm,
            "tpm": self.tpm,
            "models": list(self.models),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "created_at": self.created_at.isoformat(),
            "status": self.status(),
        }


def _record(row: Row[Any]) -> KeyRecord:
    created = _utc(row.created_at)
    assert created is not None
    return KeyRecord(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        budget_usd=row.budget_usd,
        rpm=row.rpm,
        tpm=row.tpm,
        models=tuple(row.models or ()),
        expires_at=_utc(row.expires_at),
        revoked_at=_utc(row.revoked_at),
        created_at=created,
    )


_PUBLIC_COLUMNS = [c for c in api_keys.c if c.name != "key_hash"]


class KeyStore:
    """Create, list, revoke and authenticate virtual keys stored in ``db``."""

    def __init__(
        self,
        db: Database,
        *,
        cache_ttl_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.cache_ttl_s = cache_ttl_s
        self._clock = clock
        # hash -> (monotonic deadline, record or None)
        self._cache: dict[str, tuple[float, KeyRecord | None]] = {}

    # -- administration (synchronous: the CLI and admin endpoints) --------------------

    def create(
        self,
        name: str,
        *,
        budget_usd: float | None = None,
        rpm: int | None = None,
        tpm: int | None = None,
        models: Iterable[str] = (),
        expires_at: datetime | None = None,
    ) -> tuple[str, KeyRecord]:
        """A new key; returns the raw key (shown once, stored nowhere) and its record."""
        name = name.strip()
        allowed = tuple(m.strip() for m in models if m.strip())
        now = datetime.now(UTC)
        expires_at = _utc(expires_at)
        problems = []
        if not name or len(name) > 200:
            problems.append("the name must be 1–200 characters")
        elif (problem := name_problem(name)) is not None:
            problems.append(f"the name {problem}")  # it becomes a label and a ledger column
        for pattern in allowed:
            if (problem := name_problem(pattern)) is not None:
                problems.append(f"the model pattern {pattern!r} {problem}")
        if budget_usd is not None and budget_usd < 0:
            problems.append("--budget-usd must be 0 or more")
        if rpm is not None and rpm < 1:
            problems.append("--rpm must be at least 1")
        if tpm is not None and tpm < 1:
            problems.append("--tpm must be at least 1")
        if expires_at is not None and expires_at <= now:
            problems.append(f"the expiry {expires_at.isoformat()} is in the past")
        if problems:
            raise InvalidKeySettingsError(f"Cannot create key {name!r}: " + "; ".join(problems))

        raw = KEY_PREFIX + secrets.token_urlsafe(32)[:43]
        record = KeyRecord(
            id="key_" + secrets.token_hex(8),
            name=name,
            prefix=raw[:_DISPLAY_CHARS],
            budget_usd=budget_usd,
            rpm=rpm,
            tpm=tpm,
            models=allowed,
            expires_at=expires_at,
            revoked_at=None,
            created_at=now,
        )
        try:
            with self.db.engine.begin() as conn:
                # An expired key no longer holds its name: retire it so the name is free.
                conn.execute(
                    update(api_keys)
                    .where(
                        api_keys.c.name == name,
                        api_keys.c.revoked_at.is_(None),
                        api_keys.c.expires_at.is_not(None),
                        api_keys.c.expires_at <= now,
                    )
                    .values(revoked_at=now)
                )
                conn.execute(
                    insert(api_keys).values(
                        id=record.id,
                        name=record.name,
                        key_hash=hash_key(raw),
                        prefix=record.prefix,
                        budget_usd=budget_usd,
                        rpm=rpm,
                        tpm=tpm,
                        models=list(allowed),
                        expires_at=expires_at,
                        revoked_at=None,
                        created_at=now,
                    )
                )
        except IntegrityError:
            # The partial unique index on active names (a hash collision is not a concern
            # for 256 random bits). The driver's message is dropped: it echoes parameters.
            raise DuplicateKeyNameError(
                f"An active key is already named {name!r}. Pick another name, or revoke "
                f"it first: crossroads keys revoke {name}"
            ) from None
        return raw, record

    def list(self, include_revoked: bool = False) -> builtins.list[KeyRecord]:
        """Keys oldest first; revoked ones only when asked."""
        query = select(*_PUBLIC_COLUMNS).order_by(api_keys.c.created_at, api_keys.c.id)
        if not include_revoked:
            query = query.where(api_keys.c.revoked_at.is_(None))
        with self.db.engine.connect() as conn:
            return [_record(row) for row in conn.execute(query)]

    def get(self, name_or_id: str) -> KeyRecord:
        """The key with this id, else the unrevoked (or latest) key with this name."""
        with self.db.engine.connect() as conn:
            row = conn.execute(
                select(*_PUBLIC_COLUMNS)
                .where(or_(api_keys.c.id == name_or_id, api_keys.c.name == name_or_id))
                .order_by(
                    (api_keys.c.id == name_or_id).desc(),
                    api_keys.c.revoked_at.is_(None).desc(),
                    api_keys.c.created_at.desc(),
                )
                .limit(1)
            ).first()
        if row is None:
            raise UnknownKeyError(
                f"No key named or with id {name_or_id!r}. See `crossroads keys list --all`."
            )
        return _record(row)

    def revoke(self, name_or_id: str) -> KeyRecord:
        """Revoke a key now (idempotent); gateways stop accepting it within the cache TTL."""
        record = self.get(name_or_id)
        if record.revoked_at is not None:
            return record
        now = datetime.now(UTC)
        with self.db.engine.begin() as conn:
            conn.execute(
                update(api_keys)
                .where(api_keys.c.id == record.id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
        self._cache.clear()
        return self.get(record.id)

    # -- the request path --------------------------------------------------------------

    async def authenticate(self, raw: str) -> KeyRecord | None:
        """The stored key for ``raw`` (None when unknown or malformed).

        A revoked or expired key is returned too, so the caller can say why it is
        refused: **check ``record.active()`` before serving.**"""
        if len(raw) != _RAW_LENGTH or not raw.startswith(KEY_PREFIX):
            return None
        digest = hash_key(raw)
        now = self._clock()
        cached = self._cache.get(digest)
        if cached is not None and cached[0] > now:
            record = cached[1]
        else:
            record = await asyncio.to_thread(self._lookup, digest)
            if self.cache_ttl_s > 0:
                if len(self._cache) >= _CACHE_MAX:
                    self._prune(now)
                self._cache[digest] = (now + self.cache_ttl_s, record)
        return record

    def _lookup(self, digest: str) -> KeyRecord | None:
        with self.db.engine.connect() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.key_hash == digest)).first()
        if row is None or not hmac.compare_digest(row.key_hash, digest):
            return None
        return _record(row)

    def _prune(self, now: float) -> None:
        self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
        if len(self._cache) >= _CACHE_MAX:  # a flood of distinct keys: start over
            self._cache.clear()
