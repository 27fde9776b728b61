"""Config lookup, validation errors with file and line, and model resolution."""

from __future__ import annotations

from pathlib import Path

import pytest

from crossroads import Client, errors
from crossroads.config import find_config_path, load_config, parse_config
from crossroads.errors import ConfigDeprecationWarning, ConfigError
from crossroads.routing import resolve

GOOD = """\
models:
  - name: fast
    backend: openai
    model: gpt-4o-mini
    api_key: ${MY_OPENAI_KEY}
    aliases: [quick]
    prices: {input: 0.1, output: 0.2}
"""


def test_lookup_order_flag_env_cwd_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("CROSSROADS_HOME", str(home))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert find_config_path() is None
    (home / "crossroads.yaml").write_text(GOOD)
    assert find_config_path() == home / "crossroads.yaml"
    (work / "crossroads.yaml").write_text(GOOD)
    assert find_config_path() == work / "crossroads.yaml"
    env_file = tmp_path / "env.yaml"
    env_file.write_text(GOOD)
    monkeypatch.setenv("CROSSROADS_CONFIG", str(env_file))
    assert find_config_path() == env_file
    flag_file = tmp_path / "flag.yaml"
    flag_file.write_text(GOOD)
    assert find_config_path(flag_file) == flag_file


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(errors.ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "crossroads.yaml"
    path.write_text("models:\n  - name: a\n    backend: openai\n   model: [oops\n")
    with pytest.raises(errors.ConfigError) as info:
        load_config(path)
    assert f"{path}:" in str(info.value)
    assert "invalid YAML" in str(info.value)
    line = int(str(info.value).split(f"{path}:")[1].split(":")[0])
    assert 3 <= line <= 5


def test_invalid_field_names_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "crossroads.yaml"
    path.write_text(
        GOOD + "  - name: slow\n    backend: openai\n    model: gpt-4o\n    timeout: -3\n"
    )
    with pytest.raises(errors.ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert f"{path}:11: models.1.timeout" in message


def test_unknown_field_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(errors.ConfigError, match=r"models\.0\.temprature"):
        parse_config(GOOD + "    temprature: 3\n")


def test_literal_key_in_file_is_refused() -> None:
    with pytest.raises(errors.ConfigError, match="environment reference"):
        parse_config(GOOD.replace("${MY_OPENAI_KEY}", "sk-live-123"))


def test_duplicate_names_are_refused() -> None:
    with pytest.raises(errors.ConfigError, match="used twice"):
        parse_config(GOOD + "  - name: quick\n    backend: openai\n    model: gpt-4o\n")


def test_config_entry_and_alias_resolve_with_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    config = parse_config(GOOD)
    monkeypatch.setenv("MY_OPENAI_KEY", "sk-test")
    deployment = resolve("quick", config)
    assert deployment.name == "fast"
    assert deployment.model == "gpt-4o-mini"
    assert deployment.api_key == "sk-test"
    assert deployment.prices is not None and deployment.prices.input == 0.1


def test_missing_key_names_the_env_var() -> None:
    config = parse_config(GOOD)
    with pytest.raises(errors.MissingKeyError, match="MY_OPENAI_KEY"):
        resolve("fast", config)


@pytest.mark.parametrize(
    ("name", "env_var"),
    [
        ("openai/gpt-4o", "OPENAI_API_KEY"),
        ("anthropic/claude-sonnet-4-5", "ANTHROPIC_API_KEY"),
        ("google/gemini-2.5-flash", "GEMINI_API_KEY"),
    ],
)
def test_provider_model_without_key_names_the_vendor_env_var(name: str, env_var: str) -> None:
    with pytest.raises(errors.MissingKeyError, match=env_var):
        Client().deployment(name)


def test_provider_model_works_without_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://proxy.internal:8080")
    deployment = Client().deployment("anthropic/claude-sonnet-4-5")
    assert deployment.backend == "anthropic"
    assert deployment.base_url == "http://proxy.internal:8080"
    assert deployment.api_key == "k"
    assert deployment.context_window, "context window comes from the catalog"


def test_google_key_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_API_KEY", "g")
    assert Client().deployment("google/gemini-2.5-flash").api_key == "g"


def test_openai_compatible_local_server_needs_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1")
    deployment = Client().deployment("openai/meta-llama/Llama-3.1-8B-Instruct")
    assert deployment.model == "meta-llama/Llama-3.1-8B-Instruct"
    assert deployment.api_key is None


def test_unknown_model_suggests_close_names() -> None:
    with pytest.raises(errors.UnknownModelError) as info:
        Client().deployment("gpt4o")
    assert any("gpt-4o" in s for s in info.value.suggestions)
    assert "Did you mean" in str(info.value)


def test_retired_model_points_to_successor() -> None:
    with pytest.raises(errors.ConfigError, match="retired") as info:
        Client().deployment("google/palm-2")
    assert "gemini" in str(info.value).lower()


def test_crossroads_home_relocates_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CROSSROADS_HOME", str(tmp_path))
    (tmp_path / "crossroads.yaml").write_text(GOOD)
    monkeypatch.chdir(tmp_path.parent)
    assert load_config().path == tmp_path / "crossroads.yaml"


# -- routes moved from gateway: to the top level (one release of overlap) ---------------

_OLD_ROUTES = """\
models: []
gateway:
  cooldown_s: 5
  routes:
    - name: chat
      deployments: [{model: local/smollm2}]
"""


def test_routes_under_gateway_still_work_with_a_message_naming_the_new_place() -> None:
    with pytest.warns(ConfigDeprecationWarning) as caught:
        config = parse_config(_OLD_ROUTES, "old.yaml")
    messages = [str(w.message) for w in caught]
    assert any("gateway.routes" in m and "`routes`" in m for m in messages), messages
    assert any("gateway.cooldown_s" in m and "`routing.cooldown_s`" in m for m in messages)
    assert [r.name for r in config.routes] == ["chat"]
    assert config.routing.cooldown_s == 5


def test_routes_in_both_places_is_an_error() -> None:
    text = _OLD_ROUTES + "routes:\n  - name: other\n    deployments: [{model: a}]\n"
    with pytest.raises(ConfigError, match="keep only routes"):
        parse_config(text, "both.yaml")


def test_a_bad_route_under_gateway_names_its_line() -> None:
    text = "gateway:\n  routes:\n    - name: x\n      strategy: fastest\n"
    with pytest.raises(ConfigError, match=r"bad\.yaml:4: routes\.0\.strategy"):
        parse_config(text, "bad.yaml")


def test_top_level_routes_need_no_message(recwarn: pytest.WarningsRecorder) -> None:
    config = parse_config("routes:\n  - name: chat\n    deployments: [{model: a}]\n")
    assert config.route("chat") is not None and config.route("other") is None
    assert not [w for w in recwarn if issubclass(w.category, ConfigDeprecationWarning)]


def test_route_names_are_unique() -> None:
    text = (
        "routes:\n  - {name: r, deployments: [{model: a}]}\n"
        "  - {name: r, deployments: [{model: b}]}\n"
    )
    with pytest.raises(ConfigError, match="route names used twice: r"):
        parse_config(text)
