"""The ledger's audit companion: every ledger row also goes to the hash-chained audit
log, in the same transaction, with the request's guard decisions and policy version."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .call import Call
from .ledger import UsageRecord

if TYPE_CHECKING:
    from sqlalchemy import Connection

__all__ = ["AuditTrail"]


class AuditTrail:
    """Every ledger row also goes to the hash-chained audit log, in the same transaction:
    the request, and with guardrails its decisions and the policy version applied."""

    def __init__(self) -> None:
        self._events: dict[str, list[dict[str, Any]]] = {}

    @staticmethod
    def _summary(record: UsageRecord) -> dict[str, Any]:
        return {
            "request_id": record.request_id,
            "key": record.key_name,
            "model": record.model,
            "deployment": record.deployment,
            "status": record.status,
            "error": record.error_class,
        }

    def expect(self, call: Call, record: UsageRecord) -> None:
        if call.guard is None:
            return
        events = call.guard.audit_events()
        for event in events:
            if event["kind"] == "request":
                event["payload"] = {**event["payload"], **self._summary(record)}
        self._events[record.request_id] = events

    def forget(self, request_id: str) -> None:
        self._events.pop(request_id, None)

    def append(self, connection: Connection, records: list[UsageRecord]) -> None:
        """The ledger's commit hook (inside the row's transaction: on the event loop or in
        the ledger's writer thread, possibly retried)."""
        from ..guard.audit import AuditLog

        events: list[dict[str, Any]] = []
        for record in records:
            found = self._events.get(record.request_id)
            events += found or [
                {"kind": "request", "ref": record.request_id, "payload": self._summary(record)}
            ]
        AuditLog.append(connection, events)
