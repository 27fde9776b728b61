"""Shadow evaluation through the real gateway on loopback: sampled production requests are
copied to a candidate after the answer, scored against it and stored as an eval run."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from sqlalchemy import select

from crossroads.store import open_database, usage_ledger

from .fakes.openai_fake import OpenAIFake
from .fakes.server import Reply
from .gateway_harness import MASTER, RunningGateway, gateway_in_home
from .shadow_helpers import (
    QUESTION,
    candidate_reply,
    config,
    production_reply,
    wait_for_items,
)

RULE = """
  - name: t
    match: prod
    candidates: [cand]
    sample: 1.0
    max_concurrency: 4
    scorers: [{type: exact}]
"""


@pytest.fixture
def fakes() -> Iterator[tuple[OpenAIFake, OpenAIFake]]:
    with OpenAIFake(require_key=False) as prod, OpenAIFake(require_key=False) as cand:
        prod.responder = production_reply
        cand.responder = candidate_reply
        yield prod, cand  # type: ignore[misc]


def _ledger(database_url: str) -> list[Any]:
    with open_database(url=database_url) as db, db.engine.connect() as conn:
        return list(conn.execute(select(usage_ledger)).mappings())


def test_forty_requests_make_a_run_of_forty_items_with_the_known_agreement(
    fakes: tuple[OpenAIFake, OpenAIFake], tmp_path: Any
) -> None:
    prod, cand = fakes
    home = tmp_path / "home"
    extra = "gateway: {store_bodies: true}"
    with gateway_in_home(config(prod.url, cand.url, RULE, extra=extra), home) as gw:
        key = gw.create_key("app")
        client = openai.OpenAI(base_url=gw.v1, api_key=key, max_retries=0)
        ids = []
        for n in range(36):
            raw = client.chat.completions.with_raw_response.create(
                model="prod", messages=[{"role": "user", "content": QUESTION.format(n=n)}]
            )
            ids.append(raw.headers["x-request-id"])
            assert raw.parse().choices[0].message.content == f"answer {n}"
        for n in range(36, 40):  # streamed: the assembled answer is the expected one
            stream = client.chat.completions.with_raw_response.create(
                model="prod",
                stream=True,
                messages=[{"role": "user", "content": QUESTION.format(n=n)}],
            )
            ids.append(stream.headers["x-request-id"])
            text = "".join(c.choices[0].delta.content or "" for c in stream.parse() if c.choices)
            assert text == f"answer {n}"
        data = wait_for_items(gw.database_url or "", "shadow:t", 40)
        rows = _ledger(gw.database_url or "")

    assert data["run"]["suite"] == "shadow:t"
    assert data["run"]["models"] == ["prod", "cand"]
    assert len(data["items"]) == 40
    assert sorted(i["id"] for i in data["items"]) == sorted(ids)  # items carry request ids
    by_id = {i["id"]: i for i in data["items"]}
    assert by_id[ids[37]]["expected"] == "answer 37"
    assert "stream" in by_id[ids[37]]["tags"]
    summary = data["summary"]
    assert summary["models"]["cand"]["n_items"] == 40
    assert summary["models"]["cand"]["mean"] == pytest.approx(0.75)
    assert summary["models"]["prod"]["mean"] == pytest.approx(1.0)
    low, high = summary["models"]["cand"]["ci_low"], summary["models"]["cand"]["ci_high"]
    assert low < 0.75 < high
    (pair,) = summary["pairs"]  # the paired statistics of any eval run
    assert {pair["a"], pair["b"]} == {"prod", "cand"}
    assert pair["n"] == 40
    assert {pair["mcnemar_b"], pair["mcnemar_c"]} == {0, 10}
    # spend: a ledger row of its own per candidate call, never the caller's key
    shadow_rows = [r for r in rows if r["key_name"] == "shadow:t"]
    assert len(shadow_rows) == 40
    assert all(r["key_id"] is None and r["model"] == "cand" for r in shadow_rows)
    assert {r["request_id"] for r in shadow_rows} == {f"{i}.shadow0" for i in ids}
    assert all(r["cost_usd"] == pytest.approx(25 * 100 / 1e6) for r in shadow_rows)
    app_rows = [r for r in rows if r["key_name"] == "app"]
    assert len(app_rows) == 40
    assert sum(r["cost_usd"] for r in app_rows) == pytest.approx(40 * (20 * 1 + 5 * 2) / 1e6)
