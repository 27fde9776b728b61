"""``crossroads replay``: stored production requests (the ledger's bodies, kept with
``gateway.store_bodies: true``) as an evaluation suite whose expected answers are the
production answers, run on candidate models with the usual runner.

Each item's id is the request id (so a replay of the requests a shadow run saw has the
same items as that run), its prompt the conversation as the production model received
it (after its guard's redactions), its expected value the answer the client got.
Streamed requests have no stored answer body and are left out; so are requests that
failed, the shadow rules' own calls (``shadow:NAME`` rows) and embeddings.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import and_, func, or_, select

from ..errors import ConfigError
from ..evals.suite import Suite, parse_suite
from ..store import Database, usage_ledger
from ..types import ChatRequest, text_of
from .dispatcher import prompt_text

__all__ = ["ReplayItem", "parse_since", "replay_items", "replay_suite", "write_suite"]

_CHAT_ENDPOINTS = ("/v1/chat/completions", "/v1/messages")
_SINCE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str) -> timedelta:
    """``7d``, ``12h``, ``30m``, ``2w``, ``90s`` as a duration."""
    found = _SINCE.match(text)
    if found is None:
        raise ConfigError(f"--since {text!r}: give a duration such as 7d, 12h, 30m or 2w.")
    return timedelta(**{_UNITS[found.group(2)]: float(found.group(1))})


@dataclass(frozen=True, slots=True)
class ReplayItem:
    """One stored request and the answer its client got."""

    request_id: str
    created_at: datetime
    model: str
    system: str | None
    input: str
    expected: str


def _conversation(body: Any) -> tuple[str | None, str]:
    """The system prompt and the rest of the conversation as text."""
    request = ChatRequest.model_validate(body)
    system = [text_of(m.content) for m in request.messages if m.role in ("system", "developer")]
    rest = [m for m in request.messages if m.role not in ("system", "developer")]
    text = prompt_text(request.model_copy(update={"messages": rest})) if rest else ""
    return ("\n\n".join(system) or None), text


def _answer(body: Any) -> str:
    choices = (body or {}).get("choices") or []
    if not choices:
        return ""
    return text_of((choices[0].get("message") or {}).get("content"))


def replay_items(
    db: Database,
    *,
    since: timedelta,
    match: str | None = None,
    limit: int | None = None,
    store_bodies: bool = False,
) -> list[ReplayItem]:
    """The stored requests of the last ``since`` (oldest first) whose model or deployment
    matches ``match`` (globs allowed); a :class:`ConfigError` naming ``store_bodies``
    when the ledger has requests but no bodies for them."""
    start = datetime.now(UTC) - since
    where = and_(
        usage_ledger.c.created_at >= start,
        usage_ledger.c.status == 200,
        usage_ledger.c.endpoint.in_(_CHAT_ENDPOINTS),
        or_(usage_ledger.c.key_name.is_(None), ~usage_ledger.c.key_name.like("shadow:%")),
    )
    query = (
        select(
            usage_ledger.c.request_id,
            usage_ledger.c.created_at,
            usage_ledger.c.model,
            usage_ledger.c.deployment,
            usage_ledger.c.request_body,
            usage_ledger.c.response_body,
        )
        .where(where)
        .where(usage_ledger.c.request_body.is_not(None))
        .where(usage_ledger.c.response_body.is_not(None))
        .order_by(usage_ledger.c.created_at, usage_ledger.c.id)
    )
    items: list[ReplayItem] = []
    with db.engine.connect() as conn:
        for row in conn.execute(query).mappings():
            names = (row["model"], row["deployment"] or "")
            if match and not any(fnmatch.fnmatchcase(n, match) for n in names):
                continue
            expected = _answer(row["response_body"])
            if not expected:
                continue  # tool calls only: nothing to compare
            system, text = _conversation(row["request_body"])
            items.append(
                ReplayItem(
                    row["request_id"], row["created_at"], row["model"], system, text, expected
                )
            )
            if limit is not None and len(items) >= limit:
                break
        if not items:
            total = conn.execute(select(func.count()).where(where)).scalar() or 0
    if items:
        return items
    scope = f" matching {match!r}" if match else ""
    if total or not store_bodies:
        raise ConfigError(
            f"No stored request bodies{scope} in the last {since} ({total} requests in the "
            "ledger without them): replay needs `gateway.store_bodies: true` in "
            "crossroads.yaml while the traffic is served."
        )
    raise ConfigError(f"No requests{scope} in the last {since}: widen --since or --match.")


def _spec(
    name: str, scorers: Sequence[dict[str, Any]], items: Sequence[ReplayItem]
) -> dict[str, Any]:
    return {
        "name": name,
        "description": f"{len(items)} production requests replayed from the gateway's ledger",
        "system": "{{ system }}",
        "prompt": "{{ input }}",
        "scorers": [dict(s) for s in scorers],
    }


def _rows(items: Sequence[ReplayItem]) -> list[dict[str, Any]]:
    return [
        {
            "id": i.request_id,
            "input": i.input,
            "system": i.system or "",
            "expected": i.expected,
            "tags": [i.model],
        }
        for i in items
    ]


def replay_suite(
    name: str, scorers: Sequence[dict[str, Any]], items: Sequence[ReplayItem]
) -> Suite:
    """The items as a suite (the production answer as ``expected``)."""
    spec = {**_spec(name, scorers, items), "items": _rows(items)}
    return parse_suite(json.dumps(spec), f"replay of {len(items)} requests")


def write_suite(
    path: Path, suite_name: str, scorers: Sequence[dict[str, Any]], items: Sequence[ReplayItem]
) -> tuple[Path, Path]:
    """``path`` (YAML) and its items beside it (JSONL), for a later ``crossroads eval``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    jsonl = path.with_suffix(".jsonl")
    with jsonl.open("w", encoding="utf-8") as out:
        for row in _rows(items):
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    spec = {**_spec(suite_name, scorers, items), "items_file": jsonl.name}
    path.write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path, jsonl
