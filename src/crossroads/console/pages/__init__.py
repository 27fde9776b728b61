"""The console's pages: one module each, listed once in :data:`PAGES`.

A page module exposes

- ``NAV``: its :class:`~crossroads.console.web.NavEntry` (or None for no menu entry), and
- ``routes(router: APIRouter) -> None``: adds its routes (paths relative to ``/ui``).

To add a page: write ``pages/NAME.py`` with those two names, its templates under
``templates/`` (extending ``base.html``), and add the module to :data:`PAGES` (the order
is the menu's).
"""

from __future__ import annotations

from typing import Protocol

from fastapi import APIRouter

from ..web import NavEntry
from . import decision, evaluations, keys, logs, playground, usage

__all__ = ["PAGES", "Page"]


class Page(Protocol):
    """What :data:`PAGES` holds (a module with these two names)."""

    NAV: NavEntry | None

    def routes(self, router: APIRouter) -> None: ...


PAGES: tuple[Page, ...] = (playground, evaluations, decision, usage, keys, logs)
