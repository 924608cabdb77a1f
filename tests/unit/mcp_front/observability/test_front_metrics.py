"""The front's series are plain numbers read at scrape time (docs/adr/0033); what a scrape
shows is what prometheus_client's own metric objects showed for the same updates."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from mcp_front.observability.metrics import OTHER, FrontMetrics


def _samples(metrics: FrontMetrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = metrics.exposition().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_a_scrape_shows_counts_cumulative_buckets_and_the_requests_in_flight() -> None:
    metrics = FrontMetrics(max_toolkits=1)
    for seconds in (0.0004, 0.001, 0.003, 0.2, 50.0):
        metrics.observe_request("/acme/tools/mcp", "POST", 200, seconds)
    metrics.observe_request("/x", "BREW", 418, 0.01)
    metrics.observe_tool_call("acme", "tools", "allow", "ok")
    metrics.observe_tool_call("globex", "crm", "allow", "ok")  # past max_toolkits: "other"
    metrics.upstream_seconds.observe(0.02)
    metrics.upstream_errors.labels("timeout").inc()
    metrics.in_flight += 2
    samples = _samples(metrics)

    def value(name: str, **labels: str) -> float:
        return samples[(name, frozenset(labels.items()))]

    assert value("monomcp_front_requests_total", route="mcp", method="POST", status="200") == 5
    assert value("monomcp_front_requests_total", route=OTHER, method=OTHER, status="418") == 1
    assert value("monomcp_front_request_seconds_bucket", route="mcp", le="0.001") == 2  # le is inclusive
    assert value("monomcp_front_request_seconds_bucket", route="mcp", le="0.005") == 3
    assert value("monomcp_front_request_seconds_bucket", route="mcp", le="30.0") == 4
    assert value("monomcp_front_request_seconds_bucket", route="mcp", le="+Inf") == 5
    assert value("monomcp_front_request_seconds_count", route="mcp") == 5
    assert abs(value("monomcp_front_request_seconds_sum", route="mcp") - 50.2044) < 1e-9
    assert value("monomcp_front_requests_in_flight") == 2
    assert value("monomcp_front_tool_calls_total", org="acme", toolkit="tools", decision="allow", status="ok") == 1
    assert value("monomcp_front_tool_calls_total", org=OTHER, toolkit=OTHER, decision="allow", status="ok") == 1
    assert value("monomcp_front_upstream_seconds_bucket", le="0.025") == 1
    assert value("monomcp_front_upstream_seconds_count") == 1
    assert value("monomcp_front_upstream_errors_total", kind="timeout") == 1
    # The registry answers point queries as before (tests/e2e/test_replicas.py reads it so).
    assert metrics.registry.get_sample_value("monomcp_front_requests_in_flight") == 2
