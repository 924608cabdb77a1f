"""Which requests the lean path takes: only those the SDK would accept as they are."""

from __future__ import annotations

from typing import Any

import pytest

from mcp_front.edge.screen import screen
from mcp_front.mcp.lean import lean_params


def _request(method: str, params: Any = None, **extra: Any) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": 1, "method": method, **extra}
    if params is not None:
        message["params"] = params
    return message


@pytest.mark.parametrize(
    "message",
    [
        _request("tools/call", {"name": "echo", "arguments": {"text": "x"}}),
        _request("tools/call", {"name": "echo"}),
        _request("tools/call", {"name": "echo", "arguments": {}, "_meta": {"progressToken": 3}}),
        _request("tools/list"),
        _request("tools/list", {"_meta": {"progressToken": "t"}}),
        _request("ping", {}),
    ],
)
def test_plain_requests_take_the_lean_path(message: dict[str, Any]) -> None:
    assert lean_params(message) is not None


@pytest.mark.parametrize(
    "message",
    [
        _request("initialize", {}),
        _request("resources/list"),
        _request("tools/call", {"name": "echo", "task": {}}),  # tasks: the SDK path
        _request("tools/call", {"name": "echo", "requestState": "s"}),  # approval retries: the SDK path
        _request("tools/call", {"name": "echo", "arguments": None}),
        _request("tools/call", {"name": 3}),
        _request("tools/call", {"name": "echo", "_meta": {"progressToken": True}}),
        _request("tools/call", {"name": "echo", "_meta": []}),
        _request("tools/list", {"cursor": "c"}),
        _request("tools/list", []),
        _request("ping", extra="field"),
        {"jsonrpc": "2.0", "id": True, "method": "ping"},
        {"jsonrpc": "1.0", "id": 1, "method": "ping"},
        {"jsonrpc": "2.0", "method": "ping"},  # a notification
        [_request("ping")],
    ],
)
def test_anything_else_is_left_to_the_sdk(message: Any) -> None:
    assert lean_params(message) is None


def test_the_screen_hands_over_the_decoded_request() -> None:
    verdict = screen(b'{"jsonrpc":"2.0","id":1,"method":"ping"}', "2025-11-25")
    assert verdict.message == {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    assert screen(b'{"jsonrpc":"2.0","id":1,"method":"a\\u0000b"}', "").message is None
