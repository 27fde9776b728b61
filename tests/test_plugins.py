"""Backends load through the entry-point group, exactly as a third-party plugin would."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import crossroads
from crossroads import Client
from crossroads.backends.base import available_backends, load_backend


@pytest.fixture
def plugin_on_path(tmp_path: Path) -> Iterator[None]:
    """A fake installed distribution registering the backend ``echo``."""
    (tmp_path / "echo_plugin.py").write_text(
        textwrap.dedent("""
        from crossroads.backends.base import Backend
        from crossroads.types import ChatChunk, ChatResponse, ChunkChoice, Delta, Usage

        class EchoBackend(Backend):
            name = "echo"
            requires_key = False

            async def complete(self, request):
                text = request.messages[-1].content
                return ChatResponse(model=request.model, choices=[{
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop"}], usage=Usage.of(1, 1))

            async def stream(self, request):
                text = request.messages[-1].content
                yield ChatChunk(id="e", model=request.model, choices=[
                    ChunkChoice(delta=Delta(content=text), finish_reason="stop")])
    """)
    )
    dist = tmp_path / "echo_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: echo-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[crossroads.backends]\necho = echo_plugin:EchoBackend\n"
    )
    sys.path.insert(0, str(tmp_path))
    available_backends.cache_clear()
    load_backend.cache_clear()
    yield
    sys.path.remove(str(tmp_path))
    sys.modules.pop("echo_plugin", None)
    available_backends.cache_clear()
    load_backend.cache_clear()


def test_builtins_are_entry_points() -> None:
    registered = available_backends()
    assert {"openai", "anthropic", "google"} <= set(registered)
    assert registered["openai"] == "crossroads.backends.openai:OpenAIBackend"
    assert load_backend("anthropic").name == "anthropic"


def test_third_party_plugin_is_usable_by_name(plugin_on_path: None, tmp_path: Path) -> None:
    assert "echo" in available_backends()
    config = tmp_path / "crossroads.yaml"
    config.write_text("models:\n  - name: parrot\n    backend: echo\n    model: any\n")
    with Client(config) as client:
        assert client.chat("parrot", "same words").text == "same words"
        assert client.chat("echo/whatever", "direct").text == "direct"


def test_unknown_backend_lists_installed_ones(tmp_path: Path) -> None:
    config = tmp_path / "crossroads.yaml"
    config.write_text("models:\n  - name: x\n    backend: nosuch\n    model: any\n")
    with pytest.raises(crossroads.ConfigError, match=r"Installed backends: .*openai"):
        Client(config).deployment("x")


def test_public_api_is_exactly_all() -> None:
    public = {name for name in dir(crossroads) if not name.startswith("_")}
    assert public == set(crossroads.__all__) - {"__version__"}
    for name in crossroads.__all__:
        assert getattr(crossroads, name) is not None
