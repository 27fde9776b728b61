"""Limits shared by every gateway process and replica through one Redis (Lua scripts,
so each admission is atomic)."""

from __future__ import annotations

import asyncio
import builtins
import logging
import time
import uuid
from collections import deque
from collections.abc import Mapping
from typing import Any

from ..keys import KeyRecord
from .admission import (
    WINDOW_S,
    Admission,
    LimitStoreUnavailableError,
    Verdict,
    conclude,
    unlimited,
)
from .exhausted import RpmMemo, budget_spent

__all__ = ["RedisLimiter"]

log = logging.getLogger("crossroads.gateway.limits")

_MICRO = 1_000_000

# KEYS: rpm zset, tpm zset, tpm hash, tpm total, spent, res hash, res zset, res total
# ARGV: rpm, tpm, tokens, budget (micro-USD, -1 = none), max cost (micro-USD), seed spent,
#       slot, window ms, reservation ttl ms
_ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rpm, tpm, tokens = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local budget, max_cost = tonumber(ARGV[4]), tonumber(ARGV[5])
local slot, window, res_ttl = ARGV[7], tonumber(ARGV[8]), tonumber(ARGV[9])
local cutoff = now - window
local status, retry = 0, 0
local rpm_used, rpm_reset, tpm_used, tpm_reset, spent, reserved = 0, 0, 0, 0, 0, 0
if rpm > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', cutoff)
  rpm_used = redis.call('ZCARD', KEYS[1])
  if rpm_used > 0 then
    rpm_reset = tonumber(redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2]) + window - now
  end
  if rpm_used >= rpm then status, retry = 1, rpm_reset end
end
if tpm > 0 then
  local old = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', cutoff)
  for _, member in ipairs(old) do
    local n = redis.call('HGET', KEYS[3], member)
    if n then redis.call('DECRBY', KEYS[4], n); redis.call('HDEL', KEYS[3], member) end
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', cutoff)
  if redis.call('ZCARD', KEYS[2]) == 0 then
    redis.call('DEL', KEYS[3], KEYS[4])
  else
    tpm_used = tonumber(redis.call('GET', KEYS[4]) or '0')
    tpm_reset = tonumber(redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')[2]) + window - now
  end
  if status == 0 and tokens > tpm then
    status, retry = 3, window
  elseif status == 0 and tpm_used + tokens > tpm then
    status, retry = 2, window
    local need, freed, start = tpm_used + tokens - tpm, 0, 0
    while retry == window do
      local batch = redis.call('ZRANGE', KEYS[2], start, start + 99, 'WITHSCORES')
      if #batch == 0 then break end
      for i = 1, #batch, 2 do
        freed = freed + tonumber(redis.call('HGET', KEYS[3], batch[i]) or '0')
        if freed >= need then retry = tonumber(batch[i + 1]) + window - now; break end
      end
      start = start + 100
    end
  end
end
if budget >= 0 then
  redis.call('SET', KEYS[5], ARGV[6], 'NX')
  spent = tonumber(redis.call('GET', KEYS[5]))
  local stale = redis.call('ZRANGEBYSCORE', KEYS[7], '-inf', now - res_ttl)
  for _, member in ipairs(stale) do
    local n = redis.call('HGET', KEYS[6], member)
    if n then redis.call('DECRBY', KEYS[8], n); redis.call('HDEL', KEYS[6], member) end
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[7], '-inf', now - res_ttl)
  if redis.call('ZCARD', KEYS[7]) == 0 then
    redis.call('DEL', KEYS[6], KEYS[8])
  else
    reserved = tonumber(redis.call('GET', KEYS[8]) or '0')
  end
  if status == 0 and spent + reserved + max_cost > budget then status = 4 end
end
if status == 0 then
  if rpm > 0 then
    redis.call('ZADD', KEYS[1], now, slot)
    redis.call('PEXPIRE', KEYS[1], window + 1000)
    rpm_used = rpm_used + 1
    rpm_reset = tonumber(redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2]) + window - now
  end
  if tpm > 0 then
    redis.call('ZADD', KEYS[2], now, slot)
    redis.call('HSET', KEYS[3], slot, ARGV[3])
    tpm_used = redis.call('INCRBY', KEYS[4], ARGV[3])
    tpm_reset = tonumber(redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')[2]) + window - now
    for i = 2, 4 do redis.call('PEXPIRE', KEYS[i], window + 1000) end
  end
  if budget >= 0 then
    redis.call('ZADD', KEYS[7], now, slot)
    redis.call('HSET', KEYS[6], slot, ARGV[5])
    reserved = redis.call('INCRBY', KEYS[8], ARGV[5])
    for i = 6, 8 do redis.call('PEXPIRE', KEYS[i], res_ttl + window) end
  end
end
return {status, retry, rpm_used, rpm_reset, tpm_used, tpm_reset, spent, reserved}
"""

# KEYS: tpm zset, tpm hash, tpm total, spent, res hash, res zset, res total
# ARGV: slot, tokens (-1 = no TPM), cost (micro-USD, -1 = no budget), seed spent
_SETTLE = """
local slot, tokens, cost = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
if tokens >= 0 and redis.call('ZSCORE', KEYS[1], slot) then
  local old = tonumber(redis.call('HGET', KEYS[2], slot) or '0')
  redis.call('HSET', KEYS[2], slot, ARGV[2])
  redis.call('INCRBY', KEYS[3], tokens - old)
end
local spent = 0
if cost >= 0 then
  local n = redis.call('HGET', KEYS[5], slot)
  if n then
    redis.call('HDEL', KEYS[5], slot)
    if redis.call('DECRBY', KEYS[7], n) < 0 then redis.call('SET', KEYS[7], 0) end
  end
  redis.call('ZREM', KEYS[6], slot)
  redis.call('SET', KEYS[4], ARGV[4], 'NX')
  spent = redis.call('INCRBY', KEYS[4], ARGV[3])
end
return spent
"""


def _micro(usd: float) -> int:
    return max(round(usd * _MICRO), 0)


def _safe_url(url: str) -> str:
    """The URL without credentials, for messages."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}{rest.rsplit('@', 1)[-1]}" if sep else url.rsplit("@", 1)[-1]


class RedisLimiter:
    """Limits shared by every gateway process and replica through one Redis.

    Each operation is one Lua script (EVALSHA, loaded again if Redis lost it), so
    admission is atomic across replicas; time comes from Redis (``TIME``), spend is
    stored as integer micro-dollars. A key's spend is seeded (``SET NX``) from the
    ledger-derived ``initial_spent`` plus what this process settled, the first time the
    key is seen after a start or a Redis flush: the ledger stays the durable truth.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 1.0,
        initial_spent: Mapping[str, float] | None = None,
        prefix: str = "crossroads:",
        reservation_ttl_s: float = 900.0,
        retry_interval_s: float = 1.0,
        max_connections: int = 64,
    ) -> None:
        from redis.asyncio import BlockingConnectionPool, Redis

        self.url = _safe_url(url)
        self.timeout_s = timeout_s
        self.prefix = prefix
        self.reservation_ttl_s = reservation_ttl_s
        self.retry_interval_s = retry_interval_s
        self._known_spent: dict[str, float] = dict(initial_spent or {})
        self._pool = BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=timeout_s,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
        )
        self._redis = Redis(connection_pool=self._pool)
        self._admit = self._redis.register_script(_ADMIT)
        self._settle = self._redis.register_script(_SETTLE)
        self._down_until = 0.0
        self._outage_logged = False
        self._rpm_full = RpmMemo()
        #: Settles Redis missed while it was down, replayed once it answers again.
        self._unsettled: deque[tuple[Admission, int, float]] = deque(maxlen=100_000)

    def _keys(self, key_id: str) -> dict[str, str]:
        base = f"{self.prefix}{{{key_id}}}:"  # one hash slot per key (Redis Cluster)
        names = ("rpm", "tpm", "tpmtok", "tpmsum", "spent", "res", "resz", "ressum")
        return {n: base + n for n in names}

    async def _call(self, script: Any, keys: builtins.list[str], args: builtins.list[Any]) -> Any:
        """One script call bounded by ``timeout_s``; failures mark Redis down a moment."""
        from redis.exceptions import RedisError

        if time.monotonic() < self._down_until:
            raise LimitStoreUnavailableError(self._down_message())
        try:
            async with asyncio.timeout(self.timeout_s):
                result = await script(keys=keys, args=args)
        except (RedisError, OSError, builtins.TimeoutError) as exc:
            self._down_until = time.monotonic() + self.retry_interval_s
            if not self._outage_logged:
                self._outage_logged = True
                log.warning(
                    "Redis at %s failed (%s): keys with a budget get 503, keys with only "
                    "RPM/TPM are served without limits until it answers again",
                    self.url,
                    exc.__class__.__name__,
                )
            raise LimitStoreUnavailableError(self._down_message()) from exc
        if self._outage_logged:
            self._outage_logged = False
            log.warning("Redis at %s answers again; limits are enforced", self.url)
        return result

    def _down_message(self) -> str:
        return (
            f"The rate-limit store (Redis at {self.url}) did not answer within "
            f"{self.timeout_s:g}s, and this key has a budget that cannot be checked "
            "without it. Retry shortly; an admin should check Redis."
        )

    async def precheck(self, key: KeyRecord) -> None:
        """From this process's last verdict for the key and the spend it knows (a lower
        bound of what Redis holds): never a round trip, never a false refusal."""
        if not key.has_limits:
            return
        spent = budget_spent(key, self._known_spent.get(key.id, 0.0))
        if spent is not None:
            raise spent
        self._rpm_full.check(key, time.monotonic())

    async def admit(self, key: KeyRecord, *, tokens: int, max_cost_usd: float) -> Admission:
        if not key.has_limits:
            return unlimited(key, tokens)
        if self._unsettled:
            await self._replay()
        k = self._keys(key.id)
        slot = uuid.uuid4().hex
        budget = -1 if key.budget_usd is None else _micro(key.budget_usd)
        args = [
            key.rpm or 0,
            key.tpm or 0,
            max(tokens, 0),
            budget,
            _micro(max_cost_usd),
            _micro(self._known_spent.get(key.id, 0.0)),
            slot,
            int(WINDOW_S * 1000),
            int(self.reservation_ttl_s * 1000),
        ]
        keys = [k[n] for n in ("rpm", "tpm", "tpmtok", "tpmsum", "spent", "res", "resz", "ressum")]
        try:
            raw = await self._call(self._admit, keys, args)
        except LimitStoreUnavailableError:
            if key.budget_usd is not None:
                raise
            return unlimited(key, tokens)  # fail open: RPM/TPM only protect upstream quotas
        status, retry, rpm_used, rpm_reset, tpm_used, tpm_reset, spent, reserved = (
            int(x) for x in raw
        )
        if key.budget_usd is not None:
            self._note_spent(key.id, spent / _MICRO)
        self._rpm_full.note(key, rpm_used, rpm_reset / 1000, time.monotonic())
        v = Verdict(
            status,
            retry / 1000,
            rpm_used,
            rpm_reset / 1000,
            tpm_used,
            tpm_reset / 1000,
            spent / _MICRO,
            reserved / _MICRO,
        )
        return conclude(key, v, tokens=tokens, max_cost_usd=max_cost_usd, slot=slot)

    def _note_spent(self, key_id: str, value: float) -> None:
        self._known_spent[key_id] = max(self._known_spent.get(key_id, 0.0), value)

    async def settle(self, admission: Admission, *, tokens: int, cost_usd: float) -> None:
        """Never raises for Redis trouble: a missed settle is kept and replayed later."""
        if admission.settled:
            return
        admission.settled = True
        self._known_spent[admission.key_id] = (
            self._known_spent.get(admission.key_id, 0.0) + cost_usd
        )
        if not admission.enforced:
            return
        try:
            await self._send_settle(admission, tokens, cost_usd)
        except LimitStoreUnavailableError:
            self._unsettled.append((admission, tokens, cost_usd))
            log.warning("settle for key %s kept for replay: Redis is down", admission.key_id)

    async def _send_settle(self, admission: Admission, tokens: int, cost_usd: float) -> None:
        k = self._keys(admission.key_id)
        args = [
            admission.request_slot,
            max(tokens, 0) if admission.counts_tokens else -1,
            _micro(cost_usd) if admission.budgeted else -1,
            # the seed is what was known before this cost was added locally
            _micro(self._known_spent.get(admission.key_id, 0.0) - cost_usd),
        ]
        keys = [k[n] for n in ("tpm", "tpmtok", "tpmsum", "spent", "res", "resz", "ressum")]
        spent = int(await self._call(self._settle, keys, args))
        if spent:
            self._note_spent(admission.key_id, spent / _MICRO)

    async def _replay(self) -> None:
        for _ in range(min(len(self._unsettled), 64)):
            admission, tokens, cost = self._unsettled[0]
            try:
                await self._send_settle(admission, tokens, cost)
            except LimitStoreUnavailableError:
                return
            self._unsettled.popleft()

    async def spent(self, key_id: str) -> float:
        """What Redis holds for the key (kept for keys with a budget), else what this
        process knows from the ledger and its own settles."""
        from redis.exceptions import RedisError

        try:
            async with asyncio.timeout(self.timeout_s):
                value = await self._redis.get(self._keys(key_id)["spent"])
        except (RedisError, OSError, builtins.TimeoutError) as exc:
            raise LimitStoreUnavailableError(self._down_message()) from exc
        if value is None:
            return self._known_spent.get(key_id, 0.0)
        return int(value) / _MICRO

    async def aclose(self) -> None:
        if self._unsettled and time.monotonic() >= self._down_until:
            await self._replay()
        if self._unsettled:
            log.warning(
                "%d settles never reached Redis; their cost is in the ledger and is "
                "counted again from it at the next start",
                len(self._unsettled),
            )
        await self._redis.aclose()
        await self._pool.disconnect()
