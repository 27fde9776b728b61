"""The root ``crossroads`` command and its shared options."""

from __future__ import annotations

import sys
import warnings
from typing import Annotated, Any

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
    ui_cmd,
    usage_cmd,
)
from . import chat as chat_cmd

__all__ = ["app", "main"]

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
app.command("ui")(ui_cmd.ui)
app.add_typer(keys_cmd.keys_app, name="keys")
app.command("usage")(usage_cmd.usage)
app.add_typer(guard_cmd.guard_app, name="guard")
app.add_typer(audit_cmd.audit_app, name="audit")
app.add_typer(config_cmd.config_app, name="config")


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """Deprecated settings read as ``warning: …`` (no Python file and line number)."""
    if category.__name__ == "ConfigDeprecationWarning":
        typer.echo(f"warning: {message}", err=True)
    else:
        _default_show_warning(message, category, filename, lineno, file, line)


_default_show_warning = warnings.showwarning


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    warnings.showwarning = _show_warning
    app(args=argv if argv is not None else sys.argv[1:], prog_name="crossroads")
