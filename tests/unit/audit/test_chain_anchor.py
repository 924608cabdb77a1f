"""Retention anchors (ADR 0022): the signature covers the rows the anchor keeps, and anchors
written before survivors existed still verify."""

from __future__ import annotations

from policy_service.audit import chain

KEY = "k" * 32


def _anchor(survivors: list[tuple[int, str]], signed_over: list[tuple[int, str]]) -> chain.Link:
    digest = "d" * 64
    return chain.Link(
        id=7,
        first_seq=0,
        last_seq=40,
        row_count=len(survivors),
        rows_sha256=chain.ANCHOR,
        row_hashes=survivors,
        previous_digest=chain.GENESIS,
        digest=digest,
        signature=chain.sign(KEY, chain.anchor_message(40, digest, signed_over)),
    )


def test_an_anchor_without_survivors_signs_what_it_signed_before() -> None:
    assert chain.anchor_message(40, "d" * 64) == f"retention-anchor|40|{'d' * 64}"
    assert chain.check_links([_anchor([], [])], KEY, anchors_allowed=True) == []


def test_an_anchor_with_survivors_verifies_and_editing_them_breaks_its_signature() -> None:
    kept = [(38, "a" * 64), (39, "b" * 64)]
    assert chain.check_links([_anchor(kept, kept)], KEY, anchors_allowed=True) == []
    dropped_one = chain.check_links([_anchor(kept[:1], kept)], KEY, anchors_allowed=True)
    assert any("signature does not match" in p for p in dropped_one)
