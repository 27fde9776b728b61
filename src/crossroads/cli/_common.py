"""What every command shares: the error wrapper and the ``--config`` option's value.

Commands import this module, never :mod:`.app` (which imports every command).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import typer

__all__ = ["config_path", "run_guarded"]

T = TypeVar("T")


def run_guarded(fn: Callable[[], T]) -> T:
    """Run a command body; Crossroads errors become a clear message and exit status."""
    from ..errors import ConfigError, CrossroadsError

    try:
        return fn()
    except CrossroadsError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2 if isinstance(exc, ConfigError) else 1) from None
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise typer.Exit(130) from None


def config_path(ctx: typer.Context) -> Any:
    return (ctx.obj or {}).get("config")
