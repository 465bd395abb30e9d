"""OpenTelemetry export: the TelemetryExporter port over the OpenTelemetry SDK's OTLP
exporters (HTTP and gRPC). Router spans, dyno and router metrics and log lines go to each
app's telemetry drains. See docs/telemetry.md."""

from .drain import DrainSettings
from .exporter import OtlpTelemetry

__all__ = ["DrainSettings", "OtlpTelemetry"]
