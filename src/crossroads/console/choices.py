"""The playground's model picker: routes, configured models, embedded and catalog models,
each marked with whether it answers here (served by this gateway, with its key or its
local model present) and with the facts a pane shows (open or closed, licence)."""

from __future__ import annotations

from dataclasses import dataclass

from ..backends.embedded import EMBEDDED_MODELS
from ..catalog import CatalogEntry, find_model, load_catalog
from ..config import Config
from ..errors import ConfigError, CrossroadsError, MissingKeyError
from ..gateway.exposure import Exposure
from ..routing.resolve import catalog_entry_for, resolve_all

__all__ = ["ModelChoice", "model_choices"]


@dataclass(frozen=True, slots=True)
class ModelChoice:
    name: str
    #: "route", "configured", "embedded" or "catalog".
    group: str
    #: "open", "closed", "mixed" (a route over both) or "unknown".
    kind: str
    licence: str
    answers: bool
    #: Why it answers or not, in a few words ("key set", "no key: set OPENAI_API_KEY", ...).
    note: str

    def for_key(self, allows: bool) -> ModelChoice:
        if allows or not self.answers:
            return self
        return ModelChoice(self.name, self.group, self.kind, self.licence, False,
                           "not allowed for your key")


def model_choices(config: Config) -> list[ModelChoice]:
    """Every name the playground can offer, routes first, answering ones before the rest
    within each group."""
    exposure = Exposure.from_config(config)
    seen: set[str] = set()
    found: list[ModelChoice] = []

    def add(name: str, group: str, kind: str, licence: str) -> None:
        if name in seen:
            return
        seen.add(name)
        answers, note = _answers(name, config, exposure)
        found.append(ModelChoice(name, group, kind, licence, answers, note))

    for route in config.routes:
        rows = [_row_for(t.model, config) for t in route.deployments]
        kinds: set[str] = {r.kind for r in rows if r is not None} or {"unknown"}
        kind = kinds.pop() if len(kinds) == 1 else "mixed"
        licences = sorted({r.licence.name for r in rows if r is not None})
        add(route.name, "route", kind, "; ".join(licences) or "—")
    for entry in config.models:
        row = catalog_entry_for(entry.backend, entry.model)
        add(entry.name, "configured", row.kind if row else "unknown",
            row.licence.name if row else "—")
    for name in EMBEDDED_MODELS:
        row = find_model(name)
        add(name, "embedded", "open", row.licence.name if row else "—")
    for row in load_catalog():
        if row.status != "retired":
            add(row.id, "catalog", row.kind, row.licence.name)
    order = {"route": 0, "configured": 1, "embedded": 2, "catalog": 3}
    return sorted(found, key=lambda c: (order[c.group], not c.answers))


def _row_for(name: str, config: Config) -> CatalogEntry | None:
    entry = config.entry(name)
    if entry is not None:
        return catalog_entry_for(entry.backend, entry.model)
    return find_model(name)


def _answers(name: str, config: Config, exposure: Exposure) -> tuple[bool, str]:
    if not exposure.serves(name):
        return False, "not served by this gateway (gateway.serve_unconfigured)"
    route = config.route(name)
    names = [t.model for t in route.deployments] if route is not None else [name]
    problems = []
    for target in names:
        try:
            deployments = resolve_all(target, config)
        except MissingKeyError as exc:
            problems.append(f"no key: set {exc.env_var}")
            continue
        except ConfigError as exc:
            problems.append("not on this machine" if "open-weight" in exc.message
                            or "not installed" in exc.message else "not available")
            continue
        except CrossroadsError:
            problems.append("not available")
            continue
        local = any(d.backend in ("llamacpp", "transformers") for d in deployments)
        return True, "local model present" if local else "key set"
    return False, problems[0] if problems else "not available"
