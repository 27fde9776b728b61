"""Customisation costs and facts: the catalog's fine-tuning offers, training in the TCO, and
tuned models in the registry as the router and the catalog see them (no torch needed)."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import pytest
import yaml

from crossroads.backends.base import Prices
from crossroads.catalog import CatalogError, find_model, load_catalog, parse_catalog
from crossroads.config import Config
from crossroads.decide.tco import (
    ApiOption,
    MissingPriceError,
    SelfHostOption,
    TrainingPlan,
    Volume,
    api_cost,
    break_even,
    default_api_option,
    default_selfhost_option,
    selfhost_cost,
    training_gpu_hours,
)
from crossroads.errors import ConfigError
from crossroads.routing import resolve
from crossroads.tune.registry import (
    MANIFEST,
    TunedModel,
    check_name,
    list_tuned,
    models_dir,
    new_partial,
    register,
    tuned_deployment,
)

# --- catalog -------------------------------------------------------------------------------


def test_closed_models_record_the_vendor_fine_tuning_offer() -> None:
    mini = find_model("gpt-4o-mini")
    assert mini is not None and mini.tuning is not None
    assert mini.tuning.training_per_1m_tokens == 3.0
    assert mini.tuning.tuned_prices is not None and mini.tuning.tuned_prices.output == 1.2
    assert "30 days" in mini.tuning.data_retention
    assert mini.tuning.retention_source.startswith("https://")
    tunable = {e.id for e in load_catalog() if e.tuning is not None}
    assert {"openai/gpt-4.1", "google/gemini-2.5-flash", "anthropic/claude-3-haiku"} <= tunable
    assert all(e.kind == "closed" for e in load_catalog() if e.tuning is not None)
    haiku = find_model("claude-3-haiku")
    assert haiku is not None and haiku.tuning is not None and "Bedrock" in haiku.tuning.api
    no_api = find_model("claude-sonnet-4-5")
    assert no_api is not None and no_api.tuning is None


def test_an_open_model_cannot_carry_an_api_tuning_offer() -> None:
    rows = yaml.safe_load(
        (Path(__file__).parents[1] / "src/crossroads/catalog/models.yaml").read_text("utf-8")
    )
    closed = next(r for r in rows if r["id"] == "openai/gpt-4o-mini")
    opened = copy.deepcopy(next(r for r in rows if r["id"] == "local/smollm2"))
    opened["tuning"] = closed["tuning"]
    with pytest.raises(CatalogError, match="tuning"):
        parse_catalog([opened])


# --- TCO -------------------------------------------------------------------------------------


def test_closed_training_is_tokens_times_the_vendor_price_at_tuned_prices() -> None:
    entry = find_model("gpt-4o-mini")
    assert entry is not None
    plain = default_api_option(entry)
    tuned = default_api_option(entry, training=TrainingPlan(tokens=10e6, amortisation_months=10))
    assert tuned.training_usd == pytest.approx(30.0)  # 10M tokens x $3/1M
    assert tuned.prices == Prices(0.3, 1.2, 0.15)  # the tuned model's own prices
    volume = Volume.from_tokens(100e6)
    with_training = api_cost(tuned, volume)
    assert with_training.training == pytest.approx(3.0)
    assert with_training.total == pytest.approx(with_training.compute + 3.0)
    assert with_training.compute > api_cost(plain, volume).compute
    assert "training" not in api_cost(plain, volume).as_dict()
    assert with_training.as_dict()["training"] == pytest.approx(3.0)
    assert "data retention" in (tuned.training_note or "")


def test_closed_training_without_a_token_price_is_an_error_not_zero() -> None:
    for name in ("claude-3-haiku", "o4-mini", "claude-sonnet-4-5"):
        entry = find_model(name)
        assert entry is not None
        with pytest.raises(MissingPriceError):
            default_api_option(entry, training=TrainingPlan(tokens=1e6))


def test_open_training_is_gpu_hours_times_the_hourly_price() -> None:
    entry = find_model("llama-3.1-8b")
    assert entry is not None and entry.parameters_b is not None
    hours, cite = training_gpu_hours(entry.parameters_b, 100e6, "H100-80GB")
    # 6 x 8e9 x 1e8 FLOPs / (989e12 x 0.35) / 3600 s
    expected = 6 * entry.parameters_b * 1e9 * 100e6 / (989e12 * 0.35) / 3600
    assert hours == pytest.approx(expected)
    assert "arxiv.org/abs/2001.08361" in cite
    option = default_selfhost_option(entry, gpu="H100", training=TrainingPlan(tokens=100e6))
    assert option.training_usd == pytest.approx(hours * option.gpu_hour_usd)
    assert "training" in option.sources
    given = default_selfhost_option(entry, training=TrainingPlan(1e6, gpu_hours=10))
    assert given.training_usd == pytest.approx(10 * given.gpu_hour_usd)
    cost = selfhost_cost(given, Volume.from_tokens(1e8))
    assert cost.training == pytest.approx(given.training_usd / 12)
    assert (
        "training"
        not in selfhost_cost(default_selfhost_option(entry), Volume.from_tokens(1e8)).as_dict()
    )


def test_training_on_both_paths_moves_the_break_even() -> None:
    shape = Volume.from_tokens(1e9, 0.75)
    own = SelfHostOption("open", "H100-80GB", 1, 2.0, 1000, 0.5, 0.25, 10_000, 12_000)
    api = ApiOption("closed", Prices(1.0, 4.0))
    base = break_even(own, api, shape)
    dearer_own = dataclasses.replace(own, training_usd=24_000.0)
    dearer_api = dataclasses.replace(api, training_usd=24_000.0)
    assert base is not None
    later = break_even(dearer_own, api, shape)
    assert later is not None and later > base
    # The same one-off cost on both paths cancels out.
    assert break_even(dearer_own, dearer_api, shape) == pytest.approx(base)


def test_training_plan_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        TrainingPlan(tokens=-1)
    with pytest.raises(ValueError):
        TrainingPlan(tokens=1, amortisation_months=0)


# --- registry --------------------------------------------------------------------------------


def fake_model(name: str, base_name: str = "local/smollm2", **fields: object) -> TunedModel:
    partial = new_partial(name)
    (partial / "adapter-1").mkdir()
    model = TunedModel(
        name=name,
        base_name=base_name,
        base_model="/nowhere/base",
        method="lora",
        merged=False,
        weights="adapter-1",
        created_at="2026-11-26T12:00:00+00:00",
        context_window=2048,
        folder=partial,
        **fields,  # type: ignore[arg-type]
    )
    return register(partial, model)


def test_registered_models_resolve_as_local_names() -> None:
    assert tuned_deployment("local/none") is None
    model = fake_model("support-bot")
    assert (models_dir() / "support-bot" / MANIFEST).is_file()
    deployment = resolve("local/support-bot", Config())
    assert deployment.backend == "transformers"
    assert deployment.model == str(models_dir() / "support-bot" / "adapter-1")
    assert deployment.context_window == 2048
    assert deployment.prices == Prices(0.0, 0.0)
    assert "base_model" in deployment.options
    assert [m.name for m in list_tuned()] == ["support-bot"]
    assert model.full_name == "local/support-bot"
    with pytest.raises(ConfigError, match="already exists"):
        fake_model("support-bot")


def test_a_configured_name_wins_over_a_tuned_model() -> None:
    fake_model("shadowed")
    config = Config.model_validate(
        {
            "models": [
                {
                    "name": "local/shadowed",
                    "backend": "openai",
                    "model": "gpt-4o-mini",
                    "base_url": "http://127.0.0.1:9/v1",
                }
            ]
        }
    )
    assert resolve("local/shadowed", config).backend == "openai"


def test_tuned_models_appear_in_the_catalog_as_their_base() -> None:
    fake_model("catalogued")
    entry = find_model("local/catalogued")
    assert entry is not None and entry.id == "local/catalogued"
    assert entry.kind == "open" and entry.licence.name == "Apache-2.0"
    assert entry.parameters_b == pytest.approx(0.135)
    assert "crossroads tune" in entry.fine_tuning
    assert find_model("local/not-there") is None
    # A tuned model is costed as its self-hosted base.
    assert default_selfhost_option(entry).gpu_hour_usd > 0


def test_half_written_folders_are_never_models() -> None:
    partial = new_partial("half")
    (partial / "adapter-1").mkdir()
    assert tuned_deployment("local/half") is None
    # Even renamed by hand, a folder without a manifest is not served.
    partial.rename(models_dir() / "half")
    assert tuned_deployment("local/half") is None
    (models_dir() / "broken").mkdir()
    (models_dir() / "broken" / MANIFEST).write_text("{nope", encoding="utf-8")
    with pytest.raises(ConfigError, match="unreadable"):
        tuned_deployment("local/broken")
    (models_dir() / "broken" / MANIFEST).write_text(json.dumps({"name": 1}), encoding="utf-8")
    with pytest.raises(ConfigError, match="not a tuned-model manifest"):
        tuned_deployment("local/broken")


@pytest.mark.parametrize("bad", ["Upper", "a b", "", "-x", "x.partial-1", "a" * 65, "smollm2"])
def test_names_are_checked(bad: str) -> None:
    with pytest.raises(ConfigError):
        check_name(bad)
    assert check_name("local/ok-name_1.2") == "ok-name_1.2"


def test_cpu_threads_back_off_only_on_a_busy_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from crossroads.tune.run import cpu_threads

    monkeypatch.setattr(os, "sched_getaffinity", lambda _: {0, 1, 2, 3}, raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (0.3, 0.0, 0.0))
    assert cpu_threads() is None  # idle: torch's default
    monkeypatch.setattr(os, "getloadavg", lambda: (3.2, 0.0, 0.0))
    assert cpu_threads() is None  # cores to spare
    monkeypatch.setattr(os, "getloadavg", lambda: (6.0, 0.0, 0.0))
    assert cpu_threads() == 2


def test_api_and_selfhost_amortise_training_the_same_way() -> None:
    from crossroads.decide.tco import amortised_month_usd

    own = SelfHostOption("open", "H100-80GB", 1, 2.0, 1000, training_usd=600.0, training_months=6)
    api = ApiOption("closed", Prices(1.0, 4.0), training_usd=600.0, training_months=6)
    assert own.training_month_usd == api.training_month_usd == api.fixed_month_usd == 100.0
    assert amortised_month_usd(None, 12) == 0.0
    assert ApiOption("closed", Prices(1.0, 4.0)).fixed_month_usd == 0.0


@pytest.mark.parametrize("months", [0.0, -1.0])
def test_api_option_rejects_non_positive_training_months(months: float) -> None:
    with pytest.raises(ValueError, match="training_months"):
        ApiOption("closed", Prices(1.0, 4.0), training_usd=10.0, training_months=months)
    with pytest.raises(ValueError, match="training_months"):
        SelfHostOption("open", "H100-80GB", 1, 2.0, 1000, training_months=months)


def test_open_training_without_a_parameter_count_is_an_error_not_1b() -> None:
    entry = find_model("llama-3.1-8b")
    assert entry is not None
    unknown = entry.model_copy(update={"parameters_b": None})
    with pytest.raises(MissingPriceError, match=r"Add parameters_b .*--train-gpu-hours"):
        default_selfhost_option(unknown, training=TrainingPlan(tokens=100e6))
    # Measured GPU-hours need no size; nor does serving without training.
    given = default_selfhost_option(unknown, training=TrainingPlan(1e6, gpu_hours=10))
    assert given.training_usd == pytest.approx(10 * given.gpu_hour_usd)
    assert default_selfhost_option(unknown).training_usd is None
