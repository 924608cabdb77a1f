"""OpenTelemetry traces through the real stack: a tool call is one trace from the front's
HTTP span through the policy service's RPC spans (context carried in gRPC metadata) to the
toolkit backend (`traceparent` header), and its audit rows and log line name that trace."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from policy_service import errors
from policy_service.config import Settings
from policy_service.observability import tracing
from policy_service.storage.database import create_engine
from policy_service.storage.models import AuditRequestLog
from tests.conftest import World, mcp_client
from tests.support.servers import serve_asgi
from tests.support.upstream import Upstream

AUTHORIZE = "monomcp.policy.v1.PolicyService/AuthorizeToolCall"
COMPLETE = "monomcp.policy.v1.PolicyService/CompleteToolCall"


class _HeaderLog:
    """Wraps the backend: keeps the `traceparent` header of every request it receives."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.traceparents: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            if b"traceparent" in headers:
                self.traceparents.append(headers[b"traceparent"].decode())
        await self.app(scope, receive, send)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on for this test, with every span kept in memory (set up before the servers)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.install(provider)
    try:
        yield exporter
    finally:
        tracing.uninstall()
        provider.shutdown()


@pytest.fixture
def backend_headers() -> list[_HeaderLog]:
    return []


@pytest.fixture
async def upstream(backend_headers: list[_HeaderLog]) -> AsyncIterator[tuple[Upstream, str]]:
    backend = Upstream()
    logged = _HeaderLog(backend.app())
    backend_headers.append(logged)
    async with serve_asgi(logged) as base:
        yield backend, f"{base}/mcp"


class _Lines(logging.Handler):
    """The front's log lines, passed through the same filter `configure` installs."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.addFilter(tracing.TraceIdFilter())

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _hex(value: int, width: int = 32) -> str:
    return format(value, f"0{width}x")


def _one(found: list[ReadableSpan], name: str) -> ReadableSpan:
    named = [s for s in found if s.name == name]
    assert len(named) == 1, (name, [s.name for s in found])
    return named[0]


async def _audit_rows(settings: Settings) -> list[AuditRequestLog]:
    engine = create_engine(settings.database_url)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(select(AuditRequestLog).where(AuditRequestLog.tool == "echo"))).all()
    finally:
        await engine.dispose()
    return rows  # type: ignore[return-value]


async def test_a_tool_call_is_one_trace_across_front_policy_and_backend(
    spans: InMemorySpanExporter, world: World, front: str, settings: Settings, backend_headers: list[_HeaderLog]
) -> None:
    lines = _Lines()
    front_log = logging.getLogger("monomcp.front")
    level = front_log.level
    front_log.addHandler(lines)
    front_log.setLevel(logging.DEBUG)
    try:
        async with mcp_client(f"{front}/acme/tools/mcp", world.keys["acme:member"]) as client:
            spans.clear()
            result = await client.call_tool("echo", {"text": "hi"})
            assert not result.is_error
            first = spans.get_finished_spans()
            spans.clear()
            await client.call_tool("echo", {"text": "again"})
            second = spans.get_finished_spans()
    finally:
        front_log.removeHandler(lines)
        front_log.setLevel(level)

    execute = _one(list(first), "monomcp.execute")
    trace_id = execute.context.trace_id
    call_spans = [s for s in first if s.context.trace_id == trace_id]
    names = {s.name for s in call_spans}
    assert {"POST mcp", "monomcp.authorize", "monomcp.execute", "monomcp.complete"} <= names
    # Each policy RPC appears twice in the trace: the front's client span and the policy
    # service's server span, whose parent is that client span (context sent in gRPC metadata).
    for rpc in (AUTHORIZE, COMPLETE):
        client_span = next(s for s in call_spans if s.name == rpc and s.kind == SpanKind.CLIENT)
        server_span = next(s for s in call_spans if s.name == rpc and s.kind == SpanKind.SERVER)
        assert server_span.parent is not None
        assert server_span.parent.span_id == client_span.context.span_id
    root = _one(call_spans, "POST mcp")
    assert root.parent is None and root.kind == SpanKind.SERVER
    # The backend got the trace in its traceparent header (handshake and call), parented on
    # the execute span.
    sent = [h.split("-") for h in backend_headers[0].traceparents]
    assert {parent for _, trace, parent, _ in sent if trace == _hex(trace_id)} == {_hex(execute.context.span_id, 16)}

    # The next call is a trace of its own.
    assert _one(list(second), "monomcp.execute").context.trace_id != trace_id

    # The audit rows (the started row and its completion) and the request's log line name the trace.
    rows = await _audit_rows(settings)
    first_rows = [r for r in rows if r.trace_id == _hex(trace_id)]
    assert {r.status for r in first_rows} == {"started", "ok"}
    assert len({r.trace_id for r in rows}) == 2
    logged = [r for r in lines.records if r.getMessage().startswith("http method=POST")]
    assert _hex(trace_id) in {getattr(r, "trace_id", "") for r in logged}


async def test_batched_calls_each_keep_their_callers_trace(
    spans: InMemorySpanExporter, world: World, settings: Settings
) -> None:
    """Concurrent callers' items share one CallBatch RPC, yet each item's server span is the
    child of its own caller's client span, and its audit row names its caller's trace."""
    active = tracing.tracer()
    assert active is not None
    member = world.keys["acme:member"]

    async def authorize(key: str) -> tuple[int, str]:
        with active.start_as_current_span("caller") as caller:
            try:
                call_id = (await client.authorize_tool_call(key, "acme", "tools", "echo", "{}")).call_id
            except errors.Unauthenticated:
                call_id = ""
            return caller.get_span_context().trace_id, call_id

    async with world.service() as client:
        await client.authorize_tool_call(member, "acme", "tools", "echo", "{}")  # connected and warm
        spans.clear()
        callers = await asyncio.gather(*(authorize(member) for _ in range(5)), authorize("mmcp_not_a_real_key"))
    finished = spans.get_finished_spans()
    for trace_id, call_id in callers:
        in_trace = [s for s in finished if s.context.trace_id == trace_id]
        client_span = _one([s for s in in_trace if s.kind == SpanKind.CLIENT], AUTHORIZE)
        server_span = _one([s for s in in_trace if s.kind == SpanKind.SERVER], AUTHORIZE)
        assert server_span.parent is not None and server_span.parent.span_id == client_span.context.span_id
        failed = call_id == ""
        assert (client_span.status.status_code == StatusCode.ERROR) is failed
        assert (server_span.status.status_code == StatusCode.ERROR) is failed
    by_call = {r.call_id: r.trace_id for r in await _audit_rows(settings)}
    assert all(by_call[call_id] == _hex(trace_id) for trace_id, call_id in callers if call_id)


async def test_tracing_off_sends_nothing_and_records_no_trace(
    world: World, front: str, settings: Settings, backend_headers: list[_HeaderLog]
) -> None:
    assert tracing.tracer() is None
    assert tracing.client_interceptors() is None and tracing.server_interceptors() == []
    async with mcp_client(f"{front}/acme/tools/mcp", world.keys["acme:member"]) as client:
        assert not (await client.call_tool("echo", {"text": "hi"})).is_error
    assert backend_headers[0].traceparents == []
    assert {r.trace_id for r in await _audit_rows(settings)} == {""}


# --- The exporter the standard variables configure, against a local OTLP/HTTP receiver.


class _Collector:
    """A stand-in OTLP/HTTP collector: keeps (service.name, span name, trace id) per span."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, str, str]] = []
        self.app = Starlette(routes=[Route("/v1/traces", self._export, methods=["POST"])])

    async def _export(self, request: Request) -> Response:
        export = ExportTraceServiceRequest.FromString(await request.body())
        for resource_spans in export.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.append((attributes.get("service.name", ""), span.name, span.trace_id.hex()))
        return Response(ExportTraceServiceResponse().SerializeToString(), media_type="application/x-protobuf")


@pytest.fixture
async def collector(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[_Collector, object]]:
    """Tracing configured exactly as `monomcp serve` does, from OTEL_* variables."""
    received = _Collector()
    async with serve_asgi(received.app) as base:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", base)
        monkeypatch.setenv("OTEL_SERVICE_NAME", "gateway-under-test")
        provider = tracing.configure("monomcp-test", set_global=False)
        assert provider is not None
        try:
            yield received, provider
        finally:
            tracing.uninstall()
            tracing.remove_trace_ids_from_logs()
            await asyncio.to_thread(provider.shutdown)


async def test_otel_variables_export_each_call_as_one_trace_over_otlp(
    collector: tuple[_Collector, TracerProvider], world: World, front: str
) -> None:
    received, provider = collector
    async with mcp_client(f"{front}/acme/tools/mcp", world.keys["acme:member"]) as client:
        assert not (await client.call_tool("echo", {"text": "hi"})).is_error
    assert await asyncio.to_thread(provider.force_flush)  # the exporter posts from its own thread
    execute = [trace for _, name, trace in received.spans if name == "monomcp.execute"]
    assert len(execute) == 1
    in_trace = {(service, name) for service, name, trace in received.spans if trace == execute[0]}
    assert {("gateway-under-test", AUTHORIZE), ("gateway-under-test", "monomcp.complete")} <= in_trace
