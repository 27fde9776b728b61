"""``crossroads serve``: the OpenAI- and Anthropic-compatible gateway."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from ..config.gateway import GatewaySettings

__all__ = ["serve"]

#: The levels uvicorn accepts (``uvicorn.config.LOG_LEVELS``); any other raises KeyError.
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")
#: The HTTP servers ``--server`` can run the gateway on (the first is the default).
SERVERS = ("uvicorn", "granian")
APP = "crossroads.gateway.app:app_from_env"
#: The gateway with the web console at /ui (the default; ``--no-console``: APP).
CONSOLE_APP = "crossroads.console.app:app_from_env"


def _server(value: str) -> str:
    server = value.strip().lower()
    if server not in SERVERS:
        raise typer.BadParameter(f"{value!r}: choose one of {', '.join(SERVERS)}")
    if server == "granian":
        import importlib.util

        if importlib.util.find_spec("granian") is None:
            raise typer.BadParameter(
                "granian is not installed: `pip install 'crossroads[granian]'` "
                "(or leave out --server for uvicorn)"
            )
    return server


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
    server: Annotated[
        str,
        typer.Option(help="HTTP server: uvicorn (uvloop + httptools) or granian.",
                     callback=_server),
    ] = "uvicorn",
    console: Annotated[
        bool, typer.Option(help="Serve the web console at /ui (log in with a key).")
    ] = True,
    log_format: Annotated[
        str, typer.Option(help="text, or json: one JSON object a line (no keys, no bodies).")
    ] = "text",
) -> None:
    """Serve every configured model behind /v1/chat/completions, /v1/messages,
    /v1/embeddings and /v1/models, with keys, budgets, rate limits and a usage ledger."""
    from ._common import config_path, run_guarded

    if log_format not in ("text", "json"):
        raise typer.BadParameter(f"{log_format!r}: choose text or json", param_hint="--log-format")

    def start() -> None:
        import uvicorn

        from ..config import load_config
        from ..gateway.http_limits import uvicorn_options
        from ..gateway.startup import check_routes

        cfg = load_config(config or config_path(ctx))
        for warning in check_routes(cfg):
            typer.echo(f"warning: {warning}", err=True)
        os.environ.update(CROSSROADS_LOG_FORMAT=log_format, CROSSROADS_LOG_LEVEL=log_level)
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
        app = CONSOLE_APP if console else APP
        with shared_metrics(workers):
            if server == "granian":
                _run_granian(cfg.gateway, app, host, port, workers, log_level, access_log)
                return
            uvicorn.run(
                app,
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


def _run_granian(
    settings: GatewaySettings, app: str, host: str, port: int, workers: int, level: str,
    access: bool,
) -> None:
    """The gateway on Granian (HTTP/1.1, uvloop). Of ``gateway``'s connection limits it
    enforces ``header_timeout_s`` and, through its read buffer, roughly
    ``max_header_bytes``; ``max_headers``, ``body_timeout_s`` and
    ``keep_alive_timeout_s`` are uvicorn's only (docs/gateway.md)."""
    from granian.constants import HTTPModes, Interfaces, Loops
    from granian.http import HTTP1Settings
    from granian.log import LogLevels
    from granian.server import Server

    levels = {"trace": "debug"}
    Server(
        app,
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        factory=True,
        workers=workers,
        loop=Loops.uvloop,
        http=HTTPModes.http1,
        websockets=False,
        http1_settings=HTTP1Settings(
            header_read_timeout=max(1, int(settings.header_timeout_s * 1000)),
            max_buffer_size=max(8192, settings.max_header_bytes),
        ),
        log_level=LogLevels(levels.get(level, level)),
        log_access=access,
        workers_kill_timeout=int(settings.shutdown_timeout_s) or None,
    ).serve()
