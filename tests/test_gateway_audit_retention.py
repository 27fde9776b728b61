"""A request whose ledger row waits in memory while the database is down keeps its guard
decisions: when the row is finally written, its audit events go with it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from crossroads.config import parse_config
from crossroads.gateway.ledger import LedgerUnavailableError
from crossroads.gateway.service import Call, Gateway
from crossroads.store import audit_log
from crossroads.types import Usage


class _Guard:
    """The part of a request's guard the ledger and audit trail read."""

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        self.decisions: list[Any] = []

    def audit_events(self) -> list[dict[str, Any]]:
        return [
            {"kind": "decision", "ref": self.request_id, "payload": {"check": "pii"}},
            {"kind": "request", "ref": self.request_id, "payload": {}},
        ]


async def test_guard_decisions_survive_a_database_outage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CROSSROADS_HOME", str(tmp_path))
    gateway = Gateway.create(parse_config("models: []\n", "crossroads.yaml"))
    gateway.ledger.retry_interval_s = 60
    real_append = gateway.ledger.on_commit
    assert real_append is not None
    down = [True]

    def flaky_append(connection: Any, records: Any) -> None:
        if down[0]:
            raise OperationalError("INSERT", {}, ConnectionError("database is down"))
        real_append(connection, records)

    gateway.ledger.on_commit = flaky_append
    call = Call(protocol="openai", endpoint="/v1/chat/completions", model="m")
    call.guard = _Guard(call.request_id)
    with pytest.raises(LedgerUnavailableError):
        await gateway.finish(call, 200, Usage())
    assert gateway.ledger.retained == 1

    down[0] = False  # back: the next request's commit carries the kept row
    await gateway.finish(Call(protocol="openai", endpoint="/v1/chat/completions"), 200, Usage())
    await gateway.aclose()
    with gateway.db.engine.connect() as conn:
        rows = conn.execute(
            select(audit_log.c.kind, audit_log.c.payload).where(audit_log.c.ref == call.request_id)
        ).all()
    kinds = sorted(kind for kind, _ in rows)
    assert kinds == ["decision", "request"]  # not a bare summary
    assert {"check": "pii"} in [json.loads(p) for _, p in rows]
