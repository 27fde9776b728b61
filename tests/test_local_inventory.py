"""`crossroads models --local` and the names of local models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crossroads import Client, errors
from crossroads.cli import app

from .conftest import require

runner = CliRunner()
require("gguf", "pip install -e '.[dev]' installs gguf for GGUF metadata")


def test_embedded_model_is_listed_from_its_gguf_metadata(tmp_path: Path) -> None:
    folder = tmp_path / "tiny-falcon"
    folder.mkdir()
    (folder / "config.json").write_text(
        json.dumps(
            {
                "architectures": ["FalconForCausalLM"],
                "model_type": "falcon",
                "torch_dtype": "float32",
            }
        )
    )
    (folder / "model.safetensors").write_bytes(b"\0" * 2048)
    config = tmp_path / "crossroads.yaml"
    config.write_text(
        "models:\n"
        f"  - name: tiny-falcon\n    backend: transformers\n    model: {folder}\n"
        "  - name: gone\n    backend: llamacpp\n    model: /nowhere/model.gguf\n"
        "  - name: remote\n    backend: vllm\n    model: meta-llama/Llama-3.1-8B-Instruct\n"
    )
    result = runner.invoke(app, ["-c", str(config), "models", "--local", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert set(rows) == {"local/smollm2", "tiny-falcon", "gone"}, "servers are not local"
    smol = rows["local/smollm2"]
    assert smol["present"] and smol["path"].endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
    assert (smol["architecture"], smol["quantisation"]) == ("llama", "Q4_1")
    assert smol["licence"].lower().startswith("apache")
    assert smol["size_bytes"] > 50_000_000
    assert rows["tiny-falcon"]["architecture"] == "FalconForCausalLM"
    assert rows["tiny-falcon"]["size_bytes"] == 2048
    assert rows["gone"]["present"] is False and rows["gone"]["problem"] == "path not found"
    table = runner.invoke(app, ["-c", str(config), "models", "--local"], env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "local/smollm2" in table.stdout


@pytest.mark.parametrize("name", ["local/smollm2", "smollm2"])
def test_embedded_model_resolves_offline_without_config(name: str) -> None:
    deployment = Client().deployment(name)
    assert deployment.backend == "llamacpp"
    assert deployment.model.endswith(".gguf") and Path(deployment.model).is_file()
    assert deployment.context_window == 8192


def test_open_catalog_model_that_is_not_set_up_explains_how() -> None:
    with pytest.raises(errors.ConfigError) as info:
        Client().deployment("llama-3.1-8b")
    message = str(info.value)
    assert "open-weight" in message and "crossroads fit" in message and "vllm/" in message


def test_tuned_models_are_listed(tmp_path: Path) -> None:
    from crossroads.config import crossroads_home
    from crossroads.tune.registry import MANIFEST, TunedModel

    weights = tmp_path / "base"  # a merged model: full weights with a config.json
    folder = crossroads_home() / "models" / "tiny-tuned"
    (folder / "model-1").mkdir(parents=True)
    (folder / "model-1" / "config.json").write_text('{"architectures": ["LlamaForCausalLM"]}')
    manifest = TunedModel("tiny-tuned", "local/smollm2", str(weights), "full", True, "model-1",
                          "2026-11-27", base_licence="Apache-2.0")  # fmt: skip
    (folder / MANIFEST).write_text(json.dumps(manifest.to_json()))
    result = runner.invoke(app, ["models", "--local", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    tuned = rows["local/tiny-tuned"]
    assert tuned["present"] and tuned["backend"] == "transformers"
    assert tuned["path"] == str(folder / "model-1") and tuned["licence"] == "Apache-2.0"
    assert tuned["architecture"] == "LlamaForCausalLM"
