"""FastTransport against real loopback servers: raw asyncio ones for the edge cases a
well-behaved server never shows, and a uvicorn one for streaming."""

from __future__ import annotations

import asyncio
import datetime
import gzip
import ipaddress
import random
import socket
import ssl
import struct
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from crossroads.backends._fasthttp import MAX_BUFFERED, FastTransport, fast_transport_enabled
from crossroads.backends._http import HTTPTransport
from crossroads.errors import APIError

from .conftest import require
from .fakes.server import FakeServer

Head = tuple[str, str, dict[str, str], bytes]
Handler = Callable[["Upstream", asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> Head | None:
    """One request (method, target, lower-cased headers, body), or None at EOF."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    first, *lines = head.decode("latin-1").split("\r\n")
    method, target, _ = first.split(" ")
    headers = {}
    for line in lines:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return method, target, headers, body


def answer(body: bytes = b"ok", status: str = "200 OK", *extra: str) -> bytes:
    head = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", *extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class Upstream:
    """A raw asyncio HTTP/1.1 server; ``handler`` serves one connection."""

    def __init__(self, handler: Handler, ssl_context: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.ssl_context = ssl_context
        self.connections = 0
        self.open = 0
        self.max_open = 0
        self.requests: list[Head] = []
        self.closed = asyncio.Event()  # set whenever a connection ends
        self.release = asyncio.Event()  # handlers that hang wait for this
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> Upstream:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.ssl_context)
        self.port = self.server.sockets[0].getsockname()[1]
        scheme = "https" if self.ssl_context else "http"
        self.url = f"{scheme}://{'localhost' if self.ssl_context else '127.0.0.1'}:{self.port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release.set()
        self.server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        self.open += 1
        self.max_open = max(self.max_open, self.open)
        try:
            await self.handler(self, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            self.open -= 1
            writer.close()
            self.closed.set()
            self._tasks.discard(task)

    async def next_request(self, reader: asyncio.StreamReader) -> Head | None:
        request = await read_request(reader)
        if request is not None:
            self.requests.append(request)
        return request


def keep_alive(respond: Callable[[Head], bytes]) -> Handler:
    """Answer every request on the connection with ``respond(request)``."""

    async def handler(up: Upstream, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while (request := await up.next_request(reader)) is not None:
            w.write(respond(request))
            await w.drain()

    return handler


def client(transport: FastTransport | None = None, **kwargs: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=transport or FastTransport(), **kwargs)


# -- keep-alive, bodies, streaming ------------------------------------------------------


async def test_sequential_requests_reuse_one_connection() -> None:
    async with (
        Upstream(keep_alive(lambda r: answer(r[3] or r[1].encode()))) as up,
        client() as http,
    ):
        for i in range(10):
            response = await http.post(up.url + "/echo", json={"i": i})
            assert response.status_code == 200
            assert response.json() == {"i": i}
        assert (await http.get(up.url + "/path?q=1")).text == "/path?q=1"
    assert up.connections == 1
    method, _, headers, body = up.requests[0]
    assert method == "POST"
    assert headers["host"] == f"127.0.0.1:{up.port}"
    assert headers["content-length"] == str(len(body))
    assert "transfer-encoding" not in headers


async def test_chunked_content_length_and_close_delimited_bodies() -> None:
    async def handler(up: Upstream, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while (request := await up.next_request(reader)) is not None:
            path = request[1]
            if path == "/chunked":
                w.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                w.write(b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nTrailer: x\r\n\r\n")
            elif path == "/length":
                w.write(answer(b"exactly sized"))
            else:  # no length, no chunking: the body ends when the server closes
                w.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil ")
                await w.drain()
                w.write(b"close")
                await w.drain()
                return

    async with Upstream(handler) as up, client() as http:
        assert (await http.get(up.url + "/chunked")).text == "hello, world"
        assert (await http.get(up.url + "/length")).text == "exactly sized"
        assert (await http.get(up.url + "/close")).text == "until close"
        assert (await http.get(up.url + "/chunked")).text == "hello, world"
    assert up.connections == 2  # the close-delimited answer used its connection up


async def test_chunks_are_readable_as_they_arrive() -> None:
    first_read = asyncio.Event()

    async def handler(up: Upstream, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await up.next_request(reader)
        w.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nfirst \r\n")
        await w.drain()
        await first_read.wait()  # the second chunk only after the client saw the first
        w.write(b"6\r\nsecond\r\n0\r\n\r\n")
        await w.drain()
        await up.next_request(reader)

    async with (
        Upstream(handler) as up,
        client() as http,
        http.stream("GET", up.url) as response,
    ):
        chunks = response.aiter_raw()
        assert await asyncio.wait_for(anext(chunks), 5) == b"first "
        first_read.set()
        assert [c async for c in chunks] == [b"second"]


async def test_sse_from_uvicorn_streams_incrementally() -> None:
    gate = threading.Event()  # uvicorn runs in its own thread and loop

    class Streamer(FakeServer):
        def routes(self) -> list[Route]:
            async def events(request: Request) -> StreamingResponse:
                async def body() -> AsyncIterator[bytes]:
                    yield b"data: one\n\n"
                    await asyncio.to_thread(gate.wait, 5)
                    yield b"data: two\n\n"

                return StreamingResponse(body(), media_type="text/event-stream")

            return [Route("/events", events, methods=["POST"])]

    with Streamer() as fake:
        async with client() as http, http.stream("POST", fake.url + "/events") as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            lines = response.aiter_lines()
            assert await asyncio.wait_for(anext(lines), 5) == "data: one"
            gate.set()
            assert [line async for line in lines] == ["", "data: two", ""]


async def test_gzip_answers_are_decoded_by_httpx() -> None:
    text = b"compressible " * 200
    packed = gzip.compress(text)
    handler = keep_alive(lambda r: answer(packed, "200 OK", "Content-Encoding: gzip"))
    async with Upstream(handler) as up, client() as http:
        response = await http.get(up.url)
        assert response.content == text
        async with http.stream("GET", up.url) as streamed:
            assert b"".join([c async for c in streamed.aiter_bytes()]) == text
        assert up.requests[0][2]["accept-encoding"].startswith("gzip")


async def test_head_204_and_interim_answers() -> None:
    def respond(request: Head) -> bytes:
        if request[0] == "HEAD":
            return b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"
        if request[1] == "/empty":
            return b"HTTP/1.1 204 No Content\r\n\r\n"
        return b"HTTP/1.1 100 Continue\r\n\r\n" + answer(b"after 100")

    async with Upstream(keep_alive(respond)) as up, client() as http:
        head = await http.head(up.url)
        assert (head.status_code, head.content) == (200, b"")
        assert head.headers["content-length"] == "1234"
        assert (await http.get(up.url + "/empty")).status_code == 204
        assert (await http.get(up.url + "/continue")).text == "after 100"
        assert (await http.get(up.url + "/empty")).status_code == 204


async def test_request_bodies_are_sent_whole_with_a_length() -> None:
    async def parts() -> AsyncIterator[bytes]:
        yield b"streamed "
        yield b"body"

    async with Upstream(keep_alive(lambda r: answer(r[3]))) as up, client() as http:
        assert (await http.post(up.url, content=parts())).text == "streamed body"
        big = random.randbytes(3 * 1024 * 1024)
        assert (await http.put(up.url, content=big)).content == big
        assert (await http.post(up.url)).content == b""
    assert up.requests[0][2]["content-length"] == "13"
    assert "transfer-encoding" not in up.requests[0][2]
    assert up.requests[2][2]["content-length"] == "0"


async def test_reading_pauses_while_the_body_is_not_consumed() -> None:
    block = b"x" * 65536
    total = 64 * len(block)  # 4 MiB, more than MAX_BUFFERED

    async def handler(up: Upstream, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await up.next_request(reader)
        w.write(f"HTTP/1.1 200 OK\r\nContent-Length: {total}\r\n\r\n".encode())
        for _ in range(64):
            w.write(block)
            await w.drain()
        await up.next_request(reader)

    transport = FastTransport()
    async with Upstream(handler) as up, client(transport) as http:
        async with http.stream("GET", up.url) as response:
            # the server writes as fast as the client lets it: wait until reading pauses
            (conn,) = transport._conns
            deadline = asyncio.get_running_loop().time() + 5
            while not conn.paused_reading and asyncio.get_running_loop().time() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            assert conn.paused_reading
            assert conn.buffered <= MAX_BUFFERED + 512 * 1024
            received = sum([len(c) async for c in response.aiter_raw()])
        assert received == total


# -- errors and timeouts ------------------------------------------------------------------


async def test_connection_refused_is_a_connect_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening
    async with client() as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(f"http://127.0.0.1:{port}/")


async def test_silent_server_gives_read_timeout_and_the_connection_is_not_reused() -> None:
    async def handler(up: Upstream, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        request = await up.next_request(reader)
        if request is not None and request[1] == "/slow":
            await up.release.wait()
            return
        while request is not None:
            w.write(answer())
            request = await up.next_request(reader)

    async with Upstream(handler) as up, client(timeout=httpx.Timeout(5.0, read=0.2)) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.get(up.url + "/slow")
        assert (await http.get(up.url + "/fast")).text == "ok"
    assert up.connections == 2


async def test_body_read_timeout() -> None:
    async def handler(up: Upstream, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await up.next_request(reader)
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        await up.release.wait()

    async with (
        Upstream(handler) as up,
        client(timeout=httpx.Timeout(5.0, read=0.2)) as http,
        http.stream("GET", up.url) as response,
    ):
        with pytest.raises(httpx.ReadTimeout):
            await response.aread()


async def test_idle_connection_closed_by_the_server_is_replaced() -> None:
    async def handler(up: Upstream, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await up.next_request(reader)
        w.write(answer())  # keep-alive by the headers, then closed: an idle timeout
        await w.drain()

    async with Upstream(handler) as up, client() as http:
        assert (await http.get(up.url)).text == "ok"
        await asyncio.wait_for(up.closed.wait(), 5)
        await asyncio.sleep(0.05)  # the client's loop sees the EOF
        assert (await http.get(up.url)).text == "ok"
    assert up.connections == 2


async def test_request_on_a_stale_connection_is_sent_again_on_a_new_one() -> None:
    async def handler(up: Upstream, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await up.next_request(reader)
        w.write(answer())
        await w.drain()
        if up.connections == 1:
            await up.next_request(reader)  # read the second request, close unanswered

    async with Upstream(handler) as up, client() as http:
        assert (await http.get(up.url + "/1")).text == "ok"
        assert (await http.get(up.url + "/2")).text == "ok"
    assert up.connections == 2
    assert [r[1] for r in up.requests] == ["/1", "/2", "/2"]


async def test_fresh_connection_closed_unanswered_is_not_retried() -> None:
    async def handler(up: Upstream, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await up.next_request(reader)

    async with Upstream(handler) as up, client() as http:
        with pytest.raises(httpx.RemoteProtocolError):
            await http.post(up.url, json={"a": 1})
    assert up.connections == 1


async def test_server_dying_mid_body() -> None:
    async def handler(up: Upstream, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        request = await up.next_request(reader)
        assert request is not None
        if request[1] == "/length":
            w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b")
        elif request[1] == "/chunked":
            w.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        else:  # reset: RST instead of FIN
            w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
            await w.drain()
            await asyncio.sleep(0.05)
            sock = w.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        await w.drain()

    async with Upstream(handler) as up, client() as http:
        for path in ("/length", "/chunked"):
            with pytest.raises(httpx.RemoteProtocolError):
                await http.get(up.url + path)
        async with http.stream("GET", up.url + "/reset") as response:
            with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
                await response.aread()


async def test_server_dying_mid_stream_maps_to_upstream_unavailable() -> None:
    async def handler(up: Upstream, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await up.next_request(reader)
        w.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        w.write(b"c\r\ndata: {}\n\n\r\n")
        await w.drain()

    async with Upstream(handler) as up:
        transport = HTTPTransport(
            vendor="v", base_url=up.url, headers={}, error_mapper=lambda *a: APIError("x")
        )
        events = transport.stream_sse("/s", {})
        assert (await anext(events)).data == "{}"
        with pytest.raises(APIError, match="RemoteProtocolError"):
            await anext(events)
        await transport.aclose()


async def test_malformed_answer_is_a_protocol_error() -> None:
    handler = keep_alive(lambda r: b"SMTP ready\r\n\r\n")
    async with Upstream(handler) as up, client() as http:
        with pytest.raises(httpx.RemoteProtocolError):
            await http.get(up.url)


# -- pool ----------------------------------------------------------------------------------


async def test_stream_closed_early_closes_its_connection() -> None:
    async def handler(up: Upstream, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while (request := await up.next_request(reader)) is not None:
            if request[1] == "/endless":
                w.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                while True:
                    w.write(b"4\r\ntick\r\n")
                    await w.drain()
                    await asyncio.sleep(0.01)
            w.write(answer())

    transport = FastTransport()
    async with Upstream(handler) as up, client(transport) as http:
        async with http.stream("GET", up.url + "/endless") as response:
            assert await anext(response.aiter_raw()) == b"tick"
        assert transport._open == 0  # closed at once, not pooled
        await asyncio.wait_for(up.closed.wait(), 5)  # the server saw the connection go
        assert (await http.get(up.url + "/next")).text == "ok"
        assert transport._open == 1
    assert up.connections == 2


async def test_pool_limit_holds_under_concurrency() -> None:
    async def handler(up: Upstream, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while await up.next_request(reader) is not None:
            await asyncio.sleep(0.02)
            w.write(answer())

    transport = FastTransport(limits=httpx.Limits(max_connections=4))
    async with Upstream(handler) as up, client(transport) as http:
        responses = await asyncio.gather(*(http.get(up.url) for _ in range(20)))
        assert [r.text for r in responses] == ["ok"] * 20
        assert transport._open == 4
    # 20 concurrent requests fill the pool to its limit and never go past it
    assert up.connections == 4
    assert up.max_open == 4


async def test_pool_timeout_and_the_slot_comes_back() -> None:
    handler = keep_alive(lambda r: answer())
    transport = FastTransport(limits=httpx.Limits(max_connections=1))
    async with Upstream(handler) as up, client(transport) as http:
        held = await http.send(http.build_request("GET", up.url), stream=True)
        with pytest.raises(httpx.PoolTimeout):
            await http.get(up.url, timeout=httpx.Timeout(5.0, pool=0.1))
        waiting = asyncio.ensure_future(http.get(up.url))
        await asyncio.sleep(0.05)
        await held.aread()  # read to the end: the connection goes to the waiting request
        assert (await asyncio.wait_for(waiting, 5)).text == "ok"
    assert up.connections == 1


async def test_cancelled_requests_leak_no_connection() -> None:
    async def handler(up: Upstream, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while (request := await up.next_request(reader)) is not None:
            if request[1] == "/hang":
                await up.release.wait()
                return
            if request[1] == "/half":
                w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf")
                await up.release.wait()
                return
            w.write(answer())

    transport = FastTransport(limits=httpx.Limits(max_connections=1))
    async with Upstream(handler) as up, client(transport) as http:
        for path in ("/hang", "/half"):
            task = asyncio.ensure_future(http.get(up.url + path))
            await asyncio.sleep(0.1)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert transport._open == 0
            assert (await asyncio.wait_for(http.get(up.url + "/ok"), 5)).text == "ok"
        waiter = asyncio.ensure_future(http.get(up.url + "/hang"))
        await asyncio.sleep(0.05)
        queued = asyncio.ensure_future(http.get(up.url + "/ok"))  # waits for the pool
        await asyncio.sleep(0.05)
        queued.cancel()
        waiter.cancel()
        await asyncio.gather(waiter, queued, return_exceptions=True)
        assert transport._open == 0 and not transport._waiters
        assert (await asyncio.wait_for(http.get(up.url + "/ok"), 5)).text == "ok"
        for hand_over in ("slot", "connection"):
            held = await http.send(http.build_request("GET", up.url + "/ok"), stream=True)
            queued = asyncio.ensure_future(http.get(up.url + "/ok"))
            await asyncio.sleep(0.05)  # queued for the pool; held's body has arrived
            # Both hand the slot or connection to `queued` without yielding to the loop...
            await (held.aclose() if hand_over == "slot" else held.aread())
            queued.cancel()  # ...so it is cancelled holding it, before it runs
            with pytest.raises(asyncio.CancelledError):
                await queued
            assert transport._open == (0 if hand_over == "slot" else 1)
            assert (await asyncio.wait_for(http.get(up.url + "/ok"), 5)).text == "ok"


async def test_aclose_closes_idle_connections() -> None:
    async with Upstream(keep_alive(lambda r: answer())) as up:
        async with client() as http:
            assert (await http.get(up.url)).text == "ok"
        await asyncio.wait_for(up.closed.wait(), 5)
        assert up.open == 0


# -- TLS ---------------------------------------------------------------------------------


def _certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a localhost certificate signed by it: (ca.pem, cert.pem, key.pem)."""
    x509 = require("cryptography.x509", "pip install -e '.[dev]' installs cryptography")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def build(subject: str, key: Any, issuer: str, signer: Any, ca: bool) -> Any:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()),
                critical=False,
            )
        )
        if ca:
            builder = builder.add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
        else:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            ).add_extension(
                x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
            )
        return builder.sign(signer, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = build("Crossroads Test CA", ca_key, "Crossroads Test CA", ca_key, True)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = build("localhost", key, "Crossroads Test CA", ca_key, False)
    paths = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    paths[0].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


async def test_https_with_a_private_ca(tmp_path: Path) -> None:
    ca, cert, key = _certificates(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    trusted = ssl.create_default_context(cafile=str(ca))
    async with Upstream(keep_alive(lambda r: answer(b"secret")), server_context) as up:
        async with client(FastTransport(verify=trusted)) as http:
            for _ in range(3):
                assert (await http.get(up.url)).text == "secret"
        assert up.connections == 1
        async with client(FastTransport(verify=str(ca))) as http:
            assert (await http.get(up.url)).text == "secret"
        async with client(FastTransport(verify=True)) as http:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await http.get(up.url)
        async with client(FastTransport(verify=False)) as http:
            assert (await http.get(up.url)).text == "secret"


# -- the default client and its escape hatch -----------------------------------------------


def test_fast_transport_is_the_default_unless_told_or_proxied(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("all_proxy", raising=False)
    monkeypatch.delenv("CROSSROADS_HTTP_TRANSPORT", raising=False)

    def transport_of() -> object:
        http = HTTPTransport(
            vendor="v", base_url="http://x", headers={}, error_mapper=lambda *a: APIError("x")
        )
        return http.client._transport

    assert isinstance(transport_of(), FastTransport)
    monkeypatch.setenv("CROSSROADS_HTTP_TRANSPORT", "httpx")
    assert isinstance(transport_of(), httpx.AsyncHTTPTransport)
    monkeypatch.delenv("CROSSROADS_HTTP_TRANSPORT")
    monkeypatch.setenv("Https_Proxy", "http://proxy:3128")
    assert isinstance(transport_of(), httpx.AsyncHTTPTransport)
    assert fast_transport_enabled({"NO_PROXY": "*"})
    assert not fast_transport_enabled({"all_proxy": "socks5://p"})
    assert fast_transport_enabled({"HTTP_PROXY": ""})


@pytest.mark.parametrize("encoding", [None, "gzip"])
async def test_stream_sse_reads_plain_and_compressed_streams(encoding: str | None) -> None:
    events = b'data: {"n": 1}\n\nevent: ping\ndata: {}\n\ndata: [DONE]\n\n'
    body = gzip.compress(events) if encoding else events
    extra = ["Content-Type: text/event-stream"]
    if encoding:
        extra.append(f"Content-Encoding: {encoding}")
    async with Upstream(keep_alive(lambda r: answer(body, "200 OK", *extra))) as up:
        transport = HTTPTransport(
            vendor="v", base_url=up.url, headers={}, error_mapper=lambda *a: APIError("x")
        )
        for _ in range(2):  # the connection is read to its end and reused
            got = [(e.event, e.data) async for e in transport.stream_sse("/s", {})]
            assert got == [("message", '{"n": 1}'), ("ping", "{}"), ("message", "[DONE]")]
        assert up.connections == 1
        await transport.aclose()


async def test_injected_transports_take_the_production_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Production sends through FastTransport; tests inject httpx.MockTransport. Both must go
    # through HTTPTransport._send_direct (never AsyncClient.send) and put the same request
    # before their transport, or the tests stop exercising what production runs.
    async def refuse(*args: object, **kwargs: object) -> httpx.Response:
        raise AssertionError("AsyncClient.send is not on the production path")

    monkeypatch.setattr(httpx.AsyncClient, "send", refuse)
    seen: dict[str, list[httpx.Request]] = {"fast": [], "mock": []}
    handle = FastTransport.handle_async_request

    async def recording(self: FastTransport, request: httpx.Request) -> httpx.Response:
        seen["fast"].append(request)
        return await handle(self, request)

    monkeypatch.setattr(FastTransport, "handle_async_request", recording)
    events = b'data: {"n": 1}\n\nevent: ping\ndata: {}\n\ndata: [DONE]\n\n'

    def respond(path: str) -> tuple[bytes, dict[str, str]]:
        if path.partition("?")[0].endswith("/s"):
            return events, {"content-type": "text/event-stream"}
        return b'{"ok": true}', {"content-type": "application/json"}

    def mocked(request: httpx.Request) -> httpx.Response:
        seen["mock"].append(request)
        content, headers = respond(request.url.path)
        return httpx.Response(200, content=content, headers=headers)

    async with Upstream(
        keep_alive(lambda r: answer(respond(r[1])[0], "200 OK", "Content-Type: text/event-stream"))
    ) as up:
        options: dict[str, Any] = {
            "vendor": "v",
            "base_url": up.url + "/v1",
            "headers": {"Authorization": "Bearer k", "x-extra": "1"},
            "error_mapper": lambda *a: APIError("x"),
        }
        production = HTTPTransport(**options)
        assert isinstance(production.client._transport, FastTransport)
        mock = httpx.MockTransport(mocked)
        injected = HTTPTransport(
            **options, client=httpx.AsyncClient(transport=mock, headers=production.client.headers)
        )
        for transport in (production, injected):
            body, _ = await transport.post_json("/chat", {"q": "é", "n": [1, 2]})
            assert body == {"ok": True}
            await transport.post_json("/chat", {"q": 1}, params={"alt": "sse"})
            got = [(e.event, e.data) async for e in transport.stream_sse("/s", {"stream": True})]
            assert got == [("message", '{"n": 1}'), ("ping", "{}"), ("message", "[DONE]")]
            got = [e.data async for e in transport.stream_sse("/s", {}, params={"alt": "sse"})]
            assert got == ['{"n": 1}', "{}", "[DONE]"]
            await transport.aclose()
        await injected.client.aclose()

    def wire(request: httpx.Request) -> tuple[str, str, list[tuple[str, str]], bytes]:
        return request.method, str(request.url), sorted(request.headers.items()), request.content

    assert len(seen["fast"]) == len(seen["mock"]) == 4
    assert [wire(r) for r in seen["mock"]] == [wire(r) for r in seen["fast"]]
    first = seen["fast"][0]
    assert first.url == httpx.URL(up.url + "/v1/chat")
    assert first.headers["authorization"] == "Bearer k"
    assert first.headers["content-type"] == "application/json"
    assert seen["fast"][1].url.params["alt"] == "sse"
