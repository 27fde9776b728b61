"""The root ``crossroads`` command and its shared options."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from . import (
    advise_cmd,
    audit_cmd,
    compare_cmd,
    config_cmd,
    cost_cmd,
    eval_cmd,
    fit_cmd,
    guard_cmd,
    keys_cmd,
    models_cmd,
    serve_cmd,
    tune_cmd,
    usage_cmd,
)
from . import chat as chat_cmd

__all__ = ["app", "main", "run_guarded"]

app = typer.Typer(
    name="crossroads",
    help="Open- vs closed-source LLMs: one interface, evidence from your own tasks, "
    "and a decision.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help: typer's rich help imports rich's Markdown renderer (markdown-it),
    # which alone cost ~130 ms per `--help`.
    rich_markup_mode=None,
)

T = TypeVar("T")


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        str | None,
        typer.Option(
            "--config",
            "-c",
            help="crossroads.yaml to use (default: $CROSSROADS_CONFIG, ./crossroads.yaml, "
            "$CROSSROADS_HOME/crossroads.yaml).",
        ),
    ] = None,
) -> None:
    ctx.obj = {"config": config}


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


app.command("models")(models_cmd.models)
app.command("chat")(chat_cmd.chat)
app.command("compare")(compare_cmd.compare)
app.command("fit")(fit_cmd.fit)
app.command("cost")(cost_cmd.cost)
app.command("advise")(advise_cmd.advise)
app.command("suites")(eval_cmd.suites)
app.command("eval")(eval_cmd.eval_)
app.command("runs")(eval_cmd.runs)
app.command("show")(eval_cmd.show)
app.command("tune")(tune_cmd.tune)
app.command("serve")(serve_cmd.serve)
app.add_typer(keys_cmd.keys_app, name="keys")
app.command("usage")(usage_cmd.usage)
app.add_typer(guard_cmd.guard_app, name="guard")
app.add_typer(audit_cmd.audit_app, name="audit")
app.add_typer(config_cmd.config_app, name="config")


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    app(args=argv if argv is not None else sys.argv[1:], prog_name="crossroads")
