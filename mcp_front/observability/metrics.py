"""Prometheus metrics of the front, served at /metrics: requests by route, method and
status, latency, requests in flight, and tool calls by org, toolkit, decision and status.

Label values that come from callers are bounded: routes are a fixed set, and at most
`max_toolkits` (org, toolkit) pairs get their own series; the rest count as "other", so a
caller cannot grow the scrape without limit.

The series are plain numbers read by a collector at scrape time, not prometheus_client's
metric objects: those take a lock and check their state on every update, four to eight
times per request (~30 µs of the front's CPU per call at c=1, docs/adr/0033). The front
updates them from its one event-loop thread only; the scrape reads them in that thread too.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from policy_service.observability.process_metrics import register_process_metrics

if TYPE_CHECKING:
    from mcp_front.backends.answer_budget import AnswerBudget

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


class Histogram:
    """Bucket counts (not cumulative) and a sum; the collector makes them cumulative."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(_LATENCY_BUCKETS) + 1)  # the last is +Inf
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(_LATENCY_BUCKETS, seconds)] += 1
        self.total += seconds

    def family_sample(self) -> tuple[list[tuple[str, float]], float]:
        buckets, running = [], 0
        for bound, count in zip((*_LATENCY_BUCKETS, float("inf")), self.counts, strict=True):
            running += count
            buckets.append((floatToGoString(bound), float(running)))  # type: ignore[no-untyped-call]
        return buckets, self.total


class Counters:
    """Counts by label values, with `labels(...).inc()` for callers written for prometheus_client."""

    def __init__(self) -> None:
        self.values: dict[tuple[str, ...], float] = {}

    def inc(self, key: tuple[str, ...], amount: float = 1.0) -> None:
        self.values[key] = self.values.get(key, 0.0) + amount

    def labels(self, *key: str) -> _Bound:
        return _Bound(self, key)


class _Bound:
    __slots__ = ("_counters", "_key")

    def __init__(self, counters: Counters, key: tuple[str, ...]) -> None:
        self._counters, self._key = counters, key

    def inc(self, amount: float = 1.0) -> None:
        self._counters.inc(self._key, amount)


class FrontMetrics(Collector):
    def __init__(self, max_toolkits: int = 200) -> None:
        self.registry = CollectorRegistry()
        self._toolkits: set[tuple[str, str]] = set()
        self._max_toolkits = max_toolkits
        self.requests = Counters()  # (route, method, status)
        self._request_seconds: dict[str, Histogram] = {}  # by route
        self.in_flight = 0
        self.tool_calls = Counters()  # (org, toolkit, decision, status)
        self.upstream_seconds = Histogram()
        self.upstream_errors = Counters()  # (kind,)
        self.answers: AnswerBudget | None = None  # the process's answer budget (ADR 50), read at scrape
        self.registry.register(self)
        register_process_metrics(self.registry)

    def observe_request(self, path: str, method: str, status: int, seconds: float) -> None:
        route = route_of(path)
        self.requests.inc((route, method if method in _METHODS else OTHER, str(status)))
        histogram = self._request_seconds.get(route)
        if histogram is None:  # a fixed set of routes
            histogram = self._request_seconds[route] = Histogram()
        histogram.observe(seconds)

    def toolkit_labels(self, org: str, toolkit: str) -> tuple[str, str]:
        key = (org, toolkit)
        if key in self._toolkits:
            return key
        if len(self._toolkits) < self._max_toolkits:
            self._toolkits.add(key)
            return key
        return OTHER, OTHER

    def observe_tool_call(self, org: str, toolkit: str, decision: str, status: str) -> None:
        # Bounded by toolkit_labels and the fixed decisions and statuses.
        self.tool_calls.inc((*self.toolkit_labels(org, toolkit), decision, status))

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "monomcp_front_requests", "HTTP requests by route, method and status.", labels=["route", "method", "status"]
        )
        for key, value in list(self.requests.values.items()):
            requests.add_metric(list(key), value)
        yield requests
        seconds = HistogramMetricFamily(
            "monomcp_front_request_seconds", "HTTP request latency by route.", labels=["route"]
        )
        for route, histogram in list(self._request_seconds.items()):
            seconds.add_metric([route], *histogram.family_sample())
        yield seconds
        yield GaugeMetricFamily("monomcp_front_requests_in_flight", "Requests being served.", value=self.in_flight)
        calls = CounterMetricFamily(
            "monomcp_front_tool_calls",
            "tools/call requests by toolkit, decision and outcome.",
            labels=["org", "toolkit", "decision", "status"],
        )
        for key, value in list(self.tool_calls.values.items()):
            calls.add_metric(list(key), value)
        yield calls
        upstream = HistogramMetricFamily(
            "monomcp_front_upstream_seconds", "Time the toolkit backend took to answer a tool call."
        )
        upstream.add_metric([], *self.upstream_seconds.family_sample())
        yield upstream
        errors = CounterMetricFamily(
            "monomcp_front_upstream_errors", "Tool calls the backend failed or did not answer in time.", labels=["kind"]
        )
        for key, value in list(self.upstream_errors.values.items()):
            errors.add_metric(list(key), value)
        yield errors
        if self.answers is not None:
            held = "Bytes of backend answers this front holds now (MONOMCP_ANSWER_BUDGET_BYTES bounds the large ones)."
            yield GaugeMetricFamily("monomcp_front_answer_bytes_held", held, value=self.answers.in_use)
            refused = "Answers not read because the answer budget had no room for them (their tools ran)."
            yield CounterMetricFamily("monomcp_front_answers_refused", refused, value=self.answers.refused)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
