"""OpenTelemetry tracing (docs/telemetry.md): GenAI spans per gateway request, Client
call and eval item, W3C ``traceparent`` in and upstream, OTLP/HTTP export, content only
with ``capture_content``, and nothing imported when off."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from crossroads import telemetry
from crossroads.client import AsyncClient
from crossroads.config import TelemetrySettings, parse_config
from crossroads.errors import ConfigError

from .fakes.openai_fake import OpenAIFake
from .fakes.server import Reply
from .gateway_harness import MASTER, gateway_thread
from .test_eval_runner import CAPITALS, fakes, setup  # noqa: F401 (fixtures)
from .test_eval_runner import run as run_eval

ROOT = Path(__file__).resolve().parents[1]
PROMPT = "okapi-5521-secret-prompt"
CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"


def _config(fake_url: str, extra: str = "") -> str:
    return (
        "models:\n  - name: m\n    backend: openai\n    model: gpt-4o\n"
        f"    base_url: {fake_url}/v1\n    max_retries: 0\n"
        "gateway:\n  master_key: ${CROSSROADS_MASTER_KEY}\n" + extra
    )


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    yield exporter
    telemetry.shutdown()


def _on(exporter: InMemorySpanExporter, capture: bool = False) -> str:
    settings = TelemetrySettings(sample=1.0, capture_content=capture)
    telemetry.configure(settings, exporter=exporter)
    return f"telemetry:\n  sample: 1.0\n  capture_content: {str(capture).lower()}\n"


def _chat(url: str, headers: dict[str, str] | None = None, **body: Any) -> httpx.Response:
    return httpx.post(
        url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {MASTER}", **(headers or {})},
        json={"model": "m", "messages": [{"role": "user", "content": PROMPT}], **body},
        timeout=30,
    )


def test_gateway_span_has_genai_attributes_and_client_parent(
    spans: InMemorySpanExporter,
) -> None:
    with OpenAIFake(require_key=False) as fake:
        extra = _on(spans)
        fake.script(Reply("fine"))
        with gateway_thread(_config(fake.url, extra)) as gw:
            parent = f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"
            answer = _chat(gw.url, {"traceparent": parent}, max_tokens=50, temperature=0.5)
        assert answer.status_code == 200
        upstream = fake.requests[-1].headers
    [span] = [s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER]
    attributes = dict(span.attributes or {})
    assert span.name == "chat m"
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.provider.name"] == "openai"
    assert attributes["gen_ai.request.model"] == "m"
    assert attributes["gen_ai.response.model"] == "gpt-4o"
    assert attributes["gen_ai.request.max_tokens"] == 50
    assert attributes["gen_ai.request.temperature"] == 0.5
    assert attributes["gen_ai.usage.input_tokens"] == 11
    assert attributes["gen_ai.usage.output_tokens"] == 7
    assert tuple(attributes["gen_ai.response.finish_reasons"]) == ("stop",)  # type: ignore[arg-type]
    assert attributes["crossroads.deployment"] == "m"
    assert attributes["crossroads.request_id"] == answer.headers["x-request-id"]
    # the client's trace is the parent, and the upstream request joins it
    assert span.parent is not None
    assert f"{span.context.trace_id:032x}" == CLIENT_TRACE
    assert f"{span.parent.span_id:016x}" == CLIENT_SPAN
    sent = upstream["traceparent"].split("-")
    assert sent[1] == CLIENT_TRACE and sent[2] == f"{span.context.span_id:016x}"
    assert PROMPT not in json.dumps({k: str(v) for k, v in attributes.items()})


def test_gateway_streamed_span_has_ttft_and_usage(spans: InMemorySpanExporter) -> None:
    with OpenAIFake(require_key=False) as fake:
        extra = _on(spans)
        fake.script(Reply("one two three four"))
        with gateway_thread(_config(fake.url, extra)) as gw, httpx.stream(
            "POST", gw.url + "/v1/chat/completions",
            headers={"Authorization": f"Bearer {MASTER}"}, timeout=30,
            json={"model": "m", "stream": True, "stream_options": {"include_usage": True},
                  "messages": [{"role": "user", "content": PROMPT}]},
        ) as response:
            body = response.read().decode()
        assert "[DONE]" in body
        assert "traceparent" in fake.requests[-1].headers
    [span] = [s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER]
    attributes = dict(span.attributes or {})
    assert attributes["gen_ai.usage.input_tokens"] == 11
    assert attributes["gen_ai.usage.output_tokens"] == 7
    assert float(attributes["gen_ai.server.time_to_first_token"]) > 0  # type: ignore[arg-type]


def test_content_only_with_capture_content(spans: InMemorySpanExporter) -> None:
    with OpenAIFake(require_key=False) as fake:
        extra = _on(spans, capture=True)
        fake.script(Reply("the answer text"))
        with gateway_thread(_config(fake.url, extra)) as gw:
            assert _chat(gw.url).status_code == 200
    [span] = [s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER]
    attributes = dict(span.attributes or {})
    assert PROMPT in str(attributes["gen_ai.input.messages"])
    assert "the answer text" in str(attributes["gen_ai.output.messages"])


def test_failed_request_has_error_type(spans: InMemorySpanExporter) -> None:
    with OpenAIFake(require_key=False) as fake:
        extra = _on(spans)
        fake.script(Reply.error(400, "bad thing", type="invalid_request_error"))
        with gateway_thread(_config(fake.url, extra)) as gw:
            assert _chat(gw.url).status_code == 400
    [span] = [s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert span.status.status_code == StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == "BadRequestError"


async def test_client_call_is_a_client_span(spans: InMemorySpanExporter) -> None:
    with OpenAIFake(require_key=False) as fake:
        _on(spans)
        fake.script(Reply("fine"))
        config = parse_config(_config(fake.url))
        client = AsyncClient(config)
        try:
            reply = await client.chat("m", PROMPT, max_tokens=20)
        finally:
            await client.aclose()
        upstream = fake.requests[-1].headers
    assert reply.text == "fine"
    [span] = spans.get_finished_spans()
    attributes = dict(span.attributes or {})
    assert (span.name, span.kind) == ("chat m", SpanKind.CLIENT)
    assert attributes["gen_ai.usage.input_tokens"] == 11
    assert attributes["gen_ai.usage.output_tokens"] == 7
    assert attributes["gen_ai.request.max_tokens"] == 20
    assert attributes["gen_ai.provider.name"] == "openai"
    assert upstream["traceparent"].split("-")[2] == f"{span.context.span_id:016x}"
    assert PROMPT not in str(attributes)


class _Collector(BaseHTTPRequestHandler):
    bodies: ClassVar[list[tuple[str, bytes]]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        type(self).bodies.append((self.path, self.rfile.read(length)))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_otlp_http_export_reaches_a_collector() -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with OpenAIFake(require_key=False) as fake:
            fake.script(Reply("fine"))
            extra = f"telemetry:\n  otlp_endpoint: {endpoint}\n"
            with gateway_thread(_config(fake.url, extra)) as gw:
                assert _chat(gw.url).status_code == 200
            active = telemetry.tracing()
            assert active is not None
            active.flush()
    finally:
        telemetry.shutdown()
        server.shutdown()
        server.server_close()
    names = []
    for path, body in _Collector.bodies:
        assert path == "/v1/traces"
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource in request.resource_spans:
            for scope in resource.scope_spans:
                for span in scope.spans:
                    attrs = {a.key: a.value for a in span.attributes}
                    names.append((span.name, attrs["gen_ai.usage.input_tokens"].int_value))
    assert ("chat m", 11) in names


def test_off_by_default_imports_nothing(tmp_path: Any) -> None:
    """Off: no span, no ``traceparent`` upstream, and neither the SDK, the exporter nor
    Crossroads' SDK side imported (FastAPI itself imports the ``opentelemetry`` API)."""
    with OpenAIFake(require_key=False) as fake:
        (tmp_path / "c.yaml").write_text(_config(fake.url))
        script = (
            "import sys, httpx, os\n"
            "SDK = ('opentelemetry.sdk', 'opentelemetry.exporter', 'opentelemetry.proto',\n"
            "       'crossroads.telemetry._otel')\n"
            f"sys.path.insert(0, {str(ROOT)!r})\n"
            "from crossroads.config import load_config\n"
            "from tests.gateway_harness import gateway_thread, MASTER\n"
            f"text = open({str(tmp_path / 'c.yaml')!r}).read()\n"
            "with gateway_thread(text) as gw:\n"
            "    r = httpx.post(gw.url + '/v1/chat/completions', timeout=30,\n"
            "        headers={'Authorization': 'Bearer ' + MASTER},\n"
            "        json={'model': 'm', 'messages': [{'role': 'user', 'content': 'hi'}]})\n"
            "    assert r.status_code == 200, r.text\n"
            "print(sorted(m for m in sys.modules if m.startswith(SDK)))\n"
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        env["CROSSROADS_HOME"] = str(tmp_path)
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              env=env, timeout=120, cwd=ROOT)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "[]"
        assert "traceparent" not in fake.requests[-1].headers


def test_env_endpoint_turns_tracing_on_and_bad_endpoint_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from crossroads.config.telemetry import effective_telemetry

    assert effective_telemetry(None) is None or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    on = effective_telemetry(None)
    assert on is not None and on.otlp_endpoint == "http://127.0.0.1:4318"
    with pytest.raises(ConfigError) as raised:
        parse_config("telemetry:\n  sample: 2\n  otlp_endpoint: ftp://x\n", "t.yaml")
    message = str(raised.value)
    assert "t.yaml:2: telemetry.sample" in message
    assert "t.yaml:3: telemetry.otlp_endpoint" in message and "http://" in message


def test_missing_packages_name_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "crossroads.telemetry._otel", None)
    with pytest.raises(ConfigError, match=r"crossroads\[telemetry\]"):
        telemetry.configure(TelemetrySettings(otlp_endpoint="http://127.0.0.1:1"))
    assert telemetry.tracing() is None


async def test_client_stream_span_has_ttft_and_usage(spans: InMemorySpanExporter) -> None:
    with OpenAIFake(require_key=False) as fake:
        _on(spans)
        fake.script(Reply("one two three"))
        client = AsyncClient(parse_config(_config(fake.url)))
        try:
            text = "".join(
                [c.choices[0].delta.content or "" async for c in client.stream_chat("m", PROMPT)
                 if c.choices]
            )
        finally:
            await client.aclose()
    assert text == "one two three"
    [span] = spans.get_finished_spans()
    attributes = dict(span.attributes or {})
    assert (span.name, span.kind, attributes["crossroads.stream"]) == (
        "chat m", SpanKind.CLIENT, True)
    assert (attributes["gen_ai.usage.input_tokens"], attributes["gen_ai.usage.output_tokens"]) == (
        11, 7)
    assert float(attributes["gen_ai.server.time_to_first_token"]) > 0  # type: ignore[arg-type]


def test_each_eval_item_is_a_span_over_its_client_call(
    spans: InMemorySpanExporter, setup: Path,  # noqa: F811 (the fixture)
) -> None:
    _on(spans)
    run_eval(setup, models=("strong",))
    finished = spans.get_finished_spans()
    items = [s for s in finished if s.name == "eval strong"]
    calls = [s for s in finished if s.kind == SpanKind.CLIENT]
    assert len(items) == len(calls) == len(CAPITALS)
    assert {dict(s.attributes or {})["crossroads.eval.item_id"] for s in items} == {
        c.lower() for c in CAPITALS}
    assert all(dict(s.attributes or {})["crossroads.eval.passed"] is True for s in items)
    by_id = {s.context.span_id: s for s in items}
    for call in calls:
        assert call.parent is not None and call.parent.span_id in by_id
        assert dict(call.attributes or {})["gen_ai.usage.input_tokens"] == 11


def test_refused_key_still_ends_its_span(spans: InMemorySpanExporter) -> None:
    with OpenAIFake(require_key=False) as fake:
        extra = _on(spans)
        with gateway_thread(_config(fake.url, extra)) as gw:
            refused = httpx.post(
                gw.url + "/v1/chat/completions", timeout=30,
                headers={"Authorization": "Bearer sk-cr-" + "W" * 40},
                json={"model": "m", "messages": [{"role": "user", "content": PROMPT}]},
            )
        assert refused.status_code == 401 and not fake.requests
    [span] = [s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert span.status.status_code == StatusCode.ERROR
    assert "error.type" in (span.attributes or {})
