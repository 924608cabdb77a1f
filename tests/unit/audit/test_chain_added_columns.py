"""The chain across changes: a column added after rows were digested keeps their hashes,
and a rotated signing key keeps older digests verifiable."""

from __future__ import annotations

from policy_service.audit.chain import (
    GENESIS,
    Link,
    check_links,
    content_hash,
    link_hash,
    previous_keys,
    rows_sha,
    sign,
)

ROW = {"call_id": "a" * 32, "status": "ok", "request_payload": "{}"}


def test_an_unset_trace_id_leaves_the_hash_of_an_older_row_unchanged() -> None:
    assert content_hash(ROW | {"trace_id": ""}) == content_hash(ROW)


def test_a_set_trace_id_is_covered_by_the_hash() -> None:
    traced = content_hash(ROW | {"trace_id": "f" * 32})
    assert traced != content_hash(ROW)
    assert traced != content_hash(ROW | {"trace_id": "e" * 32})


# --- Rotating the signing key: older digests verify with the previous key, never after the new one.


def _chain(keys: list[str]) -> list[Link]:
    links, previous = [], GENESIS
    for index, key in enumerate(keys, start=1):
        pairs = [(index, content_hash(ROW | {"call_id": str(index)}))]
        digest = link_hash(previous, index, index, 1, rows_sha(pairs))
        links.append(Link(index, index, index, 1, rows_sha(pairs), pairs, previous, digest, sign(key, digest)))
        previous = digest
    return links


def test_digests_signed_before_a_rotation_verify_with_the_previous_key() -> None:
    links = _chain(["old", "old", "new", "new"])
    assert len(check_links(links, "new", False)) == 2  # without the previous key: named, not hidden
    assert check_links(links, "new", False, previous_keys("old, older")) == []


def test_a_previous_key_cannot_sign_digests_after_the_current_one_did() -> None:
    links = _chain(["old", "new", "old"])
    problems = check_links(links, "new", False, previous_keys("old"))
    assert problems == ["digest 3: signature does not match (forged or written without the signing key)"]
