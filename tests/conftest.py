from __future__ import annotations

from collections.abc import Iterator

import pytest

from .fakes.openai_fake import OpenAIFake
from .fakes.server import FakeServer
from .vendors import _fakes, vendor  # noqa: F401  (fixtures shared by e2e tests)


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
    import os

    from sqlalchemy import create_engine, text

    try:
        engine = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
    except Exception as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required under CI=true ({POSTGRES_URL}): {exc}")
        pytest.skip(
            f"PostgreSQL not reachable at {POSTGRES_URL}; start it (trust auth, "
            "database `test`) to run this test"
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
    import os
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
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis is required under CI=true ({REDIS_HOST}:{REDIS_PORT}): {exc}")
        pytest.skip(f"Redis not reachable at {REDIS_HOST}:{REDIS_PORT}; start it to run this test")
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
