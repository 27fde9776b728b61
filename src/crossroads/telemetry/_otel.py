"""The OpenTelemetry SDK side of :mod:`crossroads.telemetry` (imported only when on)."""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import Any, Literal

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from .._trace import TRACEPARENT
from ..config.telemetry import TelemetrySettings

__all__ = ["SpanHandle", "Tracing"]

_KINDS = {"client": SpanKind.CLIENT, "server": SpanKind.SERVER, "internal": SpanKind.INTERNAL}
_PROPAGATOR = TraceContextTextMapPropagator()
#: The span opened last in this context: the parent of the next one (a Client call
#: inside an eval item).
_CURRENT: ContextVar[trace.Span | None] = ContextVar("crossroads_span", default=None)

AttributeValue = str | bool | int | float | list[str]


def _endpoint(url: str) -> str:
    url = url.rstrip("/")
    return url if url.endswith("/v1/traces") else url + "/v1/traces"


class SpanHandle:
    """One open span; it is current (the parent of spans opened below it and the
    ``traceparent`` sent upstream) until :meth:`end`."""

    __slots__ = ("_span", "_tokens", "capture_content")

    def __init__(self, span: trace.Span, capture_content: bool) -> None:
        self._span = span
        self.capture_content = capture_content
        self._tokens: tuple[Token[trace.Span | None], Token[str | None]] | None = None
        context = span.get_span_context()
        if context.is_valid:
            ids = f"{context.trace_id:032x}-{context.span_id:016x}"
            traceparent = f"00-{ids}-{context.trace_flags:02x}"
            self._tokens = (_CURRENT.set(span), TRACEPARENT.set(traceparent))

    @property
    def recording(self) -> bool:
        return self._span.is_recording()

    def rename(self, name: str) -> None:
        self._span.update_name(name)

    def set(self, attributes: dict[str, AttributeValue | None]) -> None:
        self._span.set_attributes({k: v for k, v in attributes.items() if v is not None})

    def end(self, error: BaseException | str | None = None, *, restore: bool = False) -> None:
        """End the span (``error``: ``error.type`` and status ERROR); ``restore`` puts the
        previous span back as current (only where it was opened in this same context)."""
        if error is not None:
            kind = error if isinstance(error, str) else type(error).__name__
            self._span.set_attribute("error.type", kind)
            self._span.set_status(Status(StatusCode.ERROR, kind))
        self._span.end()
        if restore and self._tokens is not None:
            try:
                _CURRENT.reset(self._tokens[0])
                TRACEPARENT.reset(self._tokens[1])
            except ValueError:  # set in another context: nothing to put back here
                pass
            self._tokens = None


class Tracing:
    """One tracer provider: sampled by ``settings.sample`` (parent-based), exported over
    OTLP/HTTP in batches, or to ``exporter`` span by span."""

    def __init__(self, settings: TelemetrySettings, *, exporter: SpanExporter | None = None):
        self.settings = settings
        self.capture_content = settings.capture_content
        self.provider = TracerProvider(
            sampler=ParentBased(TraceIdRatioBased(settings.sample)),
            resource=Resource.create({"service.name": "crossroads"}),
        )
        if exporter is None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            endpoint = _endpoint(settings.otlp_endpoint or "http://localhost:4318")
            self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint)))
        else:
            self.provider.add_span_processor(SimpleSpanProcessor(exporter))
        self.tracer = self.provider.get_tracer("crossroads")

    def start(
        self,
        name: str,
        kind: Literal["client", "server", "internal"],
        attributes: dict[str, AttributeValue | None],
        *,
        traceparent: str | None = None,
    ) -> SpanHandle:
        """Open a span; its parent is the client's ``traceparent`` when given (W3C
        trace context; an invalid one is ignored), else the span current here."""
        if traceparent:
            context: Any = _PROPAGATOR.extract({"traceparent": traceparent})
        else:
            parent = _CURRENT.get()
            context = trace.set_span_in_context(parent) if parent is not None else None
        span = self.tracer.start_span(
            name,
            context=context,
            kind=_KINDS[kind],
            attributes={k: v for k, v in attributes.items() if v is not None},
        )
        return SpanHandle(span, self.capture_content)

    def flush(self) -> None:
        self.provider.force_flush()

    def shutdown(self) -> None:
        self.provider.shutdown()
