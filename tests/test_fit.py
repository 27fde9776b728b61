"""Hardware fit: memory for weights plus KV cache, and the quantisation that fits."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from crossroads.catalog import find_model
from crossroads.cli import app
from crossroads.decide.fit import GIB, Hardware, estimate_fit, find_gpu

runner = CliRunner()


def test_kv_cache_of_llama_3_1_70b_matches_hand_computation() -> None:
    model = find_model("llama-3.1-70b")
    assert model is not None and model.self_host is not None
    report = estimate_fit(model, Hardware("A100-80GB", 80), context=4096, batch=2)
    # 80 layers x 8 KV heads x 128 dims x 2 (K, V) x 2 bytes = 327,680 bytes per token
    assert report.rows[0].kv_cache_bytes == 327_680 * 4096 * 2
    assert report.rows[0].available_bytes == pytest.approx(80 * GIB * 0.9)


def test_70b_on_one_a100_needs_int8_and_two_for_fp16() -> None:
    model = find_model("llama-3.1-70b")
    assert model is not None
    report = estimate_fit(model, Hardware("A100-80GB", 80), context=4096)
    fits = {r.precision: r.fits for r in report.rows}
    assert fits == {"fp16": False, "int8": True, "int4": True}
    assert report.best is not None and report.best.precision == "int8"
    assert report.rows[0].devices_needed == 2
    assert "quantise to int8" in report.verdict()


def test_two_gpus_fit_fp16() -> None:
    model = find_model("llama-3.1-70b")
    assert model is not None
    report = estimate_fit(model, Hardware("A100-80GB", 80, count=2), context=4096)
    assert report.best is not None and report.best.precision == "fp16"


def test_big_context_and_batch_can_break_the_fit() -> None:
    model = find_model("llama-3.1-8b")
    assert model is not None
    small = estimate_fit(model, Hardware("L4", 24), context=2048)
    large = estimate_fit(model, Hardware("L4", 24), context=131072, batch=8)
    assert small.best is not None and small.best.precision == "fp16"
    assert large.best is None


def test_closed_model_cannot_be_fitted() -> None:
    model = find_model("gpt-4o")
    assert model is not None
    with pytest.raises(ValueError, match="closed model"):
        estimate_fit(model, Hardware("H100-80GB", 80), context=1024)


def test_gpu_names_are_forgiving() -> None:
    for name in ("A100-80GB", "a100", "NVIDIA H100", "rtx-4090", "4090"):
        assert find_gpu(name) is not None
    assert find_gpu("GTX-9999") is None


def test_cli_acceptance_command() -> None:
    result = runner.invoke(
        app, ["fit", "llama-3.1-70b", "--gpu", "A100-80GB", "--gpus", "1"], env={"COLUMNS": "120"}
    )
    assert result.exit_code == 0, result.output
    assert "does not fit on A100-80GB at fp16; quantise to int8" in result.stdout


def test_cli_json_and_ram() -> None:
    result = runner.invoke(app, ["fit", "falcon-7b", "--ram", "12", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["hardware"]["kind"] == "cpu"
    assert data["recommended"] == "int8"
    assert [p["fits"] for p in data["precisions"]] == [False, True, True]


def test_cli_errors() -> None:
    closed = runner.invoke(app, ["fit", "gpt-4o"])
    assert closed.exit_code == 2 and "closed model" in closed.stderr
    unknown = runner.invoke(app, ["fit", "lama-3.1-70b"])
    assert unknown.exit_code == 2 and "llama-3.1-70b" in unknown.stderr
    gpu = runner.invoke(app, ["fit", "falcon-7b", "--gpu", "GTX-9999"])
    assert gpu.exit_code == 2 and "Unknown GPU" in gpu.stderr
    both = runner.invoke(app, ["fit", "falcon-7b", "--gpu", "L4", "--ram", "8"])
    assert both.exit_code == 2


def test_detected_hardware_without_flags() -> None:
    result = runner.invoke(app, ["fit", "smollm2", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert "(detected)" in data["hardware"]["label"]
    assert data["recommended"] == "fp16"
