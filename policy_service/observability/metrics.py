"""Prometheus metrics of the policy service: RPC latency by method and code, decisions,
pending approvals, the audit writer's queue depth and commit latency.

One registry per process object (no global state), exposed on its own listener
(MONOMCP_POLICY_METRICS_LISTEN) because the gRPC port speaks only gRPC.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from policy_service.observability.process_metrics import register_process_metrics

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class PolicyMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        register_process_metrics(self.registry)
        self.rpc_seconds = Histogram(
            "monomcp_policy_rpc_seconds",
            "Policy service RPC latency by method and status code.",
            ["method", "code"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.decisions = Counter(
            "monomcp_policy_decisions_total",
            "AuthorizeToolCall decisions.",
            ["decision"],
            registry=self.registry,
        )
        self.approvals_pending = Gauge(
            "monomcp_policy_approvals_pending", "Approvals waiting for an admin.", registry=self.registry
        )
        self.audit_queue_depth = Gauge(
            "monomcp_policy_audit_queue_depth", "Audit rows waiting for the group commit.", registry=self.registry
        )
        self.audit_commit_seconds = Histogram(
            "monomcp_policy_audit_commit_seconds",
            "Audit group-commit latency (one transaction per batch).",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.audit_batch_failures = Counter(
            "monomcp_policy_audit_batch_failures_total",
            "Audit batches that failed and were retried row by row.",
            registry=self.registry,
        )
        self.database_up = Gauge(
            "monomcp_policy_database_up", "1 while the database takes writes.", registry=self.registry
        )

    def serve(self, address: str) -> Any:
        """Start the scrape listener (HOST:PORT); returns the server so tests can stop it."""
        host, port = address.rsplit(":", 1)
        server, _thread = start_http_server(int(port), addr=host, registry=self.registry)
        return server


def _method(details: grpc.HandlerCallDetails) -> str:
    full: str = details.method or ""
    return full.rsplit("/", 1)[-1] or "unknown"


class MetricsInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Times every unary RPC (streams are counted when they end)."""

    def __init__(self, metrics: PolicyMetrics) -> None:
        self._metrics = metrics

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        inner = handler.unary_unary
        method = _method(handler_call_details)
        histogram = self._metrics.rpc_seconds

        async def timed(request: Any, context: grpc.aio.ServicerContext) -> Any:
            started = time.perf_counter()
            code = "OK"
            try:
                return await inner(request, context)
            except BaseException:
                code = context.code().name if context.code() is not None else "UNKNOWN"
                raise
            finally:
                histogram.labels(method, code).observe(time.perf_counter() - started)

        return grpc.unary_unary_rpc_method_handler(
            timed,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
