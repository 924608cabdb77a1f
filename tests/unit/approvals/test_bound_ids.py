"""Task ids are opaque and valid only where they were issued."""

from __future__ import annotations

import base64

import pytest

from mcp_front.mcp.signed_state import BoundIds, InvalidState, StateSigner

BINDING = ("acme", "seo", "key-1")


def test_id_names_only_its_subject_and_verifies_in_its_binding() -> None:
    ids = BoundIds(StateSigner("k"), "task")
    token = ids.issue("approval1", BINDING, 60)
    assert token.split(".")[0] == "approval1" and "acme" not in token
    assert ids.subject(token, BINDING) == "approval1"


@pytest.mark.parametrize("binding", [("mono", "seo", "key-1"), ("acme", "other", "key-1"), ("acme", "seo", "key-2")])
def test_id_presented_elsewhere_is_invalid(binding: tuple[str, str, str]) -> None:
    ids = BoundIds(StateSigner("k"), "task")
    with pytest.raises(InvalidState):
        ids.subject(ids.issue("approval1", BINDING, 60), binding)


def test_forged_expired_and_other_kind_ids_are_invalid() -> None:
    signer = StateSigner("k")
    ids = BoundIds(signer, "task")
    token = ids.issue("approval1", BINDING, 60)
    subject, expiry, mac = token.split(".")
    for bad in (f"approval2.{expiry}.{mac}", f"{subject}.{int(expiry) + 1}.{mac}", "x", "a.b.c", ""):
        with pytest.raises(InvalidState):
            ids.subject(bad, BINDING)
    with pytest.raises(InvalidState):
        ids.subject(ids.issue("approval1", BINDING, -5), BINDING)
    with pytest.raises(InvalidState):
        BoundIds(signer, "other").subject(token, BINDING)
    assert base64.urlsafe_b64encode(b"approval1").decode() not in token
