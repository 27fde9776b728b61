"""Multiple-choice extraction from free text (no logprobs) and the multiple_choice scorer."""

from __future__ import annotations

from typing import Any

import pytest

from crossroads.errors import ConfigError
from crossroads.evals.scorers.choice import MultipleChoice, extract_choice
from crossroads.evals.scoring import Answer, Score, ScoringContext, build_scorer

CAPITALS = ["London", "Paris", "Lyon", "Nice"]  # A B C D

# (answer text, expected extraction) with the options above known.
WITH_CHOICES: list[tuple[str, str | None]] = [
    # a bare letter in its many dresses
    ("B", "B"),
    ("(B)", "B"),
    ("B)", "B"),
    ("B.", "B"),
    ("b", "B"),
    ("B!", "B"),
    ("[C]", "C"),
    ("**B**", "B"),
    ("  D  \n", "D"),
    ("A", "A"),
    # answer markers
    ("Answer: B", "B"),
    ("answer: a", "A"),
    ("The answer is B", "B"),
    ("**Answer:** B", "B"),
    ("Answer - B", "B"),
    ("The correct answer is (C) Paris.", "C"),
    ("The best option is D", "D"),
    ("Answer: C\nExplanation: A is wrong because London is in England.", "C"),
    ("Answer: (D) Nice", "D"),
    ("The answer is A because the others are wrong", "A"),
    ("The answer is a city in France: Paris", "B"),
    ("Final answer: D", "D"),
    ("My final answer is **(B)**", "B"),
    ("$\\boxed{C}$", "C"),
    (
        "Let's think step by step. Option A is London, which is wrong. Option B is Paris, "
        "the capital. So the answer is B.",
        "B",
    ),
    # other languages
    ("Respuesta: B", "B"),
    ("La respuesta correcta es la B", "B"),
    ("Die richtige Antwort ist C.", "C"),
    ("La bonne réponse est (D).", "D"),
    ("Risposta: C", "C"),
    ("Ответ: B", "B"),
    ("答案是B", "B"),
    ("答案：C", "C"),
    ("正解はA", "A"),
    # a leading letter
    ("b) Paris", "B"),
    ("(c) Lyon", "C"),
    ("C because Lyon is a city", "C"),
    ("B and not A", "B"),
    ("D) Nice\n\nNice is in France, but A) London is not.", "D"),
    ("A good answer here is B", "B"),
    # choice phrases
    ("I think it's C because it is big", "C"),
    ("Option B", "B"),
    ("I choose B.", "B"),
    ("It's B", "B"),
    ("I'd say D", "D"),
    ("It is a tough one, but I'd go with D.", "D"),
    ("Option A is wrong; C is right.", "C"),
    # JSON
    ('{"answer": "B"}', "B"),
    ('```json\n{"answer": "C", "confidence": 0.9}\n```', "C"),
    ('{"answer": "Paris"}', "B"),
    # the option text itself
    ("Paris", "B"),
    ("The capital of France is Paris.", "B"),
    ("Paris, not London", "B"),
    # a lone letter somewhere
    ("Not A, but C.", "C"),
    # no identifiable choice
    ("I don't know", None),
    ("Both A and B are plausible", None),
    ("It's either A or C.", None),
    ("The answer is not A.", None),
    ("Lyon or Nice", None),
    ("None of the above", None),
    ("E", None),  # not one of the options
    ("", None),
]


@pytest.mark.parametrize(("text", "expected"), WITH_CHOICES)
def test_extract_with_choices(text: str, expected: str | None) -> None:
    assert extract_choice(text, "ABCD", CAPITALS) == expected


# Without the options' texts only letters can be read.
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("B", "B"),
        ("Paris", None),
        ("The answer is (C).", "C"),
        ("I believe the answer is D, since A and B are ruled out.", "D"),
        ("Answer: E", "E"),
        ("I", "I"),
        ("I don't know", None),
    ],
)
def test_extract_letters_only(text: str, expected: str | None) -> None:
    assert extract_choice(text, "ABCDEFGHIJ") == expected


def test_option_text_prefers_the_longer_option() -> None:
    options = {"A": "Paris", "B": "Paris, Texas", "C": "Lyon"}
    assert extract_choice("Paris, Texas", "ABC", options) == "B"
    assert extract_choice("It is Paris in France.", "ABC", options) == "A"


def _scorer(**params: Any) -> MultipleChoice:
    scorer = build_scorer({"type": "multiple_choice", **params})
    assert isinstance(scorer, MultipleChoice)
    return scorer


async def _score(
    scorer: MultipleChoice, text: str, expected: Any, variables: dict[str, Any]
) -> Score:
    return await scorer.score(Answer(text, "m"), expected, variables, ScoringContext())


async def test_scoring_correct_wrong_and_format_error() -> None:
    scorer = _scorer()
    variables = {"choices": CAPITALS}
    right = await _score(scorer, "The answer is (B) Paris.", "B", variables)
    assert (right.value, right.passed, right.format_error) == (1.0, True, False)
    assert right.extra["choice"] == "B"
    wrong = await _score(scorer, "C) Lyon", "B", variables)
    assert (wrong.value, wrong.passed, wrong.format_error) == (0.0, False, False)
    assert wrong.detail == "expected B ('Paris'), found C ('Lyon')"
    unread = await _score(scorer, "I don't know", "B", variables)
    assert (unread.value, unread.passed, unread.format_error) == (0.0, False, True)
    assert "no choice found" in (unread.detail or "")


async def test_expected_as_text_index_and_dict_choices() -> None:
    scorer = _scorer(choices_var="options")
    options = {"options": {"a": "London", "b": "Paris"}}
    assert (await _score(scorer, "B", "Paris", options)).passed is True
    assert (await _score(scorer, "Paris", 1, options)).passed is True
    assert (await _score(scorer, "A", "(b)", options)).passed is False
    with pytest.raises(ConfigError, match="neither an option letter"):
        await _score(scorer, "B", "Berlin", options)
    with pytest.raises(ConfigError, match="neither an option letter"):
        await _score(scorer, "B", "C", options)  # only A and B exist


async def test_letters_without_choices() -> None:
    scorer = _scorer()
    assert (await _score(scorer, "Answer: F", "F", {})).passed is True  # up to the expected
    assert (await _score(scorer, "Answer: E", "B", {})).format_error  # E is not an option
    explicit = _scorer(letters="ABCDE")
    got = await _score(explicit, "Answer: E", "B", {})
    assert (got.passed, got.format_error) == (False, False)


async def test_choices_must_be_a_list_or_mapping() -> None:
    with pytest.raises(ConfigError, match="choices"):
        await _score(_scorer(), "A", "A", {"choices": "A) x B) y"})
