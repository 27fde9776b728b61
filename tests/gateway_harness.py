"""Run the real gateway on loopback: in a thread (fast) or as `crossroads serve` processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import uvicorn

from crossroads.config import parse_config
from crossroads.gateway.app import create_app

MASTER = "sk-master-test-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningGateway:
    url: str
    server: uvicorn.Server | None = None
    thread: threading.Thread | None = None
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    keys: dict[str, str] = field(default_factory=dict)
    database_url: str | None = None

    @property
    def v1(self) -> str:
        return self.url + "/v1"

    def create_key(self, name: str, **spec: object) -> str:
        response = httpx.post(
            self.url + "/admin/keys",
            json={"name": name, **spec},
            headers={"Authorization": f"Bearer {MASTER}"},
            timeout=10,
        )
        assert response.status_code == 201, response.text
        raw = str(response.json()["key"])
        self.keys[name] = raw
        return raw

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=30)
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _wait_ready(
    url: str, deadline_s: float = 60.0, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"gateway exited with {process.returncode}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError("gateway did not start")


@contextmanager
def gateway_thread(config_text: str) -> Iterator[RunningGateway]:
    """The gateway app on a free loopback port, in this process.

    ``$CROSSROADS_MASTER_KEY`` is :data:`MASTER` unless the test set it (to "" for a
    gateway without a master key), and only while the gateway runs: no later test
    inherits it."""
    previous = os.environ.get("CROSSROADS_MASTER_KEY")
    os.environ["CROSSROADS_MASTER_KEY"] = MASTER if previous is None else previous
    try:
        config = parse_config(config_text, "test-gateway.yaml")
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(config),
                host="127.0.0.1",
                port=port,
                log_level="warning",
                access_log=False,
                ws="none",
                timeout_graceful_shutdown=5,
            )
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        running = RunningGateway(f"http://127.0.0.1:{port}", server=server, thread=thread)
        try:
            _wait_ready(running.url)
            yield running
        finally:
            running.stop()
    finally:
        if previous is None:
            os.environ.pop("CROSSROADS_MASTER_KEY", None)
        else:
            os.environ["CROSSROADS_MASTER_KEY"] = previous


@contextmanager
def gateway_in_home(config_text: str, home: Path) -> Iterator[RunningGateway]:
    """:func:`gateway_thread` with ``CROSSROADS_HOME`` (and so its SQLite database) in
    ``home``; ``database_url`` is set so tests can read the ledger and audit log."""
    previous = os.environ.get("CROSSROADS_HOME")
    os.environ["CROSSROADS_HOME"] = str(home)
    try:
        with gateway_thread(config_text) as running:
            running.database_url = f"sqlite:///{home / 'crossroads.db'}"
            yield running
    finally:
        if previous is None:
            os.environ.pop("CROSSROADS_HOME", None)
        else:
            os.environ["CROSSROADS_HOME"] = previous


def start_process(config_path: Path, log_path: Path, *, port: int | None = None,
                  env: dict[str, str] | None = None, args: tuple[str, ...] = (),
                  ) -> RunningGateway:
    """``crossroads serve`` as a separate process (for kill -9, SIGTERM, many workers);
    ``args`` are more options for ``serve`` (``("--workers", "2")``)."""
    port = port or free_port()
    with log_path.open("ab") as log:  # the child keeps its own descriptor
        process = subprocess.Popen(
            [sys.executable, "-m", "crossroads", "serve", "--config", str(config_path),
             "--port", str(port), *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "CROSSROADS_MASTER_KEY": MASTER, **(env or {})},
        )
    running = RunningGateway(f"http://127.0.0.1:{port}", process=process, log_path=log_path)
    try:
        _wait_ready(running.url, process=process)
    except BaseException:
        running.stop()
        raise
    return running
