"""The front's permission vocabulary has one source: `Permission` and `permission_of` from
the policy client (STYLE.md: one shape per concept). Numbers become names only there."""

from __future__ import annotations

import ast

import pydantic
import pytest

from mcp_front.admin.console_settings import CHOICES, INHERIT, WORDS
from mcp_front.admin.rest import RuleBody
from policy_service._generated.monomcp.policy.v1 import types_pb2
from policy_service.client import PERMISSIONS, Permission, permission_of
from tests.unit.mcp_front.test_policy_wire_boundary import FRONT

_MAPPINGS = {"PERMISSIONS", "PERMISSION_NAMES"}


def test_every_wire_permission_has_a_name_and_unset_has_none() -> None:
    numbers = [v.number for v in types_pb2.Permission.DESCRIPTOR.values if v.number]
    assert sorted(PERMISSIONS[permission_of(n) or ""] for n in numbers) == sorted(numbers)
    assert {permission_of(n) for n in numbers} == set(Permission)
    assert permission_of(types_pb2.PERMISSION_UNSPECIFIED) is None and permission_of(99) is None


def test_pages_and_api_offer_exactly_the_permissions() -> None:
    assert CHOICES == [INHERIT, "always_allow", "needs_approval", "blocked"]
    assert WORDS == {
        "inherit": "inherit",
        "always_allow": "always allow",
        "needs_approval": "needs approval",
        "blocked": "blocked",
    }
    for permission in Permission:
        assert RuleBody(toolkit="acme/tools", tool="echo", permission=permission.value).permission == permission
    with pytest.raises(pydantic.ValidationError):
        RuleBody(toolkit="acme/tools", tool="echo", permission=INHERIT)
    assert Permission.NEEDS_APPROVAL.words == "needs approval"


def test_no_front_module_maps_permission_numbers_itself() -> None:
    offenders = sorted(
        str(path.relative_to(FRONT.parent))
        for path in FRONT.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if (isinstance(node, ast.Name) and node.id in _MAPPINGS)
        or (isinstance(node, ast.ImportFrom) and any(a.name in _MAPPINGS for a in node.names))
    )
    assert offenders == [], "read permissions with policy_service.client.permission_of"
