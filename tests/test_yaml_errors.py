"""One YAML reader: every file a user writes reports a mistake at its file and line."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict

from crossroads.config.yamlfile import parse_yaml
from crossroads.decide.profile import load_profile
from crossroads.errors import ConfigError
from crossroads.evals.suite import load_suite, parse_suite

SUITE = """\
name: s
prompt: "Capital of {{ country }}?"
scorers:
  - type: contains
items:
  - {id: fr, country: France, expected: Paris}
  - {id: de, country: Germany, expected: Berlin}
"""


class _Point(BaseModel):
    model_config = ConfigDict(extra="forbid")
    x: int
    y: int = 0


def test_syntax_errors_name_file_line_and_column() -> None:
    with pytest.raises(ConfigError, match=r"^f\.yaml:2:5: invalid YAML: mapping values") as info:
        parse_yaml("a: 1\nb: c: d\n", "f.yaml")
    assert isinstance(info.value.__cause__, Exception)


def test_data_and_lines_come_from_one_parse() -> None:
    document = parse_yaml("a: 1\nlist:\n  - x\n  - {deep: 2}\n", "f.yaml")
    assert document.data == {"a": 1, "list": ["x", {"deep": 2}]}
    assert document.line_of(("list", 1, "deep")) == 4
    assert document.line_of(("list", 9)) == 3  # past the end: the list's own first line
    assert parse_yaml("", "empty.yaml").data is None
    assert parse_yaml("", "empty.yaml").line_of(("a",)) == 1


def test_validation_errors_are_listed_by_line() -> None:
    document = parse_yaml("x: 1\ny: nope\nz: 3\n", "p.yaml")
    with pytest.raises(ConfigError) as info:
        document.validate(_Point, "Invalid point")
    assert str(info.value).splitlines() == [
        "Invalid point:",
        "  p.yaml:2: y: Input should be a valid integer, unable to parse string as an integer",
        "  p.yaml:3: z: Extra inputs are not permitted",
    ]


def test_a_bad_field_in_a_suite_file_names_its_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(SUITE.replace("prompt:", "promt:"), encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"{path}:2: promt: Extra inputs"):
        load_suite(str(path))
    path.write_text(SUITE.replace("  - type: contains\n", "  - {}\n"), encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"{path}:4: scorers\[0\]: each scorer needs"):
        load_suite(str(path))


def test_a_bad_suite_item_names_its_line() -> None:
    text = SUITE.replace("country: Germany", "land: Germany")
    with pytest.raises(ConfigError, match=r"^s\.yaml:7: item 1: prompt template: .*country"):
        parse_suite(text, "s.yaml")
    text = SUITE.replace("expected: Berlin}", "expected: Berlin, tags: 3}")
    with pytest.raises(ConfigError, match=r"^s\.yaml:7: item 1: field tags"):
        parse_suite(text, "s.yaml")
    with pytest.raises(ConfigError, match=r"^s\.yaml:4:3: invalid YAML"):
        parse_suite(SUITE.replace("scorers:", "scorers: [", 1), "s.yaml")


def test_a_bad_field_in_a_profile_file_names_its_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "profile.yaml"
    path.write_text(
        "name: x\nweights:\n  cost: 2\nconstraints:\n  regulated: true\n  p95_latency_s: 0\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=rf"{path}:6: field 'constraints\.p95_latency_s': "):
        load_profile(path)
    path.write_text("name: x\nweights:\n  cost: [1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"{path}:4:1: invalid YAML"):
        load_profile(path)
