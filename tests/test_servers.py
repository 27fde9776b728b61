"""Open-model server presets and replicas, against the OpenAI-compatible loopback fake."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from crossroads import Client, errors
from crossroads.backends.servers import TGIBackend
from crossroads.types import ChatRequest

from .fakes.openai_fake import OpenAIFake
from .fakes.server import DEFAULT_TEXT, Reply


@pytest.fixture(scope="module")
def _server() -> Iterator[OpenAIFake]:
    with OpenAIFake(require_key=False) as fake:
        yield fake


@pytest.fixture
def server(_server: OpenAIFake) -> OpenAIFake:
    """A self-hosted OpenAI-compatible server started without a key (vLLM, Ollama...)."""
    _server.replies.clear()
    _server.requests.clear()
    return _server


def dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/v1"


@pytest.mark.parametrize(
    ("preset", "env_var", "value"),
    [
        ("vllm", "VLLM_BASE_URL", "{url}/v1"),
        ("tgi", "TGI_BASE_URL", "{url}/v1"),
        ("llamacpp-server", "LLAMACPP_BASE_URL", "{url}/v1"),
        ("lmstudio", "LMSTUDIO_BASE_URL", "{url}/v1"),
        ("ollama", "OLLAMA_HOST", "{hostport}"),
    ],
)
def test_preset_needs_no_key_and_no_config(
    server: OpenAIFake,
    monkeypatch: pytest.MonkeyPatch,
    preset: str,
    env_var: str,
    value: str,
) -> None:
    monkeypatch.setenv(env_var, value.format(url=server.url, hostport=f"127.0.0.1:{server.port}"))
    with Client() as client:
        reply = client.chat(f"{preset}/meta-llama/Llama-3.1-8B-Instruct", "hi")
        streamed = "".join(
            c.choices[0].delta.content or ""
            for c in client.stream_chat(f"{preset}/meta-llama/Llama-3.1-8B-Instruct", "hi")
            if c.choices
        )
    assert reply.text == streamed == DEFAULT_TEXT
    sent = server.requests[0]
    assert sent.body["model"] == "meta-llama/Llama-3.1-8B-Instruct"
    assert "authorization" not in sent.headers


def test_preset_default_addresses() -> None:
    from crossroads.backends.base import Deployment, load_backend

    expected = {
        "vllm": "http://localhost:8000/v1",
        "tgi": "http://localhost:8080/v1",
        "ollama": "http://localhost:11434/v1",
        "llamacpp-server": "http://localhost:8080/v1",
        "lmstudio": "http://localhost:1234/v1",
    }
    for name, url in expected.items():
        backend = load_backend(name)(Deployment(name="x", backend=name, model="m"))
        assert backend.transport.base_url == url  # type: ignore[attr-defined]


def test_tgi_json_schema_uses_its_grammar_form() -> None:
    from crossroads.backends.base import Deployment

    backend = TGIBackend(Deployment(name="x", backend="tgi", model="tgi"))
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    request = ChatRequest(
        model="x",
        messages=[{"role": "user", "content": "hi"}],
        response_format={"type": "json_schema", "json_schema": {"name": "n", "schema": schema}},
    )
    assert backend._body(request, stream=False)["response_format"] == {
        "type": "json",
        "value": schema,
    }


def replicas_config(path: Path, *urls: str) -> Path:
    lines = "".join(f"      - base_url: {u}\n" for u in urls)
    path.write_text(
        "models:\n  - name: llama\n    backend: vllm\n    model: llama-3.1-8b\n"
        f"    max_retries: 0\n    replicas:\n{lines}"
    )
    return path


def test_replicas_share_the_load(server: OpenAIFake, tmp_path: Path) -> None:
    with OpenAIFake(require_key=False) as second:
        config = replicas_config(tmp_path / "c.yaml", server.url + "/v1", second.url + "/v1")
        with Client(config) as client:
            for _ in range(6):
                assert client.chat("llama", "hi").text == DEFAULT_TEXT
        assert len(server.requests) == 3
        assert len(second.requests) == 3


def test_dead_replica_fails_over_and_is_cooled_down(server: OpenAIFake, tmp_path: Path) -> None:
    config = replicas_config(tmp_path / "c.yaml", dead_url(), server.url + "/v1")
    with Client(config) as client:
        for _ in range(4):
            assert client.chat("llama", "hi").text == DEFAULT_TEXT
        chunks = list(client.stream_chat("llama", "hi"))
        plan = client._async.router.plan("llama")
    assert chunks[-1].usage is not None
    assert len(server.requests) == 5
    dead = plan.targets[0]
    assert dead.down_until > 0, "the dead replica is cooled down"


def test_all_replicas_down_raises(tmp_path: Path) -> None:
    config = replicas_config(tmp_path / "c.yaml", dead_url(), dead_url())
    with Client(config) as client, pytest.raises(errors.UpstreamUnavailableError):
        client.chat("llama", "hi")


def test_errors_other_than_unavailable_do_not_fail_over(server: OpenAIFake, tmp_path: Path) -> None:
    with OpenAIFake(require_key=False) as second:
        config = replicas_config(tmp_path / "c.yaml", server.url + "/v1", second.url + "/v1")
        server.script(Reply.error(400, "bad"))
        second.script(Reply.error(400, "bad"))
        with Client(config) as client, pytest.raises(errors.BadRequestError):
            client.chat("llama", "hi")
        assert len(server.requests) + len(second.requests) == 1


def test_replicas_and_base_url_together_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "models:\n  - name: llama\n    backend: vllm\n    model: m\n"
        "    base_url: http://localhost:8000/v1\n    replicas:\n"
        "      - base_url: http://localhost:8001/v1\n"
    )
    with pytest.raises(errors.ConfigError, match="either base_url or replicas"):
        Client(path)
