"""`crossroads catalog update --prices FILE`: LiteLLM's price map, compared and recorded only
when asked, outside the package; `crossroads models` shows each price's date."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crossroads.catalog import find_model, load_catalog
from crossroads.catalog.prices import overrides_path, price_changes, read_price_map
from crossroads.cli import app
from crossroads.errors import ConfigError

runner = CliRunner()
WIDE = {"COLUMNS": "200"}

# The LiteLLM format (USD per token), with its template entry and a non-chat model.
MAP = {
    "sample_spec": {"input_cost_per_token": 0, "output_cost_per_token": 0, "mode": "chat"},
    "gpt-4o": {  # the catalog says $2.50 / $10: the map says $2.00 / $8.00
        "max_input_tokens": 128000,
        "input_cost_per_token": 2e-06,
        "output_cost_per_token": 8e-06,
        "cache_read_input_token_cost": 1e-06,
        "litellm_provider": "openai",
        "mode": "chat",
    },
    "gpt-4o-mini": {  # unchanged: $0.15 / $0.60, cached $0.075
        "input_cost_per_token": 1.5e-07,
        "output_cost_per_token": 6e-07,
        "cache_read_input_token_cost": 7.5e-08,
        "litellm_provider": "openai",
    },
    "gemini/gemini-2.5-flash": {
        "input_cost_per_token": 3e-07,
        "output_cost_per_token": 2.5e-06,
        "litellm_provider": "gemini",
    },
    "dall-e-3": {"output_cost_per_image": 0.04, "litellm_provider": "openai"},
}


@pytest.fixture
def price_map(tmp_path: Path) -> Path:
    path = tmp_path / "model_prices_and_context_window.json"
    path.write_text(json.dumps(MAP), encoding="utf-8")
    return path


def _price(name: str) -> tuple[float, float, str]:
    entry = find_model(name)
    assert entry is not None and entry.prices is not None
    return entry.prices.input, entry.prices.output, entry.prices.as_of.isoformat()


def test_reads_the_litellm_format_per_1m_tokens(price_map: Path) -> None:
    prices = read_price_map(price_map)
    assert prices["gpt-4o"] == (2.0, 8.0, 1.0)
    assert prices["gpt-4o-mini"] == (0.15, 0.6, 0.075)
    assert "sample_spec" not in prices and "dall-e-3" not in prices
    changes = {c.id: c for c in price_changes(load_catalog(), prices)}
    assert changes["openai/gpt-4o"].new == (2.0, 8.0, 1.0)
    assert changes["openai/gpt-4o"].old == (2.5, 10.0, 1.25)
    assert "openai/gpt-4o-mini" not in changes  # same price: not a change
    gemini = find_model("google/gemini-2.5-flash")
    assert gemini is not None and gemini.prices is not None
    if (gemini.prices.input, gemini.prices.output) != (0.3, 2.5):
        assert changes["google/gemini-2.5-flash"].key == "gemini/gemini-2.5-flash"


def test_update_shows_the_differences_and_changes_nothing(price_map: Path) -> None:
    before = _price("openai/gpt-4o")
    result = runner.invoke(app, ["catalog", "update", "--prices", str(price_map)], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "openai/gpt-4o " in result.stdout and "$2.50/$10" in result.stdout
    assert "$2/$8" in result.stdout
    assert "Nothing changed. Run again with --apply" in result.stdout
    assert not overrides_path().exists()
    assert _price("openai/gpt-4o") == before


def test_apply_records_source_and_date_outside_the_package(price_map: Path) -> None:
    package_file = Path(__import__("crossroads.catalog").catalog.__file__).parent / "models.yaml"
    shipped = package_file.read_bytes()
    args = ["catalog", "update", "--prices", str(price_map), "--apply", "--as-of", "2026-12-01"]
    result = runner.invoke(app, args, env=WIDE)
    assert result.exit_code == 0, result.output
    assert "Recorded" in result.stdout
    recorded = json.loads(overrides_path().read_text(encoding="utf-8"))
    row = recorded["openai/gpt-4o"]
    assert (row["input"], row["output"], row["cached_input"]) == (2.0, 8.0, 1.0)
    assert row["as_of"] == "2026-12-01"
    assert row["source"].startswith("https://raw.githubusercontent.com/BerriAI/litellm/")
    assert row["previous"] == [2.5, 10.0, 1.25]
    assert overrides_path().is_relative_to(Path(os.environ["CROSSROADS_HOME"]))
    assert package_file.read_bytes() == shipped  # the shipped catalog is never written
    # The catalog, `crossroads models` and the costing now use the recorded price.
    assert _price("openai/gpt-4o") == (2.0, 8.0, "2026-12-01")
    table = runner.invoke(app, ["models", "--closed"], env=WIDE)
    line = next(ln for ln in table.stdout.splitlines() if ln.startswith("openai/gpt-4o "))
    assert "$2/$8" in line and "2026-12-01" in line
    mini = next(ln for ln in table.stdout.splitlines() if ln.startswith("openai/gpt-4o-mini "))
    assert "2024-10-01" in mini  # an unchanged price keeps its own date
    again = runner.invoke(app, ["catalog", "update", "--prices", str(price_map)], env=WIDE)
    assert "No price differs" in again.stdout


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object of model name"),
        ('{"gpt-4o": {"input_cost_per_token": "cheap", "output_cost_per_token": 1}}', "number"),
        ('{"gpt-4o": {"input_cost_per_token": -1, "output_cost_per_token": 1}}', ">= 0"),
    ],
)
def test_bad_price_maps_are_clear_errors(text: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        read_price_map(path)
    result = runner.invoke(app, ["catalog", "update", "--prices", str(path)])
    assert result.exit_code == 2 and message in " ".join(result.stderr.split())
    assert "Traceback" not in result.output


def test_a_damaged_override_file_is_a_clear_error() -> None:
    overrides_path().parent.mkdir(parents=True, exist_ok=True)
    overrides_path().write_text("{oops", encoding="utf-8")
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 2
    assert "cannot read the recorded price overrides" in result.stderr
