"""Set up the OpenTelemetry SDK from the standard ``OTEL_*`` variables, only when they ask.

stickyctx itself needs ``opentelemetry-api`` alone: what is exported, and where, is the
application's choice. The examples (and so ``stickyctx demo``) call ``configure_from_env()`` once
at startup. Without an ``OTEL_*`` variable that asks for an export it does nothing and imports
nothing from the SDK. When one does (``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_TRACES_EXPORTER``,
``OTEL_SERVICE_NAME``, ...), it imports the SDK (``pip install 'stickyctx[otel]'``), builds a
tracer provider (batch span processor) and a meter provider (periodic reader) with the exporters
those variables name, and installs both as the global providers. Logs (the audit trail's
records) are set up only when asked for by name (``OTEL_LOGS_EXPORTER``, or
``OTEL_EXPORTER_OTLP_LOGS_ENDPOINT``): a logger provider with a batch processor, installed as
the global one. Everything else (endpoint,
headers, timeouts, sampler, resource attributes, batch and export intervals) the SDK and the
exporters read from their own ``OTEL_*`` variables.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError

__all__ = ["OtelSetup", "configure_from_env", "wants_export"]

# Any of these, set and not empty, asks for an export.
_ASKING = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "OTEL_TRACES_EXPORTER",
    "OTEL_METRICS_EXPORTER",
    "OTEL_SERVICE_NAME",
    "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
    "OTEL_LOGS_EXPORTER",
)
_EXPORTERS = frozenset({"otlp", "console", "none"})
_PROTOCOLS = frozenset({"http/protobuf", "grpc"})

_lock = threading.Lock()
_installed: OtelSetup | None = None


@dataclass(frozen=True)
class OtelSetup:
    """The providers installed globally (SDK objects) and the exporters each signal got."""

    tracer_provider: Any
    meter_provider: Any
    traces: tuple[str, ...]
    metrics: tuple[str, ...]
    logger_provider: Any = None  # only when logs were asked for
    logs: tuple[str, ...] = ()

    def shutdown(self) -> None:
        """Flush what is buffered and stop the exporters (the SDK also does it at exit)."""
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()
        if self.logger_provider is not None:
            self.logger_provider.shutdown()


def _exporters(environ: Mapping[str, str], variable: str) -> tuple[str, ...]:
    raw = environ.get(variable, "").strip().lower() or "otlp"
    names = tuple(dict.fromkeys(n.strip() for n in raw.split(",") if n.strip()))
    unknown = [n for n in names if n not in _EXPORTERS]
    if unknown:
        raise ConfigError(variable, f"unsupported exporter {unknown[0]!r}; expected otlp, "
                                    "console or none")
    if "none" in names:
        return ()
    return names


def _log_exporters(environ: Mapping[str, str]) -> tuple[str, ...]:
    """Logs only when asked for by name: ``OTEL_LOGS_EXPORTER``, or an OTLP logs endpoint."""
    if environ.get("OTEL_LOGS_EXPORTER", "").strip():
        return _exporters(environ, "OTEL_LOGS_EXPORTER")
    if environ.get("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "").strip():
        return ("otlp",)
    return ()


def _protocol(environ: Mapping[str, str], signal: str) -> tuple[str, str]:
    """The OTLP protocol of a signal, and the variable that chose it."""
    for variable in (f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        value = environ.get(variable, "").strip().lower()
        if value:
            if value not in _PROTOCOLS:
                raise ConfigError(variable, f"unsupported protocol {value!r}; expected "
                                            "http/protobuf or grpc")
            return value, variable
    return "http/protobuf", "OTEL_EXPORTER_OTLP_PROTOCOL"


def wants_export(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the ``OTEL_*`` variables ask for traces or metrics to be exported."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if not any(env.get(name, "").strip() for name in _ASKING):
        return False
    traces = _exporters(env, "OTEL_TRACES_EXPORTER")  # all checked: a bad value is an error
    metric_names = _exporters(env, "OTEL_METRICS_EXPORTER")
    return bool(traces or metric_names or _log_exporters(env))


def configure_from_env(service_name: str = "stickyctx") -> OtelSetup | None:
    """Install SDK providers as the ``OTEL_*`` variables ask; ``None`` when they do not.

    ``service_name`` is used when neither ``OTEL_SERVICE_NAME`` nor ``service.name`` in
    ``OTEL_RESOURCE_ATTRIBUTES`` names the service. Calling it again returns the first setup.
    Raises ``ConfigError`` naming the variable with a value it cannot honour, and
    ``ImportError`` naming the extra when the SDK is not installed.
    """
    global _installed
    with _lock:
        if _installed is not None:
            return _installed
        if not wants_export(os.environ):
            return None
        for signal in ("TRACES", "METRICS"):  # a bad protocol fails before anything is set up
            if "otlp" in _exporters(os.environ, f"OTEL_{signal}_EXPORTER"):
                _protocol(os.environ, signal)
        if "otlp" in _log_exporters(os.environ):
            _protocol(os.environ, "LOGS")
        _installed = _install(os.environ, service_name)
        return _installed


def _install(environ: Mapping[str, str], service_name: str) -> OtelSetup:
    try:
        from opentelemetry import metrics, trace
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        raise ImportError("the OTEL_* variables ask for an export, which needs the "
                          "OpenTelemetry SDK: pip install 'stickyctx[otel]'") from exc

    traces = _exporters(environ, "OTEL_TRACES_EXPORTER")
    metric_names = _exporters(environ, "OTEL_METRICS_EXPORTER")
    resource = Resource.create()  # OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: service_name}))

    tracer_provider = TracerProvider(resource=resource)  # the sampler: OTEL_TRACES_SAMPLER
    for name in traces:
        tracer_provider.add_span_processor(BatchSpanProcessor(_span_exporter(environ, name)))
    readers = [PeriodicExportingMetricReader(_metric_exporter(environ, name))
               for name in metric_names]
    meter_provider = MeterProvider(resource=resource, metric_readers=readers)
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    logs = _log_exporters(environ)
    logger_provider = _install_logs(environ, resource, logs) if logs else None
    return OtelSetup(tracer_provider, meter_provider, traces, metric_names, logger_provider, logs)


def _install_logs(environ: Mapping[str, str], resource: Any, names: tuple[str, ...]) -> Any:
    from opentelemetry._logs import set_logger_provider
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

    provider = LoggerProvider(resource=resource)
    for name in names:
        provider.add_log_record_processor(BatchLogRecordProcessor(_log_exporter(environ, name)))
    set_logger_provider(provider)
    return provider


def _log_exporter(environ: Mapping[str, str], name: str) -> Any:
    if name == "console":
        try:  # the exporter's name from SDK 1.39 on (the older name warns there)
            from opentelemetry.sdk._logs.export import ConsoleLogRecordExporter as Console
        except ImportError:  # older SDKs
            from opentelemetry.sdk._logs.export import (
                ConsoleLogExporter as Console,
            )
        return Console()

    def http() -> Any:
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

        return OTLPLogExporter()

    def grpc() -> Any:
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import (
            OTLPLogExporter as GrpcLogExporter,
        )

        return GrpcLogExporter()

    return _otlp(environ, "LOGS", http, grpc)


def _otlp(environ: Mapping[str, str], signal: str, http: Callable[[], Any],
          grpc: Callable[[], Any]) -> Any:
    protocol, variable = _protocol(environ, signal)
    if protocol == "http/protobuf":
        try:
            return http()
        except ImportError as exc:
            raise ImportError("OTLP over HTTP needs opentelemetry-exporter-otlp-proto-http: "
                              "pip install 'stickyctx[otel]'") from exc
    try:
        return grpc()
    except ImportError:
        raise ConfigError(variable, "grpc needs opentelemetry-exporter-otlp-proto-grpc "
                                    "installed") from None


def _span_exporter(environ: Mapping[str, str], name: str) -> Any:
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()

    def http() -> Any:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()

    def grpc() -> Any:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcSpanExporter,
        )

        return GrpcSpanExporter()

    return _otlp(environ, "TRACES", http, grpc)


def _metric_exporter(environ: Mapping[str, str], name: str) -> Any:
    if name == "console":
        from opentelemetry.sdk.metrics.export import ConsoleMetricExporter

        return ConsoleMetricExporter()

    def http() -> Any:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        return OTLPMetricExporter()

    def grpc() -> Any:
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
            OTLPMetricExporter as GrpcMetricExporter,
        )

        return GrpcMetricExporter()

    return _otlp(environ, "METRICS", http, grpc)
