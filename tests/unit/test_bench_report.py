"""`make bench`'s report states, for every c=32 row, gateway p99 over direct p99 against the ≤3× target,
and for the SDK rows the throughput ratio the cores allow at the CPU per call measured."""

from __future__ import annotations

from typing import Any

from bench import report
from bench.loadgen import Result


def _row(c: int, direct_ms: float, gateway_ms: float, upstream: str = "sdk") -> dict[str, Any]:
    cpu = dict.fromkeys(("front", "policy", "postgres", "upstream", "loadgen"), 0.1)
    return {
        "era": "2025-11-25",
        "upstream": upstream,
        "c": c,
        "direct": Result(requests=100, seconds=1.0, latencies_ms=[direct_ms] * 100),
        "gateway": Result(requests=100, seconds=1.0, latencies_ms=[gateway_ms] * 100),
        "cpu": cpu,
    }


def test_each_c32_row_gets_its_p99_ratio_and_verdict() -> None:
    lines = report.p99_check([_row(1, 1.0, 9.0), _row(32, 10.0, 25.0, "raw"), _row(32, 10.0, 31.0)])
    assert lines == [
        "- p99 at c=32, 2025-11-25 raw: gateway 25.00 ms / direct 10.00 ms = 2.50× (meets ≤3× direct)",
        "- p99 at c=32, 2025-11-25 sdk: gateway 31.00 ms / direct 10.00 ms = 3.10× (MISSES ≤3× direct)",
    ]


def test_the_rendered_report_carries_the_check_under_its_table() -> None:
    result = {
        "label": "Postgres",
        "rows": [_row(32, 4.0, 8.0)],
        "first_call_s": 1.0,
        "rss": {"front": 1.0, "policy": 1.0, "sdk": 1.0, "raw": 1.0},
        "authorize": report.PolicyRun(Result(requests=10, seconds=1.0, latencies_ms=[1.0] * 10), 0.2),
        "authorize_complete": report.PolicyRun(Result(requests=10, seconds=1.0, latencies_ms=[1.0] * 10), 0.3),
    }
    text = report.render([result], 2.0, 2, "")
    table_end = text.index("| 2025-11-25 | sdk | 32 |")
    assert text.index("= 2.00× (meets ≤3× direct)") > table_end


def test_c32_sdk_rows_get_the_ratio_the_cores_allow() -> None:
    direct = _row(32, 1.0, 1.0)
    direct["direct"] = Result(requests=2000, seconds=1.0, latencies_ms=[1.0] * 10)  # 2,000 calls/s direct
    lines = report.ceiling_check([_row(1, 1.0, 9.0), _row(32, 1.0, 1.0, "raw"), direct], cores=2)
    assert lines == [
        "- CPU bound at c=32, 2025-11-25 sdk: 0.50 ms of CPU per gateway call in all; 2 cores allow at most "
        "4,000 calls/s = 2.00× direct; 0.70× direct leaves 1.43 ms per call for every process together "
        "(upstream 0.10 ms of it)"
    ]


def test_c1_sdk_rows_are_set_against_the_round_trips_floor() -> None:
    from bench.floor import Floor, RoundTrip

    floor = Floor(
        tcp=RoundTrip(client_ms=0.02, server_ms=0.03, per_second=1.0),
        grpc=RoundTrip(client_ms=0.1, server_ms=0.12, per_second=1.0),
        postgres=RoundTrip(client_ms=0.05, server_ms=0.04, per_second=1.0),
    )
    row = _row(1, 1.0, 2.0)
    row["cpu"] = {**row["cpu"], "front": 0.5, "policy": 0.6}
    lines = report.floor_check([row, _row(1, 1.0, 2.0, "raw"), _row(32, 1.0, 2.0)], floor, durable=True)
    assert lines == [
        "- c=1 floor on this box (bench/floor.py, CPU per round trip alone): front 0.25 ms (HTTP served 0.030 "
        "+ upstream 0.020 + 2 CallStream items 0.200), policy 0.34 ms (2 CallStream items served 0.240 "
        "+ 2 commits 0.100); budgets 0.45 / 0.3 ms",
        "- c=1, 2025-11-25 sdk: front 0.50 ms = floor + 0.25 ms of its own; policy 0.60 ms = floor + 0.26 ms",
    ]
    assert "commits" not in report.floor_check([row], floor, durable=False)[0]  # SQLite commits in-process


def test_the_floor_probe_measures_both_sides_of_each_round_trip() -> None:
    """bench/floor.py between real processes: every figure positive (a probe that measured nothing
    would report zeros and the floor line would say the gateway's own work is all of it)."""
    from bench import floor

    measured = floor.measure(postgres=False)
    for trip in (measured.tcp, measured.grpc):
        assert trip.client_ms > 0 and trip.server_ms > 0 and trip.per_second > 0
    assert measured.postgres is None
