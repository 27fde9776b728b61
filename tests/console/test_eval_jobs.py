"""Runs started from the console: the suites it may name, and the cap on runs at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from crossroads.config import parse_config
from crossroads.console.eval_jobs import MAX_RUNNING, EvalJobs, console_suite, suite_names
from crossroads.errors import ConfigError
from crossroads.store import open_database

from ..fakes.openai_fake import OpenAIFake
from ..fakes.server import Reply
from .conftest import console_config


def test_only_builtin_and_saved_suites_can_be_named() -> None:
    assert "quick" in suite_names()
    assert len(console_suite("quick").items) == 34
    for bad in ("/etc/passwd", "../quick", "examples/tune/support-suite.yaml", "Quick"):
        with pytest.raises(ConfigError):
            console_suite(bad)


async def test_a_key_may_have_only_a_few_runs_going(
    openai_fake: OpenAIFake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONSOLE_TEST_VENDOR_KEY", "test-key")
    openai_fake.responder = lambda body: Reply(text="slow", delay_s=5)
    try:
        config = parse_config(console_config(openai_fake), "test.yaml")
        with open_database(f"sqlite:///{tmp_path / 'db.sqlite'}") as db:
            jobs, suite = EvalJobs(), console_suite("quick")
            started = [
                jobs.start(config, db, suite, ("gpt-4o",), 1, "key-1") for _ in range(MAX_RUNNING)
            ]
            with pytest.raises(ConfigError, match="runs are going already"):
                jobs.start(config, db, suite, ("gpt-4o",), 1, "key-1")
            other = jobs.start(config, db, suite, ("gpt-4o",), 1, "key-2")  # another key may
            with pytest.raises(ConfigError, match="Concurrency"):
                jobs.start(config, db, suite, ("gpt-4o",), 0, "key-2")
            for job in [*started, other]:
                await jobs.cancel(job)
                assert job.status == "interrupted"
            jobs.start(config, db, suite, ("gpt-4o",), 1, "key-1")  # room again
            for job in jobs.jobs.values():
                await jobs.cancel(job)
    finally:
        openai_fake.responder = None
