"""``crossroads ui``: the web console on this machine, with a fresh master key."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["ui"]


def ui(
    ctx: typer.Context,
    open_browser: Annotated[
        bool, typer.Option("--open", help="Open the console in the default browser.")
    ] = False,
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port on 127.0.0.1.")] = 4000,
) -> None:
    """Start the gateway and its web console on 127.0.0.1 with a master key made now
    (printed once). Without a crossroads.yaml the embedded model local/smollm2 answers
    offline; catalog models answer when their API keys are set."""
    import os
    import secrets

    from ._common import config_path, run_guarded

    def start() -> None:
        import uvicorn

        from ..config import load_config
        from ..console import create_app
        from ..gateway.http_limits import uvicorn_options
        from ..gateway.startup import MASTER_ENV, check_routes

        cfg = load_config(config_path(ctx))
        if cfg.path is None:  # the embedded defaults: this machine's own console
            cfg.gateway.serve_unconfigured = True
        cfg.gateway.master_key = None  # the key made below, whatever the file says
        master = "sk-ui-" + secrets.token_urlsafe(32)
        os.environ[MASTER_ENV] = master
        for warning in check_routes(cfg):
            typer.echo(f"warning: {warning}", err=True)
        url = f"http://127.0.0.1:{port}/ui/"
        where = f"config {cfg.path}" if cfg.path else "embedded defaults, no config file"
        typer.echo(f"Crossroads console on {url}  ({where})", err=True)
        typer.echo(f"Master key for this run (log in with it; shown only now): {master}",
                   err=True)
        app = create_app(cfg)
        if open_browser:
            _open_when_ready(port, url)
        uvicorn.run(
            app,
            host="127.0.0.1",
            port=port,
            loop="uvloop",
            **uvicorn_options(cfg.gateway),
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=int(cfg.gateway.shutdown_timeout_s) or None,
        )

    run_guarded(start)


def _open_when_ready(port: int, url: str) -> None:
    """Open ``url`` in the browser once the port accepts connections (a thread)."""
    import socket
    import threading
    import time
    import webbrowser

    def wait_then_open() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                time.sleep(0.1)
        webbrowser.open(url)

    threading.Thread(target=wait_then_open, name="open-browser", daemon=True).start()
