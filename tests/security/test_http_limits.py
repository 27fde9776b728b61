"""HTTP limits of a real ``crossroads serve``, driven with raw sockets: header size and
count (431), slow header and slow body (408 and the connection closed), idle keep-alive
closed; requests within the limits are served as before."""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ..fakes.openai_fake import OpenAIFake
from ..gateway_harness import RunningGateway, start_process

# Short deadlines so each test takes seconds; sizes and counts at their defaults.
LIMITS = "  header_timeout_s: 1\n  body_timeout_s: 1.5\n  keep_alive_timeout_s: 1\n"
#: How long past a deadline the server may take to close (a loaded CI machine).
SLACK_S = 3.0


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    tmp = tmp_path_factory.mktemp("http-limits")
    with OpenAIFake(require_key=False) as fake:
        config = tmp / "gw.yaml"
        config.write_text(
            "models:\n  - name: m\n    backend: openai\n    model: gpt-4o\n"
            f"    base_url: {fake.url}/v1\n    max_retries: 0\n"
            "    prices: {input: 1.0, output: 2.0}\n"
            "gateway:\n  master_key: ${CROSSROADS_MASTER_KEY}\n" + LIMITS,
            encoding="utf-8",
        )
        gw = start_process(config, tmp / "gw.log", env={"CROSSROADS_HOME": str(tmp)})
        try:
            gw.create_key("client")
            yield gw
        finally:
            gw.stop()


def _connect(gw: RunningGateway) -> socket.socket:
    host, port = gw.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.setblocking(False)
    return sock


def _send(sock: socket.socket, data: bytes) -> bool:
    """Send all of ``data``; False once the server has closed the connection."""
    view = memoryview(data)
    deadline = time.monotonic() + 10
    while view and time.monotonic() < deadline:
        try:
            view = view[sock.send(view):]
        except BlockingIOError:
            select.select([], [sock], [], 0.1)
        except OSError:  # reset or broken pipe: closed
            return False
    return True


def _read(sock: socket.socket, wait_s: float) -> tuple[bytes, bool]:
    """What the server sends within ``wait_s``, and whether it closed the connection."""
    data = b""
    deadline = time.monotonic() + wait_s
    while (left := deadline - time.monotonic()) > 0:
        if not select.select([sock], [], [], left)[0]:
            break
        try:
            chunk = sock.recv(65536)
        except BlockingIOError:
            continue
        except OSError:  # reset: closed
            return data, True
        if not chunk:
            return data, True
        data += chunk
    return data, False


def _read_response(sock: socket.socket, wait_s: float = 5) -> bytes:
    """One whole answer (it has a content-length), without waiting for more."""
    data = b""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if sep:
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            if len(rest) >= length:
                return data
        chunk, closed = _read(sock, 0.05)
        data += chunk
        if closed:
            break
    return data


def _closed_within(sock: socket.socket, wait_s: float) -> tuple[bytes, float | None]:
    """Read until the server closes; the answer and after how long (None: still open)."""
    start = time.monotonic()
    data, closed = _read(sock, wait_s)
    return data, (time.monotonic() - start) if closed else None


def _get(path: str = "/health", extra: bytes = b"") -> bytes:
    return b"GET " + path.encode() + b" HTTP/1.1\r\nHost: gw\r\n" + extra + b"\r\n"


def test_a_header_of_1_mb_is_refused_at_once(gateway: RunningGateway) -> None:
    sock = _connect(gateway)
    start = time.monotonic()
    with sock:
        _send(sock, _get(extra=b"X-Big: " + b"a" * (1024 * 1024) + b"\r\n"))
        data, closed = _read(sock, 5)
    assert closed, data[:200]
    # The 431 may be lost to a reset when the server closes with unread bytes.
    assert data == b"" or data.startswith(b"HTTP/1.1 431"), data[:200]
    assert time.monotonic() - start < 5


def test_more_than_100_header_fields_are_refused(gateway: RunningGateway) -> None:
    fields = b"".join(b"X-F%d: v\r\n" % i for i in range(150))
    with _connect(gateway) as sock:
        _send(sock, _get(extra=fields))
        data, closed = _read(sock, 5)
    assert data.startswith(b"HTTP/1.1 431"), data[:200]
    assert b"gateway.max_headers" in data
    assert closed


def test_headers_within_the_limits_are_served(gateway: RunningGateway) -> None:
    fields = {f"x-f{i}": "v" * 500 for i in range(60)}  # 60 fields, ~31 KB
    response = httpx.get(gateway.url + "/health", headers=fields, timeout=10)
    assert response.status_code == 200


def test_slow_loris_sockets_are_closed_within_the_header_timeout(
    gateway: RunningGateway,
) -> None:
    # Ten sockets sending a header line every 0.3 s and never finishing, and one that
    # sends nothing at all; the header timeout is 1 s.
    socks = [_connect(gateway) for _ in range(11)]
    try:
        for sock in socks[:10]:
            _send(sock, b"GET /health HTTP/1.1\r\nHost: gw\r\n")
        open_ = set(range(11))
        answers: dict[int, bytes] = {}
        start = time.monotonic()
        line = 0
        while open_ and time.monotonic() - start < 1 + SLACK_S:
            for i in sorted(open_):
                data, closed = _read(socks[i], 0.01)
                answers[i] = answers.get(i, b"") + data
                if closed or (i < 10 and not _send(socks[i], b"X-L%d: v\r\n" % line)):
                    open_.discard(i)
            line += 1
            time.sleep(0.3)
        elapsed = time.monotonic() - start
    finally:
        for sock in socks:
            sock.close()
    assert not open_, f"{len(open_)} of 11 slow connections still open after {elapsed:.1f} s"
    assert elapsed >= 0.8  # closed by the deadline, not at once
    assert all(a == b"" or a.startswith(b"HTTP/1.1 408") for a in answers.values()), answers


def test_an_idle_keep_alive_connection_is_closed(gateway: RunningGateway) -> None:
    with _connect(gateway) as sock:
        _send(sock, _get())
        assert _read_response(sock).startswith(b"HTTP/1.1 200")
        _, after = _closed_within(sock, 1 + SLACK_S)
    assert after is not None, "an idle keep-alive connection stayed open"


def test_a_body_slower_than_the_body_timeout_is_cut(gateway: RunningGateway) -> None:
    key = gateway.keys["client"]
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "x" * 200}]})
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {key}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with _connect(gateway) as sock:
        _send(sock, head)
        start = time.monotonic()
        data, closed = b"", False
        for byte in body.encode()[:-1]:  # a byte every 0.2 s: the body would take 40 s
            if not _send(sock, bytes([byte])):
                closed = True
                break
            chunk, closed = _read(sock, 0.2)
            data += chunk
            if closed or time.monotonic() - start > 1.5 + SLACK_S:
                break
        elapsed = time.monotonic() - start
    assert closed, f"a trickling body was still being read after {elapsed:.1f} s"
    assert elapsed >= 1.2
    assert data == b"" or data.startswith(b"HTTP/1.1 408"), data[:200]


def test_a_body_sent_in_pieces_within_the_timeout_is_served(gateway: RunningGateway) -> None:
    key = gateway.keys["client"]
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "hello"}]}).encode()
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {key}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with _connect(gateway) as sock:
        _send(sock, head[:20])
        time.sleep(0.2)
        _send(sock, head[20:] + body[:10])
        time.sleep(0.2)
        _send(sock, body[10:])
        data = _read_response(sock)
    assert data.startswith(b"HTTP/1.1 200"), data[:300]


def test_no_refusal_left_a_traceback(gateway: RunningGateway) -> None:
    assert gateway.log_path is not None
    log = Path(gateway.log_path).read_text(encoding="utf-8", errors="replace")
    assert "Traceback" not in log, log[-3000:]
