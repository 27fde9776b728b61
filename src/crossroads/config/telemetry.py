"""The ``telemetry:`` section of crossroads.yaml: OpenTelemetry tracing (opt-in).

    telemetry:
      otlp_endpoint: http://127.0.0.1:4318   # OTLP/HTTP collector (/v1/traces is added)
      sample: 1.0                            # share of traces kept, 0..1
      capture_content: false                 # prompts and answers in spans

Without the section tracing is off, unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (the
standard variable; the section's ``otlp_endpoint`` wins over it). Schema only:
:mod:`crossroads.telemetry` does the work (docs/telemetry.md).
"""

from __future__ import annotations

import os

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["ENDPOINT_ENV", "TelemetrySettings", "effective_telemetry"]

ENDPOINT_ENV = "OTEL_EXPORTER_OTLP_ENDPOINT"


class TelemetrySettings(BaseModel):
    """OpenTelemetry tracing: where spans go, how many, and whether content is kept."""

    model_config = ConfigDict(extra="forbid")

    #: OTLP/HTTP endpoint (``/v1/traces`` is appended unless the URL already ends with
    #: it); None: ``$OTEL_EXPORTER_OTLP_ENDPOINT``.
    otlp_endpoint: str | None = None
    #: Share of traces sampled (parent-based: a client's sampled ``traceparent`` is kept).
    sample: float = Field(default=1.0, ge=0.0, le=1.0)
    #: Prompt and answer text as span attributes (off: never any content).
    capture_content: bool = False

    @field_validator("otlp_endpoint")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(
                f"telemetry.otlp_endpoint must be an http:// or https:// URL, not {value!r}"
            )
        return value


def effective_telemetry(settings: TelemetrySettings | None) -> TelemetrySettings | None:
    """The settings tracing runs with: the section, else one made from
    ``$OTEL_EXPORTER_OTLP_ENDPOINT``; None: tracing off."""
    env = os.environ.get(ENDPOINT_ENV) or None
    if settings is None:
        return TelemetrySettings(otlp_endpoint=env) if env else None
    if settings.otlp_endpoint is None and env:
        return settings.model_copy(update={"otlp_endpoint": env})
    return settings
