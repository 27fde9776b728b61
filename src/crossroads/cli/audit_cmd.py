"""``crossroads audit``: the tamper-evident audit log."""

from __future__ import annotations

from typing import Annotated, Any

import typer

__all__ = ["audit_app"]

audit_app = typer.Typer(help="Inspect and verify the hash-chained audit log.", no_args_is_help=True)


@audit_app.command("verify")
def verify(
    ctx: typer.Context,
    anchor: Annotated[
        str | None,
        typer.Option(help="A head hash printed by an earlier verify; it must still be there."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Check every record's hash and link; exit status 1 if any record was edited,
    deleted or reordered."""
    from ._common import config_path, run_guarded

    ok = run_guarded(lambda: _verify(config_path(ctx), anchor, as_json))
    if not ok:
        raise typer.Exit(1)


def _verify(config: Any, anchor: str | None, as_json: bool) -> bool:
    import json

    from ..config import load_config
    from ..guard.audit import verify as verify_chain
    from ..store import open_database

    with open_database(config=load_config(config)) as db:
        report = verify_chain(db, anchor=anchor)
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
    elif report.ok:
        typer.echo(
            f"OK: {report.count} record(s), chain intact. Head: seq {report.head_seq}, "
            f"hash {report.head_hash}"
        )
        typer.echo(
            "Keep the head hash elsewhere; `--anchor HASH` later proves nothing before it changed."
        )
    else:
        problem = report.problem
        assert problem is not None
        typer.echo(
            f"BROKEN at record {problem.seq}: {problem.reason} — {problem.detail}. "
            f"{report.count} record(s) read.",
            err=True,
        )
    return report.ok


@audit_app.command("show")
def show(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, help="How many of the latest records.")] = 20,
    kind: Annotated[str | None, typer.Option(help="Only request, decision or policy.")] = None,
) -> None:
    """The latest audit records."""
    from ._common import config_path, run_guarded

    run_guarded(lambda: _show(config_path(ctx), limit, kind))


def _show(config: Any, limit: int, kind: str | None) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table
    from sqlalchemy import select

    from ..config import load_config
    from ..store import audit_log, open_database

    query = select(audit_log).order_by(audit_log.c.seq.desc()).limit(limit)
    if kind:
        query = query.where(audit_log.c.kind == kind)
    with open_database(config=load_config(config)) as db, db.engine.connect() as conn:
        rows = list(conn.execute(query))
    table = Table(title="Audit log (latest first)")
    for column in ("seq", "time", "kind", "ref", "payload", "hash"):
        table.add_column(column, overflow="fold")
    for row in rows:
        payload = row.payload if len(row.payload) <= 120 else row.payload[:117] + "..."
        table.add_row(
            str(row.seq), row.ts[:19], row.kind, row.ref or "", escape(payload), row.hash[:12]
        )
    Console().print(table)
