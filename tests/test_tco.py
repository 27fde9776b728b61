"""Total cost of ownership: API pay-per-token against always-on self-hosted replicas."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from crossroads.backends.base import Prices
from crossroads.catalog import CatalogEntry, find_model
from crossroads.cli import app
from crossroads.decide.tco import (
    HOURS_PER_MONTH,
    MAX_VOLUME,
    ApiOption,
    MissingPriceError,
    SelfHostOption,
    Volume,
    api_cost,
    break_even,
    break_even_continuous,
    cost_curve,
    default_api_option,
    default_selfhost_option,
    format_tokens,
    load_tco_defaults,
    parse_volume,
    selfhost_cost,
    selfhost_options,
)
from crossroads.errors import ConfigError

runner = CliRunner()
WIDE = {"COLUMNS": "220"}


def _model(name: str) -> CatalogEntry:
    entry = find_model(name)
    assert entry is not None, name
    return entry


def _h100_8b(utilisation: float) -> SelfHostOption:
    """The reference case: one H100 at $2.49/h, 3,400 output tok/s, no staff or set-up."""
    return SelfHostOption(
        "llama-3.1-8b",
        "H100-80GB",
        1,
        2.49,
        3400,
        utilisation=utilisation,
        staff_fte=0,
        staff_month_usd=0,
        setup_usd=0,
    )


def _filled(option: SelfHostOption, replicas: float = 1.0) -> Volume:
    """A 75/25 volume whose output exactly fills ``replicas`` replicas."""
    output = option.replica_capacity * replicas
    return Volume(requests_per_month=output / 250, input_tokens=750, output_tokens=250)


# --------------------------------------------------------------------------- reference check


def test_reference_8b_on_one_h100_costs_20_cents_per_million_output_tokens() -> None:
    option = _h100_8b(utilisation=1.0)
    cost = selfhost_cost(option, _filled(option))
    expected = 2.49 / (3400 * 3600 / 1e6)  # = 0.2034
    assert cost.replicas == 1 and cost.gpus == 1
    assert cost.compute == pytest.approx(2.49 * HOURS_PER_MONTH)
    assert cost.staff == 0 and cost.setup == 0
    assert cost.per_1m_output_tokens == pytest.approx(expected, rel=0.01)
    assert cost.per_1m_output_tokens == pytest.approx(0.2034, rel=0.01)


def test_reference_at_10_percent_utilisation_costs_ten_times_more() -> None:
    option = _h100_8b(utilisation=0.1)
    cost = selfhost_cost(option, _filled(option))
    assert cost.replicas == 1
    assert cost.per_1m_output_tokens == pytest.approx(2.034, rel=0.01)


def test_default_option_for_llama_8b_reproduces_the_reference() -> None:
    option = default_selfhost_option(
        _model("llama-3.1-8b"), gpu="H100", utilisation=1.0, staff_fte=0, setup_usd=0
    )
    assert (option.gpu, option.gpus_per_replica, option.precision) == ("H100-80GB", 1, "fp16")
    assert option.gpu_hour_usd == 2.49
    assert option.tokens_per_s_per_replica == 3400
    cost = selfhost_cost(option, _filled(option))
    assert cost.per_1m_output_tokens == pytest.approx(0.2034, rel=0.01)
    assert "lambda.ai" in option.sources["gpu_hour"]


# --------------------------------------------------------------------------- API cost


def test_api_cost_by_hand_for_gpt_4o_mini_prices() -> None:
    option = default_api_option(_model("openai/gpt-4o-mini"))
    assert option.prices == Prices(0.15, 0.6, 0.075)
    assert option.as_of and option.source
    # 1,000 requests of 1,000 input + 500 output tokens; 20 % of input read from cache.
    volume = Volume(1000, 1000, 500, cached_share=0.2)
    cost = api_cost(option, volume)
    by_hand = (800_000 * 0.15 + 200_000 * 0.075 + 500_000 * 0.6) / 1e6  # = 0.435
    assert cost.total == pytest.approx(by_hand) == pytest.approx(0.435)
    assert cost.per_1m_output_tokens == pytest.approx(0.435 / 0.5)
    assert cost.per_1m_tokens == pytest.approx(0.435 / 1.5)
    assert (cost.kind, cost.replicas, cost.staff, cost.setup) == ("api", 0, 0, 0)


def test_api_cost_without_cached_price_charges_cached_tokens_at_input_price() -> None:
    option = ApiOption("x", Prices(1.0, 2.0, None))
    cost = api_cost(option, Volume(1, 1_000_000, 1_000_000, cached_share=0.5))
    assert cost.total == pytest.approx(3.0)


def test_models_without_prices_raise_clear_errors() -> None:
    with pytest.raises(MissingPriceError, match="no list price") as retired:
        default_api_option(_model("palm-2"))
    assert isinstance(retired.value, ConfigError) and isinstance(retired.value, ValueError)
    with pytest.raises(MissingPriceError, match="open-weight"):
        default_api_option(_model("llama-3.1-8b"))
    with pytest.raises(ValueError, match="closed model"):
        default_selfhost_option(_model("gpt-4o-mini"))


# --------------------------------------------------------------------------- step function


def test_replicas_are_a_step_function_of_output_volume() -> None:
    option = _h100_8b(utilisation=0.5)
    capacity = option.replica_capacity
    assert capacity == pytest.approx(3400 * 0.5 * 3600 * 730)
    assert option.replicas_for(0) == 1  # always on: at least one replica
    assert option.replicas_for(capacity) == 1
    assert option.replicas_for(capacity * 1.001) == 2
    assert option.replicas_for(capacity * 10) == 10
    assert option.replicas_for(capacity * 10.5) == 11
    costs = cost_curve(option, [_filled(option, r) for r in (0.1, 0.9, 1.1, 2.0, 2.5)])
    assert [c.replicas for c in costs] == [1, 1, 2, 2, 3]
    assert costs[0].total == costs[1].total  # flat within a step
    assert costs[2].compute == pytest.approx(2 * 2.49 * HOURS_PER_MONTH)


def test_multi_gpu_replicas_and_fixed_costs_add_up() -> None:
    option = SelfHostOption("m", "H100-80GB", 2, 2.0, 1000, 0.5, 0.5, 12_000, 24_000, 12)
    cost = selfhost_cost(option, _filled(option, 2.5))
    assert (cost.replicas, cost.gpus) == (3, 6)
    assert cost.compute == pytest.approx(3 * 2 * 2.0 * 730)
    assert cost.staff == pytest.approx(6000) and cost.setup == pytest.approx(2000)
    assert cost.total == pytest.approx(cost.compute + 8000)


def test_invalid_options_and_volumes_are_rejected() -> None:
    with pytest.raises(ValueError, match="utilisation"):
        SelfHostOption("m", "H100-80GB", 1, 2.49, 3400, utilisation=0)
    with pytest.raises(ValueError, match="gpus_per_replica"):
        SelfHostOption("m", "H100-80GB", 0, 2.49, 3400)
    with pytest.raises(ValueError):
        Volume(-1, 10, 10)
    with pytest.raises(ValueError):
        Volume(1, 10, 10, cached_share=1.5)
    with pytest.raises(ValueError, match="input_share"):
        Volume.from_tokens(1e6, input_share=1.2)


# --------------------------------------------------------------------------- break-even


def _constructed(staff_fte: float) -> tuple[SelfHostOption, ApiOption, Volume]:
    # F = staff_fte x $10,000 + $12,000/12; R = 1 GPU x $2/h x 730 h = $1,460;
    # one replica serves 1,000 tok/s x 0.5 x 3600 x 730 = 1.314e9 output tokens (5.256e9 total
    # at 25 % output); API: $1 in / $4 out per 1M = $1.75 per 1M tokens at 75/25.
    self_host = SelfHostOption("open", "H100-80GB", 1, 2.0, 1000, 0.5, staff_fte, 10_000, 12_000)
    return self_host, ApiOption("closed", Prices(1.0, 4.0)), Volume.from_tokens(1e9, 0.75)


def _cheaper(self_host: SelfHostOption, api: ApiOption, shape: Volume, total: float) -> bool:
    volume = shape.scaled(total)
    return selfhost_cost(self_host, volume).total < api_cost(api, volume).total


def test_break_even_equals_the_analytic_crossing_within_the_first_replica() -> None:
    self_host, api, shape = _constructed(staff_fte=0.5)
    a, fixed, replica = 1.75e-6, 6000.0, 1460.0
    analytic = (fixed + replica) / a  # 4.263e9 < one replica's 5.256e9
    step = break_even(self_host, api, shape)
    assert step == pytest.approx(analytic, rel=0.01)
    assert break_even_continuous(self_host, api, shape) == pytest.approx(analytic, rel=1e-9)
    assert step is not None
    assert not _cheaper(self_host, api, shape, step * 0.99)
    assert _cheaper(self_host, api, shape, step * 1.01)


def test_break_even_over_several_replicas_is_the_last_crossing_of_the_steps() -> None:
    self_host, api, shape = _constructed(staff_fte=1.9)  # F = $20,000
    a, fixed, replica, capacity = 1.75e-6, 20_000.0, 1460.0, 5.256e9
    continuous = fixed * capacity / (a * capacity - replica)
    assert break_even_continuous(self_host, api, shape) == pytest.approx(continuous)
    step = break_even(self_host, api, shape)
    assert step == pytest.approx((fixed + 3 * replica) / a)  # inside the 3rd replica
    assert step is not None and continuous <= step <= continuous * 1.05
    assert not _cheaper(self_host, api, shape, step * (1 - 1e-6))
    grid = [step * (1 + 1e-6) * 1.01**i for i in range(1200) if step * 1.01**i <= MAX_VOLUME]
    assert all(_cheaper(self_host, api, shape, v) for v in grid)


def test_break_even_skips_early_crossings_that_the_next_replica_undoes() -> None:
    # No fixed cost and a thin margin: self-hosting wins near the top of the first replica,
    # loses again when the second one starts, and only wins for good from the 10th.
    self_host = SelfHostOption("open", "H100-80GB", 1, 2.0, 1000, 0.5, 0, 0, 0)
    capacity = self_host.replica_capacity / 0.25
    a = 1.1 * self_host.replica_month_usd / capacity
    api = ApiOption("closed", Prices(a * 1e6, a * 1e6))
    shape = Volume.from_tokens(1e9, 0.75)
    assert _cheaper(self_host, api, shape, capacity * 0.95)
    assert not _cheaper(self_host, api, shape, capacity * 1.05)
    step = break_even(self_host, api, shape)
    assert step == pytest.approx(10 * self_host.replica_month_usd / a)
    assert step is not None and 9 * capacity < step < 10 * capacity
    assert not _cheaper(self_host, api, shape, step * 0.999)
    assert all(_cheaper(self_host, api, shape, step * 1.0001 * 1.05**i) for i in range(100))


def test_break_even_is_none_when_self_hosting_never_wins() -> None:
    shape = Volume.from_tokens(50e6, 0.75)
    mini = default_api_option(_model("gpt-4o-mini"))
    llama_70b = default_selfhost_option(_model("llama-3.3-70b"))
    assert break_even(llama_70b, mini, shape) is None  # a full replica costs more than the API
    assert break_even_continuous(llama_70b, mini, shape) is None
    self_host, api, _ = _constructed(staff_fte=0.5)
    pricey = SelfHostOption("open", "H100-80GB", 1, 2.0, 1000, 0.5, 1e6, 10_000)
    assert break_even(pricey, api, shape) is None  # only above 1e13 tokens/month
    assert break_even(self_host, ApiOption("free", Prices(0, 0)), shape) is None


def test_default_break_even_smollm2_against_gpt_4o_mini() -> None:
    shape = Volume.from_tokens(50e6, 0.75)
    smol = default_selfhost_option(_model("local/smollm2"))
    mini = default_api_option(_model("openai/gpt-4o-mini"))
    step = break_even(smol, mini, shape)
    assert step is not None and 1e9 < step < MAX_VOLUME
    # The CPU tier has ~1.3B tokens per replica, so 1 % below the crossing is another step
    # (which may be cheaper there too): probe just below it, then every volume above.
    assert not _cheaper(smol, mini, shape, step * (1 - 1e-9))
    assert _cheaper(smol, mini, shape, step * 1.01)
    assert all(_cheaper(smol, mini, shape, step * 1.0001 * 1.05**i) for i in range(100))


# --------------------------------------------------------------------------- defaults


def test_defaults_are_dated_and_sourced() -> None:
    defaults = load_tco_defaults()
    h100 = defaults.gpu_hour_usd["H100-80GB"]
    assert h100.value == 2.49 and h100.source and "lambda" in h100.source
    figures = [
        *defaults.gpu_hour_usd.values(),
        *defaults.gpu_factor.values(),
        *(fig for _, _, fig in defaults.throughput_classes),
        defaults.staff_month_usd,
        *defaults.fte_by_team_size.values(),
        defaults.setup_usd,
        defaults.amortisation_months,
    ]
    for fig in figures:
        assert fig.as_of.year >= 2023
        assert (fig.source or "").startswith("https://") or (fig.assumption and fig.note)
    assert {"H100-80GB", "A100-80GB", "A100-40GB", "L4", "L40S", "A10G", "H200"} <= set(
        defaults.gpu_hour_usd
    )
    assert set(defaults.gpu_hour_usd) == set(defaults.gpu_factor)
    assert defaults.tokens_per_s_per_gpu(8.03, "H100-80GB")[0] == 3400


def test_hardware_choice_follows_the_fit_estimate() -> None:
    big = default_selfhost_option(_model("llama-3.1-70b"))
    assert (big.gpu, big.gpus_per_replica, big.precision) == ("H100-80GB", 2, "fp16")
    assert big.tokens_per_s_per_replica == pytest.approx(2 * 450)
    a100 = default_selfhost_option(_model("llama-3.1-8b"), gpu="A100")
    assert (a100.gpu, a100.gpu_hour_usd) == ("A100-80GB", 1.79)
    assert a100.tokens_per_s_per_replica == pytest.approx(3400 * 0.78)
    l40s = default_selfhost_option(_model("llama-3.1-70b"), gpu="L40S")  # 48 GB each
    assert (l40s.gpu, l40s.precision, l40s.gpus_per_replica) == ("L40S", "fp16", 4)
    huge = default_selfhost_option(_model("llama-3.1-405b"), gpu="A100-80GB")
    assert (huge.precision, huge.gpus_per_replica) == ("int8", 8)  # fp16 needs > 8


def test_overrides_measured_throughput_and_unpriced_gpus() -> None:
    measured = default_selfhost_option(
        _model("local/smollm2"), tokens_per_s=120.0, gpu_hour_usd=0.5, staff_fte=0.1
    )
    assert measured.tokens_per_s_per_replica == 120.0
    assert (measured.gpu_hour_usd, measured.staff_fte) == (0.5, 0.1)
    assert "measured" in measured.sources["throughput"]
    with pytest.raises(ValueError, match="GPU-hour"):
        default_selfhost_option(_model("llama-3.1-8b"), gpu="RTX-4090")
    t4 = default_selfhost_option(
        _model("llama-3.2-1b"), gpu="T4", gpu_hour_usd=0.35, tokens_per_s=900.0
    )
    assert (t4.gpu, t4.gpu_hour_usd) == ("T4", 0.35)
    with pytest.raises(ValueError, match="unknown GPU"):
        default_selfhost_option(_model("llama-3.1-8b"), gpu="Z9000")


# --------------------------------------------------------------------------- volumes


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("50M", 50e6),
        ("50m", 50e6),
        ("2.5B", 2.5e9),
        ("800k", 800e3),
        ("800K", 800e3),
        ("1e9", 1e9),
        ("1,000,000", 1e6),
        ("1_000", 1000.0),
        (" 3 M ", 3e6),
        ("42", 42.0),
        (".5B", 0.5e9),
    ],
)
def test_parse_volume(text: str, tokens: float) -> None:
    assert parse_volume(text) == pytest.approx(tokens)


@pytest.mark.parametrize("text", ["", "M", "abc", "-5M", "5X", "1.2.3", "nan", "inf", "5MB"])
def test_parse_volume_rejects_nonsense(text: str) -> None:
    with pytest.raises(ValueError, match="k, M or B"):
        parse_volume(text)


def test_volume_shape_and_formatting() -> None:
    volume = Volume.from_tokens(50e6, input_share=0.75)
    assert volume.total_tokens_per_month == pytest.approx(50e6)
    assert volume.output_tokens_per_month == pytest.approx(12.5e6)
    assert volume.scaled(1e9).output_tokens_per_month == pytest.approx(250e6)
    assert [format_tokens(v) for v in (38e6, 1.25e9, 2e13, 999, 4.5e3)] == [
        "38M",
        "1.25B",
        "20T",
        "999",
        "4.5k",
    ]
    assert math.isclose(parse_volume(format_tokens(38e6)), 38e6)


# --------------------------------------------------------------------------- CLI


def test_cli_cost_prints_both_models_and_the_break_even() -> None:
    result = runner.invoke(
        app, ["cost", "--models", "local/smollm2,openai/gpt-4o-mini", "--volume", "50M"], env=WIDE
    )
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "local/smollm2" in out and "openai/gpt-4o-mini" in out
    assert "self-hosting smollm2 becomes cheaper than gpt-4o-mini" in out
    assert "above " in out and "tokens/month" in out
    # smollm2 on the CPU tier: the instance price is cited with its source.
    assert "always on" in out and "https://aws.amazon.com/ec2/pricing/on-demand/" in out


def test_cli_cost_json_parses_and_matches_the_library() -> None:
    args = ["cost", "--models", "local/smollm2,openai/gpt-4o-mini", "--volume", "50M", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [m["model"] for m in data["models"]] == ["local/smollm2", "openai/gpt-4o-mini"]
    assert [m["kind"] for m in data["models"]] == ["self_host", "api"]
    assert data["volume"]["tokens_per_month"] == pytest.approx(50e6)
    assert len(data["models"][0]["curve"]) == 5
    api = data["models"][1]["cost"]
    assert api["total"] == pytest.approx(37.5 * 0.15 + 12.5 * 0.6)
    (pair,) = data["break_even"]
    mini = default_api_option(_model("gpt-4o-mini"))
    steps = [
        break_even(own, mini, Volume.from_tokens(50e6, 0.75))
        for own in selfhost_options(_model("local/smollm2"))
    ]
    expected = min(s for s in steps if s is not None)  # the serving tier that wins first
    assert pair["tokens_per_month"] == pytest.approx(expected)
    assert pair["sentence"].startswith("above ")


def test_cli_cost_overrides_and_never_sentence() -> None:
    args = [
        "cost",
        "--models",
        "llama-3.3-70b,gpt-4o-mini",
        "--gpu",
        "H100",
        "--gpu-hour",
        "3.0",
        "--utilisation",
        "0.3",
        "--staff-fte",
        "1",
        "--json",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    option = data["models"][0]["option"]
    assert (option["gpu_hour_usd"], option["utilisation"], option["staff_fte"]) == (3.0, 0.3, 1)
    assert data["break_even"][0]["tokens_per_month"] is None
    assert data["break_even"][0]["sentence"].startswith("never within 1M-10T")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--models", "gpt-4o-mini,llama-3.1-8bb", "--volume", "5M"], "Unknown model"),
        (["--models", "palm-2", "--volume", "5M"], "no list price"),
        (["--models", "gpt-4o-mini", "--volume", "lots"], "k, M or B"),
        (["--models", "llama-3.1-8b", "--gpu", "Z9000"], "unknown GPU"),
    ],
)
def test_cli_cost_errors_are_clear(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["cost", *args])
    assert result.exit_code == 2
    assert message in result.output
