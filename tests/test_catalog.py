"""The model catalog as its users meet it: facts with sources, lookups, suggestions, errors."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console

from crossroads.catalog import (
    CatalogEntry,
    CatalogError,
    find_model,
    load_catalog,
    load_catalog_file,
    parse_catalog,
    suggest,
)
from crossroads.catalog.render import entries_as_json, render_table
from crossroads.errors import ConfigError

REQUIRED_IDS = {
    # OpenAI
    "openai/gpt-4",
    "openai/gpt-4-turbo",
    "openai/gpt-4o",
    "openai/gpt-4o-mini",
    "openai/gpt-4.1",
    "openai/gpt-5",
    "openai/o3",
    # Anthropic
    "anthropic/claude-3-haiku",
    "anthropic/claude-3-opus",
    "anthropic/claude-3-5-sonnet",
    "anthropic/claude-3-5-haiku",
    "anthropic/claude-sonnet-4",
    "anthropic/claude-opus-4",
    "anthropic/claude-opus-4-1",
    "anthropic/claude-sonnet-4-5",
    "anthropic/claude-haiku-4-5",
    # Google
    "google/palm-2",
    "google/gemini-1.5-pro",
    "google/gemini-1.5-flash",
    "google/gemini-2.0-flash",
    "google/gemini-2.5-pro",
    "google/gemini-2.5-flash",
    # Meta
    "meta/llama-7b",
    "meta/llama-13b",
    "meta/llama-33b",
    "meta/llama-65b",
    "meta/llama-2-7b",
    "meta/llama-2-13b",
    "meta/llama-2-70b",
    "meta/llama-3-8b",
    "meta/llama-3-70b",
    "meta/llama-3.1-8b",
    "meta/llama-3.1-70b",
    "meta/llama-3.1-405b",
    "meta/llama-3.2-1b",
    "meta/llama-3.2-3b",
    "meta/llama-3.3-70b",
    # BigScience, EleutherAI, TII, embedded default
    "bigscience/bloom",
    "bigscience/bloomz",
    "eleutherai/gpt-j-6b",
    "eleutherai/gpt-neox-20b",
    "tii/falcon-7b",
    "tii/falcon-40b",
    "tii/falcon-180b",
    "local/smollm2",
}


def by_id() -> dict[str, CatalogEntry]:
    return {e.id: e for e in load_catalog()}


def raw_entry(entry_id: str) -> dict[str, Any]:
    """A valid entry as plain YAML-able data, to break on purpose."""
    return copy.deepcopy(entries_as_json([by_id()[entry_id]])[0])


# --- the data ------------------------------------------------------------------------------


def test_catalog_loads_with_every_model_the_comparison_needs() -> None:
    entries = load_catalog()
    assert all(isinstance(e, CatalogEntry) for e in entries)
    missing = REQUIRED_IDS - {e.id for e in entries}
    assert not missing, f"catalog lacks {sorted(missing)}"
    assert {e.kind for e in entries} == {"open", "closed"}


def test_ids_are_unique() -> None:
    ids = [e.id for e in load_catalog()]
    assert len(ids) == len(set(ids))


def test_every_name_points_to_one_model() -> None:
    owners: dict[str, str] = {}
    for entry in load_catalog():
        for key in entry.lookup_keys():
            assert owners.setdefault(key, entry.id) == entry.id, f"{key!r} is ambiguous"


def test_every_entry_cites_a_source_with_url_and_date() -> None:
    today = dt.date.today()
    for entry in load_catalog():
        assert entry.sources, entry.id
        for source in entry.sources:
            assert source.url.startswith(("https://", "http://")), (entry.id, source.url)
            assert isinstance(source.date, dt.date), entry.id
            assert source.date <= today, f"{entry.id}: source dated in the future"
            assert source.about.strip(), entry.id
        assert entry.released <= today, entry.id


def test_every_active_closed_model_has_dated_prices_with_a_source() -> None:
    closed_active = [e for e in load_catalog() if e.kind == "closed" and e.status == "active"]
    assert closed_active
    for entry in closed_active:
        assert entry.prices is not None, entry.id
        assert entry.prices.source.startswith("https://"), entry.id
        assert isinstance(entry.prices.as_of, dt.date), entry.id
        assert entry.prices.output >= entry.prices.input > 0, entry.id
        if entry.prices.cached_input is not None:
            assert entry.prices.cached_input < entry.prices.input, entry.id


def test_gpt4_original_is_the_8k_model_at_legacy_prices() -> None:
    gpt4 = by_id()["openai/gpt-4"]
    assert gpt4.context_window == 8192
    assert gpt4.prices is not None
    assert (gpt4.prices.input, gpt4.prices.output) == (30.0, 60.0)
    assert gpt4.status in {"legacy", "retired"} and gpt4.successor in by_id()


def test_bloom_documents_46_natural_and_13_programming_languages() -> None:
    for entry_id in ("bigscience/bloom", "bigscience/bloomz"):
        entry = by_id()[entry_id]
        assert "46 natural" in entry.languages and "13 programming" in entry.languages
        assert entry.licence.category == "rail"


def test_palm2_is_retired_and_points_to_a_gemini_successor() -> None:
    palm = find_model("palm-2")
    assert palm is not None and palm.status == "retired"
    assert palm.successor is not None
    successor = by_id()[palm.successor]
    assert successor.family == "Gemini"
    assert any("decommissioned" in s.about or "RETIRED" in s.about for s in palm.sources)


def test_successor_chains_end_at_a_model_that_still_runs() -> None:
    catalog = by_id()
    for entry in catalog.values():
        seen = {entry.id}
        current = entry
        while current.successor is not None:
            assert current.successor not in seen, f"successor cycle from {entry.id}"
            seen.add(current.successor)
            current = catalog[current.successor]
        if entry.status == "retired":
            assert len(seen) > 1, f"{entry.id} is retired without a successor"
            assert current.status != "retired", f"{entry.id} ends at retired {current.id}"


def test_licences_match_the_kind_of_model() -> None:
    for entry in load_catalog():
        if entry.kind == "closed":
            assert entry.licence.category == "proprietary", entry.id
            assert entry.self_host is None and entry.backend in {"openai", "anthropic", "google"}
        else:
            assert entry.licence.category != "proprietary", entry.id
            assert entry.backend in {"llamacpp", "transformers"}, entry.id
    assert by_id()["meta/llama-7b"].licence.category == "research"
    assert by_id()["meta/llama-2-7b"].licence.category == "community"
    assert by_id()["eleutherai/gpt-j-6b"].licence.name == "Apache-2.0"
    assert by_id()["tii/falcon-180b"].licence.category != "osi", "Falcon-180B has TII's licence"


def test_open_models_have_weights_memory_fp16_over_int8_over_int4() -> None:
    open_models = [e for e in load_catalog() if e.kind == "open"]
    assert len(open_models) >= 20
    for entry in open_models:
        assert entry.self_host is not None, entry.id
        memory = entry.self_host.memory_gb
        assert memory.fp16 > memory.int8 > memory.int4 > 0, entry.id
        assert entry.self_host.obtain.startswith("https://"), entry.id


def test_weights_memory_follows_the_documented_formula() -> None:
    """params x 2 / 1 / 0.5 bytes + 5 %, rounded to 0.1 GB (0.01 GB below 1 GB)."""
    for entry in load_catalog():
        if entry.self_host is None:
            continue
        assert entry.parameters_b is not None, entry.id
        memory = entry.self_host.memory_gb
        for got, bytes_per_param in ((memory.fp16, 2), (memory.int8, 1), (memory.int4, 0.5)):
            expected = entry.parameters_b * bytes_per_param * 1.05
            tolerance = 0.051 if expected >= 1 else 0.0051
            assert abs(got - expected) <= tolerance, (entry.id, got, round(expected, 3))


EXPLICIT_HEAD_DIM = {
    "openai/gpt-oss-120b": 64,  # hidden size 2880
    "openai/gpt-oss-20b": 64,
    "qwen/qwen3-30b-a3b": 128,  # hidden size 2048, 32 heads
    "qwen/qwen3-235b-a22b": 128,  # hidden size 4096, 64 heads
    "google/gemma-2-9b": 256,  # hidden size 3584, 16 heads
    "google/gemma-3-27b": 128,  # hidden size 5376, 32 heads
    "google/gemma-3-4b": 256,  # hidden size 2560, 8 heads
    # Multi-head latent attention: one 576-value latent per token and layer, written as
    # 1 KV head x 288 so that the K+V cache estimate (2 x heads x dim) is 576 values.
    "deepseek/deepseek-v3": 288,
    "deepseek/deepseek-r1": 288,
}


def test_architecture_shapes_are_consistent() -> None:
    for entry in load_catalog():
        if entry.self_host is None:
            continue
        arch = entry.self_host.architecture
        assert arch.attention_heads % arch.kv_heads == 0, entry.id
        if entry.id in EXPLICIT_HEAD_DIM:  # config.json sets head_dim apart from the hidden size
            assert arch.head_dim == EXPLICIT_HEAD_DIM[entry.id], entry.id
        else:
            assert arch.attention_heads * arch.head_dim == arch.hidden_size, entry.id
    # Known shapes used for KV-cache estimates.
    llama2_7b = by_id()["meta/llama-2-7b"].self_host
    assert llama2_7b is not None
    assert llama2_7b.architecture.kv_cache_bytes_per_token() == 512 * 1024  # 0.5 MiB in fp16
    llama2_70b = by_id()["meta/llama-2-70b"].self_host
    assert llama2_70b is not None and llama2_70b.architecture.kv_heads == 8  # GQA
    falcon7b = by_id()["tii/falcon-7b"].self_host
    assert falcon7b is not None and falcon7b.architecture.kv_heads == 1  # multi-query


def test_embedded_smollm2_entry_matches_the_shipped_model() -> None:
    smol = find_model("local/smollm2")
    assert smol is not None
    assert smol.backend == "llamacpp" and smol.licence.name == "Apache-2.0"
    assert smol.context_window == 8192
    assert smol.self_host is not None
    assert smol.self_host.architecture.type == "LlamaForCausalLM"


# --- lookups -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("openai/gpt-4o", "openai/gpt-4o"),  # id
        ("gpt-4o", "openai/gpt-4o"),  # short name
        ("GPT-4O", "openai/gpt-4o"),  # any case
        ("  gpt-4o  ", "openai/gpt-4o"),
        ("gpt-4o-2024-08-06", "openai/gpt-4o"),  # alias: a dated snapshot
        ("llama3.1:8b", "meta/llama-3.1-8b"),  # alias: an Ollama tag
        ("claude-sonnet-4-5-20250929", "anthropic/claude-sonnet-4-5"),  # vendor model id
        ("anthropic/claude-sonnet-4-5-20250929", "anthropic/claude-sonnet-4-5"),
        ("openai/gpt-4o-2024-08-06", "openai/gpt-4o"),
        ("meta-llama/Llama-2-7b-hf", "meta/llama-2-7b"),  # Hugging Face repo
        ("bloom", "bigscience/bloom"),
        ("palm2", "google/palm-2"),
        ("smollm2", "local/smollm2"),
        ("claude-sonnet-4.5", "anthropic/claude-sonnet-4-5"),  # dotted spelling
        ("anthropic/claude-3.5-haiku", "anthropic/claude-3-5-haiku"),
        ("gpt-4.1", "openai/gpt-4.1"),  # a real dot stays a dot
    ],
)
def test_find_model_by_id_short_name_alias_and_vendor_id(name: str, expected: str) -> None:
    entry = find_model(name)
    assert entry is not None, name
    assert entry.id == expected


@pytest.mark.parametrize(
    "name", ["", "gpt4o", "gpt-4x", "claude-sonet-4-5", "anthropic/gpt-4o", "x/y/z"]
)
def test_find_model_does_not_guess(name: str) -> None:
    assert find_model(name) is None


def test_suggest_offers_close_ids() -> None:
    assert suggest("gpt4o")[0] == "openai/gpt-4o"
    claude = suggest("claud-sonnet")
    assert claude and all(s.startswith("anthropic/claude") and "sonnet" in s for s in claude)
    assert "anthropic/claude-sonnet-4-5" in suggest("claude-sonet-4-5")
    assert suggest("antropic/claude-opus", n=2)[0].startswith("anthropic/claude-opus")
    assert len(suggest("llama", n=5)) <= 5
    assert suggest("qwertyuiop") == []
    assert suggest("gpt4o", n=0) == []


def test_load_catalog_returns_a_fresh_list_each_time() -> None:
    first = load_catalog()
    first.clear()
    assert load_catalog(), "callers cannot empty the cached catalog"


# --- errors a catalog editor would see -----------------------------------------------------


def write(tmp_path: Path, entries: list[dict[str, Any]]) -> Path:
    path = tmp_path / "models.yaml"
    path.write_text(yaml.safe_dump(entries, sort_keys=False), encoding="utf-8")
    return path


def test_a_valid_file_round_trips(tmp_path: Path) -> None:
    path = write(tmp_path, [raw_entry("openai/gpt-4o"), raw_entry("meta/llama-3.1-8b")])
    loaded = load_catalog_file(path)
    assert [e.id for e in loaded] == ["openai/gpt-4o", "meta/llama-3.1-8b"]
    assert loaded[0] == by_id()["openai/gpt-4o"]


def test_broken_entry_error_names_entry_and_field(tmp_path: Path) -> None:
    broken = raw_entry("openai/gpt-4o")
    broken["prices"]["as_of"] = "last spring"
    with pytest.raises(CatalogError) as info:
        load_catalog_file(write(tmp_path, [broken]))
    err = info.value
    assert isinstance(err, ConfigError), "the CLI reports it like any config error"
    assert err.entry_id == "openai/gpt-4o" and err.field == "prices.as_of"
    assert "'openai/gpt-4o'" in str(err) and "prices.as_of" in str(err)
    assert "models.yaml" in str(err)


@pytest.mark.parametrize(
    ("mutate", "field", "words"),
    [
        (lambda e: e.update(context_windw=8192), "context_windw", "Extra inputs"),
        (lambda e: e.pop("sources"), "sources", "Field required"),
        (lambda e: e.update(sources=[]), "sources", "at least 1"),
        (lambda e: e.update(prices=None), "prices", "needs prices"),
        (lambda e: e.update(kind="opn"), "kind", "open"),
        (lambda e: e.update(id="OpenAI/GPT 4o"), "id", "provider/model"),
        (lambda e: e.update(id="acme/gpt-4o"), "id", "provider 'acme'"),
        (lambda e: e["sources"][0].update(url="openai.com"), "sources.0.url", "pattern"),
        (lambda e: e["licence"].update(category="free"), "licence.category", "proprietary"),
    ],
)
def test_invalid_fields_are_named(tmp_path: Path, mutate: Any, field: str, words: str) -> None:
    entry = raw_entry("openai/gpt-4o")
    mutate(entry)
    with pytest.raises(CatalogError) as info:
        load_catalog_file(write(tmp_path, [entry]))
    assert info.value.field == field
    assert f"'{field}'" in str(info.value) and words in str(info.value)


def test_open_model_without_memory_ordering_is_rejected() -> None:
    entry = raw_entry("meta/llama-2-7b")
    entry["self_host"]["memory_gb"]["int4"] = 20.0
    with pytest.raises(CatalogError, match=r"'meta/llama-2-7b'.*self_host\.memory_gb"):
        parse_catalog([entry], source="test")


def test_catalog_wide_problems_are_named() -> None:
    dangling = raw_entry("google/palm-2")
    dangling["successor"] = "google/gemini-9"
    with pytest.raises(CatalogError, match=r"'google/palm-2'.*'successor'.*gemini-9") as info:
        parse_catalog([dangling], source="test")
    assert info.value.field == "successor"

    twin = raw_entry("openai/gpt-4o-mini")
    twin["aliases"] = ["gpt-4o-2024-08-06"]
    with pytest.raises(CatalogError, match=r"'aliases'.*already refers to 'openai/gpt-4o'"):
        parse_catalog([raw_entry("openai/gpt-4o"), twin], source="test")

    with pytest.raises(CatalogError, match="duplicate id"):
        parse_catalog([raw_entry("openai/gpt-4o"), raw_entry("openai/gpt-4o")], source="test")


def test_unreadable_or_malformed_files_are_catalog_errors(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="cannot read"):
        load_catalog_file(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- id: [unclosed\n", encoding="utf-8")
    with pytest.raises(CatalogError, match="not valid YAML"):
        load_catalog_file(bad)
    bad.write_text("id: openai/gpt-4o\n", encoding="utf-8")
    with pytest.raises(CatalogError, match="expected a YAML list"):
        load_catalog_file(bad)


# --- output --------------------------------------------------------------------------------


def test_json_output_has_every_field_and_iso_dates() -> None:
    rows = entries_as_json(load_catalog())
    text = json.dumps(rows)
    assert len(rows) == len(load_catalog())
    palm = next(r for r in rows if r["id"] == "google/palm-2")
    assert palm["status"] == "retired" and palm["successor"]
    assert palm["sources"][0]["date"] == "2023-05-10"
    assert '"self_host": null' in text


@pytest.mark.parametrize("width", [80, 160])
def test_table_shows_retired_models_with_their_successor(width: int) -> None:
    console = Console(record=True, width=width)
    render_table(load_catalog(), console)
    text = console.export_text()
    assert "google/palm-2" in text and "retired → gemini-2.5-flash" in text
    assert "openai/gpt-4o" in text and "$2.50/$10" in text
    assert "bigscience/bloom" in text and "rail" in text and "self-host" in text
    assert "…" not in text, "nothing is truncated"


def test_price_cost_helper() -> None:
    prices = by_id()["openai/gpt-4o"].prices
    assert prices is not None
    assert prices.cost(1_000_000, 0) == pytest.approx(2.5)
    assert prices.cost(1_000_000, 1_000_000, cached_tokens=1_000_000) == pytest.approx(11.25)
