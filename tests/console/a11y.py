"""Accessible names: every control on a console page has one."""

from __future__ import annotations

from typing import Any

__all__ = ["unnamed_controls"]

_UNNAMED = """() => Array.from(document.querySelectorAll(
    'main input:not([type=hidden]), main select, main textarea, main button, main a[href]'))
  .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
    && !el.getAttribute('aria-labelledby') && !el.textContent.trim())
  .map(el => el.id || el.getAttribute('name') || el.outerHTML.slice(0, 80))"""


def unnamed_controls(page: Any) -> list[str]:
    """The controls of ``page``'s main content without an accessible name."""
    found: list[str] = page.evaluate(_UNNAMED)
    return found
