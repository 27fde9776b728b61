"""The three vendor fakes behind one parametrised fixture, for end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .fakes.server import FakeServer

VENDORS = ["openai", "anthropic", "google"]

#: One function tool, shared by the end-to-end, fake and SDK tests.
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}

_VENDOR_MODEL = {
    "openai": "gpt-4o",
    "anthropic": "claude-sonnet-4-5",
    "google": "gemini-2.5-flash",
}


def make_fake(vendor: str) -> FakeServer:
    if vendor == "openai":
        from .fakes.openai_fake import OpenAIFake

        return OpenAIFake()
    if vendor == "anthropic":
        from .fakes.anthropic_fake import AnthropicFake

        return AnthropicFake()
    from .fakes.google_fake import GoogleFake

    return GoogleFake()


def base_url(vendor: str, fake: FakeServer) -> str:
    return fake.url + "/v1" if vendor == "openai" else fake.url


@dataclass
class VendorSetup:
    vendor: str
    fake: FakeServer
    config_path: Path
    model: str = "m"


def write_config(path: Path, vendor: str, fake: FakeServer, *, max_retries: int = 2) -> Path:
    path.write_text(
        "models:\n"
        "  - name: m\n"
        f"    backend: {vendor}\n"
        f"    model: {_VENDOR_MODEL[vendor]}\n"
        f"    base_url: {base_url(vendor, fake)}\n"
        "    api_key: ${TEST_VENDOR_KEY}\n"
        f"    max_retries: {max_retries}\n"
        "    timeout: 10\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture(scope="session")
def _fakes() -> Iterator[dict[str, FakeServer]]:
    started = {v: make_fake(v).start() for v in VENDORS}
    yield started
    for fake in started.values():
        fake.stop()


@pytest.fixture(params=VENDORS)
def vendor(
    request: pytest.FixtureRequest,
    _fakes: dict[str, FakeServer],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[VendorSetup]:
    fake = _fakes[request.param]
    fake.replies.clear()
    fake.requests.clear()
    monkeypatch.setenv("TEST_VENDOR_KEY", "test-key")
    path = write_config(tmp_path / "crossroads.yaml", request.param, fake)
    yield VendorSetup(request.param, fake, path)
    fake.replies.clear()
