"""Prometheus metrics of the front, served at /metrics: requests by route, method and
status, latency, requests in flight, and tool calls by org, toolkit, decision and status.

Label values that come from callers are bounded: routes are a fixed set, and at most
`max_toolkits` (org, toolkit) pairs get their own series; the rest count as "other", so a
caller cannot grow the scrape without limit.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_METHODS = frozenset({"GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS"})
OTHER = "other"
CONTENT_TYPE = CONTENT_TYPE_LATEST


def route_of(path: str) -> str:
    """A fixed label for a path (never the path itself: that would be unbounded)."""
    if path.endswith("/mcp") or path.endswith("/mcp/"):
        return "mcp"
    if path.startswith("/api/"):
        return "api"
    if path.startswith("/console"):
        return "console"
    if path in ("/healthz", "/readyz", "/metrics"):
        return path.lstrip("/")
    return OTHER


class FrontMetrics:
    def __init__(self, max_toolkits: int = 200) -> None:
        self.registry = CollectorRegistry()
        self._toolkits: set[tuple[str, str]] = set()
        self._max_toolkits = max_toolkits
        # Labelled series by their label values: `labels()` takes a lock and builds a key per call.
        self._request_series: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._tool_series: dict[tuple[str, ...], Any] = {}
        self.requests = Counter(
            "monomcp_front_requests_total",
            "HTTP requests by route, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "monomcp_front_request_seconds",
            "HTTP request latency by route.",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge("monomcp_front_requests_in_flight", "Requests being served.", registry=self.registry)
        self.tool_calls = Counter(
            "monomcp_front_tool_calls_total",
            "tools/call requests by toolkit, decision and outcome.",
            ["org", "toolkit", "decision", "status"],
            registry=self.registry,
        )
        self.upstream_seconds = Histogram(
            "monomcp_front_upstream_seconds",
            "Time the toolkit backend took to answer a tool call.",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.upstream_errors = Counter(
            "monomcp_front_upstream_errors_total",
            "Tool calls the backend failed or did not answer in time.",
            ["kind"],
            registry=self.registry,
        )

    def observe_request(self, path: str, method: str, status: int, seconds: float) -> None:
        route = route_of(path)
        key = (route, method if method in _METHODS else OTHER, status)
        found = self._request_series.get(key)
        if found is None:  # a bounded set: fixed routes and methods, HTTP statuses
            found = self._request_series[key] = (
                self.requests.labels(key[0], key[1], str(status)),
                self.request_seconds.labels(route),
            )
        found[0].inc()
        found[1].observe(seconds)

    def toolkit_labels(self, org: str, toolkit: str) -> tuple[str, str]:
        key = (org, toolkit)
        if key in self._toolkits:
            return key
        if len(self._toolkits) < self._max_toolkits:
            self._toolkits.add(key)
            return key
        return OTHER, OTHER

    def observe_tool_call(self, org: str, toolkit: str, decision: str, status: str) -> None:
        key = (*self.toolkit_labels(org, toolkit), decision, status)
        found = self._tool_series.get(key)
        if found is None:  # bounded by toolkit_labels and the fixed decisions and statuses
            found = self._tool_series[key] = self.tool_calls.labels(*key)
        found.inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
