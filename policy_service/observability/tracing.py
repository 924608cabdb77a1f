"""OpenTelemetry traces shared by both processes: the tracer (off unless `OTEL_*` asks for
one), W3C trace context carried in gRPC metadata by a client and a server interceptor, and
the current trace id for audit rows and log lines.

Off costs nothing on the hot path: no interceptor is installed, no span is created and
`current_trace_id()` is one global read. The tracer lives in this module because a tracer
provider is process-wide by nature (the SDK's global can be set only once); tests install
theirs with `install()` and take it away with `uninstall()`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import Any

import grpc
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer, TracerProvider

log = logging.getLogger(__name__)

_INSTRUMENTATION = "monomcp"
_CARRIED = ("traceparent", "tracestate", "baggage")
_tracer: Tracer | None = None


def tracer() -> Tracer | None:
    """The tracer when tracing is on, else None (every hook checks this first)."""
    return _tracer


def install(provider: TracerProvider) -> None:
    """Trace through `provider` from now on (interceptors and middleware built after this)."""
    global _tracer
    _tracer = provider.get_tracer(_INSTRUMENTATION)


def uninstall() -> None:
    global _tracer
    _tracer = None


def current_trace_id() -> str:
    """The current trace id as 32 hex digits, or '' when tracing is off or no span is active."""
    if _tracer is None:
        return ""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else ""


def _wanted_exporters(env: Mapping[str, str]) -> list[str]:
    """What the standard variables ask for. Unlike the SDK's own default ("otlp"), an unset
    OTEL_TRACES_EXPORTER means off unless an OTLP endpoint is configured."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    named = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if not named:
        endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        return ["otlp"] if endpoint else []
    return [name.strip() for name in named.split(",") if name.strip() and name.strip() != "none"]


def _exporter(name: str, env: Mapping[str, str]) -> Any:
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if name != "otlp":
        raise ValueError(f"OTEL_TRACES_EXPORTER={name!r} is not supported here (use otlp, console or none)")
    protocol = env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
    protocol = protocol or "http/protobuf"  # the specification's default
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        return GrpcExporter()
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

        return HttpExporter()
    raise ValueError(f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r} is not supported (use grpc or http/protobuf)")


def configure(service_name: str, env: Mapping[str, str] | None = None, *, set_global: bool = True) -> Any:
    """Turns tracing on when the standard OTEL_* variables configure an exporter; returns the
    SDK's tracer provider, or None when tracing stays off. The SDK itself reads the rest
    from the environment: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES,
    OTEL_TRACES_SAMPLER(_ARG), OTEL_BSP_*, OTEL_EXPORTER_OTLP_*."""
    env = os.environ if env is None else env
    names = _wanted_exporters(env)
    if not names:
        return None
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    named = env.get("OTEL_SERVICE_NAME") or "service.name=" in env.get("OTEL_RESOURCE_ATTRIBUTES", "")
    provider = SdkTracerProvider(resource=Resource.create({} if named else {"service.name": service_name}))
    for name in names:
        provider.add_span_processor(BatchSpanProcessor(_exporter(name, env)))
    if set_global:
        trace.set_tracer_provider(provider)  # the MCP SDK's own spans join the same traces
    install(provider)
    add_trace_ids_to_logs()
    log.info("tracing on: exporting spans via %s", ", ".join(names))
    return provider


class TraceIdFilter(logging.Filter):
    """Adds `trace_id` to every record emitted inside a span (the JSON log line shows it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        trace_id = current_trace_id()
        if trace_id:
            record.trace_id = trace_id
        return True


def add_trace_ids_to_logs() -> None:
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, TraceIdFilter) for f in handler.filters):
            handler.addFilter(TraceIdFilter())


def remove_trace_ids_from_logs() -> None:
    for handler in logging.getLogger().handlers:
        for found in [f for f in handler.filters if isinstance(f, TraceIdFilter)]:
            handler.removeFilter(found)


# --- gRPC ----------------------------------------------------------------------------------


def _rpc_attributes(method: str) -> dict[str, str]:
    service, _, name = method.lstrip("/").rpartition("/")
    return {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}


class _ClientTracing(grpc.aio.UnaryUnaryClientInterceptor, grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[misc]
    """A client span per unary RPC; its context travels to the server in the metadata."""

    def __init__(self, tracer: Tracer) -> None:
        self._tracer = tracer

    @staticmethod
    def _details(details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        metadata = grpc.aio.Metadata(*tuple(details.metadata or ()), *carrier.items())
        return grpc.aio.ClientCallDetails(
            details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
        )

    async def intercept_unary_unary(
        self, continuation: Callable[..., Awaitable[Any]], details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        method = details.method.decode() if isinstance(details.method, bytes) else str(details.method)
        with self._tracer.start_as_current_span(
            method.lstrip("/"), kind=SpanKind.CLIENT, attributes=_rpc_attributes(method), record_exception=False
        ) as span:
            call = await continuation(self._details(details), request)
            code = await call.code()
            span.set_attribute("rpc.grpc.status_code", code.value[0])
            if code != grpc.StatusCode.OK:
                span.set_status(Status(StatusCode.ERROR, code.name))
            return call

    async def intercept_unary_stream(
        self, continuation: Callable[..., Awaitable[Any]], details: grpc.aio.ClientCallDetails, request: Any
    ) -> Any:
        return await continuation(self._details(details), request)


def client_interceptors() -> list[Any] | None:
    """For `grpc.aio.*_channel(interceptors=...)`: None (no interceptor at all) when off."""
    return [_ClientTracing(_tracer)] if _tracer is not None else None


def _parent(metadata: Iterable[tuple[Any, Any]] | None) -> Context:
    carrier = {key: value for key, value in metadata or () if key in _CARRIED and isinstance(value, str)}
    return propagate.extract(carrier)


class ServerTracing(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """A server span per unary RPC, child of the caller's span when its metadata carries one,
    current while the handler runs (so audit rows written by it carry the trace id)."""

    def __init__(self, tracer: Tracer) -> None:
        self._tracer = tracer

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        inner = handler.unary_unary
        method: str = handler_call_details.method or ""
        parent = _parent(handler_call_details.invocation_metadata)
        tracer = self._tracer

        async def traced(request: Any, context: grpc.aio.ServicerContext) -> Any:
            with tracer.start_as_current_span(
                method.lstrip("/"),
                context=parent,
                kind=SpanKind.SERVER,
                attributes=_rpc_attributes(method),
                record_exception=False,
                set_status_on_exception=False,
            ) as span:
                try:
                    return await inner(request, context)
                except BaseException:
                    code = context.code()
                    name = code.name if code is not None else "UNKNOWN"
                    span.set_status(Status(StatusCode.ERROR, name))
                    raise

        return grpc.unary_unary_rpc_method_handler(
            traced,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def server_interceptors() -> list[grpc.aio.ServerInterceptor]:
    """The tracing interceptor (outermost) when on, else nothing."""
    return [ServerTracing(_tracer)] if _tracer is not None else []


# --- CallBatch items -----------------------------------------------------------------------
# A batched authorize/complete item gets the spans its unary RPC would have had: a CLIENT span
# around the caller's wait and a SERVER span, its child, around the item's decision. The
# context travels in the item's own `trace_context` (one RPC carries many callers' items).

_CODE_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}


@contextmanager
def batch_item_client_span(active: Tracer, method: str, carrier: MutableMapping[str, str]) -> Iterator[Span]:
    """The CLIENT span of one batched item, current while its caller waits; its context is
    written to `carrier` (the item's `trace_context`)."""
    with active.start_as_current_span(
        method.lstrip("/"), kind=SpanKind.CLIENT, attributes=_rpc_attributes(method), record_exception=False
    ) as span:
        propagate.inject(carrier)
        yield span


@contextmanager
def batch_item_server_span(active: Tracer, method: str, carrier: Mapping[str, str]) -> Iterator[Span]:
    """The SERVER span of one batched item, child of the caller's span in `carrier`, current
    while the item is decided (so its audit rows carry the trace id)."""
    with active.start_as_current_span(
        method.lstrip("/"),
        context=_parent(carrier.items()),
        kind=SpanKind.SERVER,
        attributes=_rpc_attributes(method),
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        yield span


def set_item_code(span: Span, code: int) -> None:
    """Records a batched item's outcome (a google.rpc code, 0 for OK) as its unary RPC would."""
    span.set_attribute("rpc.grpc.status_code", code)
    if code != 0:
        span.set_status(Status(StatusCode.ERROR, _CODE_NAMES.get(code, "UNKNOWN")))
