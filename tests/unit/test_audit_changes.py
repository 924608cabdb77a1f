"""How a stored before/after reads: field by field, and in one word."""

from __future__ import annotations

import json

from policy_service.audit_changes import ABSENT, change_of, field_changes, summary


def test_only_admin_rows_with_a_before_are_changes() -> None:
    assert change_of("tools/call", '{"before": null}') is None
    assert change_of("admin/CreateApiKey", "") is None
    assert change_of("admin/CreateApiKey", '{"before": nu…[truncated]') is None
    assert change_of("admin/CreateApiKey", '{"before": null, "after": {"id": "k"}}') == {
        "before": None,
        "after": {"id": "k"},
    }


def test_fields_line_up_and_only_changed_ones_are_marked() -> None:
    change = {"before": {"role": "member", "disabled": False}, "after": {"role": "admin", "disabled": False}}
    lines = {c.field: c for c in field_changes(change)}
    assert (lines["role"].before, lines["role"].after, lines["role"].changed) == ("member", "admin", True)
    assert not lines["disabled"].changed
    assert summary(change) == "changed: role"


def test_created_removed_and_unfinished() -> None:
    assert summary({"before": None, "after": {"id": "k"}}) == "created"
    assert summary({"before": {"id": "k"}, "after": None}) == "removed"
    refused = {"before": {"permission": "always_allow"}}
    assert summary(refused) == "not done (before only)"
    assert [(c.before, c.after, c.changed) for c in field_changes(refused)] == [("always_allow", "always_allow", False)]
    created = field_changes(json.loads('{"before": null, "after": {"headers": {"A": "[REDACTED]"}}}'))
    assert (created[0].before, created[0].after) == (ABSENT, '{"A": "[REDACTED]"}')
