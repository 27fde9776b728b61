"""Responses kept with ``store: true`` (table ``responses``), one owner each.

The owner is the id of the key that created the response (``master`` for the master
key): every read and delete is filtered by it, so a key cannot tell another key's
response from one that does not exist (both are 404). Rows are written off the event
loop; a stored response is committed before its client gets the end of the answer.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select

from ..store import Database, responses
from .call import Call

__all__ = ["ResponseStore", "StoredResponse", "owner_of"]


def owner_of(call: Call) -> str:
    """Whose responses ``call`` may store and read."""
    if call.key is not None:
        return call.key.id
    return "master"


@dataclass(frozen=True, slots=True)
class StoredResponse:
    id: str
    response: dict[str, Any]
    #: The canonical messages up to and including the answer (no instructions).
    conversation: list[dict[str, Any]]


class ResponseStore:
    """Stored responses in the gateway's database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def put(
        self, owner: str, response: dict[str, Any], conversation: list[dict[str, Any]]
    ) -> None:
        row = {
            "id": response["id"],
            "owner": owner,
            "model": str(response.get("model") or "-")[:200],
            "created_at": dt.datetime.now(dt.UTC),
            "response": response,
            "conversation": conversation,
        }
        await asyncio.to_thread(self._put, row)

    def _put(self, row: dict[str, Any]) -> None:
        with self.db.engine.begin() as conn:
            conn.execute(insert(responses).values(**row))

    async def get(self, owner: str, response_id: str) -> StoredResponse | None:
        """The response ``response_id`` if ``owner`` stored it, else None."""
        return await asyncio.to_thread(self._get, owner, response_id)

    def _get(self, owner: str, response_id: str) -> StoredResponse | None:
        with self.db.engine.connect() as conn:
            row = conn.execute(
                select(responses.c.id, responses.c.response, responses.c.conversation).where(
                    responses.c.id == response_id, responses.c.owner == owner
                )
            ).first()
        if row is None:
            return None
        return StoredResponse(row.id, dict(row.response), list(row.conversation))

    async def delete(self, owner: str, response_id: str) -> bool:
        """Delete ``owner``'s response; False when there is none."""
        return await asyncio.to_thread(self._delete, owner, response_id)

    def _delete(self, owner: str, response_id: str) -> bool:
        with self.db.engine.begin() as conn:
            result = conn.execute(
                delete(responses).where(
                    responses.c.id == response_id, responses.c.owner == owner
                )
            )
        return bool(result.rowcount)
