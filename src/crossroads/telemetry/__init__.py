"""OpenTelemetry tracing, opt-in (``telemetry:`` in crossroads.yaml or
``$OTEL_EXPORTER_OTLP_ENDPOINT``; docs/telemetry.md).

Off (the default) :func:`tracing` returns None and nothing of OpenTelemetry is imported:
callers check it once per call and do nothing else. On, :class:`~._otel.Tracing` holds
one tracer provider exporting over OTLP/HTTP; spans follow the GenAI semantic
conventions (:mod:`.genai`). The ``opentelemetry-sdk`` and
``opentelemetry-exporter-otlp-proto-http`` packages come with the ``telemetry`` extra.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..config.telemetry import TelemetrySettings, effective_telemetry
from ..errors import ConfigError

if TYPE_CHECKING:
    from ._otel import SpanHandle, Tracing

__all__ = ["SpanHandle", "Tracing", "configure", "shutdown", "tracing"]

_ACTIVE: Tracing | None = None
_SETTINGS: TelemetrySettings | None = None


def tracing() -> Tracing | None:
    """The process's tracing, or None when it is off."""
    return _ACTIVE


def configure(settings: TelemetrySettings | None, *, exporter: Any = None) -> Tracing | None:
    """Turn tracing on for ``settings`` (with ``$OTEL_EXPORTER_OTLP_ENDPOINT`` as its
    default endpoint), or leave it off when neither is set. Idempotent for the same
    settings; ``exporter`` (a SpanExporter, e.g. the SDK's in-memory one) replaces OTLP."""
    global _ACTIVE, _SETTINGS
    effective = effective_telemetry(settings)
    if exporter is None and effective is None:
        return _ACTIVE
    if exporter is None and _ACTIVE is not None and effective == _SETTINGS:
        return _ACTIVE
    effective = effective or TelemetrySettings()
    try:
        from ._otel import Tracing
    except ImportError as exc:
        raise ConfigError(
            "telemetry is configured (telemetry: in crossroads.yaml or "
            "$OTEL_EXPORTER_OTLP_ENDPOINT) but OpenTelemetry is not installed: "
            "pip install 'crossroads[telemetry]'"
        ) from exc
    shutdown()
    _ACTIVE, _SETTINGS = Tracing(effective, exporter=exporter), effective
    return _ACTIVE


def shutdown() -> None:
    """Flush and stop tracing (it is off afterwards)."""
    global _ACTIVE, _SETTINGS
    active, _ACTIVE, _SETTINGS = _ACTIVE, None, None
    if active is not None:
        active.shutdown()
