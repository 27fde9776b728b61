"""Evaluation suites: a YAML file of prompts, items and scorers.

    name: capitals
    description: Capital cities
    licence: CC-BY-4.0, written for this project
    defaults: {temperature: 0, max_tokens: 64}     # chat options for every call
    system: Answer in one short sentence.
    prompt: "What is the capital of {{ country }}?"  # Jinja2, variables from each item
    scorers:
      - type: contains                              # any registered scorer
        case_sensitive: false
    items:                                          # inline, or items_file: x.jsonl|x.csv
      - {id: fr, country: France, expected: Paris, tags: [europe]}

An item's ``id``, ``expected`` and ``tags`` are special; every other key (and the keys
of an optional ``vars`` mapping) is a template variable. Errors name the file, the line,
the item and the field.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from pydantic import BaseModel, ConfigDict, Field

from ..config.yamlfile import parse_yaml
from ..errors import ConfigError
from .scoring import Scorer, build_scorer

__all__ = ["Suite", "SuiteItem", "SuiteSpec", "builtin_suites", "load_suite", "parse_suite"]

_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)


class SuiteSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    description: str = ""
    licence: str | None = None
    defaults: dict[str, Any] = Field(default_factory=dict)
    system: str | None = None
    prompt: str = "{{ input }}"
    scorers: list[dict[str, Any]] = Field(min_length=1)
    items: list[dict[str, Any]] | None = None
    items_file: str | None = None


@dataclass(frozen=True, slots=True)
class SuiteItem:
    id: str
    vars: dict[str, Any]
    expected: Any = None
    tags: tuple[str, ...] = ()


@dataclass(eq=False)
class Suite:
    spec: SuiteSpec
    items: list[SuiteItem]
    source: str
    scorers: list[Scorer] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def hash(self) -> str:
        """Content hash of the spec and items: two runs of one hash saw the same suite."""
        blob = json.dumps(
            {
                "spec": self.spec.model_dump(exclude={"items", "items_file"}),
                "items": [[i.id, i.vars, i.expected, list(i.tags)] for i in self.items],
            },
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @functools.cached_property
    def _templates(self) -> tuple[jinja2.Template, jinja2.Template | None]:
        system = _template(self.spec.system) if self.spec.system else None
        return _template(self.spec.prompt), system

    def render(self, item: SuiteItem) -> list[dict[str, str]]:
        """The chat messages for one item."""
        prompt, system_template = self._templates
        try:
            text = prompt.render(**item.vars)
            system = system_template.render(**item.vars) if system_template else None
        except Exception as exc:  # TemplateError, or a filter failing on this item's values
            raise ConfigError(f"{self.source}: item {item.id!r}: prompt template: {exc}") from exc
        messages = [{"role": "system", "content": system}] if system else []
        return [*messages, {"role": "user", "content": text}]


def _template(source: str) -> jinja2.Template:
    """A compiled template whose globals are a plain dict.

    Jinja keeps a template's globals as a ``ChainMap`` over the environment's and copies
    it key by key into a new context on every render (two thirds of the time of a short
    prompt); a dict snapshot renders the same text about three times faster. ``_ENV``'s
    globals are never changed after import, so the snapshot cannot go stale.
    """
    template = _ENV.from_string(source)
    template.globals = dict(template.globals)
    return template


def _item(raw: Any, index: int, where: str) -> SuiteItem:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: item {index}: must be a mapping, got {type(raw).__name__}")
    data = dict(raw)
    item_id = str(data.pop("id", index))
    expected = data.pop("expected", None)
    tags = data.pop("tags", [])
    if isinstance(tags, str):
        tags = [t.strip() for t in tags.split(",") if t.strip()]
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise ConfigError(f"{where}: item {index}: field tags: must be a list of strings")
    extra = data.pop("vars", {})
    if not isinstance(extra, dict):
        raise ConfigError(f"{where}: item {index}: field vars: must be a mapping")
    return SuiteItem(item_id, {**data, **extra}, expected, tuple(tags))


def _read_items_file(path: Path) -> list[tuple[Any, str]]:
    """Raw items with a location for errors (``file:line``)."""
    if not path.is_file():
        raise ConfigError(f"items_file {path} does not exist.")
    rows: list[tuple[Any, str]] = []
    if path.suffix == ".jsonl":
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    rows.append((json.loads(line), f"{path}:{number}"))
                except ValueError as exc:
                    raise ConfigError(f"{path}:{number}: invalid JSON: {exc}") from exc
    elif path.suffix == ".csv":
        with path.open(encoding="utf-8", newline="") as handle:
            for number, row in enumerate(csv.DictReader(handle), 2):
                rows.append((dict(row), f"{path}:{number}"))
    else:
        raise ConfigError(f"items_file {path}: use .jsonl or .csv")
    return rows


def parse_suite(text: str, source: str, base_dir: Path | None = None) -> Suite:
    """Validate a suite's YAML text; errors name the file, item and field."""
    document = parse_yaml(text, source)
    if not isinstance(document.data, dict):
        raise ConfigError(f"{source}:1: a suite is a mapping with name, prompt, scorers, items")
    spec = document.validate(SuiteSpec, "Invalid suite")
    if (spec.items is None) == (spec.items_file is None):
        raise ConfigError(f"{source}: give either `items` or `items_file`.")
    if spec.items is not None:
        raw = [
            (item, f"{source}:{document.line_of(('items', i))}")
            for i, item in enumerate(spec.items)
        ]
    else:
        raw = _read_items_file((base_dir or Path.cwd()) / str(spec.items_file))
    if not raw:
        raise ConfigError(f"{source}: the suite has no items.")
    items = [_item(data, i, where) for i, (data, where) in enumerate(raw)]
    ids = [i.id for i in items]
    if len(set(ids)) != len(ids):
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        raise ConfigError(f"{source}: duplicate item ids: {', '.join(dupes[:5])}")
    scorers = [
        build_scorer(s, f"{source}:{document.line_of(('scorers', i))}: scorers[{i}]")
        for i, s in enumerate(spec.scorers)
    ]
    suite = Suite(spec, items, source, scorers)
    template = _compile(spec.prompt, "prompt", f"{source}:{document.line_of(('prompt',))}")
    if spec.system:
        _compile(spec.system, "system", f"{source}:{document.line_of(('system',))}")
    for index, ((_, where), item) in enumerate(zip(raw, items, strict=True)):
        try:
            template.render(**item.vars)
        except jinja2.UndefinedError as exc:
            raise ConfigError(f"{where}: item {index}: prompt template: {exc.message}") from exc
        except Exception as exc:  # a filter or expression failing on this item's values
            raise ConfigError(
                f"{where}: item {index}: prompt template failed: {type(exc).__name__}: {exc}"
            ) from exc
    return suite


def _compile(source: str, field: str, where: str) -> jinja2.Template:
    """A suite template, or a ConfigError naming the file, line and field."""
    try:
        return _template(source)
    except jinja2.TemplateSyntaxError as exc:
        raise ConfigError(
            f"{where}: field {field}: template syntax error: {exc.message} (line {exc.lineno} "
            f"of the template {source!r}). Jinja2 variables are written {{{{ name }}}}."
        ) from None


def builtin_suites() -> dict[str, str]:
    """Built-in suite names mapped to their one-line description."""
    found: dict[str, str] = {}
    folder = resources.files("crossroads.evals") / "suites"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            data = parse_yaml(entry.read_text(encoding="utf-8"), entry.name).data or {}
            found[entry.name.removesuffix(".yaml")] = str(data.get("description", ""))
    return found


def load_suite(name_or_path: str) -> Suite:
    """A suite file, or a built-in suite by name (``crossroads suites`` lists them)."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return parse_suite(path.read_text(encoding="utf-8"), str(path), path.parent)
    folder = resources.files("crossroads.evals") / "suites"
    builtin = folder / f"{name_or_path}.yaml"
    if builtin.is_file():
        with resources.as_file(folder) as real:
            return parse_suite(builtin.read_text(encoding="utf-8"), f"{name_or_path}.yaml", real)
    known = ", ".join(builtin_suites()) or "none"
    raise ConfigError(f"No suite {name_or_path!r}: not a file, and not a built-in suite ({known}).")
