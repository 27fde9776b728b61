"""Sessions end (idle, age, logout, a revoked key); the login limit's window slides."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from crossroads.console import sessions
from crossroads.console.sessions import LoginLimiter, SessionStore

from .conftest import MASTER, RunningConsole


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(sessions.time, "monotonic", fake)
    return fake


def test_a_session_ends_after_idle_time_and_after_its_maximum_age(clock: Clock) -> None:
    store = SessionStore()
    idle = store.open(admin=True, name="master", key_id=None, secret="k")
    clock.now += sessions.IDLE_S - 1
    assert store.get(idle.id) is idle  # a request restarts the idle clock
    clock.now += sessions.IDLE_S - 1
    assert store.get(idle.id) is idle
    clock.now += sessions.IDLE_S + 1
    assert store.get(idle.id) is None and len(store) == 0
    busy = store.open(admin=True, name="master", key_id=None, secret="k")
    for _ in range(sessions.MAX_AGE_S // (sessions.IDLE_S // 2)):
        clock.now += sessions.IDLE_S // 2
        store.get(busy.id)
    assert store.get(busy.id) is None  # however busy, not past the maximum age


def test_sessions_of_a_revoked_key_end_and_ids_are_not_keys(clock: Clock) -> None:
    store = SessionStore()
    one = store.open(admin=False, name="a", key_id="k1", secret="sk-cr-secret")
    other = store.open(admin=False, name="b", key_id="k2", secret="sk-cr-other")
    assert "sk-cr-secret" not in one.id and "sk-cr-secret" not in repr(one)
    store.close_key("k1")
    assert store.get(one.id) is None and store.get(other.id) is other


def test_the_login_limit_window_slides(clock: Clock) -> None:
    limiter = LoginLimiter(failures=3, window_s=60)
    for _ in range(3):
        assert limiter.retry_after("1.2.3.4") == 0
        limiter.failed("1.2.3.4")
        clock.now += 10
    assert limiter.retry_after("1.2.3.4") == 31  # the first failure leaves the window then
    assert limiter.retry_after("5.6.7.8") == 0  # per address
    clock.now += 31
    assert limiter.retry_after("1.2.3.4") == 0 and limiter.remaining("1.2.3.4") == 1


def test_revoking_a_key_ends_its_console_session(
    console_server: RunningConsole, console_client: Any
) -> None:
    key = console_server.create_key("leaving")
    client = console_client(console_server, key).http
    assert client.get("/logs").status_code == 200
    revoked = httpx.delete(console_server.url + "/admin/keys/leaving",
                           headers={"Authorization": f"Bearer {MASTER}"})
    assert revoked.status_code == 200
    answer = client.get("/logs")
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/login"
    assert client.get("/api/calls/x").status_code == 401
