"""The advisor: hard constraints, weighted ranking, flip points, profiles and the CLI."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crossroads.catalog import CatalogEntry, find_model
from crossroads.cli import app
from crossroads.cli.advise_cmd import DEFAULT_CANDIDATES, build_candidates
from crossroads.decide.advisor import (
    Advice,
    Candidate,
    CostCurve,
    FlipPoint,
    Profile,
    advise,
    advise_at,
    catalog_candidate,
    language_support,
    load_profile,
    with_overrides,
)
from crossroads.decide.compare import tco_cost_curve
from crossroads.decide.dimensions import DIMENSIONS, DimensionScore, Evidence
from crossroads.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
PROFILES = sorted((ROOT / "examples" / "profiles").glob("*.yaml"))
runner = CliRunner()


def model(name: str) -> CatalogEntry:
    entry = find_model(name)
    assert entry is not None, name
    return entry


def api_curve(usd_per_1m: float) -> CostCurve:
    return lambda volume: usd_per_1m * volume / 1e6


def flat_curve(usd_per_month: float) -> CostCurve:
    return lambda volume: usd_per_month


#: Synthetic costs: linear APIs, flat self-hosting (so pairwise cost gaps are monotone).
SYNTHETIC: dict[str, CostCurve] = {
    "openai/gpt-4o-mini": api_curve(0.3),
    "openai/gpt-4o": api_curve(4.4),
    "anthropic/claude-haiku-4-5": api_curve(2.0),
    "google/gemini-2.5-flash": api_curve(0.85),
    "meta/llama-3.1-8b": flat_curve(2_000),
    "meta/llama-3.3-70b": flat_curve(9_000),
    "openai/gpt-oss-20b": flat_curve(3_000),
    "local/smollm2": flat_curve(300),
    "anthropic/claude-3-opus": api_curve(30.0),  # retired: always excluded
}


def synthetic(volume: float = 1e7, names: Sequence[str] = tuple(SYNTHETIC)) -> list[Candidate]:
    return [
        catalog_candidate(model(n), SYNTHETIC[n], volume_tokens_per_month=volume) for n in names
    ]


def random_profile(rng: random.Random, **constraints: object) -> Profile:
    data: dict[str, object] = {
        "on_premises": rng.random() < 0.3,
        "no_ml_engineers": rng.random() < 0.3,
        "regulated": rng.random() < 0.2,
        "monthly_budget_usd": rng.choice([None, None, 100.0, 5_000.0, 50_000.0]),
        "languages": rng.choice([[], ["English"], ["German", "fr"], ["Hindi"]]),
        "volume_tokens_per_month": 10 ** rng.uniform(5, 11),
    }
    data.update(constraints)
    weights = {k: rng.uniform(0.01, 5.0) for k in DIMENSIONS}
    return Profile.model_validate({"name": "random", "weights": weights, "constraints": data})


def rank_of(advice: Advice, name: str) -> int | None:
    names = [r.name for r in advice.ranking]
    return names.index(name) if name in names else None


# --------------------------------------------------------------------------- constraints


def test_on_premises_excludes_every_closed_model_whatever_the_weights() -> None:
    rng = random.Random(1)
    candidates = synthetic()
    closed = {c.name for c in candidates if c.entry.kind == "closed"}
    for _ in range(60):
        profile = random_profile(rng, on_premises=True)
        advice = advise(profile, candidates, flip_points=False)
        assert all(r.kind == "open" for r in advice.ranking)
        excluded = {e.name: e.reasons for e in advice.excluded}
        assert closed <= set(excluded)
        for name in closed:
            assert any("on premises" in r for r in excluded[name]), excluded[name]


def test_hard_constraints_hold_at_any_weight_and_volume() -> None:
    rng = random.Random(2)
    candidates = synthetic()
    for _ in range(60):
        profile = random_profile(rng)
        c = profile.constraints
        advice = advise(profile, candidates, flip_points=False)
        assert len(advice.ranking) + len(advice.excluded) == len(candidates)
        for option in advice.ranking:
            entry = model(option.name)
            assert entry.status != "retired"
            if c.regulated:
                assert option.scores["control"] >= 7 and option.scores["transparency"] >= 5
            if c.monthly_budget_usd is not None:
                assert option.monthly_cost_usd is not None
                assert option.monthly_cost_usd <= c.monthly_budget_usd
            if c.no_ml_engineers:
                assert entry.self_host is None or entry.self_host.memory_gb.fp16 <= 20
            for language in c.languages:
                assert language_support(entry, language) != "no"


def test_no_ml_engineers_keeps_only_small_self_hosting() -> None:
    profile = Profile(name="p", constraints={"no_ml_engineers": True})
    advice = advise(profile, synthetic(), flip_points=False)
    excluded = {e.name for e in advice.excluded}
    assert {"meta/llama-3.3-70b", "openai/gpt-oss-20b"} <= excluded
    ranked = {r.name for r in advice.ranking}
    assert {"meta/llama-3.1-8b", "local/smollm2", "openai/gpt-4o-mini"} <= ranked


def test_budget_latency_and_retired() -> None:
    measured = catalog_candidate(
        model("openai/gpt-4o"),
        api_curve(4.4),
        volume_tokens_per_month=1e7,
        evidence=Evidence(p95_latency_s=3.0, measured=True, quality_mean=0.8),
    )
    candidates = [*synthetic(names=["openai/gpt-4o-mini", "anthropic/claude-3-opus"]), measured]
    profile = Profile(name="p", constraints={"p95_latency_s": 2.0, "monthly_budget_usd": 100})
    advice = advise(profile, candidates, flip_points=False)
    excluded = {e.name: " ".join(e.reasons) for e in advice.excluded}
    assert "p95 latency 3.00 s above 2 s" in excluded["openai/gpt-4o"]
    assert "retired" in excluded["anthropic/claude-3-opus"]
    assert "exceeds the $100 budget" in excluded["anthropic/claude-3-opus"]
    top = advice.ranking[0]
    assert top.name == "openai/gpt-4o-mini"
    assert any("latency not measured" in n for n in top.notes)


def test_language_matching() -> None:
    assert language_support(model("meta/llama-3.1-8b"), "German") == "listed"
    assert language_support(model("meta/llama-3.1-8b"), "de") == "listed"
    assert language_support(model("meta/llama-3.1-8b"), "Japanese") == "no"
    assert language_support(model("meta/llama-7b"), "German") == "listed"  # "(bg, ..., de, ...)"
    assert language_support(model("meta/llama-7b"), "Italian") == "listed"  # code "it"
    assert language_support(model("openai/gpt-4o"), "Swahili") == "claimed"
    assert language_support(model("openai/gpt-4o"), "English") == "listed"
    assert language_support(model("bigscience/bloom"), "Yoruba") == "claimed"  # 46 languages
    assert language_support(model("local/smollm2"), "French") == "no"
    assert language_support(model("meta/llama-2-7b"), "German") == "no"
    assert language_support(model("tii/falcon-7b"), "french") == "listed"


def test_claimed_languages_are_kept_with_a_note_unless_strict() -> None:
    names = ["openai/gpt-4o-mini", "meta/llama-3.1-8b", "local/smollm2"]
    profile = Profile(name="p", constraints={"languages": ["German"]})
    advice = advise(profile, synthetic(names=names), flip_points=False)
    assert {e.name for e in advice.excluded} == {"local/smollm2"}
    mini = next(r for r in advice.ranking if r.name == "openai/gpt-4o-mini")
    assert any("claimed" in n for n in mini.notes)
    strict = advise_at(profile, synthetic(names=names), languages_strict=True)
    assert {e.name for e in strict.excluded} == {"local/smollm2", "openai/gpt-4o-mini"}


# --------------------------------------------------------------------------- ranking


def test_score_is_the_weighted_mean_and_reasons_name_dimensions() -> None:
    rng = random.Random(3)
    profile = random_profile(rng, on_premises=False, regulated=False, monthly_budget_usd=None)
    advice = advise(profile, synthetic(), flip_points=False)
    weights = profile.weights.as_dict()
    for option in advice.ranking:
        expected = sum(weights[k] * option.scores[k] for k in DIMENSIONS) / sum(weights.values())
        assert option.score == pytest.approx(expected, abs=1e-4)
        assert option.reasons[-1].startswith("weakest: ")
        assert any(name in option.reasons[0] for name in DIMENSIONS.values())
        assert set(option.evidence) == set(DIMENSIONS)
    scores = [r.score for r in advice.ranking]
    assert scores == sorted(scores, reverse=True)


def test_raising_a_weight_never_lowers_the_model_best_on_that_dimension() -> None:
    rng = random.Random(4)
    candidates = synthetic()
    checked = 0
    for _ in range(40):
        profile = random_profile(rng)
        before = advise(profile, candidates, flip_points=False)
        if len(before.ranking) < 2:
            continue
        for dim in DIMENSIONS:
            best = max(r.scores[dim] for r in before.ranking)
            leaders = [r.name for r in before.ranking if r.scores[dim] == best]
            current = profile.weights.as_dict()[dim]
            after = advise_at(profile, candidates, **{dim: current * rng.uniform(1.01, 6.0)})
            for name in leaders:
                old, new = rank_of(before, name), rank_of(after, name)
                assert old is not None and new is not None
                assert new <= old, (dim, name, old, new)
                checked += 1
    assert checked > 100


def test_with_overrides_and_advise_at() -> None:
    profile = Profile(name="p")
    changed = with_overrides(profile, cost=3.0, weights={"support": 0.5}, regulated=True)
    assert changed.weights.cost == 3.0 and changed.weights.support == 0.5
    assert changed.constraints.regulated is True
    assert profile.weights.cost == 1.0  # the original is untouched
    with pytest.raises(ValueError, match="unknown override"):
        with_overrides(profile, speed=2)
    advice = advise_at(profile, synthetic(), volume_tokens_per_month=5e9)
    assert advice.volume_tokens_per_month == 5e9
    assert advice.flip_points == []


def test_custom_cost_rescorer_hook_is_used() -> None:
    names = ["openai/gpt-4o-mini", "local/smollm2"]

    def rescore(volume: float) -> dict[str, DimensionScore]:
        return {
            "openai/gpt-4o-mini": DimensionScore(0.0, [f"hook at {volume:g}"]),
            "local/smollm2": DimensionScore(10.0, [f"hook at {volume:g}"]),
        }

    profile = Profile(name="p", weights={"cost": 1.0, "control": 0, "transparency": 0})
    advice = advise(profile, synthetic(names=names), rescore_cost=rescore, flip_points=False)
    by_name = {r.name: r for r in advice.ranking}
    assert by_name["openai/gpt-4o-mini"].scores["cost"] == 0.0
    assert by_name["local/smollm2"].evidence["cost"] == ["hook at 1e+07"]


def test_unique_names_and_complete_scores_are_required() -> None:
    cands = synthetic(names=["local/smollm2"])
    with pytest.raises(ValueError, match="unique"):
        advise(Profile(name="p"), cands + cands)
    partial = Candidate("x", model("local/smollm2"), {"cost": DimensionScore(1.0, ["e"])})
    with pytest.raises(ValueError, match="lacks scores"):
        advise(Profile(name="p"), [partial])


# --------------------------------------------------------------------------- flip points


def _probe(flip: FlipPoint, side: float) -> float:
    assert flip.value is not None
    if flip.kind == "volume":
        factor = 1.0 + side * 1e-6 * (1 if flip.direction == "up" else -1)
        return flip.value * factor
    step = 1e-6 * max(1.0, flip.value) * side * (1 if flip.direction == "up" else -1)
    return max(0.0, flip.value + step)


def verify_flips(profile: Profile, candidates: Sequence[Candidate]) -> int:
    advice = advise(profile, candidates)
    top = advice.top
    verified = 0
    for flip in advice.flip_points:
        assert flip.sentence
        if flip.value is None:
            assert flip.new_top is None
            continue
        key = flip.parameter if flip.kind == "weight" else "volume_tokens_per_month"
        past = advise_at(profile, candidates, **{key: _probe(flip, +1)})
        assert past.top == flip.new_top != top, flip
        if flip.value != flip.current:  # a tie at the current value has no "before"
            before = advise_at(profile, candidates, **{key: _probe(flip, -1)})
            assert before.top == top, flip
        if flip.kind == "weight":
            lo, hi = sorted((flip.current, flip.searched_to))
            assert lo <= flip.value <= hi
        verified += 1
    return verified


def test_flip_points_change_the_top_just_past_and_not_just_before() -> None:
    rng = random.Random(5)
    candidates = synthetic()
    verified = 0
    for _ in range(15):
        profile = random_profile(rng, regulated=False)
        verified += verify_flips(profile, candidates)
    assert verified > 20


def test_volume_flip_from_api_to_self_hosting() -> None:
    names = ["openai/gpt-4o-mini", "meta/llama-3.1-8b"]
    candidates = synthetic(names=names)
    profile = Profile(name="p", weights={"cost": 5.0}, constraints={"volume_tokens_per_month": 1e8})
    advice = advise(profile, candidates)
    assert advice.top == "openai/gpt-4o-mini"
    (up,) = [f for f in advice.flip_points if f.kind == "volume" and f.direction == "up"]
    assert up.value is not None and up.new_top == "meta/llama-3.1-8b"
    assert up.sentence.startswith("above ")
    assert up.sentence.endswith(
        "tokens/month self-hosting Llama 3.1 8B (instruct) becomes the top choice instead of "
        "GPT-4o mini"
    )
    assert advise_at(profile, candidates, volume_tokens_per_month=up.value * 1.001).top == (
        "meta/llama-3.1-8b"
    )
    assert advise_at(profile, candidates, volume_tokens_per_month=up.value * 0.999).top == (
        "openai/gpt-4o-mini"
    )
    (down,) = [f for f in advice.flip_points if f.kind == "volume" and f.direction == "down"]
    assert down.value is None and "stays GPT-4o mini" in down.sentence
    assert verify_flips(profile, candidates) >= 1


def test_weight_flip_solved_exactly() -> None:
    names = ["openai/gpt-4o-mini", "meta/llama-3.1-8b"]
    candidates = synthetic(names=names)
    profile = Profile(name="p", constraints={"volume_tokens_per_month": 1e7})
    advice = advise(profile, candidates)
    control = next(
        f for f in advice.flip_points if f.parameter == "control" and f.direction == "up"
    )
    assert control.value is not None
    # closed form: the control weight x at which both weighted means are equal
    a, b = advice.ranking[0].scores, advice.ranking[1].scores
    others = [k for k in DIMENSIONS if k != "control"]
    gap = sum(a[k] - b[k] for k in others)
    assert control.value == pytest.approx(gap / (b["control"] - a["control"]))
    assert f"to {control.value:.3g}," in control.sentence
    assert verify_flips(profile, candidates) >= 1


# --------------------------------------------------------------------------- profiles


def test_example_profiles_load_and_flip_points_hold_with_tco_costs() -> None:
    assert {p.stem for p in PROFILES} >= {
        "startup-prototype",
        "hospital",
        "high-volume-consumer-app",
        "multilingual-public-service",
    }
    for path in PROFILES:
        profile = load_profile(path)
        assert profile.name == path.stem and profile.description
        candidates = build_candidates(
            list(DEFAULT_CANDIDATES), profile.constraints.volume_tokens_per_month
        )
        advice = advise(profile, candidates)
        assert advice.ranking, path.name
        verify_flips(profile, candidates)


def test_hospital_profile_is_regulated_and_on_premises() -> None:
    profile = load_profile(ROOT / "examples" / "profiles" / "hospital.yaml")
    assert profile.constraints.on_premises and profile.constraints.regulated


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("name: x\nweights:\n  cost: -1\n", "weights.cost"),
        ("name: x\nconstraints:\n  on_premise: true\n", "constraints.on_premise"),
        ("name: x\nweights:\n  speed: 2\n", "weights.speed"),
        ("weights: {cost: 1}\n", "name"),
        ("name: x\nconstraints:\n  volume_tokens_per_month: lots\n", "volume_tokens_per_month"),
        ("name: x\nweights: {cost: 0, customization: 0, transparency: 0, performance: 0,"
         " ease_of_use: 0, scalability: 0, support: 0, ecosystem: 0, control: 0,"
         " ethics_bias: 0}\n", "weights"),
    ],
)  # fmt: skip
def test_bad_profile_names_file_and_field(tmp_path: Path, text: str, field: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_profile(path)
    assert str(path) in info.value.message
    assert f"'{field}" in info.value.message or f".{field}'" in info.value.message


def test_bad_profile_line_numbers_and_yaml_errors(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("name: x\nweights:\n  cost: 1\n  support: -2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"p\.yaml:4: field 'weights\.support'"):
        load_profile(path)
    path.write_text("name: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_profile(path)
    path.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="is a mapping"):
        load_profile(path)
    with pytest.raises(ConfigError, match="cannot read profile"):
        load_profile(tmp_path / "missing.yaml")


# --------------------------------------------------------------------------- CLI


def test_cli_hospital_ranks_only_self_hostable_models() -> None:
    path = str(ROOT / "examples" / "profiles" / "hospital.yaml")
    result = runner.invoke(app, ["advise", "--profile", path, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["ranking"]
    for option in data["ranking"]:
        entry = model(option["name"])
        assert entry.self_host is not None and option["kind"] == "open"
    closed = {n for n in DEFAULT_CANDIDATES if model(n).self_host is None}
    assert closed <= {e["name"] for e in data["excluded"]}
    assert data["flip_points"] and all(f["sentence"] for f in data["flip_points"])
    text = runner.invoke(app, ["advise", "--profile", path])
    assert text.exit_code == 0, text.output
    for word in ("Ranking", "Excluded", "Flip points", "on premises", "not measured here"):
        assert word in text.stdout


def test_cli_models_option_and_errors(tmp_path: Path) -> None:
    path = str(ROOT / "examples" / "profiles" / "startup-prototype.yaml")
    result = runner.invoke(
        app, ["advise", "-p", path, "--models", "gpt-4o-mini,llama-3.1-8b", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    names = {r["name"] for r in data["ranking"]} | {e["name"] for e in data["excluded"]}
    assert names == {"openai/gpt-4o-mini", "meta/llama-3.1-8b"}
    unknown = runner.invoke(app, ["advise", "-p", path, "--models", "gpt-4o-minni"])
    assert unknown.exit_code == 2 and "gpt-4o-mini" in unknown.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nconstraints:\n  on_premise: true\n", encoding="utf-8")
    invalid = runner.invoke(app, ["advise", "--profile", str(bad)])
    assert invalid.exit_code == 2
    assert str(bad) in invalid.stderr and "constraints.on_premise" in invalid.stderr
    no_profile = runner.invoke(app, ["advise"])  # stdin is not a terminal here
    assert no_profile.exit_code == 2 and "--profile" in no_profile.stderr


def test_candidates_without_a_cost_curve_are_still_ranked() -> None:
    assert tco_cost_curve(model("google/palm-2")) is None  # no list price in the catalog
    unknown = catalog_candidate(model("meta/llama-3.1-405b"), None, volume_tokens_per_month=1e7)
    assert unknown.monthly_cost_usd is None
    assert unknown.dimension_scores["cost"].score == 5.0
    candidates = [unknown, *synthetic(names=["openai/gpt-4o-mini"])]
    advice = advise(Profile(name="p", constraints={"monthly_budget_usd": 1e6}), candidates)
    option = next(r for r in advice.ranking if r.name == "meta/llama-3.1-405b")
    assert option.monthly_cost_usd is None
    assert any("budget not checked" in n for n in option.notes)
    assert not math.isnan(option.score)
