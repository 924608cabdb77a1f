"""Conditions decide from data files (tests/data/condition_cases.yaml), compiled once per
policy version; and expressions are type-checked and bounded before they are ever stored."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
import yaml

from policy_service.identity.principal import Principal
from policy_service.permissions.condition_rules import CompiledPolicy, compile_policy, decide
from policy_service.permissions.conditions import Condition, ConditionError
from policy_service.permissions.resolver import Effective

CASES: list[dict[str, Any]] = yaml.safe_load((Path(__file__).parents[2] / "data" / "condition_cases.yaml").read_text())


def principal(role: str = "member") -> Principal:
    return Principal("api_key", "key-1", "org-1", "acme", "role-1", role, role == "admin", f"acme {role}")


def policy_of(case: dict[str, Any]) -> CompiledPolicy:
    document = {"org": "acme", "toolkits": {"acme/seo": {"publish_page": {"conditions": case["conditions"]}}}}
    return compile_policy(1, json.dumps(document))


def run(case: dict[str, Any], policy: CompiledPolicy) -> Any:
    effective = Effective(cast(Any, case["effective"]["permission"]), cast(Any, case["effective"]["source"]))
    now = datetime.fromisoformat(case["now"]) if "now" in case else datetime(2026, 11, 25, 10, tzinfo=UTC)
    return decide(
        policy,
        principal(case.get("role", "member")),
        "acme/seo",
        "publish_page",
        case["args"],
        effective,
        consumer=case.get("consumer", False),
        now=now,
    )


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_condition_cases(case: dict[str, Any]) -> None:
    decision = run(case, policy_of(case))
    assert (decision.permission, decision.rule) == (case["expect"]["permission"], case["expect"]["rule"])
    assert case["expect"].get("error", "") in decision.error
    assert bool(decision.error) == ("error" in case["expect"])


def test_other_tools_are_untouched() -> None:
    policy = policy_of(CASES[0])
    decision = decide(
        policy,
        principal(),
        "acme/seo",
        "list_pages",
        {},
        Effective("needs_approval", "tool_default"),
        consumer=False,
        now=datetime.now(UTC),
    )
    assert (decision.permission, decision.rule) == ("needs_approval", "")


@pytest.mark.parametrize(
    ("source", "why"),
    [
        ("args.slug", "must be a bool"),
        ("nope == 1", "undeclared reference to 'nope'"),
        ("args.slug.startsWith(1)", "no matching overload"),
        ("principal.role + 1 == 2", "no matching overload"),
        ("1 +", "Syntax error"),
        ("args.a.all(x, args.b.exists(y, x == y))", "at most 1 comprehension"),
        ("true || " * 200 + "true", "at most 1000 characters"),
    ],
)
def test_bad_expressions_are_refused_before_storage(source: str, why: str) -> None:
    with pytest.raises(ConditionError, match=why):
        Condition(source)


def test_a_stored_expression_that_no_longer_compiles_blocks_its_tool() -> None:
    document = {
        "org": "acme",
        "toolkits": {"acme/seo": {"publish_page": {"conditions": [{"when": "nope", "permission": "always_allow"}]}}},
    }
    policy = compile_policy(7, json.dumps(document))
    decision = decide(
        policy,
        principal(),
        "acme/seo",
        "publish_page",
        {},
        Effective("always_allow", "tool_default"),
        consumer=False,
        now=datetime.now(UTC),
    )
    assert decision.permission == "blocked" and "policy v7" in decision.error
