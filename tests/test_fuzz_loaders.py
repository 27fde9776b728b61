"""Every file Crossroads reads, fed malformed YAML, JSON, CSV and Jinja: a clear error of
the project's own types (ConfigError and its subclasses), never a traceback."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crossroads.catalog.prices import read_price_map
from crossroads.config import parse_config
from crossroads.decide.profile import load_profile
from crossroads.errors import ConfigError
from crossroads.evals.suite import parse_suite
from crossroads.tune.data import load_examples

ROOT = Path(__file__).resolve().parents[1]

SUITE = """\
name: fuzz
system: "Answer in {{ lang }}."
prompt: "What is the capital of {{ country }}?"
scorers:
  - type: contains
items:
  - {id: fr, country: France, lang: English, expected: Paris}
  - {id: de, country: Germany, lang: English, expected: Berlin, tags: [europe]}
"""
SUITE_WITH_FILE = """\
name: fuzz-file
prompt: "{{ q }}"
scorers: [{type: exact}]
items_file: items.{ext}
"""
CSV = "id,q,expected\na,What is 2+2?,4\nb,Capital of France?,Paris\n"
JSONL = '{"id": "a", "q": "2+2?", "expected": "4"}\n{"id": "b", "q": "x", "expected": "y"}\n'
CONFIG = """\
models:
  - name: fast
    backend: openai
    model: gpt-4o-mini
  - name: local
    backend: llamacpp
    model: smollm2
guardrails:
  policies:
    - name: default
      applies_to: {keys: ["*"], models: ["*"]}
      input: [{check: pii, action: redact, restore: true}, {check: injection}]
      output: [{check: pii, action: redact}, {check: canary}]
      fail: closed
"""
TRAINING = (
    '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}\n'
    '{"prompt": "2+2?", "completion": "4"}\n'
)
PRICE_MAP = (
    '{"sample_spec": {"input_cost_per_token": 0},\n'
    ' "gpt-4o": {"input_cost_per_token": 2.5e-06, "output_cost_per_token": 1e-05,\n'
    '            "cache_read_input_token_cost": 1.25e-06, "litellm_provider": "openai"}}\n'
)
PROFILE = (ROOT / "examples/profiles/hospital.yaml").read_text(encoding="utf-8")

# Pieces that break YAML, JSON, CSV and Jinja in the ways people break them by hand.
BREAKERS = [
    "{",
    "}",
    "[",
    "]",
    ":",
    ": ",
    "- ",
    '"',
    "'",
    "\t",
    "\n",
    "  ",
    "#",
    "&a",
    "*a",
    "!!",
    "!!python/object:os.system",
    "|",
    ">",
    "%",
    "@",
    "`",
    ",",
    "\\",
    "\x00",
    "\ufeff",
    "é",
    "{{ q }",
    "{{",
    "}}",
    "{% if %}",
    "{% for x in %}",
    "{{ 1/0 }}",
    "{{ q|int(base=1) }}",
    "{{ q.__class__ }}",
    "{# ",
    "{{ undefined_var }}",
    "{{ q|unknownfilter }}",
    "null",
    "~",
    "1e999",
    "-.inf",
    ".nan",
    "0x",
    "<<: *a",
    "? ",
    "---",
    "...",
    "%YAML 1.1",
    '"""',
]


@st.composite
def mutated(draw: st.DrawFn, seed: str) -> str:
    """``seed`` with a few insertions, deletions, truncations and line swaps."""
    text = seed
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["insert", "delete", "truncate", "swap", "replace"]))
        pos = draw(st.integers(0, max(0, len(text))))
        if op == "insert":
            piece = draw(st.one_of(st.sampled_from(BREAKERS), st.text(max_size=6)))
            text = text[:pos] + piece + text[pos:]
        elif op == "delete":
            text = text[:pos] + text[pos + draw(st.integers(1, 8)) :]
        elif op == "truncate":
            text = text[:pos]
        elif op == "replace":
            end = pos + draw(st.integers(1, 12))
            text = text[:pos] + draw(st.sampled_from(BREAKERS)) + text[end:]
        else:
            lines = text.splitlines(keepends=True)
            if len(lines) > 1:
                i = draw(st.integers(0, len(lines) - 2))
                lines[i], lines[i + 1] = lines[i + 1], lines[i]
                text = "".join(lines)
    return text


FUZZ = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,  # the same cases on every run: a failure here is reproducible
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _only_our_errors(load: Callable[[], object]) -> None:
    """Loading either works or raises one of the project's errors with a message."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecation notes are warnings, not failures
        try:
            load()
        except ConfigError as exc:
            assert str(exc).strip(), "an error without a message"


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    return path


def test_the_seeds_are_valid(tmp_path: Path) -> None:
    """The fuzzing starts from files that load: the mutations are what breaks them."""
    parse_suite(SUITE, "s.yaml", tmp_path)
    parse_config(CONFIG)
    load_profile(_write(tmp_path / "p.yaml", PROFILE))
    load_examples(_write(tmp_path / "t.jsonl", TRAINING))
    assert read_price_map(_write(tmp_path / "m.json", PRICE_MAP))["gpt-4o"][0] == 2.5
    for ext, body in (("csv", CSV), ("jsonl", JSONL)):
        _write(tmp_path / f"items.{ext}", body)
        parse_suite(SUITE_WITH_FILE.replace("{ext}", ext), "s.yaml", tmp_path)


@FUZZ
@given(text=st.one_of(mutated(SUITE), st.text(max_size=200)))
def test_suites(text: str, tmp_path: Path) -> None:
    _only_our_errors(lambda: parse_suite(text, "suite.yaml", tmp_path))


@FUZZ
@given(ext=st.sampled_from(["csv", "jsonl"]), data=st.data())
def test_suite_item_files(ext: str, data: st.DataObject, tmp_path: Path) -> None:
    body = data.draw(mutated(CSV if ext == "csv" else JSONL))
    _write(tmp_path / f"items.{ext}", body)
    _only_our_errors(lambda: parse_suite(SUITE_WITH_FILE.replace("{ext}", ext), "s.yaml", tmp_path))


@FUZZ
@given(text=st.one_of(mutated(CONFIG), st.text(max_size=200)))
def test_config_and_guard_policies(text: str) -> None:
    _only_our_errors(lambda: parse_config(text, "crossroads.yaml"))


@FUZZ
@given(text=st.one_of(mutated(PROFILE), st.text(max_size=200)))
def test_profiles(text: str, tmp_path: Path) -> None:
    path = _write(tmp_path / "profile.yaml", text)
    _only_our_errors(lambda: load_profile(path))


@FUZZ
@given(text=st.one_of(mutated(TRAINING), st.text(max_size=200)))
def test_training_data(text: str, tmp_path: Path) -> None:
    path = _write(tmp_path / "train.jsonl", text)
    _only_our_errors(lambda: load_examples(path))


@FUZZ
@given(text=st.one_of(mutated(PRICE_MAP), st.text(max_size=200)))
def test_price_maps(text: str, tmp_path: Path) -> None:
    path = _write(tmp_path / "model_prices_and_context_window.json", text)
    _only_our_errors(lambda: read_price_map(path))


@pytest.mark.parametrize(
    "prompt",
    ["{{ q }", "{% if q %}", "{{ q | nosuchfilter }}", "{{ 1/0 }}", "{% endfor %}"],
)
def test_each_template_error_names_file_line_and_field(prompt: str) -> None:
    text = f'name: t\nscorers: [{{type: exact}}]\nprompt: "{prompt}"\nitems:\n  - {{q: a}}\n'
    with pytest.raises(ConfigError) as caught:
        parse_suite(text, "suite.yaml")
    message = str(caught.value)
    assert message.startswith("suite.yaml:"), message
    assert ("suite.yaml:3: field prompt" in message) or ("suite.yaml:5: item 0" in message)
