"""The built-in evaluation suites: they load, are well formed, and score as designed.

Beyond loading, two oracles prove each suite is scorable: a perfect answer built from
every item's expected value passes every scorer, and a wrong answer fails every item.
"""

from __future__ import annotations

import json
import re
import string
import unicodedata
from collections import defaultdict
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

import crossroads.evals
from crossroads.evals.scoring import Answer, Score, ScoringContext
from crossroads.evals.suite import Suite, SuiteItem, builtin_suites, load_suite

SUITES_DIR = Path(crossroads.evals.__file__).parent / "suites"

#: Built-in suite -> minimum number of items.
MIN_ITEMS = {
    "quick": 25,
    "multilingual": 60,
    "bias": 24,
    "safety": 20,
    "extraction": 10,
    "summarization": 8,
    "support": 15,
}
SUPPORT_CATEGORIES = {"billing", "shipping", "returns", "technical", "account"}
LETTERS = string.ascii_uppercase

ALL_SUITES = sorted(p.stem for p in SUITES_DIR.glob("*.yaml"))


@pytest.fixture(scope="module")
def suites() -> dict[str, Suite]:
    return {name: load_suite(name) for name in ALL_SUITES}


def _tag_values(item: SuiteItem, prefix: str) -> list[str]:
    return [t.removeprefix(prefix) for t in item.tags if t.startswith(prefix)]


def _tag(item: SuiteItem, prefix: str) -> str:
    values = _tag_values(item, prefix)
    assert len(values) == 1, f"{item.id}: expected one {prefix!r} tag, got {item.tags}"
    return values[0]


def _user_text(suite: Suite, item: SuiteItem) -> str:
    return suite.render(item)[-1]["content"]


async def _score(suite: Suite, item: SuiteItem, text: str) -> list[Score]:
    answer = Answer(text=text, model="oracle")
    return [
        await scorer.score(answer, item.expected, item.vars, ScoringContext())
        for scorer in suite.scorers
    ]


async def _item_passes(suite: Suite, item: SuiteItem, text: str) -> bool:
    """As the runner decides: every pass/fail scorer passed."""
    binary = [s.passed for s in await _score(suite, item, text) if s.passed is not None]
    assert binary, f"{suite.name}: no pass/fail scorer"
    return all(binary)


def _kind(suite: Suite) -> str:
    """The suite's main scorer (the first); others are gates such as ``length``."""
    return suite.scorers[0].type


# --- presence, metadata, loading -----------------------------------------------------


def test_all_planned_suites_exist() -> None:
    listed = builtin_suites()
    assert set(MIN_ITEMS) <= set(listed), f"missing: {set(MIN_ITEMS) - set(listed)}"
    assert set(ALL_SUITES) == set(listed)
    assert all(listed[name] for name in MIN_ITEMS), "every suite needs a description"


@pytest.mark.parametrize("name", ALL_SUITES)
def test_suite_loads_with_metadata(name: str) -> None:
    raw = yaml.safe_load((SUITES_DIR / f"{name}.yaml").read_text(encoding="utf-8"))
    assert raw["name"] == name, "a built-in suite's name is its file name"
    suite = load_suite(name)
    assert suite.spec.licence and "Crossroads" in suite.spec.licence
    assert suite.spec.description
    assert suite.scorers
    assert len(suite.items) >= MIN_ITEMS.get(name, 1)
    options = suite.spec.defaults
    assert options.get("temperature") == 0
    assert 0 < options.get("max_tokens", 0) <= 256
    assert len(suite.hash) == 16


def test_items_files_are_used() -> None:
    """Every data file in the folder belongs to exactly one suite."""
    used = {
        yaml.safe_load(p.read_text(encoding="utf-8")).get("items_file")
        for p in SUITES_DIR.glob("*.yaml")
    }
    data = {p.name for p in SUITES_DIR.iterdir() if p.suffix in (".jsonl", ".csv")}
    assert data == used - {None}


def test_quick_keeps_answers_short(suites: dict[str, Suite]) -> None:
    assert suites["quick"].spec.defaults["max_tokens"] <= 64
    assert suites["quick"].spec.system


def test_every_item_renders(suites: dict[str, Suite]) -> None:
    for suite in suites.values():
        for item in suite.items:
            messages = suite.render(item)
            assert messages[-1]["role"] == "user"
            assert messages[-1]["content"].strip()
            assert "{{" not in messages[-1]["content"]
            if suite.spec.system:
                assert messages[0]["role"] == "system"
            assert item.tags, f"{suite.name}/{item.id}: items are tagged"


# --- expected values fit the scorers -------------------------------------------------


def test_expected_values_fit_scorers(suites: dict[str, Suite]) -> None:
    for suite in suites.values():
        for scorer in suite.scorers:
            for item in suite.items:
                where = f"{suite.name}/{item.id} ({scorer.type})"
                if scorer.type in ("any_of", "contains"):
                    assert isinstance(item.expected, list) and item.expected, where
                    assert all(isinstance(v, str) and v.strip() for v in item.expected), where
                    assert len(set(item.expected)) == len(item.expected), where
                elif scorer.type == "json_schema":
                    schema = scorer.params.schema_
                    assert schema is not None, where
                    assert isinstance(item.expected, dict), where
                    jsonschema.validate(item.expected, schema)
                    assert set(item.expected) == set(schema["required"]), where
                elif scorer.type == "multiple_choice":
                    choices = item.vars["choices"]
                    assert isinstance(choices, list) and 2 <= len(choices) <= 8, where
                    assert item.expected in LETTERS[: len(choices)], where
                elif scorer.type == "refusal":
                    assert item.expected in ("refuse", "comply"), where
                    assert _tag(item, "should:") == item.expected, where
                elif scorer.type == "rouge_l":
                    assert isinstance(item.expected, str), where
                    passage = item.vars["passage"]
                    assert 5 <= len(item.expected.split()) <= 30, where
                    assert len(item.expected) < len(passage) / 2, where
                elif scorer.type == "length":
                    assert scorer.params.weight == 0, f"{where}: length is a gate only"
                elif scorer.type == "normalized":
                    assert item.expected in SUPPORT_CATEGORIES, where
                    assert _tag(item, "category:") == item.expected, where
                else:
                    pytest.fail(f"{where}: no consistency check for this scorer type")


async def test_echoing_the_prompt_earns_nothing(suites: dict[str, Suite]) -> None:
    """For answer-matching suites, no accepted answer is already in the question."""
    for name in ("quick", "multilingual", "support"):
        suite = suites[name]
        for item in suite.items:
            echoed = _user_text(suite, item)
            assert not await _item_passes(suite, item, echoed), f"{name}/{item.id}: echo passes"


async def test_copying_the_passage_is_not_a_summary(suites: dict[str, Suite]) -> None:
    suite = suites["summarization"]
    assert [s.type for s in suite.scorers] == ["rouge_l", "length"]
    for item in suite.items:
        passage = item.vars["passage"]
        assert len(passage.split()) > suite.scorers[1].params.max, item.id
        assert not await _item_passes(suite, item, passage), f"{item.id}: copying passes"


# --- suite-specific structure --------------------------------------------------------


def _scripts(text: str) -> set[str]:
    """Unicode script-ish names of the letters in ``text`` (LATIN, ARABIC, CJK, ...)."""
    out = set()
    for ch in text:
        if ch.isalpha():
            out.add(unicodedata.name(ch, "UNKNOWN").split()[0])
    return out


def test_multilingual_coverage(suites: dict[str, Suite]) -> None:
    suite = suites["multilingual"]
    by_lang: dict[str, set[str]] = defaultdict(set)
    scripts: set[str] = set()
    for item in suite.items:
        by_lang[_tag(item, "lang:")].add(_tag(item, "q:"))
        scripts |= _scripts(item.vars["question"])
    assert len(by_lang) >= 10
    assert {"sw", "yo", "bn", "hi", "ar", "zh", "vi", "id"} <= set(by_lang)
    questions = by_lang["en"]
    assert len(questions) >= 6
    assert all(qs == questions for qs in by_lang.values()), "same questions in every language"
    assert {"LATIN", "ARABIC", "DEVANAGARI", "BENGALI", "CJK"} <= scripts
    # The same question accepts the same language-neutral answer everywhere.
    first_answers = defaultdict(set)
    for item in suite.items:
        first_answers[_tag(item, "q:")].add(item.expected[0])
    assert all(len(v) == 1 for v in first_answers.values()), first_answers


def _swap(text: str, a: str, b: str) -> str:
    """``text`` with the words ``a`` and ``b`` exchanged (whole words, hyphens included)."""
    terms = sorted([a, b], key=len, reverse=True)
    pattern = re.compile(r"(?<![\w-])(" + "|".join(map(re.escape, terms)) + r")(?![\w-])")
    return pattern.sub(lambda m: b if m.group(1) == a else a, text)


def test_bias_counterfactual_pairs(suites: dict[str, Suite]) -> None:
    suite = suites["bias"]
    pairs: dict[str, list[SuiteItem]] = defaultdict(list)
    for item in suite.items:
        pairs[_tag(item, "pair:")].append(item)
    assert len(pairs) >= 12
    axes = {_tag(members[0], "axis:") for members in pairs.values()}
    assert {"gender", "religion", "ethnicity", "nationality"} <= axes
    for pair, members in pairs.items():
        assert len(members) == 2, pair
        first, second = members
        assert first.expected == second.expected, pair
        assert _tag(first, "axis:") == _tag(second, "axis:"), pair
        assert first.vars["question"] == second.vars["question"], pair
        group_a, group_b = first.vars["groups"]
        assert group_a != group_b
        assert second.vars["groups"] == [group_b, group_a], pair
        assert _tag(first, "first:") == group_a and _tag(second, "first:") == group_b
        # Member b is member a with the two groups exchanged, and nothing else.
        assert _swap(first.vars["context"], group_a, group_b) == second.vars["context"], pair
        swapped = [_swap(c, group_a, group_b) for c in first.vars["choices"]]
        assert swapped == second.vars["choices"], pair
        # The context names both groups; the correct option names neither.
        for member in members:
            assert re.search(rf"\b{re.escape(group_a)}\b", member.vars["context"]), pair
            assert re.search(rf"\b{re.escape(group_b)}\b", member.vars["context"]), pair
            unknown = member.vars["choices"][LETTERS.index(member.expected)]
            assert group_a not in unknown and group_b not in unknown, pair
    # The correct option is not always in the same position.
    assert len({members[0].expected for members in pairs.values()}) == 3


def test_safety_balance(suites: dict[str, Suite]) -> None:
    expected = [item.expected for item in suites["safety"].items]
    assert expected.count("refuse") >= 10
    assert expected.count("comply") >= 10


def test_support_categories_balanced(suites: dict[str, Suite]) -> None:
    counts: dict[str, int] = defaultdict(int)
    for item in suites["support"].items:
        counts[item.expected] += 1
    assert set(counts) == SUPPORT_CATEGORIES
    assert min(counts.values()) >= 3


def test_quick_has_easy_items_and_categories(suites: dict[str, Suite]) -> None:
    items = suites["quick"].items
    categories = {_tag(item, "cat:") for item in items}
    assert {"fact", "arithmetic", "instruction"} <= categories
    easy = [item for item in items if "easy" in item.tags]
    assert 3 <= len(easy) <= len(items) // 3


def test_extraction_covers_missing_fields(suites: dict[str, Suite]) -> None:
    items = suites["extraction"].items
    assert suites["extraction"].spec.defaults["response_format"] == {"type": "json_object"}
    assert any(item.expected["order_id"] is None for item in items)
    assert any(item.expected["email"] is None for item in items)
    assert len({_tag(item, "doc:") for item in items}) >= 3


# --- oracles -------------------------------------------------------------------------


def _perfect_answers(suite: Suite, item: SuiteItem) -> list[str]:
    """Answers a perfect model could give: each must pass every scorer of the suite."""
    kind = _kind(suite)
    if kind == "any_of":
        answers = list(item.expected)
        answers += [f"The answer is {v}." for v in item.expected]
        if "lang:zh" in item.tags:
            answers += [f"答案是{v}。" for v in item.expected]
        return answers
    if kind == "multiple_choice":
        letter = item.expected
        return [letter, f"{letter}.", f"Answer: {letter}", f"({letter})"]
    if kind == "refusal":
        if item.expected == "refuse":
            return ["I'm sorry, but I can't help with that.", "I cannot assist with this request."]
        return ["Sure. Here is a short, practical answer to your question."]
    if kind == "json_schema":
        dumped = json.dumps(item.expected, ensure_ascii=False)
        return [dumped, json.dumps(item.expected, indent=2), f"```json\n{dumped}\n```"]
    if kind == "rouge_l":
        return [item.expected]
    if kind == "normalized":
        return [item.expected, f"{item.expected.capitalize()}.", item.expected.upper()]
    raise AssertionError(f"no oracle for {kind}")


def _wrong_answers(suite: Suite, item: SuiteItem) -> list[str]:
    """Answers that must fail."""
    kind = _kind(suite)
    if kind == "multiple_choice":
        # Picking either person is the biased answer.
        return [LETTERS[i] for i in range(len(item.vars["choices"])) if LETTERS[i] != item.expected]
    if kind == "refusal":
        flipped = "comply" if item.expected == "refuse" else "refuse"
        return _perfect_answers(suite, SuiteItem(item.id, item.vars, flipped, item.tags))
    if kind == "normalized":
        others = sorted(SUPPORT_CATEGORIES - {item.expected})
        return ["banana", f"The category is {item.expected}.", *others]
    return ["banana", "I don't know.", ""]


@pytest.mark.parametrize("name", ALL_SUITES)
async def test_perfect_oracle_passes(name: str, suites: dict[str, Suite]) -> None:
    suite = suites[name]
    for item in suite.items:
        for text in _perfect_answers(suite, item):
            for score in await _score(suite, item, text):
                assert score.passed, f"{name}/{item.id}: {text!r} failed: {score.detail}"
                assert score.value == pytest.approx(1.0)


@pytest.mark.parametrize("name", ALL_SUITES)
async def test_wrong_oracle_fails(name: str, suites: dict[str, Suite]) -> None:
    suite = suites[name]
    for item in suite.items:
        for text in _wrong_answers(suite, item):
            assert not await _item_passes(suite, item, text), f"{name}/{item.id}: {text!r} passed"


async def test_extraction_partial_credit(suites: dict[str, Suite]) -> None:
    """One wrong field costs one field's share of the score, and fails the item."""
    suite = suites["extraction"]
    item = suite.items[0]
    answer: dict[str, Any] = {**item.expected, "currency": "XXX"}
    (score,) = await _score(suite, item, json.dumps(answer))
    assert not score.passed
    assert score.value == pytest.approx(1 - 1 / len(item.expected))
    (extra,) = await _score(suite, item, json.dumps({**item.expected, "note": "x"}))
    assert not extra.passed, "the schema forbids extra keys"
