"""What README.md and docs/configuration.md promise about base URLs and `config check`."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from crossroads.cli import app
from crossroads.client import Client
from crossroads.config import parse_config
from crossroads.errors import ConfigError

from .fakes.server import FakeServer, Reply
from .vendors import base_url

runner = CliRunner()
_MODEL = {"openai": "gpt-4o-mini", "anthropic": "claude-sonnet-4-5"}


@pytest.mark.parametrize("vendor", ["openai", "anthropic"])
def test_base_url_env_reaches_a_configured_entry_without_base_url(
    vendor: str,
    _fakes: dict[str, FakeServer],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`OPENAI_BASE_URL` / `ANTHROPIC_BASE_URL` work as in the vendors' SDKs (README)."""
    fake = _fakes[vendor]
    fake.requests.clear()
    fake.script(Reply(text="from the proxy"))
    config = tmp_path / "crossroads.yaml"
    config.write_text(
        f"models:\n  - name: corp\n    backend: {vendor}\n    model: {_MODEL[vendor]}\n",
        encoding="utf-8",
    )
    monkeypatch.setenv(f"{vendor.upper()}_BASE_URL", base_url(vendor, fake))
    monkeypatch.setenv(f"{vendor.upper()}_API_KEY", "test-key")
    result = runner.invoke(app, ["-c", str(config), "chat", "corp", "hello"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "from the proxy"
    assert len(fake.requests) == 1  # it went to the fake, not to the vendor's host
    # A base_url written in the entry still wins over the variable.
    monkeypatch.setenv(f"{vendor.upper()}_BASE_URL", "http://127.0.0.1:9/never")
    config.write_text(
        config.read_text(encoding="utf-8") + f"    base_url: {base_url(vendor, fake)}\n",
        encoding="utf-8",
    )
    client = Client(config=parse_config(config.read_text(encoding="utf-8")))
    assert client.deployment("corp").base_url == base_url(vendor, fake)


def test_config_check_strict_fails_when_nothing_at_all_can_be_called(tmp_path: Path) -> None:
    result = runner.invoke(app, ["config", "check", "--strict"], env={"COLUMNS": "200"})
    assert result.exit_code == 1, result.output
    assert "no vendor model can be called" in result.stdout
    # Without --strict it is a report, not a failure.
    assert runner.invoke(app, ["config", "check"]).exit_code == 0


def test_config_check_offline_rejects_an_unknown_backend(tmp_path: Path) -> None:
    config = tmp_path / "crossroads.yaml"
    config.write_text("models:\n  - name: m\n    backend: opnai\n    model: gpt-4o\n")
    result = runner.invoke(app, ["-c", str(config), "config", "check", "--offline"])
    assert result.exit_code == 2, result.output
    assert "valid" not in result.stdout
    assert "model 'm': Unknown backend 'opnai'" in result.stderr
    assert "openai" in result.stderr  # the installed ones are listed


@pytest.mark.parametrize(
    ("backend", "options", "message"),
    [
        ("openai", "{foo: 1}", "unknown option 'foo' for backend 'openai' (allowed options: none)"),
        (
            "anthropic",
            "{json_schema_mode: tool, temprature: 0}",
            "unknown option 'temprature' for backend 'anthropic' (allowed options: "
            "json_schema_mode)",
        ),
        ("vllm", "{a: 1, b: 2}", "unknown options 'a', 'b' for backend 'vllm'"),
    ],
)
def test_unknown_backend_options_are_an_error_naming_the_key(
    backend: str, options: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    text = f"models:\n  - name: m\n    backend: {backend}\n    model: x\n    options: {options}\n"
    config = tmp_path / "crossroads.yaml"
    config.write_text(text)
    result = runner.invoke(app, ["-c", str(config), "config", "check", "--offline"])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.stderr.split())
    with pytest.raises(ConfigError, match="unknown option"):
        Client(config=parse_config(text)).deployment("m")


def test_documented_options_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    text = (
        "models:\n  - name: c\n    backend: anthropic\n    model: claude-sonnet-4-5\n"
        "    options: {json_schema_mode: tool}\n"
        "  - name: l\n    backend: llamacpp\n    model: /x.gguf\n"
        "    options: {n_ctx: 8192, n_threads: 8}\n"
    )
    client = Client(config=parse_config(text))
    assert client.deployment("c").options == {"json_schema_mode": "tool"}
    assert client.deployment("l").options == {"n_ctx": 8192, "n_threads": 8}
