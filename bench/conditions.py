"""CPU per decision of policy conditions (ADR 0021), from the same YAML cases the tests use:
`uv run python -m bench.conditions`. Prints microseconds per decision with and without
conditions, to compare with the call path's per-call CPU in docs/benchmarks.md."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import yaml

from policy_service.identity.principal import Principal
from policy_service.permissions.condition_rules import EMPTY, CompiledPolicy, compile_policy, decide
from policy_service.permissions.resolver import Effective

CASES = Path(__file__).resolve().parent.parent / "tests" / "data" / "condition_cases.yaml"
ROUNDS = 20_000


def _per_decision_us(policy: CompiledPolicy, case: dict[str, Any]) -> float:
    principal = Principal("api_key", "k", "o", "acme", "r", case.get("role", "member"), False, "bench")
    effective = Effective(cast(Any, case["effective"]["permission"]), cast(Any, case["effective"]["source"]))
    now = datetime.now(UTC)
    consumer = bool(case.get("consumer", False))
    start = time.perf_counter()
    for _ in range(ROUNDS):
        decide(policy, principal, "acme/seo", "publish_page", case["args"], effective, consumer=consumer, now=now)
    return (time.perf_counter() - start) / ROUNDS * 1e6


def main() -> None:
    cases: list[dict[str, Any]] = yaml.safe_load(CASES.read_text())
    print(f"{'case':70} {'no policy':>10} {'conditions':>11}  (µs per decision)")
    for case in cases:
        document = {"org": "acme", "toolkits": {"acme/seo": {"publish_page": {"conditions": case["conditions"]}}}}
        compiled = compile_policy(1, json.dumps(document))
        print(f"{case['name'][:70]:70} {_per_decision_us(EMPTY, case):10.2f} {_per_decision_us(compiled, case):11.2f}")


if __name__ == "__main__":
    main()
