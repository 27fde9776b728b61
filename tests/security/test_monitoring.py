"""``GET /metrics``: who may read it, and what clients can put into it.

The probe found the scrape open to anyone (key names and their spend), and its labels
taken from the client: model names with CR and NUL went into the scrape as they were,
three 1 MB names made each scrape 66 MB, 200 unknown names added 4,400 series.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import pytest

from crossroads.config import parse_config
from crossroads.errors import ConfigError
from crossroads.gateway.startup import check_routes

from ..fakes.openai_fake import OpenAIFake
from ..gateway_harness import MASTER, RunningGateway, gateway_thread

MARK = "zq7"  # in every client-supplied model name, so the scrape can be searched for it


@pytest.fixture
def upstream() -> Iterator[OpenAIFake]:
    with OpenAIFake(require_key=False) as fake:
        yield fake


def _config(upstream: OpenAIFake, gateway: str = "") -> str:
    return (
        "models:\n"
        "  - name: mine\n"
        "    backend: openai\n"
        "    model: gpt-4o-mini\n"
        f"    base_url: {upstream.url}/v1\n"
        "gateway:\n"
        "  master_key: ${CROSSROADS_MASTER_KEY}\n" + gateway
    )


@pytest.fixture
def gw(upstream: OpenAIFake, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningGateway]:
    monkeypatch.setenv("CROSSROADS_MASTER_KEY", MASTER)
    with gateway_thread(_config(upstream)) as running:
        running.create_key("probe", budget_usd=5)
        yield running


def _scrape(gw: RunningGateway, token: str | None = MASTER) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(gw.url + "/metrics", headers=headers, timeout=30)


def _chat(gw: RunningGateway, model: str) -> httpx.Response:
    return httpx.post(
        gw.v1 + "/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5},
        headers={"Authorization": f"Bearer {gw.keys['probe']}"},
        timeout=30,
    )


def test_metrics_need_a_token_when_a_master_key_is_set(gw: RunningGateway) -> None:
    assert _chat(gw, "mine").status_code == 200
    for token in (None, "wrong-token", gw.keys["probe"]):  # a client's key is not enough
        refused = _scrape(gw, token)
        assert refused.status_code == 401, token
        assert "crossroads_" not in refused.text and "probe" not in refused.text
        assert refused.headers["www-authenticate"].lower().startswith("bearer")
        assert "Authorization: Bearer" in refused.json()["error"]["message"]
    allowed = _scrape(gw)
    assert allowed.status_code == 200
    assert 'crossroads_requests_total{key="probe",model="mine",status="200"}' in allowed.text


def test_a_metrics_token_of_its_own(upstream: OpenAIFake, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CROSSROADS_MASTER_KEY", MASTER)
    monkeypatch.setenv("SEC_METRICS_TOKEN", "metrics-token-for-prometheus")
    config = _config(upstream, "  metrics_token: ${SEC_METRICS_TOKEN}\n")
    with gateway_thread(config) as gw:
        assert _scrape(gw, None).status_code == 401
        assert _scrape(gw, "metrics-token-for-prometheus").status_code == 200
        assert _scrape(gw, MASTER).status_code == 200  # the master key opens it too


def test_open_only_without_a_master_key_or_when_made_public(
    upstream: OpenAIFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CROSSROADS_MASTER_KEY", "")  # no admin: a local, one-user gateway
    no_master = _config(upstream).replace(
        "master_key: ${CROSSROADS_MASTER_KEY}", "store_bodies: false"
    )
    with gateway_thread(no_master) as gw:
        assert _scrape(gw, None).status_code == 200
    monkeypatch.setenv("CROSSROADS_MASTER_KEY", MASTER)
    with gateway_thread(_config(upstream, "  metrics_public: true\n")) as gw:
        assert _scrape(gw, None).status_code == 200


def test_a_metrics_token_that_refers_to_an_unset_variable_stops_the_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SEC_UNSET_METRICS_TOKEN", raising=False)
    config = parse_config("gateway:\n  metrics_token: ${SEC_UNSET_METRICS_TOKEN}\n", "x.yaml")
    with pytest.raises(ConfigError, match="SEC_UNSET_METRICS_TOKEN"):
        check_routes(config)


async def _post_all(url: str, key: str, bodies: list[bytes], connections: int = 32) -> list[int]:
    """POST every body to /v1/chat/completions over ``connections`` keep-alive sockets
    (raw HTTP/1.1: a full client per request would cost more than the gateway)."""
    host, port = url.removeprefix("http://").split(":")
    pending = iter(bodies)
    statuses: list[int] = []

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            for body in pending:
                writer.write(
                    b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\n"
                    + f"Authorization: Bearer {key}\r\n".encode()
                    + b"Content-Type: application/json\r\n"
                    + f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
                lines = head.decode("latin-1").split("\r\n")
                statuses.append(int(lines[0].split()[1]))
                length = next(
                    int(line.split(":", 1)[1]) for line in lines
                    if line.lower().startswith("content-length:")
                )
                await reader.readexactly(length)
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    return statuses


def _names(count: int) -> list[str]:
    """Unknown model names, one in ten with CR LF and one in ten with NUL, three of 1 MB."""
    names = []
    for i in range(count):
        odd = {0: "\r\n", 1: "\x00"}.get(i % 10, "")
        names.append(f"{MARK}-unknown-{odd}{i}")
    names[-3:] = [MARK + chr(ord("A") + i) * 1_000_000 for i in range(3)]
    return names


def test_scrape_stays_bounded_after_10000_client_model_names(gw: RunningGateway) -> None:
    assert _chat(gw, "mine").status_code == 200
    assert _chat(gw, f"{MARK}-warm-up").status_code == 404
    before = _scrape(gw)
    assert before.status_code == 200

    bodies = [
        json.dumps({"model": name, "messages": [{"role": "user", "content": "hi"}]}).encode()
        for name in _names(10_000)
    ]
    statuses = asyncio.run(_post_all(gw.url, gw.keys["probe"], bodies))
    assert len(statuses) == 10_000
    assert all(400 <= s < 500 for s in statuses), sorted(set(statuses))

    after = _scrape(gw)
    assert after.status_code == 200
    assert len(after.content) < 2 * len(before.content), (len(before.content), len(after.content))
    assert MARK not in after.text  # no client-supplied name is a label
    assert b"\r" not in after.content and b"\x00" not in after.content
    assert 'model="other"' in after.text  # they are counted, under one label
    assert 'model="mine"' in after.text
