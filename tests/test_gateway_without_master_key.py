"""A gateway started without a master key: a local, one-user gateway with no admin API.

Keys made with ``crossroads keys create`` (straight into the database) still call
models; the admin API answers every caller 403 — no key, however it is spelt, becomes
the master key.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from crossroads.cli import app

from .fakes.openai_fake import OpenAIFake
from .fakes.server import Reply
from .gateway_harness import MASTER, RunningGateway, gateway_in_home

runner = CliRunner()


@pytest.fixture
def upstream() -> Iterator[OpenAIFake]:
    with OpenAIFake(require_key=False) as fake:
        yield fake


@pytest.fixture
def gw(
    upstream: OpenAIFake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[RunningGateway]:
    monkeypatch.setenv("CROSSROADS_MASTER_KEY", "")  # the variable may exist, empty
    config = (
        "models:\n"
        "  - name: mine\n"
        "    backend: openai\n"
        "    model: gpt-4o-mini\n"
        f"    base_url: {upstream.url}/v1\n"
    )
    with gateway_in_home(config, tmp_path) as running:
        yield running


def _create_key_with_the_cli(name: str, home: Path) -> str:
    result = runner.invoke(
        app, ["keys", "create", "--name", name], env={"CROSSROADS_HOME": str(home)}
    )
    assert result.exit_code == 0, result.output
    raw = result.stdout.strip().splitlines()[-1].strip()
    assert raw.startswith("sk-"), result.stdout
    return raw


def test_admin_api_refuses_everyone_without_a_master_key(
    gw: RunningGateway, tmp_path: Path
) -> None:
    key = _create_key_with_the_cli("team", tmp_path)
    for token in (key, MASTER, "", "None", "null"):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        listed = httpx.get(gw.url + "/admin/keys", headers=headers, timeout=10)
        created = httpx.post(
            gw.url + "/admin/keys", json={"name": "x"}, headers=headers, timeout=10
        )
        assert listed.status_code in (401, 403), (token, listed.text)
        assert created.status_code in (401, 403), (token, created.text)
        if token == key:  # a real key: authenticated, but not the master
            assert created.status_code == 403
            assert created.json()["error"]["code"] == "admin_only"
    # nothing was created through the refused calls
    keys = runner.invoke(app, ["keys", "list", "--json"], env={"CROSSROADS_HOME": str(tmp_path)})
    assert keys.exit_code == 0, keys.output
    assert '"x"' not in keys.stdout and '"team"' in keys.stdout


def test_keys_from_the_cli_call_models_and_unknown_keys_do_not(
    gw: RunningGateway, upstream: OpenAIFake, tmp_path: Path
) -> None:
    key = _create_key_with_the_cli("team", tmp_path)
    upstream.script(Reply("hello there"))
    ok = httpx.post(
        gw.v1 + "/chat/completions",
        json={"model": "mine", "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["choices"][0]["message"]["content"] == "hello there"
    for token in (MASTER, "sk-not-a-key"):
        refused = httpx.post(
            gw.v1 + "/chat/completions",
            json={"model": "mine", "messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert refused.status_code == 401, (token, refused.text)
        assert refused.json()["error"]["code"] == "invalid_api_key"
