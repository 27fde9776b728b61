"""Rate limits and budgets, in memory and on a real Redis (also shared by two processes
and against a Redis that never answers)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crossroads.config.gateway import GatewaySettings
from crossroads.errors import ConfigError
from crossroads.gateway.keys import KeyRecord
from crossroads.gateway.limits import (
    Admission,
    BudgetExceededError,
    Limiter,
    LimitStoreUnavailableError,
    MemoryLimiter,
    RateLimitedError,
    RedisLimiter,
    make_limiter,
)

MakeLimiter = Callable[[Mapping[str, float] | None], Limiter]


def key(
    *,
    budget_usd: float | None = None,
    rpm: int | None = None,
    tpm: int | None = None,
) -> KeyRecord:
    return KeyRecord(
        id="key_" + uuid.uuid4().hex[:16],
        name="team",
        prefix="sk-cr-abcdef",
        budget_usd=budget_usd,
        rpm=rpm,
        tpm=tpm,
        models=(),
        expires_at=None,
        revoked_at=None,
        created_at=datetime.now(UTC),
    )


@pytest.fixture(params=["memory", "redis"])
async def make(request: pytest.FixtureRequest) -> AsyncIterator[MakeLimiter]:
    made: list[Limiter] = []
    url = request.getfixturevalue("redis_url") if request.param == "redis" else None

    def factory(initial: Mapping[str, float] | None = None) -> Limiter:
        limiter: Limiter = (
            RedisLimiter(url, timeout_s=2.0, initial_spent=initial)
            if url
            else MemoryLimiter(initial)
        )
        made.append(limiter)
        return limiter

    yield factory
    for limiter in made:
        await limiter.aclose()


async def gather(calls: list[Awaitable[Admission]]) -> tuple[list[Admission], list[BaseException]]:
    results = await asyncio.gather(*calls, return_exceptions=True)
    ok = [r for r in results if isinstance(r, Admission)]
    failed = [r for r in results if isinstance(r, BaseException)]
    return ok, failed


async def test_rpm_is_strict_under_concurrency(make: MakeLimiter) -> None:
    limiter, k = make(None), key(rpm=60)
    ok, failed = await gather([limiter.admit(k, tokens=10, max_cost_usd=0.0) for _ in range(500)])
    assert len(ok) == 60 and len(failed) == 440
    assert sorted(int(a.headers["x-ratelimit-remaining-requests"]) for a in ok) == list(range(60))
    assert all(a.headers["x-ratelimit-limit-requests"] == "60" for a in ok)
    for exc in failed:
        assert isinstance(exc, RateLimitedError)
        assert exc.status_code == 429 and 0 < exc.retry_after_s <= 60
        assert exc.retry_after == exc.retry_after_s
        assert exc.headers["x-ratelimit-remaining-requests"] == "0"
        assert exc.headers["x-ratelimit-limit-requests"] == "60"
        assert int(exc.headers["retry-after"]) >= 1 and "x-ratelimit-reset-requests" in exc.headers
        assert "60 requests per minute" in exc.message
    assert "x-ratelimit-limit-tokens" not in ok[0].headers


async def test_tpm_counts_reservations_and_settles_correct_them(make: MakeLimiter) -> None:
    limiter, k = make(None), key(tpm=1000)
    ok, failed = await gather([limiter.admit(k, tokens=100, max_cost_usd=0.0) for _ in range(50)])
    assert len(ok) == 10 and len(failed) == 40
    for exc in failed:
        assert isinstance(exc, RateLimitedError) and exc.code == "rate_limit_exceeded"
        assert exc.headers["x-ratelimit-remaining-tokens"] == "0"
        assert exc.headers["x-ratelimit-limit-tokens"] == "1000" and exc.retry_after_s > 0

    too_big = limiter.admit(k, tokens=1001, max_cost_usd=0.0)
    with pytest.raises(RateLimitedError, match="lower max_tokens") as info:
        await too_big
    assert info.value.code == "request_too_large"
    assert info.value.headers["x-should-retry"] == "false"

    # Two requests used 10 tokens instead of 100: 180 tokens come back.
    await limiter.settle(ok[0], tokens=10, cost_usd=0.0)
    await limiter.settle(ok[1], tokens=10, cost_usd=0.0)
    await limiter.settle(ok[1], tokens=10, cost_usd=0.0)  # a second settle is ignored
    again = await limiter.admit(k, tokens=100, max_cost_usd=0.0)
    assert again.headers["x-ratelimit-remaining-tokens"] == "80"
    with pytest.raises(RateLimitedError):
        await limiter.admit(k, tokens=100, max_cost_usd=0.0)


async def test_budget_reserves_worst_case_and_settles_real_cost(make: MakeLimiter) -> None:
    k = key(budget_usd=1.0)
    limiter = make({k.id: 0.25})
    assert await limiter.spent(k.id) == pytest.approx(0.25)
    first = await limiter.admit(k, tokens=10, max_cost_usd=0.3)
    second = await limiter.admit(k, tokens=10, max_cost_usd=0.3)
    assert first.reserved_usd == 0.3 and first.headers == {}
    with pytest.raises(BudgetExceededError) as info:
        await limiter.admit(k, tokens=10, max_cost_usd=0.3)  # 0.25 + 0.6 + 0.3 > 1
    exc = info.value
    assert exc.status_code == 429 and exc.code == "insufficient_quota"
    assert exc.error_type == "insufficient_quota"
    assert exc.headers == {"x-should-retry": "false"}
    assert "$1.00 budget" in exc.message and "crossroads keys create" in exc.message
    assert "--budget-usd" in exc.message

    await limiter.settle(first, tokens=10, cost_usd=0.05)  # frees 0.25 of the reservation
    assert await limiter.spent(k.id) == pytest.approx(0.30)
    third = await limiter.admit(k, tokens=10, max_cost_usd=0.3)  # 0.30 + 0.3 + 0.3 ≤ 1
    await limiter.settle(second, tokens=10, cost_usd=0.3)
    await limiter.settle(third, tokens=10, cost_usd=0.3)
    assert await limiter.spent(k.id) == pytest.approx(0.90)
    with pytest.raises(BudgetExceededError):
        await limiter.admit(k, tokens=10, max_cost_usd=0.2)
    await limiter.admit(k, tokens=10, max_cost_usd=0.1)


async def test_keys_without_limits_are_not_counted(make: MakeLimiter) -> None:
    limiter, k = make(None), key()
    admissions = [await limiter.admit(k, tokens=10**6, max_cost_usd=10.0) for _ in range(3)]
    assert all(not a.enforced and a.headers == {} for a in admissions)
    await limiter.settle(admissions[0], tokens=5, cost_usd=0.5)


async def test_memory_window_slides() -> None:
    now = [100.0]
    limiter, k = MemoryLimiter(clock=lambda: now[0]), key(rpm=2, tpm=300)
    await limiter.admit(k, tokens=100, max_cost_usd=0)
    now[0] += 30
    await limiter.admit(k, tokens=100, max_cost_usd=0)
    with pytest.raises(RateLimitedError) as info:
        await limiter.admit(k, tokens=100, max_cost_usd=0)
    assert info.value.retry_after_s == pytest.approx(30.0)
    assert info.value.headers["x-ratelimit-reset-requests"] == "30s"
    now[0] += 30.001  # the first request leaves the window
    admitted = await limiter.admit(k, tokens=200, max_cost_usd=0)
    assert admitted.headers["x-ratelimit-remaining-requests"] == "0"
    assert admitted.headers["x-ratelimit-remaining-tokens"] == "0"


async def test_redis_reseeds_spend_after_a_flush(redis_url: str) -> None:
    import redis.asyncio as aioredis

    k = key(budget_usd=1.0)
    limiter = RedisLimiter(redis_url, initial_spent={k.id: 0.5}, prefix="p:")
    try:
        admission = await limiter.admit(k, tokens=1, max_cost_usd=0.2)
        await limiter.settle(admission, tokens=1, cost_usd=0.1)
        assert await limiter.spent(k.id) == pytest.approx(0.6)
        client = aioredis.Redis.from_url(redis_url)
        names = [n async for n in client.scan_iter(match="p:*")]
        assert names and all(k.id.encode() in n for n in names)
        await client.delete(*names)  # Redis lost its data
        await client.aclose()
        with pytest.raises(BudgetExceededError):
            await limiter.admit(k, tokens=1, max_cost_usd=0.5)  # 0.6 + 0.5 > 1
        assert await limiter.spent(k.id) == pytest.approx(0.6)
    finally:
        await limiter.aclose()


_WORKER = """
import asyncio, json, random, sys
from datetime import UTC, datetime
from crossroads.gateway.keys import KeyRecord
from crossroads.gateway.limits import BudgetExceededError, RedisLimiter

url, key_id, cycles = sys.argv[1], sys.argv[2], int(sys.argv[3])
key = KeyRecord(key_id, "shared", "sk-cr-shared", 1.0, None, None, (), None, None,
                datetime.now(UTC))

async def main():
    limiter = RedisLimiter(url, timeout_s=5.0)
    admitted, spent = 0, 0.0
    async def cycle():
        nonlocal admitted, spent
        for _ in range(20):  # refused while others hold reservations: try again shortly
            try:
                a = await limiter.admit(key, tokens=100, max_cost_usd=0.05)
                break
            except BudgetExceededError:
                await asyncio.sleep(random.random() / 50)
        else:
            return
        await asyncio.sleep(random.random() / 100)
        cost = round(random.uniform(0.0, 0.05), 6)
        await limiter.settle(a, tokens=50, cost_usd=cost)
        admitted += 1
        spent += cost
    sys.stdin.readline()  # start together
    await asyncio.gather(*(cycle() for _ in range(cycles)))
    await limiter.aclose()
    print(json.dumps({"admitted": admitted, "spent": spent}))

asyncio.run(main())
"""


def test_budget_holds_across_two_processes(redis_url: str, tmp_path: Path) -> None:
    script = tmp_path / "worker.py"
    script.write_text(_WORKER)
    key_id = "key_" + uuid.uuid4().hex[:16]
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), redis_url, key_id, "200"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = []
    try:
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        for proc in procs:
            out, _ = proc.communicate(timeout=120)
            assert proc.returncode == 0
            outputs.append(json.loads(out))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()

    async def spent() -> float:
        limiter = RedisLimiter(redis_url)
        try:
            return await limiter.spent(key_id)
        finally:
            await limiter.aclose()

    total = asyncio.run(spent())
    assert sum(o["admitted"] for o in outputs) >= 20  # each admission costs ≤ 0.05 of 1.0
    assert total == pytest.approx(sum(o["spent"] for o in outputs), abs=1e-5)
    assert total <= 1.0 + 1e-6  # reservations make it exact, not just "one request over"


# -- Redis that never answers ----------------------------------------------------------------


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A TCP port that accepts connections and never says anything."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


async def test_unanswering_redis_fails_closed_for_budgets_and_open_otherwise(
    silent_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"redis://127.0.0.1:{silent_port}/0"
    caplog.set_level(logging.WARNING, "crossroads.gateway.limits")

    budgeted = RedisLimiter(url, timeout_s=0.5, initial_spent={})
    try:
        with pytest.raises(LimitStoreUnavailableError, match=r"did not answer within 0\.5s"):
            await asyncio.wait_for(
                budgeted.admit(key(budget_usd=5.0, rpm=10), tokens=1, max_cost_usd=0.1), 2.5
            )
        with pytest.raises(LimitStoreUnavailableError) as info:  # still down: refused at once
            await asyncio.wait_for(
                budgeted.admit(key(budget_usd=5.0), tokens=1, max_cost_usd=0.1), 2.5
            )
        assert info.value.status_code == 503
    finally:
        await budgeted.aclose()

    rate_only = RedisLimiter(url, timeout_s=0.5)
    try:
        k = key(rpm=1, tpm=10)
        for _ in range(3):  # over the limit, yet served: failing open
            admission = await asyncio.wait_for(rate_only.admit(k, tokens=100, max_cost_usd=0), 2.5)
            assert not admission.enforced
            await rate_only.settle(admission, tokens=1, cost_usd=0.0)
        free = await rate_only.admit(key(), tokens=1, max_cost_usd=1.0)
        assert not free.enforced
    finally:
        await rate_only.aclose()
    outage_logs = [r for r in caplog.records if "failed" in r.getMessage()]
    assert len(outage_logs) == 2  # once per limiter and outage, not once per request
    assert "keys with only RPM/TPM are served without limits" in outage_logs[0].getMessage()


async def test_refused_connection_fails_the_same_way() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    limiter = RedisLimiter(f"redis://:secret@127.0.0.1:{port}/0", timeout_s=0.5)
    try:
        with pytest.raises(LimitStoreUnavailableError) as info:
            await asyncio.wait_for(
                limiter.admit(key(budget_usd=1.0), tokens=1, max_cost_usd=0.1), 2.5
            )
        assert "secret" not in info.value.message
        assert not (await limiter.admit(key(tpm=5), tokens=1, max_cost_usd=0)).enforced
    finally:
        await limiter.aclose()


async def test_make_limiter_follows_settings(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    memory = make_limiter(GatewaySettings(), {"k": 1.0})
    assert isinstance(memory, MemoryLimiter) and await memory.spent("k") == 1.0
    shared = make_limiter(GatewaySettings(redis_url=redis_url, redis_timeout_s=3), None)
    assert isinstance(shared, RedisLimiter) and shared.timeout_s == 3
    await shared.aclose()
    monkeypatch.setenv("TEST_REDIS_URL", redis_url)
    from_env = make_limiter(GatewaySettings(redis_url="${TEST_REDIS_URL}"), None)
    assert isinstance(from_env, RedisLimiter)
    await from_env.aclose()
    monkeypatch.delenv("TEST_REDIS_URL")
    with pytest.raises(ConfigError, match="TEST_REDIS_URL"):
        make_limiter(GatewaySettings(redis_url="${TEST_REDIS_URL}"), None)
    assert os.environ.get("TEST_REDIS_URL") is None
