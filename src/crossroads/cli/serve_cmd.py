"""``crossroads serve``: the OpenAI- and Anthropic-compatible gateway."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
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


@contextmanager
def shared_metrics(workers: int) -> Iterator[None]:
    """With several workers, one fresh directory for Prometheus' multiprocess mode (set
    before the workers start, so each writes its counters there and any scrape sums
    them), removed afterwards. A directory the operator set is used as it is, emptied
    first as prometheus_client requires."""
    from ..gateway.metrics import MULTIPROC_ENV

    if workers <= 1:
        yield
        return
    given = os.environ.get(MULTIPROC_ENV)
    folder = Path(given) if given else Path(tempfile.mkdtemp(prefix="crossroads-metrics-"))
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink()
    os.environ[MULTIPROC_ENV] = str(folder)
    try:
        yield
    finally:
        if not given:
            shutil.rmtree(folder, ignore_errors=True)
            os.environ.pop(MULTIPROC_ENV, None)


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
) -> None:
    """Serve every configured model behind /v1/chat/completions, /v1/messages,
    /v1/embeddings and /v1/models, with keys, budgets, rate limits and a usage ledger."""
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
        typer.echo(
            f"Crossroads gateway on http://{host}:{port}  "
            f"(OpenAI base_url http://{host}:{port}/v1, Anthropic base_url http://{host}:{port})",
            err=True,
        )
        with shared_metrics(workers):
            uvicorn.run(
                "crossroads.gateway.app:app_from_env",
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
