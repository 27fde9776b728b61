"""What a gateway request costs: vendor prices, self-hosted GPU-hours over measured
throughput, the embedded model flagged, unknown prices never $0."""

from __future__ import annotations

import time

import pytest

from crossroads.backends.base import Backend, Deployment, Prices
from crossroads.gateway.costing import price_of, reserve_usd
from crossroads.routing import Target
from crossroads.types import Usage


class _Idle(Backend):
    name = "idle"

    async def complete(self, request):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    def stream(self, request):  # type: ignore[no-untyped-def]
        raise NotImplementedError


def _target(prices: Prices | None = None, gpu_hour_usd: float | None = None) -> Target:
    deployment = Deployment(name="d", backend="idle", model="m", prices=prices)
    return Target(deployment, _Idle(deployment), gpu_hour_usd=gpu_hour_usd)


def test_vendor_prices_per_million_tokens() -> None:
    target = _target(Prices(input=10.0, output=30.0, cached_input=1.0))
    price = price_of(target, Usage(prompt_tokens=1000, completion_tokens=500, cached_tokens=200))
    assert price.usd == pytest.approx((800 * 10 + 200 * 1 + 500 * 30) / 1e6)
    assert price.flag is None


def test_self_hosted_is_priced_from_gpu_hours_and_measured_throughput() -> None:
    target = _target(gpu_hour_usd=3.6)  # $0.001 per GPU-second
    target.started()
    target.busy_since = time.monotonic() - 2.0  # busy for 2 s ...
    target.finished(None, tokens=400)  # ... producing 400 tokens: 200 tokens/s
    price = price_of(target, Usage(prompt_tokens=100, completion_tokens=100))
    # 200 tokens at 200 tokens/s = 1 GPU-second = $0.001 (within the timer's slack)
    assert price.flag == "self-hosted"
    assert price.usd == pytest.approx(0.001, rel=0.05)


def test_embedded_model_is_free_but_flagged_and_unknown_prices_are_none() -> None:
    free = price_of(_target(Prices(0.0, 0.0)), Usage(prompt_tokens=10, completion_tokens=10))
    assert free.usd == 0.0 and free.flag == "self-hosted"
    unknown = price_of(_target(None), Usage(prompt_tokens=10, completion_tokens=10))
    assert unknown.usd is None and unknown.flag == "unpriced"


def test_reservation_is_the_most_expensive_deployment_or_none() -> None:
    cheap, dear = _target(Prices(1.0, 2.0)), _target(Prices(10.0, 30.0))
    assert reserve_usd([cheap, dear], 100, 1000) == pytest.approx((100 * 10 + 1000 * 30) / 1e6)
    assert reserve_usd([cheap, _target(None)], 100, 1000) is None
