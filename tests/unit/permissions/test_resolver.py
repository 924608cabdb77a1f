from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from policy_service.permissions.resolver import can_see_toolkit, effective_permission

CASES: list[dict[str, Any]] = yaml.safe_load((Path(__file__).parents[2] / "data" / "permission_cases.yaml").read_text())
PERMS = st.sampled_from(["always_allow", "needs_approval", "blocked"])


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_precedence_cases(case: dict[str, Any]) -> None:
    result = effective_permission(
        case.get("role_override"), case.get("org_default"), case["tool_default"], consumer=case.get("consumer", False)
    )
    assert (result.permission, result.source) == (case["expect"]["permission"], case["expect"]["source"])


@given(override=st.none() | PERMS, org_default=st.none() | PERMS, tool_default=PERMS, consumer=st.booleans())
def test_most_specific_rule_wins_under_the_owners_block(
    override: Any, org_default: Any, tool_default: Any, consumer: bool
) -> None:
    result = effective_permission(override, org_default, tool_default, consumer=consumer)
    expected = override if override is not None else org_default if org_default is not None else tool_default
    if consumer and tool_default == "blocked":
        expected = "blocked"  # the owner's block is a ceiling for every other org
    assert result.permission == expected


@given(visibility=st.sampled_from(["public", "private"]), caller=st.sampled_from(["org-a", "org-b", ""]))
def test_private_toolkits_are_visible_only_to_their_org(visibility: str, caller: str) -> None:
    """The operator ('' org) sees public toolkits only, like any caller of another org."""
    visible = can_see_toolkit(visibility, "org-a", caller)
    assert visible == (visibility == "public" or caller == "org-a")
    assert not can_see_toolkit("private", "", "")  # no org never matches no org
