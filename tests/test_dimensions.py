"""The ten dimension scores: ranges, evidence, determinism and the rubric's anchor cases."""

from __future__ import annotations

import pytest

from crossroads.catalog import CatalogEntry, find_model, load_catalog
from crossroads.decide.dimensions import (
    DIMENSIONS,
    DimensionScore,
    Evidence,
    ScoringContext,
    cost_score,
    gpus_needed,
    score_model,
    score_models,
    scoring_context,
    serving_tier,
    training_data_disclosure,
)

FULL_EVIDENCE = Evidence(
    quality_mean=0.71,
    quality_ci=(0.65, 0.77),
    p95_latency_s=1.8,
    tokens_per_s=42.0,
    cost_per_1m_tokens_usd=0.9,
    bias_consistency=0.93,
    safety_score=0.88,
    measured=True,
    published_benchmarks={"MMLU": 70.0},
)


def model(name: str) -> CatalogEntry:
    entry = find_model(name)
    assert entry is not None, name
    return entry


def test_ten_dimensions_in_the_seed_order() -> None:
    assert list(DIMENSIONS) == [
        "cost",
        "customization",
        "transparency",
        "performance",
        "ease_of_use",
        "scalability",
        "support",
        "ecosystem",
        "control",
        "ethics_bias",
    ]
    assert all(DIMENSIONS.values())


@pytest.mark.parametrize("evidence", [Evidence(), FULL_EVIDENCE], ids=["catalog", "measured"])
def test_every_catalog_model_scores_in_range_with_evidence(evidence: Evidence) -> None:
    for entry in load_catalog():
        scores = score_model(entry, evidence)
        assert list(scores) == list(DIMENSIONS), entry.id
        for key, dim in scores.items():
            assert 0.0 <= dim.score <= 10.0, (entry.id, key, dim.score)
            assert dim.evidence and all(e.strip() for e in dim.evidence), (entry.id, key)


def test_scores_are_deterministic() -> None:
    for entry in load_catalog():
        assert score_model(entry, FULL_EVIDENCE) == score_model(entry, FULL_EVIDENCE)
        assert score_model(entry, Evidence()) == score_model(entry, Evidence())


def test_dimension_score_rejects_out_of_range_and_missing_evidence() -> None:
    with pytest.raises(ValueError, match="outside 0-10"):
        DimensionScore(10.5, ["x"])
    with pytest.raises(ValueError, match="outside 0-10"):
        DimensionScore(-0.1, ["x"])
    with pytest.raises(ValueError, match="evidence"):
        DimensionScore(5.0, [])


def test_open_apache_model_with_disclosed_data_is_more_transparent_than_proprietary_api() -> None:
    smol = score_model(model("local/smollm2"), Evidence())["transparency"]
    gptj = score_model(model("eleutherai/gpt-j-6b"), Evidence())["transparency"]
    gpt4o = score_model(model("openai/gpt-4o"), Evidence())["transparency"]
    assert smol.score == gptj.score == 10.0
    assert gpt4o.score == 0.0
    assert any("not available" in e for e in gpt4o.evidence)
    # weights open but data not released, then partial disclosure under a community licence
    assert score_model(model("openai/gpt-oss-20b"), Evidence())["transparency"].score == 7.0
    assert score_model(model("meta/llama-3.1-8b"), Evidence())["transparency"].score == 7.0
    assert score_model(model("bigscience/bloom"), Evidence())["transparency"].score == 9.0


def test_training_data_disclosure_classes() -> None:
    assert training_data_disclosure(model("bigscience/bloom")) == "full"
    assert training_data_disclosure(model("local/smollm2")) == "full"
    assert training_data_disclosure(model("meta/llama-7b")) == "full"
    assert training_data_disclosure(model("meta/llama-3.1-8b")) == "partial"
    assert training_data_disclosure(model("openai/gpt-4o")) == "none"
    assert training_data_disclosure(model("anthropic/claude-haiku-4-5")) == "none"
    assert training_data_disclosure(model("openai/gpt-oss-120b")) == "none"


def test_customization_open_weights_over_vendor_api_over_none() -> None:
    def custom(name: str) -> float:
        return score_model(model(name), Evidence())["customization"].score

    assert custom("local/smollm2") == 10.0  # Apache-2.0, LoRA / full fine-tuning
    assert custom("meta/llama-3.1-8b") == 9.0  # community licence: -1
    assert custom("bigscience/bloom") == 8.5  # RAIL: -1.5
    assert custom("meta/llama-7b") == 7.0  # research only: -3
    assert custom("openai/gpt-4o") == 5.0  # vendor fine-tuning API
    assert custom("anthropic/claude-3-haiku") == 3.5  # only through Bedrock
    assert custom("anthropic/claude-sonnet-4-5") == 2.0  # none
    assert custom("anthropic/claude-3-opus") == 0.0  # retired


def test_control_self_hosting_is_ten_and_every_api_is_lower() -> None:
    for entry in load_catalog():
        control = score_model(entry, Evidence())["control"].score
        if entry.self_host is not None:
            assert control == 10.0, entry.id
        else:
            assert control <= 5.0, entry.id


def test_ease_of_use_managed_api_beats_self_hosting_and_scales_with_gpus() -> None:
    def ease(name: str) -> float:
        return score_model(model(name), Evidence())["ease_of_use"].score

    assert ease("openai/gpt-4o") == 9.0
    assert ease("google/gemini-2.5-flash") == 8.0  # legacy
    assert ease("local/smollm2") == 7.0
    assert ease("openai/gpt-4o") > ease("local/smollm2") > ease("meta/llama-3.1-8b")
    assert ease("meta/llama-3.1-8b") > ease("meta/llama-3.3-70b") > ease("meta/llama-3.1-405b")
    assert serving_tier(model("local/smollm2")) == "cpu"
    assert serving_tier(model("meta/llama-3.1-8b")) == "small-gpu"
    assert serving_tier(model("openai/gpt-oss-20b")) == "large-gpu"
    assert serving_tier(model("meta/llama-3.3-70b")) == "multi-gpu"
    assert serving_tier(model("openai/gpt-4o")) == "api"
    # fp16 weights 148.2 GB + 1.3 GB KV cache at 4,096 tokens fit 2 x 77.3 GB usable (90 % of
    # 80 GiB): the same 2 x H100 the TCO prices (it was 3, from a cruder 10 % margin).
    assert gpus_needed(model("meta/llama-3.3-70b")) == 2
    assert gpus_needed(model("openai/gpt-4o")) == 0


def test_support_and_scalability_favour_vendors() -> None:
    claude = score_model(model("anthropic/claude-sonnet-4-5"), Evidence())
    llama = score_model(model("meta/llama-3.1-8b"), Evidence())
    bloom = score_model(model("bigscience/bloom"), Evidence())
    assert claude["support"].score == 9.5
    assert llama["support"].score == 5.5
    assert bloom["support"].score == 4.0
    assert claude["scalability"].score > llama["scalability"].score > bloom["scalability"].score
    palm = score_model(model("google/palm-2"), Evidence())
    assert palm["support"].score == 0.5


def test_ecosystem_table_and_status() -> None:
    assert score_model(model("meta/llama-3.1-8b"), Evidence())["ecosystem"].score == 9.0
    assert score_model(model("meta/llama-3.1-70b"), Evidence())["ecosystem"].score == 8.0
    assert score_model(model("google/palm-2"), Evidence())["ecosystem"].score == 1.0


def test_performance_from_published_benchmarks_is_marked_not_measured() -> None:
    perf = score_model(model("openai/gpt-4o"), Evidence())["performance"]
    assert perf.score == pytest.approx(8.87)
    assert "not measured here" in perf.evidence[0]
    swe = score_model(model("anthropic/claude-sonnet-4-5"), Evidence())["performance"]
    assert swe.score == pytest.approx((65 + 0.3 * 77.2) / 10)
    prior = score_model(model("local/smollm2"), Evidence())["performance"]
    assert 1.0 <= prior.score < 4.0 and "not measured here" in prior.evidence[0]
    given = score_model(model("local/smollm2"), Evidence(published_benchmarks={"MMLU": 30.0}))
    assert given["performance"].score == 3.0


def test_measured_performance_is_relative_to_the_best_and_uses_latency() -> None:
    ctx = ScoringContext(best_quality=0.8)
    fast = Evidence(quality_mean=0.8, p95_latency_s=1.0, measured=True)
    slow = Evidence(quality_mean=0.8, p95_latency_s=4.0, measured=True)
    worse = Evidence(quality_mean=0.4, measured=True)
    entry = model("meta/llama-3.1-8b")
    assert score_model(entry, fast, context=ctx)["performance"].score == 10.0
    assert score_model(entry, slow, context=ctx)["performance"].score == pytest.approx(9.0)
    assert score_model(entry, worse, context=ctx)["performance"].score == 5.0
    evidence = score_model(entry, slow, context=ctx)["performance"].evidence
    assert any("p95 latency: 4.00 s" in e for e in evidence)


def test_cost_is_log_relative_to_the_cheapest() -> None:
    assert cost_score(1.0, 1.0) == 10.0
    assert cost_score(10.0, 1.0) == 7.5
    assert cost_score(100.0, 1.0) == 5.0
    assert cost_score(1e6, 1.0) == 0.0
    assert cost_score(0.0, 0.0) == 10.0  # floored at $0.01 per 1M
    models = {
        "cheap": (model("openai/gpt-4o-mini"), Evidence(cost_per_1m_tokens_usd=0.3)),
        "dear": (model("openai/gpt-4o"), Evidence(cost_per_1m_tokens_usd=3.0)),
        "unknown": (model("meta/llama-3.1-8b"), Evidence()),
    }
    scored = score_models(models)
    assert scored["cheap"]["cost"].score == 10.0
    assert scored["dear"]["cost"].score == 7.5
    assert scored["unknown"]["cost"].score == 5.0
    assert "not estimated" in scored["unknown"]["cost"].evidence[0]
    assert scoring_context({k: ev for k, (_, ev) in models.items()}).cheapest_cost_per_1m_usd == 0.3


def test_ethics_measured_beats_prior_and_priors_follow_the_rubric() -> None:
    measured = score_model(model("openai/gpt-4o"), FULL_EVIDENCE)["ethics_bias"]
    assert measured.score == pytest.approx(10 * (0.93 + 0.88) / 2)
    assert all(e.startswith("measured") for e in measured.evidence)
    assert score_model(model("openai/gpt-4o"), Evidence())["ethics_bias"].score == 5.0
    assert score_model(model("bigscience/bloom"), Evidence())["ethics_bias"].score == 8.0
    assert score_model(model("meta/llama-3.1-8b"), Evidence())["ethics_bias"].score == 5.5
    only_bias = score_model(model("local/smollm2"), Evidence(bias_consistency=0.5))
    assert only_bias["ethics_bias"].score == 5.0
