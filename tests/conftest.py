from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from types import ModuleType
from typing import NoReturn

import pytest

from .fakes.openai_fake import OpenAIFake
from .fakes.server import FakeServer
from .vendors import _fakes, vendor  # noqa: F401  (fixtures shared by e2e tests)


def on_ci() -> bool:
    """True on CI (``CI`` set to true/True/TRUE/1/yes), where a missing requirement is a
    failure, never a skip. GitHub Actions, GitLab and most runners set ``CI=true``; some
    set ``CI=1``: all mean the same here."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def skip_or_fail(reason: str) -> NoReturn:
    """A failure on CI (every test must run there), elsewhere a skip saying ``reason``."""
    if on_ci():
        pytest.fail(f"required under CI: {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def require(module: str, hint: str) -> ModuleType:
    """Import ``module`` for a test that needs it.

    When it is missing: a failure under CI=true (CI must run every test), elsewhere a
    skip that says how to install it (``hint``). Works in a test, a fixture, or at
    module level.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if on_ci():
            pytest.fail(f"{module} is required under CI=true ({hint}): {exc}", pytrace=False)
        pytest.skip(f"{module} is not installed: {hint}", allow_module_level=True)


@pytest.fixture(autouse=True)
def _isolated_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """No test sees the developer's keys, config or state."""
    for var in (
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_BASE_URL",
        "GEMINI_API_KEY",
        "GOOGLE_API_KEY",
        "GOOGLE_GEMINI_BASE_URL",
        "CROSSROADS_CONFIG",
        "CROSSROADS_MASTER_KEY",
    ):
        monkeypatch.delenv(var, raising=False)
    home = tmp_path_factory.mktemp("crossroads-home")
    monkeypatch.setenv("CROSSROADS_HOME", str(home))
    monkeypatch.chdir(home)


@pytest.fixture
def openai_fake(_fakes: dict[str, FakeServer]) -> Iterator[OpenAIFake]:  # noqa: F811
    fake = _fakes["openai"]
    assert isinstance(fake, OpenAIFake)
    fake.replies.clear()
    fake.requests.clear()
    yield fake
    fake.replies.clear()


POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture
def postgres_url() -> str:
    """The CI PostgreSQL; a failure under CI=true, a skip (with how to enable) elsewhere."""
    from sqlalchemy import create_engine, text

    try:
        engine = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
    except Exception as exc:
        if on_ci():
            pytest.fail(f"PostgreSQL is required under CI=true ({POSTGRES_URL}): {exc}")
        pytest.skip(
            f"PostgreSQL not reachable at {POSTGRES_URL}; start it on 127.0.0.1:5432 with "
            "trust auth and a database `test` to run this test, e.g. `docker run -p 5432:5432 "
            "-e POSTGRES_HOST_AUTH_METHOD=trust -e POSTGRES_DB=test postgres:16`"
        )
    return POSTGRES_URL


REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
_REDIS_LOCK = "crossroads-test-lock"


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis database (1–15) held by this test alone, emptied before and after.

    The CI Redis; a failure under CI=true, a skip (with how to enable) elsewhere. A lock
    key claims the database, so concurrent test sessions never share one.
    """
    import uuid

    import redis

    token = uuid.uuid4().hex
    claimed: redis.Redis | None = None
    try:
        for db in range(1, 16):
            client = redis.Redis(REDIS_HOST, REDIS_PORT, db=db, socket_timeout=3)
            try:
                if client.set(_REDIS_LOCK, token, nx=True, ex=900):
                    claimed = client
                    break
            finally:
                if claimed is not client:
                    client.close()
    except redis.RedisError as exc:
        if on_ci():
            pytest.fail(f"Redis is required under CI=true ({REDIS_HOST}:{REDIS_PORT}): {exc}")
        pytest.skip(
            f"Redis not reachable at {REDIS_HOST}:{REDIS_PORT}; start Redis on "
            f"{REDIS_HOST}:{REDIS_PORT} to run this test, e.g. "
            f"`docker run -p {REDIS_PORT}:{REDIS_PORT} redis:7`"
        )
    if claimed is None:
        pytest.fail("every Redis database 1–15 is held by another test session")

    def empty() -> None:
        for name in claimed.scan_iter(count=1000):
            if name != _REDIS_LOCK.encode():
                claimed.delete(name)

    db_number = claimed.connection_pool.connection_kwargs["db"]
    empty()
    try:
        yield f"redis://{REDIS_HOST}:{REDIS_PORT}/{db_number}"
    finally:
        empty()
        if claimed.get(_REDIS_LOCK) == token.encode():
            claimed.delete(_REDIS_LOCK)
        claimed.close()
