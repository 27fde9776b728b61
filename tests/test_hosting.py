"""The smallest sufficient serving tier: the TCO, the decision's evidence and `crossroads fit`
say the same thing, for a 135M, an 8B and a 70B model."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from crossroads.catalog import CatalogEntry, find_model
from crossroads.cli import app
from crossroads.decide.compare import build_report, default_profile
from crossroads.decide.dimensions import Evidence, gpus_needed, score_model, serving_tier
from crossroads.decide.hosting import serving_plans
from crossroads.decide.tco import (
    HOURS_PER_MONTH,
    Volume,
    default_selfhost_option,
    load_tco_defaults,
    selfhost_cost,
    selfhost_options,
)

runner = CliRunner()
STAFF_AND_SETUP = 0.25 * 15_000 + 10_000 / 12  # the defaults: a small team, $10k over a year

# model -> (tier, hardware, devices per replica, $ per device-hour)
EXPECTED = {
    "local/smollm2": ("cpu", "c7i.2xlarge", 1, 0.357),
    "meta/llama-3.1-8b": ("small-gpu", "L4", 1, 0.80),
    "meta/llama-3.3-70b": ("multi-gpu", "H100-80GB", 2, 2.49),
}


def _model(name: str) -> CatalogEntry:
    entry = find_model(name)
    assert entry is not None, name
    return entry


@pytest.mark.parametrize("name", list(EXPECTED))
def test_tco_evidence_and_fit_agree_on_the_smallest_tier(name: str) -> None:
    tier, hardware, count, hourly = EXPECTED[name]
    entry = _model(name)
    plan = serving_plans(entry)[0]
    assert (plan.tier, plan.hardware, plan.count) == (tier, hardware, count)

    # The TCO prices that hardware at its dated price.
    option = default_selfhost_option(entry)
    assert (option.gpu, option.gpus_per_replica, option.gpu_hour_usd) == (hardware, count, hourly)
    assert option.sources["hardware"] == plan.describe()
    low = selfhost_cost(option, Volume.from_tokens(1e6))
    assert low.compute == pytest.approx(count * hourly * HOURS_PER_MONTH)
    assert low.total == pytest.approx(count * hourly * HOURS_PER_MONTH + STAFF_AND_SETUP)

    # The decision's evidence names the same tier and hardware.
    scores = score_model(entry, Evidence())
    ease = " ".join(scores["ease_of_use"].evidence)
    assert f"tier {tier}: {count} x {hardware}" in ease
    assert "80 GB GPU" not in ease or tier in ("large-gpu", "multi-gpu")
    assert plan.describe() in " ".join(scores["scalability"].evidence)
    assert serving_tier(entry) == tier
    assert gpus_needed(entry) == (0 if tier == "cpu" else count)

    # `crossroads fit` reports it too, with the same monthly price.
    result = runner.invoke(app, ["fit", name, "--gpu", "H100", "--json"])
    assert result.exit_code == 0, result.output
    reported = json.loads(result.stdout)["serving_tier"]
    assert (reported["tier"], reported["hardware"], reported["count"]) == (tier, hardware, count)
    assert reported["text"] == plan.describe()
    assert reported["replica_month_usd"] == pytest.approx(low.compute)
    text = runner.invoke(app, ["fit", name, "--gpu", "H100"], env={"COLUMNS": "200"})
    assert f"Smallest sufficient serving tier: {plan.describe()}" in text.stdout


def test_smollm2_is_never_costed_on_a_data_centre_gpu() -> None:
    entry = _model("local/smollm2")
    ease = score_model(entry, Evidence())["ease_of_use"].evidence[0]
    assert "tier cpu: 1 x c7i.2xlarge CPU instance (16 GiB RAM, no GPU) at fp16" in ease
    names = ["local/smollm2", "meta/llama-3.1-8b", "openai/gpt-4o-mini"]
    report, _ = build_report(
        names=names,
        entries={n: _model(n) for n in names},
        notes={},
        run=None,
        profile=default_profile(10e6),
        suite_name="quick",
    )
    monthly = {m.name: m.monthly_cost_usd for m in report.models}
    # One c7i.2xlarge ($0.357/h x 730 h) plus staff and set-up: not $6,401 (1 x H100).
    assert monthly["local/smollm2"] == pytest.approx(0.357 * 730 + STAFF_AND_SETUP)
    assert monthly["meta/llama-3.1-8b"] == pytest.approx(0.80 * 730 + STAFF_AND_SETUP)
    assert monthly["local/smollm2"] < monthly["meta/llama-3.1-8b"]


def test_at_high_volume_the_cheaper_tier_wins_and_the_curve_follows_it() -> None:
    entry = _model("meta/llama-3.1-8b")
    tiers = selfhost_options(entry)
    assert [o.gpu for o in tiers] == ["L4", "H100-80GB"]
    big = Volume.from_tokens(20e9)  # 5B output tokens: ~10 L4s or ~2 H100s
    costs = {o.gpu: selfhost_cost(o, big).total for o in tiers}
    assert costs["H100-80GB"] < costs["L4"]
    assert default_selfhost_option(entry, volume=big).gpu == "H100-80GB"
    assert default_selfhost_option(entry, volume=Volume.from_tokens(1e6)).gpu == "L4"
    from crossroads.decide.compare import tco_cost_curve

    curve = tco_cost_curve(entry)
    assert curve is not None
    assert curve(20e9) == pytest.approx(costs["H100-80GB"])
    assert curve(1e6) == pytest.approx(selfhost_cost(tiers[0], Volume.from_tokens(1e6)).total)


def test_tier_prices_are_dated_and_sourced() -> None:
    d = load_tco_defaults()
    cpu = d.cpu_instance
    assert cpu is not None and cpu.hour_usd.source and cpu.hour_usd.as_of.year >= 2025
    assert all(fig.note for _, _, fig in cpu.throughput_classes)
    for tier in ("small-gpu", "large-gpu"):
        for gpu in d.serving_tiers[tier]:
            fig = d.gpu_hour_usd[gpu]
            assert (fig.source or "").startswith("https://") and fig.as_of.year >= 2025, gpu
            assert gpu in d.gpu_factor


def test_a_model_too_big_for_the_cpu_goes_to_a_small_gpu() -> None:
    entry = _model("meta/llama-3.2-3b")  # 3.2B: past the CPU classes, 6.4 GB fits a T4
    assert [p.tier for p in serving_plans(entry)][:2] == ["small-gpu", "large-gpu"]
    assert serving_plans(entry)[0].hardware == "T4"


def test_cost_at_80_columns_keeps_every_model_name_and_how_readable() -> None:
    models = [
        "local/smollm2",
        "meta/llama-3.1-8b",
        "meta/llama-3.3-70b",
        "openai/gpt-4o-mini",
        "anthropic/claude-sonnet-4-5",
    ]
    args = ["cost", "--models", ",".join(models), "--volume", "50M"]
    result = runner.invoke(app, args, env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    table_part = lines[: next(i for i, ln in enumerate(lines) if ln.startswith("Break-even"))]
    assert all(len(ln) <= 80 for ln in table_part)
    assert "…" not in "\n".join(table_part)  # nothing cut short
    for name in models:
        assert sum(name in ln for ln in table_part) == 2  # its block and its curve row
    for how in (
        "self-host: 1 x c7i.2xlarge (fp16)",
        "self-host: 1 x L4 (fp16)",
        "self-host: 2 x H100-80GB (fp16)",
        "API (OpenAI)",
        "API (Anthropic)",
    ):
        assert any(how in ln for ln in table_part), how
    assert "per month $4,844" in result.stdout  # smollm2 on the CPU tier


def test_new_open_families_are_sized_and_hosted_honestly() -> None:
    """Qwen, DeepSeek, Mistral, Gemma, Phi: total vs active parameters, and their tiers."""
    moe = {
        "qwen/qwen3-30b-a3b": (30.5, 3.3),
        "qwen/qwen3-235b-a22b": (235, 22),
        "deepseek/deepseek-v3": (671, 37),
        "deepseek/deepseek-r1": (671, 37),
        "mistral/mixtral-8x7b": (46.7, 12.9),
    }
    for name, (total, active) in moe.items():
        entry = _model(name)
        assert (entry.parameters_b, entry.active_parameters_b) == (total, active)
    assert _model("microsoft/phi-4").active_parameters_b is None  # dense
    tiers = {
        "microsoft/phi-3-mini": ("small-gpu", "T4", 1, "fp16"),
        "qwen/qwen3-8b": ("small-gpu", "L4", 1, "fp16"),
        "google/gemma-3-27b": ("large-gpu", "H100-80GB", 1, "fp16"),
        "qwen/qwen2.5-72b": ("multi-gpu", "H100-80GB", 2, "fp16"),
        # 671B: fp16 needs > 8 x 141 GB; the FP8 weights (costed as int8) fit 8 x H200.
        "deepseek/deepseek-v3": ("multi-gpu", "H200", 8, "int8"),
    }
    for name, (tier, hardware, count, precision) in tiers.items():
        plan = serving_plans(_model(name))[0]
        assert (plan.tier, plan.hardware, plan.count, plan.precision) == (
            tier,
            hardware,
            count,
            precision,
        ), name


def test_compare_weighs_self_hosting_deepseek_against_its_own_api() -> None:
    names = ["deepseek/deepseek-v3", "openai/gpt-4o-mini"]
    report, _ = build_report(
        names=names,
        entries={n: _model(n) for n in names},
        notes={},
        run=None,
        profile=default_profile(10e6),
        suite_name="quick",
    )
    pairs = {(b.open, b.closed): b for b in report.tco.break_even}
    own = pairs[("deepseek/deepseek-v3", "deepseek/deepseek-v3")]
    # 8 x H200 always on ($4.59 x 8 x 730 = $26,806/month per replica) against DeepSeek's
    # $0.27/$1.10 per 1M: a full replica serves less than it costs, so never.
    assert own.volume_tokens_per_month is None
    assert own.sentence == (
        "self-hosting deepseek/deepseek-v3 never becomes cheaper than its publisher's hosted "
        "API (DeepSeek) below 10T tokens/month"
    )
    assert ("deepseek/deepseek-v3", "openai/gpt-4o-mini") in pairs
