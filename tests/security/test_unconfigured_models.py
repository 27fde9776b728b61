"""Models nobody configured are not served (unless ``gateway.serve_unconfigured``).

The probe's budgeted key, with no model allow-list, got ``local/smollm2`` and
``local/all-minilm-l6-v2`` at $0 on the gateway's own CPU and — because
``OPENAI_API_KEY`` was in the server's environment — ``gpt-4o`` and ``o3``, none of them
in the config. Error messages named the server's environment variables.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from ..fakes.openai_fake import OpenAIFake
from ..gateway_harness import MASTER, RunningGateway, gateway_thread

SERVER_ENV_KEY = "sk-server-environment-0123456789abcdef"
UNCONFIGURED = ("gpt-4o", "o3", "openai/gpt-4o-mini", "local/smollm2")


@pytest.fixture
def vendor(monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenAIFake]:
    """An OpenAI fake that ``OPENAI_API_KEY``/``OPENAI_BASE_URL`` in the server's
    environment point at, as they would at api.openai.com."""
    with OpenAIFake() as fake:
        monkeypatch.setenv("OPENAI_API_KEY", SERVER_ENV_KEY)
        monkeypatch.setenv("OPENAI_BASE_URL", fake.url + "/v1")
        monkeypatch.setenv("CROSSROADS_MASTER_KEY", MASTER)
        monkeypatch.setenv("SEC_VENDOR_KEY", "sk-configured-0123456789")
        monkeypatch.delenv("SEC_UNSET_VENDOR_KEY", raising=False)
        yield fake


def _config(vendor: OpenAIFake, gateway: str = "") -> str:
    return (
        "models:\n"
        "  - name: mine\n"
        "    backend: openai\n"
        "    model: gpt-4o-mini\n"
        f"    base_url: {vendor.url}/v1\n"
        "    api_key: ${SEC_VENDOR_KEY}\n"
        "    aliases: [my-alias]\n"
        "  - name: needs-key\n"
        "    backend: openai\n"
        "    model: gpt-4o-mini\n"
        f"    base_url: {vendor.url}/v1\n"
        "    api_key: ${SEC_UNSET_VENDOR_KEY}\n"
        "routes:\n"
        "  - name: chat\n"
        "    deployments: [{model: mine}]\n"
        "gateway:\n"
        "  master_key: ${CROSSROADS_MASTER_KEY}\n" + gateway
    )


def _chat(gw: RunningGateway, model: str, key: str = "budgeted") -> httpx.Response:
    return httpx.post(
        gw.v1 + "/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1},
        headers={"Authorization": f"Bearer {gw.keys.get(key, key)}"},
        timeout=60,
    )


def _message(gw: RunningGateway, model: str) -> httpx.Response:
    return httpx.post(
        gw.url + "/v1/messages",
        json={"model": model, "max_tokens": 1, "messages": [{"role": "user", "content": "hi"}]},
        headers={"x-api-key": gw.keys["budgeted"], "anthropic-version": "2023-06-01"},
        timeout=60,
    )


def _listed(gw: RunningGateway, key: str = "budgeted") -> set[str]:
    response = httpx.get(gw.v1 + "/models", headers={"Authorization": f"Bearer {gw.keys[key]}"})
    assert response.status_code == 200
    return {m["id"] for m in response.json()["data"]}


def _sent_models(vendor: OpenAIFake) -> list[str]:
    return [r.body["model"] for r in vendor.requests if isinstance(r.body, dict)]


def test_only_configured_models_and_routes_are_served(vendor: OpenAIFake) -> None:
    with gateway_thread(_config(vendor)) as gw:
        gw.create_key("budgeted", budget_usd=1)
        for model in ("mine", "my-alias", "chat"):
            assert _chat(gw, model).status_code == 200, model
        served = len(vendor.requests)
        for model in UNCONFIGURED:
            for response in (_chat(gw, model), _chat(gw, model, MASTER), _message(gw, model)):
                assert response.status_code == 404, (model, response.text)
                assert "does not exist on this gateway" in response.text
        assert len(vendor.requests) == served, _sent_models(vendor)  # nothing reached it
        assert _listed(gw) == {"mine", "needs-key", "chat"}


def test_unconfigured_embeddings_are_not_served(vendor: OpenAIFake) -> None:
    with gateway_thread(_config(vendor)) as gw:
        gw.create_key("budgeted", budget_usd=1)
        for model in ("local/all-minilm-l6-v2", "all-MiniLM-L6-v2", "text-embedding-3-small"):
            response = httpx.post(
                gw.v1 + "/embeddings",
                json={"model": model, "input": "hello"},
                headers={"Authorization": f"Bearer {gw.keys['budgeted']}"},
                timeout=60,
            )
            assert response.status_code == 404, (model, response.text)
            assert response.json()["error"]["code"] == "model_not_found"
        assert vendor.requests == []


def test_serve_unconfigured_opts_in(vendor: OpenAIFake) -> None:
    with gateway_thread(_config(vendor, "  serve_unconfigured: true\n")) as gw:
        gw.create_key("budgeted", budget_usd=1)
        assert _chat(gw, "gpt-4o").status_code == 200
        assert _sent_models(vendor)[-1] == "gpt-4o"
        assert "local/smollm2" in _listed(gw)


def test_serve_unconfigured_by_name(vendor: OpenAIFake) -> None:
    with gateway_thread(_config(vendor, "  serve_unconfigured: [gpt-4o]\n")) as gw:
        gw.create_key("budgeted", budget_usd=1)
        assert _chat(gw, "gpt-4o").status_code == 200
        assert _chat(gw, "o3").status_code == 404
        assert _listed(gw) == {"mine", "needs-key", "chat", "gpt-4o"}
        scrape = httpx.get(gw.url + "/metrics", headers={"Authorization": f"Bearer {MASTER}"})
        assert 'model="gpt-4o"' in scrape.text  # a listed name is configured: its own label


def test_errors_do_not_name_the_servers_environment(vendor: OpenAIFake) -> None:
    with gateway_thread(_config(vendor)) as gw:
        gw.create_key("budgeted", budget_usd=1)
        for response in (_chat(gw, "needs-key"), _message(gw, "needs-key")):
            assert response.status_code == 503, response.text
            assert "SEC_UNSET_VENDOR_KEY" not in response.text
            assert "environment" not in response.text
            assert "not available" in response.text
        admin = httpx.get(
            gw.url + "/admin/keys", headers={"Authorization": f"Bearer {gw.keys['budgeted']}"}
        )
        assert admin.status_code == 403
        assert "CROSSROADS_MASTER_KEY" not in admin.text
