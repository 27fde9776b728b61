"""Configuration: one YAML file, secrets only as ``${ENV_VAR}`` references.

Lookup order for the file (first found wins):

1. the ``--config`` flag (or the ``path`` argument of :func:`load_config`);
2. the ``CROSSROADS_CONFIG`` environment variable;
3. ``crossroads.yaml`` in the current directory;
4. ``crossroads.yaml`` in ``CROSSROADS_HOME`` (default ``~/.crossroads``).

With no file at all the configuration is empty, and ``provider/model`` names still work
from the vendors' standard environment variables. ``CROSSROADS_HOME`` relocates all
state (database, caches, reports).
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..errors import ConfigDeprecationWarning, ConfigError
from .gateway import DEPRECATED_ROUTING_FIELDS, GatewaySettings
from .guardrails import GuardrailsConfig
from .routing import Route, RouteTarget, RoutingSettings, Strategy
from .shadow import ShadowRule, unique_rule_names
from .telemetry import TelemetrySettings
from .yamlfile import Loc, parse_yaml

__all__ = [
    "CONFIG_FILENAME",
    "Config",
    "ConfigDeprecationWarning",
    "ModelEntry",
    "PriceOverride",
    "Replica",
    "Route",
    "RouteTarget",
    "RoutingSettings",
    "ShadowRule",
    "Strategy",
    "TelemetrySettings",
    "crossroads_home",
    "env_reference",
    "expand_env",
    "find_config_path",
    "load_config",
    "parse_config",
    "secret_setting",
]

CONFIG_FILENAME = "crossroads.yaml"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def crossroads_home() -> Path:
    """Where Crossroads keeps state: ``$CROSSROADS_HOME`` or ``~/.crossroads``."""
    value = os.environ.get("CROSSROADS_HOME")
    return Path(value).expanduser() if value else Path.home() / ".crossroads"


def expand_env(value: str) -> tuple[str | None, list[str]]:
    """Replace ``${VAR}`` / ``${VAR:-default}``; returns the text (None if a var is unset)
    and the names of the variables it refers to."""
    names: list[str] = []
    missing = False

    def sub(match: re.Match[str]) -> str:
        nonlocal missing
        name, default = match.group(1), match.group(2)
        names.append(name)
        found = os.environ.get(name)
        if found:
            return found
        if default is not None:
            return default
        missing = True
        return ""

    text = _ENV_REF.sub(sub, value)
    return (None if missing else text), names


class PriceOverride(BaseModel):
    """US dollars per 1M tokens, overriding the catalog's prices."""

    model_config = ConfigDict(extra="forbid")
    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cached_input: float | None = Field(default=None, ge=0)


class Replica(BaseModel):
    """One more server of the same model, for the router to balance across."""

    model_config = ConfigDict(extra="forbid")
    base_url: str
    api_key: str | None = Field(default=None, description="an env reference like ${VAR}")

    @field_validator("api_key")
    @classmethod
    def _key_is_env_reference(cls, value: str | None) -> str | None:
        return _check_env_reference(value)


def _check_env_reference(value: str | None) -> str | None:
    if value is not None and not _ENV_REF.fullmatch(value.strip()):
        raise ValueError(
            "api_key must be an environment reference such as ${OPENAI_API_KEY}; "
            "never write a key into the file"
        )
    return value


def secret_setting(field: str, reference: str, otherwise: str) -> str | None:
    """A secret setting with ``${VAR}`` expanded; None when it expands to nothing. A
    reference to an unset variable is a configuration error naming ``field`` and what
    to do ``otherwise`` (never a silently open endpoint)."""
    value, names = expand_env(reference)
    if value is None:
        raise ConfigError(
            f"{field} refers to {', '.join(names)}, which is not set: export it, {otherwise}."
        )
    return value or None


def env_reference(value: str | None) -> str | None:
    """The variable name in ``${VAR}`` (None when ``value`` is None)."""
    match = _ENV_REF.fullmatch(value.strip()) if value else None
    return match.group(1) if match else None


class ModelEntry(BaseModel):
    """One model under ``models:``: a name bound to a backend and a vendor model id."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    backend: str
    model: str = Field(min_length=1, description="the vendor's model id or a local path")
    base_url: str | None = None
    api_key: str | None = Field(default=None, description="an env reference like ${VAR}")
    timeout: float = Field(default=60.0, gt=0)
    connect_timeout: float = Field(default=10.0, gt=0)
    max_retries: int = Field(default=2, ge=0, le=10)
    headers: dict[str, str] = Field(default_factory=dict)
    prices: PriceOverride | None = None
    context_window: int | None = Field(default=None, gt=0)
    max_output_tokens: int | None = Field(default=None, gt=0)
    aliases: list[str] = Field(default_factory=list)
    options: dict[str, Any] = Field(default_factory=dict)
    #: Several servers of this model (``base_url`` + optional ``api_key`` each).
    replicas: list[Replica] = Field(default_factory=list)
    #: Self-hosted: what one GPU-hour of this deployment costs (US dollars). The gateway
    #: prices its requests from this and the throughput it measures.
    gpu_hour_usd: float | None = Field(default=None, gt=0)

    @field_validator("api_key")
    @classmethod
    def _key_is_env_reference(cls, value: str | None) -> str | None:
        return _check_env_reference(value)

    @model_validator(mode="after")
    def _replicas_or_base_url(self) -> ModelEntry:
        if self.replicas and self.base_url:
            raise ValueError("give either base_url or replicas (each with its base_url)")
        return self


class Config(BaseModel):
    """The whole ``crossroads.yaml``."""

    model_config = ConfigDict(extra="forbid")

    models: list[ModelEntry] = Field(default_factory=list)
    #: Public names served by one or more deployments, for every caller.
    routes: list[Route] = Field(default_factory=list)
    #: Retries, fallbacks and cooldown (one policy for every caller).
    routing: RoutingSettings = Field(default_factory=RoutingSettings)
    #: SQLAlchemy URL of the store (default: SQLite under CROSSROADS_HOME).
    database_url: str | None = None
    #: ``crossroads serve``: keys, limits, routes, ledger.
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    #: Guardrail policies applied to every model alike.
    guardrails: GuardrailsConfig = Field(default_factory=GuardrailsConfig)
    #: Copies of sampled production requests for candidate models (docs/shadow.md).
    shadow: list[ShadowRule] = Field(default_factory=list)
    #: OpenTelemetry tracing (docs/telemetry.md); None: off unless $OTEL_EXPORTER_OTLP_ENDPOINT.
    telemetry: TelemetrySettings | None = None
    #: The file this was read from (None when no file was found).
    path: Path | None = Field(default=None, exclude=True)
    #: Settings found in their old place, as messages naming the new one.
    deprecations: list[str] = Field(default_factory=list, exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _routing_moved_out_of_gateway(cls, data: Any) -> Any:
        """``gateway.routes`` / ``max_attempts`` / ``retry_budget_s`` / ``cooldown_s``
        moved to the top level (``routes:``, ``routing:``); read for one release."""
        if not isinstance(data, dict) or not isinstance(data.get("gateway"), dict):
            return data
        moved = [f for f in DEPRECATED_ROUTING_FIELDS if f in data["gateway"]]
        if not moved:
            return data
        data = dict(data)
        gateway = data["gateway"] = dict(data["gateway"])
        routing = data["routing"] = dict(data.get("routing") or {})
        notes: list[str] = []
        for name in moved:
            value = gateway.pop(name)
            new_place = "routes" if name == "routes" else f"routing.{name}"
            if (data.get("routes") if name == "routes" else routing.get(name)) is not None:
                raise ValueError(
                    f"gateway.{name} and {new_place} are both set; keep only {new_place}"
                )
            if name == "routes":
                data["routes"] = value
            else:
                routing[name] = value
            notes.append(
                f"gateway.{name} is deprecated and will stop working in the next release: "
                f"move it to the top level as `{new_place}`"
            )
        data["deprecations"] = notes
        return data

    @field_validator("routes")
    @classmethod
    def _unique_routes(cls, routes: list[Route]) -> list[Route]:
        names = [r.name for r in routes]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"route names used twice: {', '.join(dupes)}")
        return routes

    @field_validator("shadow")
    @classmethod
    def _unique_shadow_rules(cls, rules: list[ShadowRule]) -> list[ShadowRule]:
        return unique_rule_names(rules)

    def route(self, name: str) -> Route | None:
        """The route named ``name``, if there is one."""
        for route in self.routes:
            if route.name == name:
                return route
        return None

    @field_validator("models")
    @classmethod
    def _unique_names(cls, models: list[ModelEntry]) -> list[ModelEntry]:
        seen: set[str] = set()
        for entry in models:
            for name in (entry.name, *entry.aliases):
                if name in seen:
                    raise ValueError(f"model name or alias {name!r} is used twice")
                seen.add(name)
        return models

    def entry(self, name: str) -> ModelEntry | None:
        """The entry named ``name`` or carrying it as an alias."""
        for entry in self.models:
            if name == entry.name or name in entry.aliases:
                return entry
        return None

    def names(self) -> list[str]:
        """Every name the file defines: routes, then models and their aliases."""
        return [
            *(r.name for r in self.routes),
            *(n for e in self.models for n in (e.name, *e.aliases)),
        ]


def find_config_path(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The config file by the documented lookup order, or None."""
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"Config file {path} does not exist.")
        return path
    env = os.environ.get("CROSSROADS_CONFIG")
    if env:
        path = Path(env).expanduser()
        if not path.is_file():
            raise ConfigError(f"CROSSROADS_CONFIG points to {path}, which does not exist.")
        return path
    for candidate in (Path.cwd() / CONFIG_FILENAME, crossroads_home() / CONFIG_FILENAME):
        if candidate.is_file():
            return candidate
    return None


def _written_at(data: dict[str, Any], loc: Loc) -> Loc:
    """Where a field was written: moved routing settings may still sit under ``gateway:``."""
    gateway = data.get("gateway")
    if not loc or loc[0] not in ("routes", "routing") or loc[0] in data:
        return loc
    if not isinstance(gateway, dict):
        return loc
    if loc[0] == "routes":
        return ("gateway", *loc)
    return ("gateway", *loc[1:])


def parse_config(text: str, source: str = "<string>") -> Config:
    """Validate config text; errors name the file, the line and the field."""
    document = parse_yaml(text, source)
    data = document.data
    if data is None:
        return Config()
    if not isinstance(data, dict):
        raise ConfigError(f"{source}:1: the top level must be a mapping (e.g. `models:`).")
    config = document.validate(
        Config, "Invalid configuration", written_at=lambda loc: _written_at(data, loc)
    )
    for note in config.deprecations:
        warnings.warn(f"{source}: {note}", ConfigDeprecationWarning, stacklevel=2)
    return config


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Find and read the configuration (an empty one when there is no file)."""
    found = find_config_path(path)
    if found is None:
        return Config()
    try:
        text = found.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"Cannot read config file {found}: {exc}") from exc
    config = parse_config(text, str(found))
    config.path = found
    return config
