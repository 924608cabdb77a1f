"""Which OTEL_* settings turn tracing on, and what a switched-off tracer costs."""

from __future__ import annotations

import asyncio

import pytest

from mcp_front.observability.tracing import asgi_middleware, traced, with_trace_context
from policy_service.observability import tracing


@pytest.mark.parametrize(
    ("env", "wanted"),
    [
        ({}, []),
        ({"OTEL_SERVICE_NAME": "gw"}, []),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, ["otlp"]),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, ["otlp"]),
        ({"OTEL_TRACES_EXPORTER": "console"}, ["console"]),
        ({"OTEL_TRACES_EXPORTER": "otlp,console"}, ["otlp", "console"]),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, []),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, []),
    ],
)
def test_tracing_is_off_unless_an_exporter_is_configured(env: dict[str, str], wanted: list[str]) -> None:
    assert tracing._wanted_exporters(env) == wanted


def test_configure_without_otel_settings_stays_off() -> None:
    assert tracing.configure("monomcp-test", {}) is None
    assert tracing.tracer() is None


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"OTEL_TRACES_EXPORTER": "jaeger"}, "OTEL_TRACES_EXPORTER='jaeger'"),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, "http/json"),
    ],
)
def test_an_unsupported_exporter_is_a_clear_error(env: dict[str, str], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        tracing._exporter(env["OTEL_TRACES_EXPORTER"], env)


def test_the_otlp_protocol_follows_the_standard_variables() -> None:
    grpc_exporter = tracing._exporter("otlp", {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
    http_exporter = tracing._exporter("otlp", {})
    assert "grpc" in type(grpc_exporter).__module__
    assert "http" in type(http_exporter).__module__
    grpc_exporter.shutdown()
    http_exporter.shutdown()


async def test_off_adds_no_layer_no_frame_and_no_header() -> None:
    async def app(scope: object, receive: object, send: object) -> None:
        return None

    assert asgi_middleware(app) is app
    headers = {"authorization": "Bearer x"}
    assert with_trace_context(headers) is headers

    async def step(x: int) -> int:
        return x + 1

    running = traced("step")(step)(1)
    assert running.cr_code is step.__code__  # type: ignore[attr-defined]  # the step itself, not a wrapper
    assert await running == 2
    assert list(await asyncio.gather(traced("step")(step)(2))) == [3]
