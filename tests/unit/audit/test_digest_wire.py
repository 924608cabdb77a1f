from __future__ import annotations

from policy_service.audit.chain import Link
from policy_service.audit.digest_wire import from_message, to_message


def test_a_link_survives_the_wire_field_for_field() -> None:
    link = Link(7, 10, 12, 3, "ab" * 32, [(10, "h1"), (11, "h2"), (12, "h3")], "0" * 64, "cd" * 32, "sig")
    message = to_message(link)
    assert message.row_hashes_json == '[[10, "h1"], [11, "h2"], [12, "h3"]]'
    assert from_message(message) == link
