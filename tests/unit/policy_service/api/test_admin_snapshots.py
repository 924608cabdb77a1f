"""The before/after kept for an admin action: private values become flags, never data."""

from __future__ import annotations

from policy_service.api.admin_snapshots import change


def test_a_private_value_becomes_a_changed_flag_and_is_dropped() -> None:
    before = {"email": "a@x.example", "_password": "digest-1"}
    after = {"email": "a@x.example", "_password": "digest-2"}
    kept = change(before, after, True)
    assert kept == {"before": {"email": "a@x.example"}, "after": {"email": "a@x.example", "password_changed": True}}
    assert "digest" not in str(kept)
    assert change(before, before, True)["after"]["password_changed"] is False


def test_an_unfinished_action_keeps_only_its_before() -> None:
    assert change({"permission": "blocked", "_password": "d"}, None, False) == {"before": {"permission": "blocked"}}


def test_created_and_removed_objects() -> None:
    assert change(None, {"id": "k", "_password": "d"}, True) == {"before": None, "after": {"id": "k"}}
    assert change({"id": "k"}, None, True) == {"before": {"id": "k"}, "after": None}
