"""Stored responses (migration 0004) on SQLite and PostgreSQL: one owner each."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import inspect

from crossroads.gateway.responses_store import ResponseStore
from crossroads.store import Database, open_database

from .test_gateway_keys import isolated_postgres


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        with open_database(f"sqlite:///{tmp_path / 'responses.db'}") as database:
            yield database
        return
    for url in isolated_postgres(request.getfixturevalue("postgres_url")):
        with open_database(url) as database:
            yield database


async def test_put_get_delete_per_owner(db: Database) -> None:
    assert "responses" in inspect(db.engine).get_table_names()
    store = ResponseStore(db)
    answer = {"id": "resp_abc", "model": "m", "output": [{"type": "message", "text": "é ✓"}]}
    turns = [{"role": "user", "content": "héllo"}, {"role": "assistant", "content": "hi"}]
    await store.put("key-a", answer, turns)
    stored = await store.get("key-a", "resp_abc")
    assert stored is not None and stored.response == answer and stored.conversation == turns
    assert await store.get("key-b", "resp_abc") is None  # another key: as if it did not exist
    assert await store.delete("key-b", "resp_abc") is False
    assert await store.get("key-a", "resp_missing") is None
    assert await store.delete("key-a", "resp_abc") is True
    assert await store.get("key-a", "resp_abc") is None
