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
