"""The one YAML reader for files people write: errors say ``FILE:LINE: field: message``.

``crossroads.yaml``, advisor profiles and eval suites all go through :func:`parse_yaml`.
It composes the node tree once and builds the data from it, keeping the tree, so that a
pydantic ``ValidationError`` can be reported at the line of each field it names
(:meth:`YamlDocument.validate`). A YAML syntax error is a ``ConfigError`` reading
``FILE:LINE:COL: invalid YAML: ...``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from ..errors import ConfigError

__all__ = ["Loc", "YamlDocument", "parse_yaml", "read_yaml"]

#: A pydantic error location: mapping keys and sequence indexes, outermost first.
Loc = tuple[int | str, ...]
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class YamlDocument:
    """A parsed YAML file: its data, its node tree (for line numbers) and its name."""

    source: str
    data: Any
    root: yaml.Node | None

    def line_of(self, loc: Loc) -> int:
        """1-based line of the deepest node written at ``loc`` (1 for an empty file)."""
        node = self.root
        if node is None:
            return 1
        line: int = node.start_mark.line + 1
        for key in loc:
            if isinstance(node, yaml.MappingNode):
                found = next((v for k, v in node.value if getattr(k, "value", None) == key), None)
            elif isinstance(node, yaml.SequenceNode) and isinstance(key, int):
                found = node.value[key] if key < len(node.value) else None
            else:
                found = None
            if found is None:
                break
            node = found
            line = node.start_mark.line + 1
        return line

    def problems(
        self,
        exc: ValidationError,
        *,
        written_at: Callable[[Loc], Loc] | None = None,
        field_format: str = "{}",
    ) -> list[str]:
        """One ``SOURCE:LINE: FIELD: message`` per error of ``exc``.

        ``written_at`` maps a model location to where the file wrote it, when the two
        differ (a setting read from its old place); ``field_format`` wraps the dotted
        field name (``"field '{}'"``).
        """
        lines = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            line = self.line_of(written_at(loc) if written_at else loc)
            field = field_format.format(".".join(str(p) for p in loc) or "(top level)")
            lines.append(f"{self.source}:{line}: {field}: {err['msg']}")
        return lines

    def validate(
        self,
        model: type[M],
        heading: str,
        *,
        written_at: Callable[[Loc], Loc] | None = None,
        field_format: str = "{}",
    ) -> M:
        """``model`` validated from the data; a ConfigError lists every problem by line."""
        try:
            return model.model_validate(self.data)
        except ValidationError as exc:
            problems = self.problems(exc, written_at=written_at, field_format=field_format)
            raise ConfigError(f"{heading}:\n  " + "\n  ".join(problems)) from exc


def parse_yaml(text: str, source: str = "<string>") -> YamlDocument:
    """Parse one YAML document (safe tags only); a syntax error names file, line, column."""
    try:
        loader = yaml.SafeLoader(text)  # checks the characters: may raise a ReaderError
    except yaml.reader.ReaderError as exc:
        raise ConfigError(_reader_error(exc, text, source)) from exc
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.reader.ReaderError as exc:
        raise ConfigError(_reader_error(exc, text, source)) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: invalid YAML: {problem}") from exc
    finally:
        loader.dispose()
    return YamlDocument(source, data, root)


def _reader_error(exc: yaml.reader.ReaderError, text: str, source: str) -> str:
    """A control character YAML does not allow, with its line and column."""
    pos = max(0, min(exc.position, len(text)))
    line = text.count("\n", 0, pos) + 1
    column = pos - (text.rfind("\n", 0, pos) + 1) + 1
    char = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "?")
    return (
        f"{source}:{line}:{column}: invalid YAML: character U+{char:04X} is not allowed "
        "(a control character: remove it, or save the file as plain UTF-8 text)"
    )


def read_yaml(path: Path, what: str) -> YamlDocument:
    """Read and parse a file; ``what`` names it in the error when it cannot be read."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: cannot read {what}: not UTF-8 text ({exc.reason})") from None
    return parse_yaml(text, str(path))
