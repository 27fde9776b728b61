"""A real PostgreSQL outage under the gateway: its connections are terminated by the
server (``pg_terminate_backend``) while requests are in flight; the database takes new
connections at once.

Nothing the gateway answered is lost from the ledger or the audit chain, the chain still
verifies, and no request gets a 503: the database was never gone for longer than a
reconnect. (A database that stays down is covered in test_gateway_ledger.py: the
caller gets LedgerUnavailableError, a 503, and the rows are kept and written later.)
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import create_engine, select, text

from crossroads.guard.audit import verify
from crossroads.store import audit_log, open_database, usage_ledger

from .fakes.openai_fake import OpenAIFake
from .fakes.server import Reply
from .gateway_harness import MASTER, gateway_thread
from .test_gateway_keys import isolated_postgres


@pytest.fixture
def schema_url(postgres_url: str) -> Iterator[str]:
    yield from isolated_postgres(postgres_url)


@pytest.fixture
def upstream() -> Iterator[OpenAIFake]:
    with OpenAIFake(require_key=False) as fake:
        yield fake


def _terminate(admin_url: str, application: str) -> int:
    """Kill, server-side, every session the gateway holds (its pool: ledger writer, key
    store, audit), found by the application name its database URL gives."""
    engine = create_engine(admin_url)
    try:
        with engine.begin() as conn:
            killed = conn.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = :app AND pid <> pg_backend_pid()"
                ),
                {"app": application},
            ).scalar_one()
    finally:
        engine.dispose()
    return int(killed)


def _chat(url: str, key: str, n: int) -> httpx.Response:
    return httpx.post(
        url + "/v1/chat/completions",
        json={"model": "mine", "messages": [{"role": "user", "content": f"request {n}"}]},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )


def test_connections_terminated_mid_request_lose_nothing(
    schema_url: str, postgres_url: str, upstream: OpenAIFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CROSSROADS_MASTER_KEY", MASTER)
    application = f"crossroads-outage-{uuid.uuid4().hex[:8]}"
    database_url = f"{schema_url}&application_name={application}"
    config = (
        "models:\n"
        "  - name: mine\n"
        "    backend: openai\n"
        "    model: gpt-4o-mini\n"
        f"    base_url: {upstream.url}/v1\n"
        f"database_url: {database_url}\n"
        "gateway:\n"
        "  master_key: ${CROSSROADS_MASTER_KEY}\n"
    )
    statuses: dict[int, int] = {}
    ids: dict[int, str] = {}
    with gateway_thread(config) as gw:
        key = gw.create_key("team", budget_usd=100)
        for n in range(5):  # warm: the pool holds live connections
            upstream.script(Reply(f"answer {n}"))
            response = _chat(gw.url, key, n)
            statuses[n], ids[n] = response.status_code, response.headers["x-request-id"]

        # Five requests in flight (the upstream takes 0.6 s) when the database drops
        # every connection the gateway holds.
        for n in range(5, 10):
            upstream.script(Reply(f"answer {n}", delay_s=0.6))

        def send(n: int) -> None:
            response = _chat(gw.url, key, n)
            statuses[n], ids[n] = response.status_code, response.headers["x-request-id"]

        threads = [threading.Thread(target=send, args=(n,)) for n in range(5, 10)]
        for t in threads:
            t.start()
        time.sleep(0.2)
        assert _terminate(postgres_url, application) >= 1
        for t in threads:
            t.join(timeout=60)

        # The database is back (it never stopped accepting connections): no 503 now.
        for n in range(10, 20):
            upstream.script(Reply(f"answer {n}"))
            send(n)
        assert [statuses[n] for n in range(10, 20)] == [200] * 10
    # The gateway has stopped: everything it answered is in the database.
    # The connections died but the database never stopped taking new ones: the ledger's
    # retry reconnects, so not even the five in flight needed a 503.
    assert statuses == {n: 200 for n in range(20)}
    answered = set(ids.values())
    assert len(answered) == 20
    with open_database(schema_url) as db:
        with db.engine.connect() as conn:
            rows = {
                r.request_id: r
                for r in conn.execute(
                    select(usage_ledger.c.request_id, usage_ledger.c.status,
                           usage_ledger.c.prompt_tokens, usage_ledger.c.completion_tokens)
                )
            }
            audited = {
                r.ref
                for r in conn.execute(
                    select(audit_log.c.ref).where(audit_log.c.kind == "request")
                )
            }
        assert answered <= set(rows), "a request answered 200 is missing from the ledger"
        assert all(rows[i].status == 200 and rows[i].prompt_tokens == 11 for i in answered)
        assert answered <= audited, "a request answered 200 is missing from the audit log"
        report = verify(db)
        assert report.ok, report.as_dict()
        assert report.count == len(audited) >= 20
