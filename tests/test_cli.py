"""The CLI as a user runs it: catalog, chat against the vendor fakes, config check."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crossroads.catalog import find_model, load_catalog
from crossroads.cli import app

from .fakes.server import DEFAULT_TEXT, Reply
from .vendors import _VENDOR_MODEL, VendorSetup

runner = CliRunner()


def test_models_closed_lists_only_closed() -> None:
    result = runner.invoke(app, ["models", "--closed", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert rows and all(r["kind"] == "closed" for r in rows)
    table = runner.invoke(app, ["models", "--closed"])
    assert table.exit_code == 0
    assert "openai/gpt-4o" in table.stdout


def test_models_json_is_the_whole_catalog() -> None:
    result = runner.invoke(app, ["models", "--json"])
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    assert len(rows) == len(load_catalog())
    assert {r["kind"] for r in rows} == {"open", "closed"}


def test_models_open_and_closed_together_is_an_error() -> None:
    result = runner.invoke(app, ["models", "--open", "--closed"])
    assert result.exit_code == 2
    assert "exclude each other" in result.stderr


def test_chat_streams_answer(vendor: VendorSetup) -> None:
    vendor.fake.script(Reply(text="Streaming works fine"))
    result = runner.invoke(
        app,
        [
            "-c",
            str(vendor.config_path),
            "chat",
            "m",
            "hello",
            "--system",
            "be brief",
            "--temperature",
            "0.1",
            "--max-tokens",
            "20",
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "Streaming works fine"
    assert "be brief" in json.dumps(vendor.fake.requests[-1].body)


def test_chat_json_has_usage_timings_and_cost(vendor: VendorSetup) -> None:
    result = runner.invoke(app, ["-c", str(vendor.config_path), "chat", "m", "hi", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["choices"][0]["message"]["content"] == DEFAULT_TEXT
    assert data["usage"]["prompt_tokens"] == 11
    assert data["usage"]["timings"]["time_to_first_token_s"] >= 0
    assert data["usage"]["timings"]["total_s"] >= data["usage"]["timings"]["time_to_first_token_s"]
    # the fakes report 11 prompt and 7 completion tokens, priced at the catalog's list prices
    assert data["usage"]["completion_tokens"] == 7
    prices = find_model(_VENDOR_MODEL[vendor.vendor]).prices  # type: ignore[union-attr]
    assert prices is not None
    assert data["cost_usd"] == pytest.approx((11 * prices.input + 7 * prices.output) / 1e6)


def test_chat_prints_streamed_tool_call(vendor: VendorSetup) -> None:
    vendor.fake.script(Reply.tool("lookup", {"q": "x"}))
    result = runner.invoke(app, ["-c", str(vendor.config_path), "chat", "m", "hi"])
    assert result.exit_code == 0, result.output
    assert '[tool call] lookup({"q": "x"})' in result.stdout


def test_chat_reads_prompt_from_stdin(vendor: VendorSetup) -> None:
    result = runner.invoke(app, ["-c", str(vendor.config_path), "chat", "m"], input="piped\n")
    assert result.exit_code == 0, result.output
    assert DEFAULT_TEXT in result.stdout
    assert "piped" in json.dumps(vendor.fake.requests[-1].body)


def test_chat_retries_then_answers(vendor: VendorSetup) -> None:
    vendor.fake.script(Reply.error(429, "slow", retry_after="0"), Reply(text="ok now"))
    result = runner.invoke(app, ["-c", str(vendor.config_path), "chat", "m", "hi"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "ok now"


def test_chat_upstream_error_is_clear(vendor: VendorSetup) -> None:
    vendor.fake.script(Reply.error(401, "invalid key given"))
    result = runner.invoke(app, ["-c", str(vendor.config_path), "chat", "m", "hi"])
    assert result.exit_code == 1
    assert "invalid key given" in result.stderr
    assert "Traceback" not in result.output


def test_chat_mid_stream_error_exits_non_zero(vendor: VendorSetup) -> None:
    vendor.fake.script(Reply(text="partial answer then boom", fail_after_chunks=2))
    result = runner.invoke(app, ["-c", str(vendor.config_path), "chat", "m", "hi"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error:")


def test_chat_unknown_model_suggests() -> None:
    result = runner.invoke(app, ["chat", "claude-sonet-4-5", "hi"])
    assert result.exit_code == 2
    assert "Did you mean" in result.stderr and "claude-sonnet-4-5" in result.stderr


def test_chat_missing_key_names_env_var() -> None:
    result = runner.invoke(app, ["chat", "openai/gpt-4o", "hi"])
    assert result.exit_code == 2
    assert "OPENAI_API_KEY" in result.stderr


def test_config_check_reports_reachable_and_missing_keys(vendor: VendorSetup) -> None:
    text = vendor.config_path.read_text() + (
        "  - name: nokey\n    backend: anthropic\n    model: claude-sonnet-4-5\n"
        "    api_key: ${UNSET_KEY_FOR_TEST}\n"
    )
    vendor.config_path.write_text(text)
    result = runner.invoke(
        app, ["-c", str(vendor.config_path), "config", "check"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    assert "valid, 2 model(s)" in result.stdout
    lines = {
        line.split("│")[1].strip(): line
        for line in result.stdout.splitlines()
        if line.count("│") >= 4
    }
    assert "reachable" in lines["m"]
    assert "UNSET_KEY_FOR_TEST" in lines["nokey"]
    strict = runner.invoke(app, ["-c", str(vendor.config_path), "config", "check", "--strict"])
    assert strict.exit_code == 1


def test_config_check_malformed_yaml(tmp_path: Path) -> None:
    bad = tmp_path / "crossroads.yaml"
    bad.write_text("models:\n  - name: [\n")
    result = runner.invoke(app, ["-c", str(bad), "config", "check"])
    assert result.exit_code == 2
    assert f"{bad}:" in result.stderr and "invalid YAML" in result.stderr


def test_config_check_without_file_or_keys() -> None:
    result = runner.invoke(app, ["config", "check"])
    assert result.exit_code == 0
    assert "No crossroads.yaml found" in result.stdout
    assert "OPENAI_API_KEY: not set" in result.stdout


def test_help_does_not_import_heavy_modules() -> None:
    code = (
        "import sys\n"
        "from crossroads.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = {'torch', 'transformers', 'llama_cpp', 'httpx', 'pydantic'} & set(sys.modules)\n"
        "print(sorted(heavy))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "Usage" in out and "chat" in out
    assert out.strip().splitlines()[-1] == "[]"


def test_interactive_chat_in_a_terminal(vendor: VendorSetup) -> None:
    exe = Path(sys.executable).with_name("crossroads")
    env = {**os.environ, "TEST_VENDOR_KEY": "test-key", "COLUMNS": "120"}
    pid, fd = pty.fork()
    if pid == 0:  # child: the CLI in a real terminal
        os.execve(str(exe), [str(exe), "-c", str(vendor.config_path), "chat", "m"], env)
    output = b""

    def read_until(marker: bytes, timeout: float = 20) -> None:
        nonlocal output
        deadline = time.monotonic() + timeout
        while marker not in output and time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                try:
                    output += os.read(fd, 4096)
                except OSError:
                    break
        assert marker in output, output.decode(errors="replace")

    try:
        read_until(b"> ")
        vendor.fake.script(Reply(text="first answer"), Reply(text="second answer"))
        os.write(fd, b"hello there\n")
        read_until(b"first answer")
        os.write(fd, b"and again\n")
        read_until(b"second answer")
        os.write(fd, b"exit\n")
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0
    second = json.dumps(vendor.fake.requests[-1].body)
    assert "hello there" in second and "first answer" in second, "history is kept"
