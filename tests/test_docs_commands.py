"""Every `crossroads` command shown in README.md and docs/*.md runs and exits 0, offline:
vendor calls go to the loopback fakes (OPENAI_BASE_URL and friends), state to a temporary
CROSSROADS_HOME. A block that cannot run offline is marked in the doc, just above it:

    <!-- docs-test: skip — why -->                         (the whole block)
    <!-- docs-test: skip-commands "crossroads serve" "crossroads chat gpt-4o" — why -->

(docs/contributing.md). An unmarked command that fails fails this test, so docs cannot
drift from the code."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crossroads.cli import app

from .fakes.server import FakeServer
from .vendors import base_url

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_MARK = re.compile(r"<!--\s*docs-test:\s*(?P<kind>[a-z-]+)(?P<rest>.*?)-->")
_COMMAND = re.compile(r"^(?:\$ )?(?P<env>(?:[A-Z_][A-Z0-9_]*=\S+ )*)crossroads(?: |$)")


@dataclass(frozen=True)
class Command:
    doc: str
    line: int
    text: str  # the command as written (continuation lines joined)
    skip: str | None  # why it is not run, from the doc's marker
    block: int = 0  # the line its block starts on


def _blocks(lines: list[str]) -> list[tuple[int, int]]:
    """(first, last) line indexes of fenced and 4-space indented code blocks."""
    blocks, i = [], 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), None)
            end = len(lines) if end is None else end
            blocks.append((i, end))
            i = end + 1
        elif line.startswith("    ") and (
            i == 0 or not lines[i - 1].strip() or _MARK.search(lines[i - 1])
        ):
            end = i
            while end + 1 < len(lines) and (
                lines[end + 1].startswith("    ") or not lines[end + 1].strip()
            ):
                end += 1
            blocks.append((i, end))
            i = end + 1
        else:
            i += 1
    return blocks


def _marker(lines: list[str], start: int) -> tuple[str, str] | None:
    above = next((lines[j] for j in range(start - 1, -1, -1) if lines[j].strip()), "")
    found = _MARK.search(above)
    return (found["kind"], found["rest"].strip()) if found else None


def _reason(rest: str) -> str:
    for dash in ("—", " - ", "--"):
        if dash in rest:
            return rest.split(dash, 1)[1].strip()
    return ""


def collect() -> list[Command]:
    commands = []
    for doc in DOCS:
        lines = doc.read_text(encoding="utf-8").splitlines()
        name = str(doc.relative_to(ROOT))
        for start, end in _blocks(lines):
            mark = _marker(lines, start)
            whole, prefixes, why = None, [], ""
            if mark is not None:
                kind, rest = mark
                why = _reason(rest)
                assert why, f"{name}:{start}: a docs-test marker needs a reason after '—'"
                if kind == "skip":
                    whole = why
                elif kind == "skip-commands":
                    prefixes = re.findall(r'"([^"]+)"', rest)
                    assert prefixes, f"{name}:{start}: skip-commands lists quoted commands"
                else:
                    raise AssertionError(f"{name}:{start}: unknown docs-test marker {kind!r}")
            body = [ln[4:] if ln.startswith("    ") else ln for ln in lines[start : end + 1]]
            k = 0
            while k < len(body):
                text, first = body[k].strip(), k
                while text.endswith("\\") and k + 1 < len(body):
                    k += 1
                    text = text[:-1] + " " + body[k].strip()
                k += 1
                if not _COMMAND.match(text):
                    continue
                skip = whole or next(
                    (why for p in prefixes if text.lstrip("$ ").startswith(p)), None
                )
                commands.append(Command(name, start + first + 1, text, skip, start + 1))
    return commands


COMMANDS = collect()


def test_the_docs_show_commands() -> None:
    assert len(COMMANDS) > 40
    assert sum(c.skip is None for c in COMMANDS) > 20  # most of them really run


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _fakes: dict[str, FakeServer]) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    (work / "examples").symlink_to(ROOT / "examples")
    monkeypatch.chdir(work)
    for vendor, var in (
        ("openai", "OPENAI"),
        ("anthropic", "ANTHROPIC"),
        ("google", "GOOGLE_GEMINI"),
    ):
        monkeypatch.setenv(f"{var}_BASE_URL", base_url(vendor, _fakes[vendor]))
    for key in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY"):
        monkeypatch.setenv(key, "test-key")
    return work


BLOCKS: dict[tuple[str, int], list[Command]] = {}
for _c in COMMANDS:
    BLOCKS.setdefault((_c.doc, _c.block), []).append(_c)


#: Blocks with a command to run (a block marked whole has none: it is listed, with its
#: reason, by test_the_docs_show_commands' counts, not run).
RUNNABLE = [b for b, cs in BLOCKS.items() if any(c.skip is None for c in cs)]


@pytest.mark.parametrize("block", RUNNABLE, ids=lambda b: f"{b[0]}:{b[1]}")
def test_documented_commands_run(block: tuple[str, int], sandbox: Path) -> None:
    """The commands of one block, in order, in one sandbox (a key made by one is there for
    the next)."""
    runnable = [c for c in BLOCKS[block] if c.skip is None]
    for command in runnable:
        _run(command)


def _run(command: Command) -> None:
    words = shlex.split(command.text.lstrip("$ "), comments=True)
    env = {}
    while words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):
        key, _, value = words.pop(0).partition("=")
        env[key] = value
    assert words[0] == "crossroads", command.text
    assert not {"&", "|", "<", ">", "&&"} & set(words), (
        f"{command.doc}:{command.line}: shell syntax; mark the block (docs/contributing.md)"
    )
    result = CliRunner().invoke(app, words[1:], env={**env, "COLUMNS": "120"})
    assert result.exit_code == 0, (
        f"{command.doc}:{command.line}: `{command.text}` exited {result.exit_code}:\n"
        f"{result.output[-2000:]}"
    )


def test_an_unmarked_failing_command_fails_and_markers_need_reasons(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = tmp_path / "drift.md"
    doc.write_text(
        "Text.\n\n    crossroads models --no-such-flag\n\n"
        "<!-- docs-test: skip — a server -->\n\n    crossroads serve\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(__import__(__name__, fromlist=["DOCS"]), "DOCS", [doc])
    monkeypatch.setattr(__import__(__name__, fromlist=["ROOT"]), "ROOT", tmp_path)
    found = collect()
    assert [(c.line, c.text, c.skip) for c in found] == [
        (3, "crossroads models --no-such-flag", None),
        (7, "crossroads serve", "a server"),
    ]
    with pytest.raises(AssertionError, match=r"drift.md:3: `crossroads models --no-such-flag`"):
        _run(found[0])
    doc.write_text("<!-- docs-test: skip -->\n    crossroads models\n", encoding="utf-8")
    with pytest.raises(AssertionError, match="needs a reason"):
        collect()
