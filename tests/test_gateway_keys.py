"""Virtual keys on real SQLite and PostgreSQL: create, authenticate, revoke, expire, and
the raw key never stored."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text, update
from typer.testing import CliRunner

from crossroads.cli import app
from crossroads.config import crossroads_home
from crossroads.gateway.keys import (
    DuplicateKeyNameError,
    InvalidKeySettingsError,
    KeyRecord,
    KeyStore,
    UnknownKeyError,
    hash_key,
    is_master,
)
from crossroads.gateway.ledger import Ledger, UsageRecord
from crossroads.store import Database, api_keys, open_database

runner = CliRunner()


def isolated_postgres(url: str) -> Iterator[str]:
    """A fresh schema per test on the shared PostgreSQL, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{url}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        with open_database(f"sqlite:///{tmp_path / 'keys.db'}") as database:
            yield database
        return
    for url in isolated_postgres(request.getfixturevalue("postgres_url")):
        with open_database(url) as database:
            yield database


async def test_create_authenticate_revoke(db: Database) -> None:
    store = KeyStore(db, cache_ttl_s=0)
    raw, record = store.create("team-a", budget_usd=5.0, rpm=60, tpm=10_000)
    assert raw.startswith("sk-cr-") and len(raw) == 49
    assert record.prefix == raw[:12] and record.budget_usd == 5.0 and record.active()

    found = await store.authenticate(raw)
    assert found == record
    assert await store.authenticate(raw[:-1] + ("A" if raw[-1] != "A" else "B")) is None
    assert await store.authenticate("sk-cr-short") is None
    assert await store.authenticate("") is None

    with pytest.raises(DuplicateKeyNameError, match="crossroads keys revoke team-a"):
        store.create("team-a")
    assert [k.name for k in store.list()] == ["team-a"]

    revoked = store.revoke("team-a")
    assert revoked.revoked_at is not None and revoked.status() == "revoked"
    seen = await store.authenticate(raw)  # returned so the gateway can say "revoked"
    assert seen is not None and seen.status() == "revoked" and not seen.active()
    assert store.list() == []
    assert [k.id for k in store.list(include_revoked=True)] == [record.id]
    assert store.revoke(record.id).revoked_at == revoked.revoked_at  # idempotent

    raw2, again = store.create("team-a")  # a revoked name is free again
    assert again.id != record.id and await store.authenticate(raw2) == again
    assert (await store.authenticate(raw)) == revoked
    assert store.get("team-a").id == again.id  # the active one wins
    assert store.get(record.id).status() == "revoked"
    with pytest.raises(UnknownKeyError, match="nobody"):
        store.revoke("nobody")


async def test_revocation_reaches_other_processes_within_the_cache_ttl(db: Database) -> None:
    clock = [1000.0]
    admin = KeyStore(db, cache_ttl_s=0)
    gateway = KeyStore(db, cache_ttl_s=2.0, clock=lambda: clock[0])  # another process
    raw, record = admin.create("svc")
    assert await gateway.authenticate(raw) == record
    admin.revoke("svc")
    assert await gateway.authenticate(raw) == record  # still cached

    clock[0] += 2.01
    seen = await gateway.authenticate(raw)
    assert seen is not None and seen.status() == "revoked"

    # Negative answers are cached too: a key created elsewhere appears after the TTL.
    unknown = "sk-cr-" + "x" * 43
    assert await gateway.authenticate(unknown) is None
    with db.engine.begin() as conn:
        conn.execute(
            api_keys.insert().values(
                id="key_late",
                name="late",
                key_hash=hash_key(unknown),
                prefix=unknown[:12],
                models=[],
                created_at=datetime.now(UTC),
            )
        )
    assert await gateway.authenticate(unknown) is None
    clock[0] += 2.01
    found = await gateway.authenticate(unknown)
    assert found is not None and found.id == "key_late"


def test_only_hashes_are_stored(db: Database, tmp_path: Path) -> None:
    store = KeyStore(db, cache_ttl_s=0)
    raws = [store.create(f"k{i}", budget_usd=1.0)[0] for i in range(3)]
    store.revoke("k1")
    if db.url.startswith("sqlite"):
        db.dispose()
        blob = b"".join(p.read_bytes() for p in tmp_path.glob("keys.db*"))
        assert blob
        for raw in raws:
            assert raw.encode() not in blob
            assert raw[12:].encode() not in blob
            assert hash_key(raw).encode() in blob
    else:
        with db.engine.connect() as conn:
            dump = "\n".join(
                str(tuple(row)) for row in conn.execute(text("SELECT * FROM api_keys"))
            )
        for raw in raws:
            assert raw not in dump and raw[12:] not in dump
            assert hash_key(raw) in dump


async def test_allow_lists(db: Database) -> None:
    store = KeyStore(db, cache_ttl_s=0)
    _, everything = store.create("all")
    _, some = store.create("some", models=["openai/gpt-4o", " local/* ", ""])
    assert some.models == ("openai/gpt-4o", "local/*")
    assert everything.allows("anthropic/claude-sonnet-4")
    assert some.allows("openai/gpt-4o") and some.allows("local/smollm2")
    assert not some.allows("openai/gpt-4o-mini") and not some.allows("anthropic/claude")
    assert store.get("some").models == some.models


async def test_expiry(db: Database) -> None:
    store = KeyStore(db, cache_ttl_s=0)
    soon = datetime.now(UTC) + timedelta(hours=1)
    raw, record = store.create("temp", expires_at=soon)
    assert record.expires_at == soon and record.active()
    assert not record.active(soon + timedelta(seconds=1))
    assert await store.authenticate(raw) is not None

    with db.engine.begin() as conn:  # time passes
        conn.execute(
            update(api_keys)
            .where(api_keys.c.id == record.id)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    seen = await store.authenticate(raw)
    assert seen is not None and seen.status() == "expired" and not seen.active()
    assert store.get("temp").status() == "expired"
    _, fresh = store.create("temp")  # an expired key no longer holds its name
    assert store.get(record.id).status() == "revoked" and fresh.active()

    with pytest.raises(InvalidKeySettingsError, match="in the past"):
        store.create("late", expires_at=datetime.now(UTC) - timedelta(days=1))
    with pytest.raises(InvalidKeySettingsError, match="--rpm"):
        store.create("zero", rpm=0)


def test_master_key_check() -> None:
    assert is_master("sk-master-1", "sk-master-1")
    assert not is_master("sk-master-2", "sk-master-1")
    assert not is_master("anything", None) and not is_master("", "")


def test_key_record_without_limits() -> None:
    now = datetime.now(UTC)
    record = KeyRecord("key_x", "x", "sk-cr-abcdef", None, None, None, (), None, None, now)
    assert not record.has_limits and record.active() and record.status() == "active"


# -- the CLI -------------------------------------------------------------------------------


def test_keys_cli_create_list_revoke() -> None:
    made = runner.invoke(
        app,
        [
            "keys",
            "create",
            "--name",
            "ci",
            "--budget-usd",
            "2.5",
            "--rpm",
            "30",
            "--models",
            "openai/*,local/smollm2",
            "--expires",
            "2099-01-31",
        ],
    )
    assert made.exit_code == 0, made.output
    raw = next(w for w in made.stdout.split() if w.startswith("sk-cr-"))
    assert "shown only this once" in made.stderr

    as_json = runner.invoke(app, ["keys", "create", "--name", "bot", "--json"])
    assert as_json.exit_code == 0, as_json.output
    bot = json.loads(as_json.stdout)
    assert bot["key"].startswith("sk-cr-") and bot["status"] == "active"

    with open_database(f"sqlite:///{crossroads_home() / 'crossroads.db'}") as db:
        ci = KeyStore(db).get("ci")
        assert ci.expires_at == datetime(2099, 1, 31, tzinfo=UTC)
        assert ci.models == ("openai/*", "local/smollm2") and ci.rpm == 30

        async def spend() -> None:
            ledger = Ledger(db)
            await ledger.record(
                UsageRecord(
                    request_id="r1",
                    key_id=ci.id,
                    key_name="ci",
                    model="openai/gpt-4o",
                    endpoint="/v1/chat/completions",
                    status=200,
                    cost_usd=0.75,
                )
            )
            await ledger.aclose()

        import asyncio

        asyncio.run(spend())

    listed = runner.invoke(app, ["keys", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = {r["name"]: r for r in json.loads(listed.stdout)}
    assert rows["ci"]["spent_usd"] == 0.75 and rows["ci"]["budget_usd"] == 2.5
    assert rows["ci"]["prefix"] == raw[:12]
    assert raw not in listed.stdout and hash_key(raw) not in listed.stdout

    table = runner.invoke(app, ["keys", "list"], env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "$0.75" in table.stdout and "active" in table.stdout
    assert raw not in table.stdout

    gone = runner.invoke(app, ["keys", "revoke", "ci"])
    assert gone.exit_code == 0 and "Revoked key 'ci'" in gone.stdout
    remaining = json.loads(runner.invoke(app, ["keys", "list", "--json"]).stdout)
    assert [r["name"] for r in remaining] == ["bot"]
    everything = json.loads(runner.invoke(app, ["keys", "list", "--all", "--json"]).stdout)
    assert {r["name"]: r["status"] for r in everything} == {"ci": "revoked", "bot": "active"}

    unknown = runner.invoke(app, ["keys", "revoke", "nope"])
    assert unknown.exit_code == 1 and "No key named" in unknown.stderr
    dupe = runner.invoke(app, ["keys", "create", "--name", "bot"])
    assert dupe.exit_code == 1 and "already named 'bot'" in dupe.stderr
    bad = runner.invoke(app, ["keys", "create", "--name", "x", "--expires", "someday"])
    assert bad.exit_code == 2
