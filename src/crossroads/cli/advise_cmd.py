"""``crossroads advise``: rank open and closed options for a profile, and say what would flip it.

Candidates are scored from catalog facts only (no measurements: performance comes from
published benchmarks, marked "not measured here"); cost comes from the TCO model
(:mod:`crossroads.decide.tco`): catalog list prices for APIs, default GPU rental + staff +
set-up for self-hosting, at the profile's monthly volume.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from ..decide.advisor import Advice, Candidate, Profile

__all__ = ["DEFAULT_CANDIDATES", "advise", "build_candidates"]

#: Compared when ``--models`` is not given: current closed APIs of three vendors, and open
#: models from a laptop-sized one to a multi-GPU one.
DEFAULT_CANDIDATES: tuple[str, ...] = (
    "openai/gpt-4o-mini",
    "openai/gpt-4o",
    "anthropic/claude-haiku-4-5",
    "anthropic/claude-sonnet-4-5",
    "google/gemini-2.5-flash",
    "meta/llama-3.1-8b",
    "meta/llama-3.3-70b",
    "openai/gpt-oss-20b",
    "local/smollm2",
)


def advise(
    profile: Annotated[
        Path | None,
        typer.Option(
            "--profile",
            "-p",
            help="Profile YAML (weights and constraints); see examples/profiles/. "
            "Omitted on a terminal: a few questions instead.",
        ),
    ] = None,
    models: Annotated[
        str | None,
        typer.Option(
            "--models",
            "-m",
            help="Comma-separated catalog models to compare (default: a set of current "
            "closed APIs and open models).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Rank models for a profile: weighted dimensions, hard constraints, flip points."""
    from ._common import run_guarded

    if profile is None and not sys.stdin.isatty():
        typer.echo(
            "error: give --profile FILE (examples in examples/profiles/), or run on a "
            "terminal to answer a few questions.",
            err=True,
        )
        raise typer.Exit(2)
    run_guarded(lambda: _advise(profile, models, as_json))


def _advise(profile_path: Path | None, models: str | None, as_json: bool) -> None:
    import json

    from ..decide.advisor import advise as run_advisor
    from ..decide.advisor import load_profile

    profile = load_profile(profile_path) if profile_path is not None else _questionnaire()
    names = [m.strip() for m in models.split(",") if m.strip()] if models else None
    candidates = build_candidates(
        names or list(DEFAULT_CANDIDATES), profile.constraints.volume_tokens_per_month
    )
    advice = run_advisor(profile, candidates)
    if as_json:
        typer.echo(json.dumps(advice.model_dump(mode="json"), indent=2, ensure_ascii=False))
        return
    _print(profile, advice)


def build_candidates(names: list[str], volume_tokens_per_month: float) -> list[Candidate]:
    """Catalog-only candidates for ``names`` with TCO cost curves."""
    from ..catalog import find_model, suggest
    from ..decide.advisor import catalog_candidate
    from ..decide.compare import tco_cost_curve
    from ..errors import UnknownModelError

    out: list[Candidate] = []
    seen: set[str] = set()
    for name in names:
        entry = find_model(name)
        if entry is None:
            raise UnknownModelError(name, suggest(name))
        if entry.id in seen:
            continue
        seen.add(entry.id)
        curve = tco_cost_curve(entry)
        out.append(catalog_candidate(entry, curve, volume_tokens_per_month=volume_tokens_per_month))
    return out


def _questionnaire() -> Profile:
    from ..decide.advisor import Constraints, Profile
    from ..decide.tco import parse_volume

    typer.echo("A few questions (Ctrl-C to stop); or write a profile, see examples/profiles/.")
    on_prem = typer.confirm("Must data stay on your own premises?", default=False)
    regulated = typer.confirm("Is the use regulated (health, finance, public sector)?", False)
    no_ml = not typer.confirm("Do you have ML engineers to run models yourself?", default=True)
    volume = parse_volume(typer.prompt("Tokens per month (e.g. 10M, 2B)", default="10M"))
    budget = typer.prompt("Monthly budget in USD (blank: none)", default="", show_default=False)
    languages = typer.prompt("Languages needed (comma-separated)", default="English")
    return Profile(
        name="interactive",
        description="answers to the crossroads advise questions",
        constraints=Constraints(
            on_premises=on_prem,
            regulated=regulated,
            no_ml_engineers=no_ml,
            volume_tokens_per_month=volume,
            monthly_budget_usd=float(budget) if budget.strip() else None,
            languages=[x.strip() for x in languages.split(",") if x.strip()],
        ),
    )


def _print(profile: Profile, advice: Advice) -> None:
    from rich.console import Console
    from rich.table import Table

    from ..decide.dimensions import DIMENSIONS
    from ..decide.tco import format_tokens

    console = Console()
    weights = profile.weights.as_dict()
    changed = ", ".join(f"{k} {w:g}" for k, w in weights.items() if w != 1.0)
    console.print(
        f"[bold]{profile.name}[/]: {format_tokens(advice.volume_tokens_per_month)} tokens/month; "
        f"weights: {f'{changed} (others 1)' if changed else 'all 1'}",
        highlight=False,
    )
    console.print(
        "Scored from catalog facts only: performance from published benchmarks "
        "(not measured here); cost from the TCO defaults.",
        highlight=False,
    )
    table = Table(title="Ranking: weighted score = sum(w x s) / sum(w), 0-10")
    table.add_column("#", justify="right")
    table.add_column("option", no_wrap=True)
    table.add_column("kind")
    table.add_column("score", justify="right")
    table.add_column("$/month", justify="right")
    table.add_column("strongest (weighted) / weakest")
    for i, option in enumerate(advice.ranking, 1):
        cost = "?" if option.monthly_cost_usd is None else f"{option.monthly_cost_usd:,.0f}"
        best = sorted(DIMENSIONS, key=lambda k: (-weights[k] * option.scores[k], k))[:3]
        weakest = min(
            (k for k in DIMENSIONS if weights[k] > 0), key=lambda k: (option.scores[k], k)
        )
        summary = ", ".join(f"{k} {option.scores[k]:.1f}" for k in best)
        summary += f" / {weakest} {option.scores[weakest]:.1f}"
        table.add_row(str(i), option.name, option.kind, f"{option.score:.2f}", cost, summary)
    console.print(table)
    if advice.ranking:
        top = advice.ranking[0]
        console.print(f"[bold]Why {top.label}[/]", highlight=False)
        for line in [*top.reasons, *(f"note: {n}" for n in top.notes)]:
            console.print(f"  - {line}", highlight=False)
    else:
        console.print("[red]No option meets every constraint.[/]")
    if advice.excluded:
        console.print("[bold]Excluded[/]")
        for ex in advice.excluded:
            console.print(f"  - {ex.name}: " + "; ".join(ex.reasons), highlight=False)
    if advice.flip_points:
        console.print("[bold]Flip points[/] (what would change the top choice)")
        steady: dict[str, list[str]] = {}
        for flip in advice.flip_points:
            if flip.value is not None or flip.kind == "volume":
                console.print(f"  - {flip.sentence}", highlight=False)
            else:
                steady.setdefault(flip.parameter, []).append(flip.direction)
        if steady:
            words = {("up",): "up", ("down",): "down", ("up", "down"): "either way"}
            console.print(
                "  - weights that change nothing within 0-10x (up) or down to 0: "
                + ", ".join(f"{k} ({words[tuple(d)]})" for k, d in steady.items()),
                highlight=False,
            )
