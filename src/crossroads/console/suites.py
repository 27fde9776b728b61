"""“Add to suite”: a playground prompt saved as an item of a suite file that
``crossroads eval`` runs (``$CROSSROADS_HOME/suites/NAME.yaml``)."""

from __future__ import annotations

import os
import re
import tempfile
import threading
from pathlib import Path
from typing import Any

import yaml

from ..config import crossroads_home
from ..errors import ConfigError
from ..evals.suite import parse_suite

__all__ = ["MAX_TEXT", "SUITE_NAME", "add_to_suite", "suite_path"]

#: Suite names: a file name without surprises (no path, no dot files).
SUITE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
#: The longest prompt, system prompt or expected answer saved (characters).
MAX_TEXT = 100_000
#: The most items one suite file takes from the playground.
MAX_ITEMS = 5_000
_LOCK = threading.Lock()


def suite_path(name: str) -> Path:
    """Where the suite ``name`` lives; a clear error for a bad name."""
    if not SUITE_NAME.fullmatch(name):
        raise ConfigError(
            f"Suite name {name[:80]!r}: use 1–64 lowercase letters, digits, '-' or '_', "
            "starting with a letter or digit (for example: playground)."
        )
    return crossroads_home() / "suites" / f"{name}.yaml"


def add_to_suite(
    name: str,
    *,
    user: str,
    system: str = "",
    expected: str = "",
    temperature: float | None = None,
    max_tokens: int | None = None,
) -> tuple[Path, str]:
    """Append one item to the suite ``name`` (made on first use); the file and the item
    id. A suite made with an expected answer scores with ``contains``; one made without,
    with ``length`` (any non-empty answer)."""
    path = suite_path(name)
    if not user.strip():
        raise ConfigError("The user message is empty: there is nothing to save.")
    for label, text in (("user message", user), ("system prompt", system),
                        ("expected answer", expected)):
        if len(text) > MAX_TEXT:
            raise ConfigError(f"The {label} is longer than {MAX_TEXT:,} characters.")
    with _LOCK:
        data = _read(path) if path.exists() else _new(name, bool(expected.strip()),
                                                      temperature, max_tokens)
        items: list[dict[str, Any]] = data.setdefault("items", [])
        scored_by = data["scorers"][0].get("type")
        if scored_by == "contains" and not expected.strip():
            raise ConfigError(
                f"The suite {name!r} checks answers against an expected answer: give one, "
                "or save to another suite."
            )
        if len(items) >= MAX_ITEMS:
            raise ConfigError(
                f"The suite {name!r} already has {len(items):,} items (the most the "
                "playground adds): save to another suite."
            )
        ids = {str(i.get("id")) for i in items if isinstance(i, dict)}
        number = len(items) + 1
        while f"p{number}" in ids:
            number += 1
        item: dict[str, Any] = {"id": f"p{number}", "input": user, "system": system}
        if expected.strip():
            item["expected"] = expected
        items.append(item)
        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
        parse_suite(text, str(path), path.parent)  # what `crossroads eval` will read
        _write(path, text)
    return path, item["id"]


def _new(name: str, has_expected: bool, temperature: float | None,
         max_tokens: int | None) -> dict[str, Any]:
    defaults: dict[str, Any] = {}
    if temperature is not None:
        defaults["temperature"] = temperature
    if max_tokens is not None:
        defaults["max_tokens"] = max_tokens
    scorer = {"type": "contains"} if has_expected else {"type": "length", "min": 1}
    return {
        "name": name,
        "description": "Prompts saved from the console playground",
        "defaults": defaults,
        "system": "{{ system }}",
        "prompt": "{{ input }}",
        "scorers": [scorer],
        "items": [],
    }


def _read(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"Cannot read the suite {path}: {exc}") from exc
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("items"), list)
        or not data.get("scorers")
        or data.get("system") != "{{ system }}"
    ):
        raise ConfigError(
            f"{path} is not a playground suite (edited by hand?): save to another name."
        )
    return data


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".yaml")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
