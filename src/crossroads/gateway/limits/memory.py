"""Limits kept in one process (each gateway worker counts alone)."""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ..keys import KeyRecord
from .admission import WINDOW_S, Admission, Verdict, conclude, unlimited
from .exhausted import budget_spent, over_rpm

__all__ = ["MemoryLimiter"]


@dataclass
class _KeyWindow:
    requests: deque[float] = field(default_factory=deque)
    #: slot -> [admitted at, tokens], oldest first.
    tokens: OrderedDict[str, list[float]] = field(default_factory=OrderedDict)
    tokens_total: int = 0
    reserved: dict[str, float] = field(default_factory=dict)


class MemoryLimiter:
    """Limits kept in this process (one gateway process; each worker counts alone)."""

    def __init__(
        self,
        initial_spent: Mapping[str, float] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._spent: dict[str, float] = dict(initial_spent or {})
        self._windows: dict[str, _KeyWindow] = {}
        self._clock = clock

    def _prune(self, w: _KeyWindow, now: float) -> None:
        cutoff = now - WINDOW_S
        while w.requests and w.requests[0] <= cutoff:
            w.requests.popleft()
        while w.tokens:
            slot, (at, count) = next(iter(w.tokens.items()))
            if at > cutoff:
                break
            del w.tokens[slot]
            w.tokens_total -= int(count)

    async def precheck(self, key: KeyRecord) -> None:
        if not key.has_limits:
            return
        spent = budget_spent(key, self._spent.get(key.id, 0.0))
        if spent is not None:
            raise spent
        w = self._windows.get(key.id)
        if key.rpm is not None and w is not None:
            now = self._clock()
            self._prune(w, now)
            if len(w.requests) >= key.rpm:
                raise over_rpm(key, w.requests[0] + WINDOW_S - now)

    async def admit(self, key: KeyRecord, *, tokens: int, max_cost_usd: float) -> Admission:
        if not key.has_limits:
            return unlimited(key, tokens)
        now = self._clock()
        w = self._windows.setdefault(key.id, _KeyWindow())
        self._prune(w, now)
        v = Verdict(0, 0.0, len(w.requests), 0.0, w.tokens_total, 0.0, 0.0, 0.0)
        if w.requests:
            v.rpm_reset_s = w.requests[0] + WINDOW_S - now
        if w.tokens:
            v.tpm_reset_s = next(iter(w.tokens.values()))[0] + WINDOW_S - now
        v.spent_usd = self._spent.get(key.id, 0.0)
        v.reserved_usd = sum(w.reserved.values())
        if key.rpm is not None and v.rpm_used >= key.rpm:
            v.status, v.retry_after_s = 1, v.rpm_reset_s
        elif key.tpm is not None and tokens > key.tpm:
            v.status, v.retry_after_s = 3, WINDOW_S
        elif key.tpm is not None and w.tokens_total + tokens > key.tpm:
            v.status, v.retry_after_s = 2, WINDOW_S
            need, freed = w.tokens_total + tokens - key.tpm, 0
            for at, count in w.tokens.values():
                freed += int(count)
                if freed >= need:
                    v.retry_after_s = at + WINDOW_S - now
                    break
        elif (
            key.budget_usd is not None
            and v.spent_usd + v.reserved_usd + max_cost_usd > key.budget_usd + 1e-9
        ):
            v.status = 4
        slot = uuid.uuid4().hex
        if v.status == 0:
            if key.rpm is not None:
                w.requests.append(now)
                v.rpm_used += 1
                v.rpm_reset_s = w.requests[0] + WINDOW_S - now
            if key.tpm is not None:
                w.tokens[slot] = [now, float(tokens)]
                w.tokens_total += tokens
                v.tpm_used = w.tokens_total
                v.tpm_reset_s = next(iter(w.tokens.values()))[0] + WINDOW_S - now
            if key.budget_usd is not None:
                w.reserved[slot] = max_cost_usd
        return conclude(key, v, tokens=tokens, max_cost_usd=max_cost_usd, slot=slot)

    async def settle(self, admission: Admission, *, tokens: int, cost_usd: float) -> None:
        if admission.settled:
            return
        admission.settled = True
        self._spent[admission.key_id] = self._spent.get(admission.key_id, 0.0) + cost_usd
        w = self._windows.get(admission.key_id)
        if w is None or not admission.enforced:
            return
        w.reserved.pop(admission.request_slot, None)
        entry = w.tokens.get(admission.request_slot)
        if entry is not None:
            w.tokens_total += tokens - int(entry[1])
            entry[1] = float(tokens)

    async def spent(self, key_id: str) -> float:
        return self._spent.get(key_id, 0.0)

    async def aclose(self) -> None:
        return None
