"""Who may decide whose request: provably another person, or refused."""

from __future__ import annotations

import pytest

from policy_service.approvals.people import SAME_CREDENTIAL, SAME_PERSON, UNPROVABLE_ADMIN, approver_conflict
from policy_service.identity.principal import OPERATOR, Principal


def _admin(kind: str, ident: str) -> Principal:
    return Principal(kind, ident, "org-1", "acme", "role-admin", "admin", True, ident)


CASES = [
    # (requester kind, id, requester is admin, approver, expected)
    ("api_key", "k1", True, _admin("api_key", "k1"), SAME_CREDENTIAL),
    ("api_key", "k1", True, _admin("api_key", "k2"), UNPROVABLE_ADMIN),  # a second admin key of anyone
    ("api_key", "k1", True, _admin("user", "u1"), UNPROVABLE_ADMIN),  # the user may hold k1
    ("user", "u1", True, _admin("api_key", "k2"), UNPROVABLE_ADMIN),  # k2 may be u1's key
    ("user", "u1", True, _admin("user", "u1"), SAME_CREDENTIAL),  # any of u1's tokens
    ("user", "u1", True, _admin("user", "u2"), None),  # two signed-in people
    ("api_key", "k1", False, _admin("api_key", "k2"), None),  # a member's key, an admin decides
    ("user", "u3", False, _admin("api_key", "k2"), None),
    ("api_key", "k1", True, OPERATOR, None),  # the operator is outside every org
]


@pytest.mark.parametrize(("kind", "ident", "is_admin", "approver", "expected"), CASES)
def test_only_a_provably_different_person_decides(
    kind: str, ident: str, is_admin: bool, approver: Principal, expected: str | None
) -> None:
    assert approver_conflict(kind, ident, is_admin, approver) == expected


def _owned_key(ident: str, person: str) -> Principal:
    return Principal("api_key", ident, "org-1", "acme", "role-admin", "admin", True, ident, person_id=person)


PERSON_CASES = [
    # (requester kind, id, requester is admin, requester's person, approver, expected)
    ("api_key", "k1", False, "u1", _admin("user", "u1"), SAME_PERSON),  # u1's member key, u1 signed in
    ("api_key", "k1", True, "u1", _owned_key("k2", "u1"), SAME_PERSON),  # two keys of one person
    ("user", "u1", True, "", _owned_key("k2", "u1"), SAME_PERSON),  # u1's token, u1's key
    ("api_key", "k1", True, "u1", _owned_key("k2", "u2"), None),  # keys of two people
    ("user", "u1", True, "", _owned_key("k2", "u2"), None),
    ("api_key", "k1", True, "", _owned_key("k2", "u2"), UNPROVABLE_ADMIN),  # an unowned admin key
]


@pytest.mark.parametrize(("kind", "ident", "is_admin", "person", "approver", "expected"), PERSON_CASES)
def test_keys_compare_by_the_person_they_belong_to(
    kind: str, ident: str, is_admin: bool, person: str, approver: Principal, expected: str | None
) -> None:
    assert approver_conflict(kind, ident, is_admin, approver, person) == expected
