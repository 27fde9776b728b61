"""The hook through which models made elsewhere (``crossroads tune``) reach the catalog.

A package registers an object under the entry-point group ``crossroads.local_models``
with ``catalog_entry(name)`` and ``deployment(name)``, each returning None for names it
does not own, and ``inventory()``, the models it has on this machine. The catalog asks
them for ``local/NAME``; routing asks them for the deployment. The catalog imports no
package above it: built-ins (the tuned-model registry) register the same way a plugin
does.
"""

from __future__ import annotations

import functools
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..backends.base import Deployment
    from . import CatalogEntry
    from .local import LocalModel

__all__ = [
    "ENTRY_POINT_GROUP",
    "LocalModels",
    "local_catalog_entry",
    "local_deployment",
    "local_inventory",
]

ENTRY_POINT_GROUP = "crossroads.local_models"


class LocalModels(Protocol):
    """A source of ``local/NAME`` models (e.g. the tuned-model registry)."""

    def catalog_entry(self, name: str) -> CatalogEntry | None: ...

    def deployment(self, name: str) -> Deployment | None: ...

    def inventory(self) -> list[LocalModel]: ...


@functools.cache
def _sources() -> tuple[LocalModels, ...]:
    return tuple(ep.load() for ep in entry_points(group=ENTRY_POINT_GROUP))


def local_catalog_entry(name: str) -> CatalogEntry | None:
    """The catalog row a registered source gives for ``name``, or None."""
    for source in _sources():
        entry = source.catalog_entry(name)
        if entry is not None:
            return entry
    return None


def local_deployment(name: str) -> Deployment | None:
    """The deployment a registered source gives for ``name``, or None."""
    for source in _sources():
        deployment = source.deployment(name)
        if deployment is not None:
            return deployment
    return None


def local_inventory() -> list[LocalModel]:
    """Every model the registered sources have on this machine."""
    return [model for source in _sources() for model in source.inventory()]
