"""The listener's pure parts: what the front asks a 2026-07-28 backend for, what it hands on."""

from __future__ import annotations

from typing import Any

from mcp_front.backends import listener
from mcp_front.backends.negotiation import SUBSCRIPTION_ID_META_KEY, listen_request

UPDATED = "notifications/resources/updated"
TOOLS = "notifications/tools/list_changed"


def test_the_listen_asks_for_every_list_change_and_the_scopes_uris() -> None:
    body = listen_request(7, ["test://a", "test://b"])
    assert body["method"] == "subscriptions/listen" and body["id"] == 7
    assert body["params"]["notifications"] == {
        "toolsListChanged": True,
        "promptsListChanged": True,
        "resourcesListChanged": True,
        "resourceSubscriptions": ["test://a", "test://b"],
    }
    assert body["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] == "2026-07-28"
    assert "resourceSubscriptions" not in listen_request(8, [])["params"]["notifications"]


def test_the_backends_subscription_id_stays_with_the_front() -> None:
    framed = {"jsonrpc": "2.0", "method": UPDATED, "params": {"uri": "u", "_meta": {SUBSCRIPTION_ID_META_KEY: 3}}}
    assert listener._without_hop_id(framed) == {"jsonrpc": "2.0", "method": UPDATED, "params": {"uri": "u"}}
    kept = {"method": TOOLS, "params": {"_meta": {SUBSCRIPTION_ID_META_KEY: 3, "other": 1}}}
    assert listener._without_hop_id(kept)["params"] == {"_meta": {"other": 1}}
    for odd in ({"method": TOOLS}, {"method": TOOLS, "params": [1]}, {"method": TOOLS, "params": {"_meta": 5}}):
        assert listener._without_hop_id(odd) is odd


def test_a_level_trigger_repeated_in_one_read_is_kept_once_and_logs_are_not_folded() -> None:
    log: dict[str, Any] = {"method": "notifications/message", "params": {"level": "info", "data": "x"}}
    read: list[dict[str, Any]] = [
        {"method": TOOLS},
        {"method": UPDATED, "params": {"uri": "a"}},
        {"method": TOOLS},
        {"method": UPDATED, "params": {"uri": "b"}},
        {"method": UPDATED, "params": {"uri": "a"}},
        log,
        log,
    ]
    assert listener._once_each(read) == [read[0], read[1], read[3], log, log]
