"""``crossroads serve``: the OpenAI- and Anthropic-compatible gateway."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["serve"]

#: The levels uvicorn accepts (``uvicorn.config.LOG_LEVELS``); any other raises KeyError.
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


def _log_level(value: str) -> str:
    level = value.strip().lower()
    if level not in LOG_LEVELS:
        raise typer.BadParameter(f"{value!r}: choose one of {', '.join(LOG_LEVELS)}")
    return level


def serve(
    ctx: typer.Context,
    config: Annotated[
        str | None, typer.Option("--config", "-c", help="crossroads.yaml with models and gateway:")
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 4000,
    workers: Annotated[
        int, typer.Option(min=1, help="Worker processes (share limits through Redis).")
    ] = 1,
    log_level: Annotated[
        str,
        typer.Option(help="critical, error, warning, info, debug or trace.", callback=_log_level),
    ] = "info",
    access_log: Annotated[bool, typer.Option(help="Log every request line.")] = False,
    console: Annotated[
        bool, typer.Option(help="Serve the web console at /ui (log in with a key).")
    ] = True,
) -> None:
    """Serve every configured model behind /v1/chat/completions, /v1/messages,
    /v1/embeddings and /v1/models, with keys, budgets, rate limits and a usage ledger."""
    import os
    from pathlib import Path

    from ._common import config_path, run_guarded

    def start() -> None:
        import uvicorn

        from ..config import load_config
        from ..gateway.http_limits import uvicorn_options
        from ..gateway.startup import check_routes

        cfg = load_config(config or config_path(ctx))
        for warning in check_routes(cfg):
            typer.echo(f"warning: {warning}", err=True)
        if cfg.path is not None:
            os.environ["CROSSROADS_CONFIG"] = str(Path(cfg.path).resolve())
        where = f", console http://{host}:{port}/ui" if console else ""
        if console and workers > 1:
            typer.echo(
                "warning: console sessions live in one worker process; with --workers "
                f"{workers} a browser may be sent back to the login form. Serve the console "
                "from a one-worker process, or pass --no-console here.",
                err=True,
            )
        typer.echo(
            f"Crossroads gateway on http://{host}:{port}  "
            f"(OpenAI base_url http://{host}:{port}/v1, Anthropic base_url http://{host}:{port}"
            f"{where})",
            err=True,
        )
        uvicorn.run(
            "crossroads.console.app:app_from_env" if console
            else "crossroads.gateway.app:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            loop="uvloop",
            # httptools, with header size/count and read deadlines (gateway.http_limits)
            **uvicorn_options(cfg.gateway),
            log_level=log_level,
            access_log=access_log,
            timeout_graceful_shutdown=int(cfg.gateway.shutdown_timeout_s) or None,
        )

    run_guarded(start)
