"""The audit digest chain, as pure functions: hashing rows, linking digests, signing them
and checking a chain anywhere (in the policy service, or offline from an export)."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64
# rows_sha256 of the digest that stands in for everything retention removed.
ANCHOR = "retention-anchor"


@dataclass(frozen=True, slots=True)
class Link:
    """One digest, as stored and as exported."""

    id: int
    first_seq: int
    last_seq: int
    row_count: int
    rows_sha256: str
    row_hashes: list[tuple[int, str]]
    previous_digest: str
    digest: str
    signature: str = ""

    @property
    def is_anchor(self) -> bool:
        return self.rows_sha256 == ANCHOR

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "row_count": self.row_count,
            "rows_sha256": self.rows_sha256,
            "row_hashes": [list(p) for p in self.row_hashes],
            "previous_digest": self.previous_digest,
            "digest": self.digest,
            "signature": self.signature,
        }

    @staticmethod
    def from_fields(source: Any, row_hashes_json: str) -> Link:
        """From anything that has the link's fields (a database row, a protobuf message), the
        row hashes given as their JSON text."""
        return Link(
            id=source.id,
            first_seq=source.first_seq,
            last_seq=source.last_seq,
            row_count=source.row_count,
            rows_sha256=source.rows_sha256,
            row_hashes=[(int(s), str(h)) for s, h in json.loads(row_hashes_json or "[]")],
            previous_digest=source.previous_digest,
            digest=source.digest,
            signature=source.signature,
        )

    @staticmethod
    def from_json(data: dict[str, Any]) -> Link:
        return Link(
            id=int(data["id"]),
            first_seq=int(data["first_seq"]),
            last_seq=int(data["last_seq"]),
            row_count=int(data["row_count"]),
            rows_sha256=str(data["rows_sha256"]),
            row_hashes=[(int(s), str(h)) for s, h in data.get("row_hashes", [])],
            previous_digest=str(data["previous_digest"]),
            digest=str(data["digest"]),
            signature=str(data.get("signature", "")),
        )


# Columns added after rows were first digested: hashed only when set, so older rows (and
# rows written with the feature off) keep the hash their digest recorded.
_HASHED_WHEN_SET = frozenset({"trace_id"})


def content_hash(values: dict[str, Any]) -> str:
    values = {k: v for k, v in values.items() if v != "" or k not in _HASHED_WHEN_SET}
    text = json.dumps(values, sort_keys=True, default=lambda v: v.isoformat(), separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def rows_sha(pairs: Sequence[tuple[int, str]]) -> str:
    return hashlib.sha256(json.dumps([list(p) for p in pairs], separators=(",", ":")).encode()).hexdigest()


def link_hash(previous: str, first: int, last: int, count: int, rows_sha256: str) -> str:
    return hashlib.sha256(f"{previous}|{first}|{last}|{count}|{rows_sha256}".encode()).hexdigest()


def _expected_hash(link: Link) -> str:
    return link_hash(link.previous_digest, link.first_seq, link.last_seq, link.row_count, link.rows_sha256)


def sign(key: str, digest: str) -> str:
    return hmac.new(key.encode(), digest.encode(), hashlib.sha256).hexdigest() if key else ""


def anchor_message(last_seq: int, digest: str, survivors: Sequence[tuple[int, str]] = ()) -> str:
    """What a retention anchor's signature covers: "everything up to last_seq was pruned but
    these survivors, and the chain continues from digest". Distinct from a digest's, so a
    digest's signature cannot be reused to turn it into an anchor."""
    base = f"retention-anchor|{last_seq}|{digest}"
    return f"{base}|{rows_sha(survivors)}" if survivors else base


def previous_keys(setting: str) -> tuple[str, ...]:
    """MONOMCP_AUDIT_PREVIOUS_SIGNING_KEYS: comma-separated keys that signed older digests."""
    return tuple(k.strip() for k in setting.split(",") if k.strip())


def _signed_by(key: str, message: str, signature: str) -> bool:
    return bool(key) and hmac.compare_digest(sign(key, message), signature)


def check_links(
    links: Iterable[Link], signing_key: str, anchors_allowed: bool, older_keys: Sequence[str] = ()
) -> list[str]:
    """Problems with the chain itself (not the rows): broken links, bad signatures, stray anchors.

    Digests signed with a previous key (a rotation) pass only before the first digest the
    current key signed: keys move forward, so an old key that leaked cannot extend the chain."""
    problems: list[str] = []
    previous = GENESIS
    rotated = False
    for index, link in enumerate(links):
        label = f"digest {link.id}"
        if link.is_anchor:
            if index != 0 or not anchors_allowed:
                problems.append(f"{label}: retention anchor where retention is not configured or not first")
        elif (
            link.previous_digest != previous
            or rows_sha(link.row_hashes) != link.rows_sha256
            or link.digest != _expected_hash(link)
        ):
            problems.append(f"{label}: digest chain broken (a digest was edited or removed)")
        signed = anchor_message(link.last_seq, link.digest, link.row_hashes) if link.is_anchor else link.digest
        if signing_key and _signed_by(signing_key, signed, link.signature):
            rotated = rotated or not link.is_anchor  # retention re-signs its anchor with the current key
        elif signing_key and (rotated or not any(_signed_by(k, signed, link.signature) for k in older_keys)):
            problems.append(f"{label}: signature does not match (forged or written without the signing key)")
        previous = link.digest
    return problems


def compare_rows(label: str, expected: list[tuple[int, str]], actual: list[tuple[int, str]]) -> list[str]:
    """Names rows deleted, inserted, edited or reordered between a digest and the table."""
    if expected == actual:
        return []
    exp, act = dict(expected), dict(actual)
    problems = [f"{label}: row {s} deleted" for s in exp if s not in act]
    problems += [f"{label}: row {s} inserted" for s in act if s not in exp]
    changed = [s for s in exp if s in act and exp[s] != act[s]]
    # A row whose original content now sits at another position was moved, not edited.
    moved = [s for s in changed if any(act[t] == exp[s] for t in changed if t != s)]
    if moved:
        problems.append(f"{label}: rows {', '.join(map(str, moved))} reordered")
    problems += [f"{label}: row {s} edited" for s in changed if s not in moved]
    return problems


def compare_known(stored: Sequence[Link], known: Iterable[Link]) -> list[str]:
    """Digests kept outside the database must still be there, unchanged."""
    by_id = {link.id: link for link in stored}
    anchor = stored[0] if stored and stored[0].is_anchor else None
    problems = []
    for link in known:
        if anchor is not None and link.id <= anchor.id:
            continue  # pruned by retention; the anchor carries the last pruned hash
        current = by_id.get(link.id)
        if current is None:
            problems.append(f"digest {link.id}: missing (deleted together with its rows?)")
        elif current.digest != link.digest:
            problems.append(f"digest {link.id}: differs from the exported copy")
    return problems
