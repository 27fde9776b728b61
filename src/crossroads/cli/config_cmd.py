"""``crossroads config``: validate the configuration and see what is callable."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["config_app"]

config_app = typer.Typer(help="Inspect and validate crossroads.yaml.", no_args_is_help=True)


@config_app.command("check")
def check(
    ctx: typer.Context,
    offline: Annotated[
        bool, typer.Option("--offline", help="Validate only; do not contact any model.")
    ] = False,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            help="Exit 1 when any model lacks a key or is down, or nothing at all is configured.",
        ),
    ] = False,
) -> None:
    """Validate the config file and say which models are reachable and which lack keys."""
    from ._common import config_path, run_guarded
    from .checks import check_backends, check_models, describe_sources

    def body() -> int:
        from rich.console import Console

        from ..config import load_config

        console = Console()
        config = load_config(config_path(ctx))
        check_backends(config)
        describe_sources(config, console)
        return check_models(config, console, probe=not offline)

    problems = run_guarded(body)
    if strict and problems:
        raise typer.Exit(1)


@config_app.command("path")
def path(ctx: typer.Context) -> None:
    """Print the config file in use (by the documented lookup order)."""
    from ..config import crossroads_home, find_config_path
    from ._common import config_path, run_guarded

    found = run_guarded(lambda: find_config_path(config_path(ctx)))
    typer.echo(str(found) if found else f"(none; CROSSROADS_HOME is {crossroads_home()})")
