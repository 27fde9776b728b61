"""The router's cache of what each model name stands for, bounded (least recently used).

Any ``vendor/model`` name a key may call becomes a plan with a backend of its own (each
with its HTTP connection pool), so an unbounded cache would let one valid key grow the
gateway's memory without end, one made-up name at a time. :class:`PlanCache` keeps at
most ``size`` plans (``routing.plan_cache_size``); a deployment no cached plan uses any
more is *retired* and its backend closed later, off the request path, once no request
is in flight on it or may still try it (:meth:`PlanCache.closable`) — never under a
request.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .router import RoutePlan, Target

__all__ = ["PlanCache"]


class PlanCache:
    """Plans by model name, least recently used first out; counts which deployments the
    cached plans use, and holds the retired ones until they can be closed."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._plans: OrderedDict[str, RoutePlan] = OrderedDict()
        self._uses: Counter[int] = Counter()
        #: Deployments no cached plan uses, by ``id``, until they are closed.
        self.retired: dict[int, Target] = {}

    def __len__(self) -> int:
        return len(self._plans)

    def __contains__(self, name: str) -> bool:
        return name in self._plans

    def values(self) -> Iterator[RoutePlan]:
        return iter(list(self._plans.values()))

    def get(self, name: str) -> RoutePlan | None:
        plan = self._plans.get(name)
        if plan is not None:
            self._plans.move_to_end(name)
        return plan

    def __setitem__(self, name: str, plan: RoutePlan) -> None:
        """Cache ``plan``; the plans evicted to stay within ``size`` retire the
        deployments no other cached plan uses."""
        old = self._plans.pop(name, None)
        self._plans[name] = plan
        self._count(plan, +1)
        if old is not None:
            self._release(old)
        while len(self._plans) > self.size:
            _, evicted = self._plans.popitem(last=False)
            self._release(evicted)

    def in_use(self, target: Target) -> bool:
        return self._uses[id(target)] > 0

    def _count(self, plan: RoutePlan, step: int) -> None:
        for key in {id(t) for t in plan.targets}:
            self._uses[key] += step
            if self._uses[key] <= 0:
                del self._uses[key]

    def _release(self, plan: RoutePlan) -> None:
        self._count(plan, -1)
        for target in plan.targets:
            if not self.in_use(target):
                self.retired[id(target)] = target

    def closable(self) -> list[Target]:
        """Retired deployments that may be closed now, taken off the retired list: no
        cached plan uses them again, no request is in flight on them or may still try
        them (:attr:`Target.held`)."""
        ready: list[Target] = []
        for key, target in list(self.retired.items()):
            if self.in_use(target):
                del self.retired[key]  # picked up again by a new plan
            elif target.in_flight == 0 and target.held == 0:
                del self.retired[key]
                ready.append(target)
        return ready

    def clear(self) -> None:
        self._plans.clear()
        self._uses.clear()
        self.retired.clear()
