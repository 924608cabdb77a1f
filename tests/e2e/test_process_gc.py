"""Both server processes, as `monomcp serve` starts them, keep Python's collector out of the
call path: their startup objects are frozen (a full collection no longer walks them: 60-80 ms
that stalled every caller at once, ~3 ms now) and young collections are rare
(docs/adr/0052-both-processes-tune-the-collector.md). Read from each process's own
Prometheus metrics."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from policy_service.storage.migrate import upgrade_async
from tests.conftest import JWT_SECRET, OPERATOR
from tests.support.counting_upstream import RECORD, CountingUpstream
from tests.support.fault_load import OK, Ledger, raw_call, warm_up
from tests.support.fault_stack import Stack, process_env, running_stack
from tests.support.servers import free_port

CALLS = 2_000
CONCURRENCY = 16
_COLLECTIONS = re.compile(r'^python_gc_collections_total\{generation="(\d)"\} ([0-9.e+]+)$', re.MULTILINE)
_FROZEN = re.compile(r"^monomcp_gc_frozen_objects ([0-9.e+]+)$", re.MULTILINE)


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[tuple[Stack, str]]:
    database_url = f"sqlite+aiosqlite:///{tmp_path}/gc.db"
    await upgrade_async(database_url)
    policy_metrics = f"127.0.0.1:{free_port()}"
    env = {
        **process_env(database_url, OPERATOR, JWT_SECRET, digest_seconds=3600),
        "MONOMCP_POLICY_METRICS_LISTEN": policy_metrics,
        "MONOMCP_RATE_LIMIT_PER_SECOND": "0",
    }
    async with running_stack(database_url, CountingUpstream(), env, tmp_path) as gateway:
        yield gateway, policy_metrics


async def _collector(http: httpx.AsyncClient, url: str) -> tuple[float, dict[int, float]]:
    """(objects frozen, collections by generation) as the process reports them."""
    text = (await http.get(url)).text
    counts = {int(generation): float(value) for generation, value in _COLLECTIONS.findall(text)}
    frozen = _FROZEN.findall(text)
    assert set(counts) == {0, 1, 2} and frozen, f"no collector series at {url}"
    return float(frozen[0]), counts


async def test_neither_process_collects_much_while_it_serves_calls(stack: tuple[Stack, str]) -> None:
    gateway, policy_metrics = stack
    target = gateway.target
    await warm_up(target, Ledger())
    scrapes = {"front": f"http://{gateway.front.address}/metrics", "policy": f"http://{policy_metrics}/metrics"}
    async with httpx.AsyncClient(timeout=30) as http:
        before = {name: await _collector(http, url) for name, url in scrapes.items()}
        queue = iter(range(CALLS))
        outcomes: list[str] = []

        async def client() -> None:
            for i in queue:
                outcomes.append((await raw_call(http, target, RECORD, f"gc-{i:05d}")).kind)

        await asyncio.gather(*(client() for _ in range(CONCURRENCY)))
        after = {name: await _collector(http, url) for name, url in scrapes.items()}
    assert outcomes.count(OK) == CALLS
    for name in scrapes:
        frozen, collections = after[name]
        assert frozen > 10_000, f"{name}: only {frozen:g} startup objects frozen"
        # Python's default threshold (700 net allocations) made ~140 young collections in
        # these calls in the front; raised, a handful.
        young = collections[0] - before[name][1][0]
        assert young < 20, f"{name}: {young:g} young collections in {CALLS} calls"
        assert collections[2] == before[name][1][2], f"{name}: a full collection while serving"
