"""Model names → deployments (routes are the router's: :mod:`crossroads.routing.router`).

A model name resolves, in this order, to:

1. an entry (or alias) in ``crossroads.yaml`` — one deployment, or one per replica;
2. a model registered through :mod:`crossroads.catalog.hooks` (``local/NAME`` made by
   ``crossroads tune``), then an embedded open model (``local/smollm2``, the offline default);
3. ``provider/model`` where ``provider`` is an installed backend (``openai/gpt-4o``,
   ``anthropic/claude-sonnet-4-5``, ``google/gemini-2.5-flash``, ``vllm/…``,
   ``ollama/…``): the key and base URL come from the backend's standard environment
   variables, so no config file is needed;
4. a catalog id or alias (``gpt-4o``, ``claude-sonnet-4-5``, ``smollm2``).

Anything else is an :class:`~crossroads.errors.UnknownModelError` with close matches.
"""

from __future__ import annotations

import difflib
import os
from urllib.parse import urlparse

from ..backends.base import Backend, Deployment, Prices, available_backends, load_backend
from ..backends.embedded import EMBEDDED_MODELS, embedded_model_path
from ..catalog import CatalogEntry, find_model, suggest
from ..catalog.hooks import local_deployment
from ..config import Config, ModelEntry, env_reference, expand_env
from ..errors import ConfigError, MissingKeyError, UnknownModelError

__all__ = [
    "catalog_entry_for",
    "entry_backend",
    "resolve",
    "resolve_all",
    "suggest_names",
]

_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}


def _is_local(url: str | None) -> bool:
    return bool(url) and (urlparse(url).hostname or "") in _LOCAL_HOSTS


def catalog_entry_for(backend: str, vendor_model: str) -> CatalogEntry | None:
    """The catalog row for a vendor model id, when the catalog knows it."""
    for name in (f"{backend}/{vendor_model}", vendor_model):
        entry = find_model(name)
        if entry is not None:
            return entry
    return None


def _prices(entry: ModelEntry | None, row: CatalogEntry | None) -> Prices | None:
    if entry is not None and entry.prices is not None:
        p = entry.prices
        return Prices(p.input, p.output, p.cached_input)
    if row is not None and row.prices is not None:
        return Prices(row.prices.input, row.prices.output, row.prices.cached_input)
    return None


def _env_key(cls: type[Backend]) -> tuple[str | None, str | None]:
    """The key from the backend's standard env vars, and the var to name in errors."""
    names = [n for n in (cls.api_key_env, *getattr(cls, "api_key_env_fallbacks", ())) if n]
    for name in names:
        if os.environ.get(name):
            return os.environ[name], name
    return None, (names[0] if names else None)


def _entry_key(
    entry: ModelEntry, cls: type[Backend], api_key: str | None, base_url: str | None
) -> tuple[str | None, str | None]:
    """The key of one configured deployment, and the env var it comes from."""
    if api_key is not None:
        key, _ = expand_env(api_key)
        env_name = env_reference(api_key)
        if key is None and env_name:
            raise MissingKeyError(entry.name, env_name)
        return key, env_name
    key, env_name = _env_key(cls)
    # A custom server (vLLM, Ollama, a proxy) may not need a key; use one if present.
    if key is None and cls.requires_key and env_name and not base_url:
        raise MissingKeyError(entry.name, env_name)
    return key, env_name


def entry_backend(entry: ModelEntry) -> type[Backend]:
    """The backend class of a configured model, after checking its ``options:`` keys
    against what the backend reads (ConfigError naming the model, the key and the allowed
    keys; an unknown backend is a ConfigError too)."""
    try:
        cls = load_backend(entry.backend)
    except ConfigError as exc:
        raise ConfigError(f"model {entry.name!r}: {exc.message}") from None
    allowed = cls.allowed_options
    unknown = sorted(set(entry.options) - allowed) if allowed is not None else []
    if unknown:
        can = ", ".join(sorted(allowed or ())) or "none"
        raise ConfigError(
            f"model {entry.name!r}: unknown option{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(repr(k) for k in unknown)} for backend {entry.backend!r} "
            f"(allowed options: {can}). Remove {'them' if len(unknown) > 1 else 'it'} or "
            "check the spelling (docs/configuration.md)."
        )
    return cls


def _from_entry(entry: ModelEntry) -> list[Deployment]:
    cls = entry_backend(entry)
    row = catalog_entry_for(entry.backend, entry.model)
    # No base_url: the backend's standard variable (OPENAI_BASE_URL, ANTHROPIC_BASE_URL, ...)
    # as in the vendors' SDKs, else the vendor's host.
    env_url = (os.environ.get(cls.base_url_env) or None) if cls.base_url_env else None
    targets: list[tuple[str | None, str | None]] = [
        (r.base_url or env_url, r.api_key or entry.api_key) for r in entry.replicas
    ] or [(entry.base_url or env_url, entry.api_key)]
    deployments = []
    for base_url, api_key in targets:
        key, env_name = _entry_key(entry, cls, api_key, base_url)
        deployments.append(
            Deployment(
                name=entry.name,
                backend=entry.backend,
                model=entry.model,
                base_url=base_url,
                api_key=key,
                api_key_env=env_name,
                timeout=entry.timeout,
                connect_timeout=entry.connect_timeout,
                max_retries=entry.max_retries,
                headers=dict(entry.headers),
                context_window=entry.context_window or (row.context_window if row else None),
                max_output_tokens=entry.max_output_tokens
                or (row.max_output_tokens if row else None),
                prices=_prices(entry, row),
                options=dict(entry.options),
            )
        )
    return deployments


def _from_provider(name: str, backend: str, vendor_model: str) -> Deployment:
    cls = load_backend(backend)
    base_url = os.environ.get(cls.base_url_env) if cls.base_url_env else None
    key, env_name = _env_key(cls)
    needs_key = cls.requires_key and not _is_local(base_url)
    if key is None and needs_key and env_name:
        raise MissingKeyError(name, env_name)
    row = catalog_entry_for(backend, vendor_model)
    return Deployment(
        name=name,
        backend=backend,
        model=vendor_model,
        base_url=base_url or None,
        api_key=key,
        api_key_env=env_name,
        context_window=row.context_window if row else None,
        max_output_tokens=row.max_output_tokens if row else None,
        prices=_prices(None, row),
    )


def _embedded(name: str) -> Deployment:
    model = EMBEDDED_MODELS[name]
    return Deployment(
        name=name,
        backend=model.backend,
        model=str(embedded_model_path(name)),
        context_window=model.context_window,
        prices=Prices(0.0, 0.0),
    )


def suggest_names(name: str, config: Config, n: int = 3) -> list[str]:
    """Close matches among configured names first, then catalog ids."""
    local = difflib.get_close_matches(name, config.names(), n=n, cutoff=0.6)
    return [*local, *(s for s in suggest(name, n) if s not in local)][:n]


def resolve_all(name: str, config: Config) -> list[Deployment]:
    """Every deployment ``name`` stands for (several when the model has replicas)."""
    entry = config.entry(name)
    if entry is not None:
        return _from_entry(entry)
    tuned = local_deployment(name)  # e.g. made by `crossroads tune` (catalog.hooks)
    if tuned is not None:
        return [tuned]
    if name in EMBEDDED_MODELS:
        return [_embedded(name)]
    row = find_model(name)
    if row is not None and row.status == "retired":
        successor = f" Use its successor {row.successor!r} instead." if row.successor else ""
        raise ConfigError(f"{row.name} ({row.id}) has been retired by {row.vendor}.{successor}")
    provider, sep, rest = name.partition("/")
    if sep and rest and provider in available_backends():
        return [_from_provider(name, provider, rest)]
    if row is not None and row.id in EMBEDDED_MODELS:
        return [_embedded(row.id)]
    if row is not None and row.kind == "closed" and row.backend in available_backends():
        return [_from_provider(name, row.backend, row.vendor_model)]
    if row is not None:
        raise ConfigError(
            f"{row.name} is an open-weight model: run it yourself and add it to "
            f"crossroads.yaml (backend: llamacpp with a GGUF path, backend: transformers "
            f"with a folder or hub id {row.vendor_model!r}, or a server preset such as "
            f"vllm/{row.vendor_model}). `crossroads fit {row.id}` tells what hardware it needs."
        )
    raise UnknownModelError(name, suggest_names(name, config))


def resolve(name: str, config: Config) -> Deployment:
    """The (first) deployment a model name stands for."""
    return resolve_all(name, config)[0]
