"""The process-level series every server process exports beside its own: CPU, memory and
file descriptors (`process_*`), collector runs (`python_gc_*`), and how many startup objects
are frozen out of every collection (`monomcp_gc_frozen_objects`; 0 means a full collection
walks the whole startup heap again, a 60-80 ms stall: docs/adr/0052)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

from prometheus_client import GC_COLLECTOR, CollectorRegistry, ProcessCollector
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


class _FrozenObjects(Collector):
    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "monomcp_gc_frozen_objects",
            "Startup objects frozen out of Python's collections (gc.freeze).",
            value=gc.get_freeze_count(),
        )


def register_process_metrics(registry: CollectorRegistry) -> None:
    ProcessCollector(registry=registry)
    registry.register(GC_COLLECTOR)
    registry.register(_FrozenObjects())
