"""The relay hub: answers and cancellations reach only the call of the credential that made it."""

from __future__ import annotations

from mcp_front.mcp.relay import RelayHub, levels_from


async def test_an_answer_from_another_credential_is_not_delivered() -> None:
    hub = RelayHub()
    request_id, answer = hub.expect_answer("key-a")
    assert not hub.deliver("key-b", {"id": request_id, "result": {"x": 1}})
    assert not answer.done()
    assert hub.deliver("key-a", {"id": request_id, "result": {"x": 2}})
    assert (await answer)["result"] == {"x": 2}
    assert not hub.deliver("key-a", {"id": request_id, "result": {"x": 3}})  # answered once


def test_cancel_reaches_only_the_owner_of_the_call() -> None:
    hub = RelayHub()
    cancelled: list[str] = []
    unregister = hub.register_call("key-a", 7, lambda: cancelled.append("a"))
    assert not hub.cancel("key-b", 7)
    assert not hub.cancel("key-a", "7")  # ids keep their JSON type
    assert hub.cancel("key-a", 7) and cancelled == ["a"]
    unregister()
    assert not hub.cancel("key-a", 7)


def test_levels_at_and_above_the_requested_one() -> None:
    assert levels_from("error") == {"error", "critical", "alert", "emergency"}
    assert levels_from(None) == frozenset() and levels_from("loud") == frozenset()
