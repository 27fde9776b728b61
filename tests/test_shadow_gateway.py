"""Shadow evaluation through the real gateway on loopback: sampled production requests are
copied to a candidate after the answer, scored against it and stored as an eval run."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from sqlalchemy import select

from crossroads.store import open_database, usage_ledger
from crossroads.types import ChatRequest, prompt_token_bound

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


def _post(gw: RunningGateway, key: str, content: str, *, stream: bool = False) -> httpx.Response:
    body = {"model": "prod", "messages": [{"role": "user", "content": content}], "stream": stream}
    return httpx.post(
        gw.v1 + "/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )


def _without_id(response: httpx.Response) -> tuple[int, bytes, str]:
    return response.status_code, response.content, response.headers["content-type"]


def test_production_answer_is_byte_identical_and_never_waits_for_a_failing_candidate(
    fakes: tuple[OpenAIFake, OpenAIFake], tmp_path: Any
) -> None:
    prod, cand = fakes
    arrived: list[float] = []
    lock = threading.Lock()

    def sleepy_failure(body: Any) -> Reply:  # the candidate sleeps 2 s, then fails
        with lock:
            arrived.append(time.monotonic())
        return Reply(status=500, error_message="candidate down", delay_s=2.0)

    cand.responder = sleepy_failure
    plain = config(prod.url, cand.url, "  []")
    shadowed = config(prod.url, cand.url, RULE)
    with gateway_in_home(plain, tmp_path / "a") as gw:
        key = gw.create_key("app")
        baseline = [
            _post(gw, key, QUESTION.format(n=n), stream=s) for n, s in ((1, False), (2, True))
        ]
    with gateway_in_home(shadowed, tmp_path / "b") as gw:
        key = gw.create_key("app")
        answered: list[tuple[float, httpx.Response]] = []
        for n, s in ((1, False), (2, True)):
            response = _post(gw, key, QUESTION.format(n=n), stream=s)
            answered.append((time.monotonic(), response))
        data = wait_for_items(gw.database_url or "", "shadow:t", 2)

    for (_, response), before in zip(answered, baseline, strict=True):
        assert _without_id(response) == _without_id(before)  # byte for byte
    # Each production answer was complete before its candidate's 2 s sleep could end:
    # the copy was sent after the answer, and the answer never waited for it.
    assert len(arrived) == 2
    for (done, _), start in zip(answered, sorted(arrived), strict=True):
        assert done < start + 2.0
    cand_rows = [r for r in data["results"] if r["model"] == "cand"]
    assert len(cand_rows) == 2
    assert all(r["error"] and "candidate down" in r["error"] for r in cand_rows)
    assert data["summary"]["models"]["cand"]["errors"] == 2


BUDGET_RULE = """
  - name: capped
    match: prod
    candidates: [cand]
    sample: 1.0
    budget_usd: 0.05
    max_tokens: 10
    max_concurrency: 4
    scorers: [{type: exact}]
"""


def test_budget_pauses_the_rule_with_a_log_line_and_a_metric(
    fakes: tuple[OpenAIFake, OpenAIFake], tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    prod, cand = fakes
    with gateway_in_home(config(prod.url, cand.url, BUDGET_RULE), tmp_path / "h") as gw:
        key = gw.create_key("app")
        for n in range(30):
            assert _post(gw, key, QUESTION.format(n=n)).status_code == 200
        deadline = time.monotonic() + 30
        metrics = ""
        while time.monotonic() < deadline:
            metrics = httpx.get(
                gw.url + "/metrics", headers={"Authorization": f"Bearer {MASTER}"}
            ).text
            if 'crossroads_shadow_paused{rule="capped"} 1.0' in metrics:
                break
            time.sleep(0.05)
        rows = _ledger(gw.database_url or "")

    assert 'crossroads_shadow_paused{rule="capped"} 1.0' in metrics
    assert any("shadow rule 'capped' paused" in r.getMessage() for r in caplog.records)
    spend = [r["cost_usd"] for r in rows if r["key_name"] == "shadow:capped"]
    request = ChatRequest.model_validate(
        {"model": "cand", "messages": [{"role": "user", "content": QUESTION.format(n=29)}]}
    )
    one_request_max = (prompt_token_bound(request) + 10) * 100 / 1e6  # prices: 100 $/1M
    assert 0 < sum(spend) <= 0.05 + one_request_max
    assert len(spend) < 30  # the rule stopped before copying every request
    found = re.search(r'crossroads_shadow_spend_usd_total\{rule="capped"\} (\S+)', metrics)
    assert found is not None and float(found.group(1)) == pytest.approx(sum(spend))


PII_RULE = """
  - name: vendor
    match: prod
    candidates: [cand]
    sample: 1.0
    scorers: [{type: exact}]
"""

CARD = "4111 1111 1111 1111"
EMAIL = "ann.lee@example.com"
GUARDED = """
gateway: {store_bodies: true}
guardrails:
  policies:
    - name: vendor-models
      applies_to: {keys: ["*"], models: ["cand"]}
      input: [{check: pii, action: redact, types: [card, email]}]
"""


def test_a_vendor_candidate_gets_the_prompt_masked_and_the_stored_item_is_masked(
    fakes: tuple[OpenAIFake, OpenAIFake], tmp_path: Any
) -> None:
    prod, cand = fakes
    prompt = f"question 3: charge {CARD} and mail the receipt to {EMAIL}"
    with gateway_in_home(config(prod.url, cand.url, PII_RULE, extra=GUARDED), tmp_path / "h") as gw:
        key = gw.create_key("app")
        assert _post(gw, key, prompt).status_code == 200
        data = wait_for_items(gw.database_url or "", "shadow:vendor", 1)

    production_saw = prod.requests[-1].body["messages"][-1]["content"]
    assert CARD in production_saw and EMAIL in production_saw  # its policy lets them through
    candidate_saw = str(cand.requests[-1].body)
    for secret in (CARD, EMAIL, "ann.lee", "4111"):
        assert secret not in candidate_saw
        assert secret not in data["items"][0]["prompt"]
    assert "question 3" in data["items"][0]["prompt"]
    assert "[CARD_1]" in candidate_saw and "[EMAIL_1]" in candidate_saw


def test_shutdown_cancels_copies_in_flight_and_keeps_what_was_stored(
    fakes: tuple[OpenAIFake, OpenAIFake], tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    prod, cand = fakes
    calls: list[int] = []

    def first_fast_then_slow(body: Any) -> Reply:
        calls.append(1)
        if len(calls) == 1:
            return candidate_reply(body)
        return Reply(text="late", delay_s=120.0)  # still running when the gateway stops

    cand.responder = first_fast_then_slow
    with gateway_in_home(config(prod.url, cand.url, RULE), tmp_path / "h") as gw:
        key = gw.create_key("app")
        assert _post(gw, key, QUESTION.format(n=1)).status_code == 200
        wait_for_items(gw.database_url or "", "shadow:t", 1)
        assert _post(gw, key, QUESTION.format(n=2)).status_code == 200
        deadline = time.monotonic() + 30
        while len(calls) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(calls) == 2  # the second copy is in flight
        url = gw.database_url or ""
        thread = gw.thread
    assert thread is not None and not thread.is_alive()  # stopped without waiting for it
    data = wait_for_items(url, "shadow:t", 1)
    assert len(data["items"]) == 1  # the finished copy is kept, the cancelled one dropped
    with open_database(url=url) as db:
        from crossroads.evals.results import list_runs

        (run,) = [r for r in list_runs(db) if r["suite"] == "shadow:t"]
    assert run["status"] == "complete"
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]


def test_a_restart_the_same_day_takes_the_days_run_up_again(
    fakes: tuple[OpenAIFake, OpenAIFake], tmp_path: Any
) -> None:
    prod, cand = fakes
    text = config(prod.url, cand.url, RULE)
    home = tmp_path / "h"
    for start in (0, 3):
        with gateway_in_home(text, home) as gw:
            key = gw.keys.get("app") or gw.create_key(f"app{start}")
            for n in range(start, start + 3):
                assert _post(gw, key, QUESTION.format(n=n)).status_code == 200
            data = wait_for_items(gw.database_url or "", "shadow:t", start + 3)
    assert len(data["items"]) == 6
    assert data["run"]["status"] == "complete"
    with open_database(url=gw.database_url) as db:
        from crossroads.evals.results import list_runs

        assert [r["suite"] for r in list_runs(db)].count("shadow:t") == 1
        from crossroads.store import run_items

        with db.engine.connect() as conn:
            positions = sorted(conn.execute(select(run_items.c.position)).scalars())
    assert positions == list(range(6))


def test_a_candidate_named_like_production_gets_its_own_column(
    fakes: tuple[OpenAIFake, OpenAIFake], tmp_path: Any
) -> None:
    prod, cand = fakes
    rule = (
        "  - {name: same, match: cand, candidates: [cand], sample: 1.0, scorers: [{type: exact}]}"
    )
    with gateway_in_home(config(prod.url, cand.url, rule), tmp_path / "h") as gw:
        key = gw.create_key("app")
        for n in (1, 4):  # the candidate fake disagrees with itself on neither
            response = httpx.post(
                gw.v1 + "/chat/completions",
                json={
                    "model": "cand",
                    "messages": [{"role": "user", "content": QUESTION.format(n=n)}],
                },
                headers={"Authorization": f"Bearer {key}"},
                timeout=30,
            )
            assert response.status_code == 200
        data = wait_for_items(gw.database_url or "", "shadow:same", 2)
    assert data["run"]["models"] == ["cand (production)", "cand"]
    assert data["summary"]["models"]["cand"]["mean"] == pytest.approx(1.0)
