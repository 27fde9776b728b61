"""How the suite treats missing optional parts: one rule, ``conftest.require``.

On CI every test must run, so a missing module is a failure there and a skip (saying
how to install it) elsewhere; ``CI=true``, ``CI=True`` and ``CI=1`` mean the same.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from .conftest import on_ci, require, skip_or_fail
from .gateway_harness import MASTER, gateway_thread

TESTS = Path(__file__).parent


@pytest.mark.parametrize("value", ["true", "True", "TRUE", "1", "yes"])
def test_every_spelling_of_ci_makes_a_missing_module_a_failure(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("CI", value)
    assert on_ci()
    with pytest.raises(pytest.fail.Exception, match="required under CI"):
        require("crossroads_no_such_module", "pip install nothing")
    with pytest.raises(pytest.fail.Exception, match="required under CI"):
        skip_or_fail("chromium is missing")


@pytest.mark.parametrize("value", [None, "", "false", "0", "no"])
def test_off_ci_a_missing_module_is_a_skip_that_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    assert not on_ci()
    with pytest.raises(pytest.skip.Exception, match="pip install nothing"):
        require("crossroads_no_such_module", "pip install nothing")


def test_no_test_skips_by_itself() -> None:
    """Every skip goes through conftest (require, skip_or_fail, the service fixtures), so
    none can pass silently on CI."""
    offenders = []
    for path in sorted(TESTS.rglob("*.py")):
        if path.name in {"conftest.py", Path(__file__).name}:
            continue
        text = path.read_text(encoding="utf-8")
        for pattern in (r"importorskip\(", r"pytest\.skip\(", r"\.mark\.skip\b", r"skipif\("):
            for match in re.finditer(pattern, text):
                line = text.count("\n", 0, match.start()) + 1
                offenders.append(f"{path.relative_to(TESTS)}:{line}: {match.group(0)}")
        if re.search(r'environ\.get\("CI"', text):
            offenders.append(f"{path.relative_to(TESTS)}: reads $CI itself (use conftest.on_ci)")
    assert offenders == []


def test_the_gateway_harness_leaves_no_master_key_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CROSSROADS_MASTER_KEY", raising=False)
    with gateway_thread("models: []\n") as gw:
        assert os.environ["CROSSROADS_MASTER_KEY"] == MASTER
        assert gw.url.startswith("http://127.0.0.1:")
    assert "CROSSROADS_MASTER_KEY" not in os.environ


def test_no_test_starts_with_a_master_key_in_its_environment() -> None:
    assert "CROSSROADS_MASTER_KEY" not in os.environ
