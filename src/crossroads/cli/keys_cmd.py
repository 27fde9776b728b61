"""``crossroads keys``: virtual keys for the gateway."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .._time import as_utc

if TYPE_CHECKING:
    from ..gateway.keys import KeyRecord, KeyStore
    from ..store import Database

__all__ = ["keys_app"]

keys_app = typer.Typer(
    help="Create, list and revoke the gateway's virtual keys.", no_args_is_help=True
)


def _expiry(value: str | None) -> datetime | None:
    """An ISO date (midnight UTC that day) or datetime (UTC when no offset is given)."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not an ISO date or datetime, e.g. 2026-01-31 or 2026-01-31T18:00"
        ) from None
    return as_utc(parsed)


def _open(ctx: typer.Context) -> tuple[Database, KeyStore]:
    from ..config import load_config
    from ..gateway.keys import KeyStore
    from ..store import open_database
    from ._common import config_path

    db = open_database(config=load_config(config_path(ctx)))
    return db, KeyStore(db, cache_ttl_s=0)


def _money(value: float | None) -> str:
    return "—" if value is None else f"${value:,.2f}"


def _as_json(record: KeyRecord, spent: float | None = None) -> dict[str, Any]:
    data = record.public()
    if spent is not None:
        data["spent_usd"] = round(spent, 6)
    return data


@keys_app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option("--name", help="Unique among active keys.")],
    budget_usd: Annotated[
        float | None, typer.Option("--budget-usd", min=0, help="Spend limit in US dollars.")
    ] = None,
    rpm: Annotated[int | None, typer.Option(min=1, help="Requests per minute.")] = None,
    tpm: Annotated[
        int | None, typer.Option(min=1, help="Tokens per minute (prompt + max_tokens).")
    ] = None,
    models: Annotated[
        str | None,
        typer.Option(help="Comma-separated model names or globs the key may call (default: all)."),
    ] = None,
    expires: Annotated[
        str | None,
        typer.Option(help="ISO date (midnight UTC) or datetime after which the key is refused."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Create a key and print it once: only its hash is stored."""
    from ._common import run_guarded

    expires_at = _expiry(expires)
    allowed = tuple(m.strip() for m in (models or "").split(",") if m.strip())

    def body() -> None:
        db, store = _open(ctx)
        with db:
            raw, record = store.create(
                name, budget_usd=budget_usd, rpm=rpm, tpm=tpm, models=allowed, expires_at=expires_at
            )
        if as_json:
            typer.echo(json.dumps({"key": raw, **_as_json(record)}, indent=2))
            return
        if not sys.stdout.isatty():
            # Piped or captured (KEY=$(crossroads keys create ...)): the key alone.
            typer.echo(raw)
            typer.echo(f"Created key {record.name!r} ({record.id}).", err=True)
        else:
            typer.echo(f"Created key {record.name!r} ({record.id}):\n\n    {raw}\n")
        typer.echo(
            "Copy it now: it is shown only this once and is not stored (only its hash is). "
            "Lost keys cannot be recovered; revoke and create another.",
            err=True,
        )

    run_guarded(body)


@keys_app.command("list")
def list_(
    ctx: typer.Context,
    include_revoked: Annotated[bool, typer.Option("--all", help="Include revoked keys.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List keys with their limits and what each has spent (from the usage ledger)."""
    from ._common import run_guarded

    def body() -> None:
        from ..gateway.ledger import spent_by_key

        db, store = _open(ctx)
        with db:
            records = store.list(include_revoked=include_revoked)
            spent = spent_by_key(db)
        if as_json:
            typer.echo(json.dumps([_as_json(r, spent.get(r.id, 0.0)) for r in records], indent=2))
            return
        from rich.console import Console
        from rich.table import Table

        if not records:
            Console().print("No keys yet. Create one: crossroads keys create --name NAME")
            return
        table = Table(title="Gateway keys")
        for column in ("name", "id", "prefix", "budget", "spent", "rpm", "tpm", "models"):
            table.add_column(column, justify="right" if column in ("spent", "budget") else "left")
        table.add_column("expires")
        table.add_column("status")
        for r in records:
            status = r.status()
            style = {"active": "green", "expired": "yellow", "revoked": "red"}[status]
            table.add_row(
                r.name,
                r.id,
                r.prefix + "…",
                _money(r.budget_usd),
                _money(spent.get(r.id, 0.0)),
                str(r.rpm) if r.rpm else "—",
                str(r.tpm) if r.tpm else "—",
                ", ".join(r.models) or "all",
                r.expires_at.strftime("%Y-%m-%d %H:%M") if r.expires_at else "—",
                f"[{style}]{status}[/]",
            )
        Console().print(table)

    run_guarded(body)


@keys_app.command("revoke")
def revoke(
    ctx: typer.Context,
    name_or_id: Annotated[str, typer.Argument(help="A key's name or id (crossroads keys list).")],
) -> None:
    """Revoke a key; running gateways refuse it within a few seconds."""
    from ._common import run_guarded

    def body() -> None:
        db, store = _open(ctx)
        with db:
            before = store.get(name_or_id)
            record = store.revoke(name_or_id)
        if before.revoked_at is not None:
            typer.echo(f"Key {record.name!r} ({record.id}) was already revoked.")
        else:
            typer.echo(
                f"Revoked key {record.name!r} ({record.id}); gateways refuse it within "
                "their key cache time (2 s by default)."
            )

    run_guarded(body)
