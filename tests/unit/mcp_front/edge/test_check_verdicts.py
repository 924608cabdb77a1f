"""HostCheck and MediaCheck remember the header values that passed (docs/adr/0033): a value
that passed once passes without asking the SDK again, a refused one is refused (and audited)
every time, and callers cannot grow what is remembered without bound."""

from __future__ import annotations

from typing import Any

from starlette.types import Message, Receive, Scope, Send

from mcp_front.edge import checks
from mcp_front.edge.checks import HostCheck, MediaCheck
from mcp_front.edge.request import EDGE_KEY, EdgeRequest
from mcp_front.mcp.sdk import TransportSecuritySettings


class _Recorder:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str]] = []

    async def record(self, edge: EdgeRequest, status: str, error: str, **_: Any) -> None:
        self.rows.append((status, error))


async def _inner(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def _sdk_refusal(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 406, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def _as_app(check: HostCheck | MediaCheck) -> Any:
    """The check in front of `_inner`, as `EdgeChecks` runs it: its refusal answers, else the request goes on."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        refusal = await check.refusal(scope[EDGE_KEY], scope)
        await (refusal or _inner)(scope, receive, send)

    return app


async def _status(check: HostCheck | MediaCheck, headers: dict[str, str]) -> int:
    scope: Scope = {
        "type": "http",
        "method": "POST",
        "path": "/acme/tools/mcp",
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
        EDGE_KEY: EdgeRequest("acme", "tools", "rid", "127.0.0.1", "", "2025-11-25"),
    }
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await _as_app(check)(scope, receive, send)
    return int(sent[0]["status"])


def _host_check(recorder: _Recorder) -> HostCheck:
    settings = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=["gateway.test", "127.0.0.1:*"],
        allowed_origins=["https://app.test"],
    )
    return HostCheck(settings, recorder)  # type: ignore[arg-type]


async def test_a_refused_host_or_origin_stays_refused_after_an_allowed_one_passed() -> None:
    recorder = _Recorder()
    check = _host_check(recorder)
    for _ in range(2):
        assert await _status(check, {"host": "gateway.test", "origin": "https://app.test"}) == 200
        assert await _status(check, {"host": "127.0.0.1:9000"}) == 200
        assert await _status(check, {"host": "evil.test"}) == 421
        assert await _status(check, {"host": "gateway.test", "origin": "https://evil.test"}) == 403
        # The first Host header is the one the SDK checks, and the one remembered.
        assert await _status(check, {"host": "evil.test", "x": "1"}) == 421
    host, origin = ("forbidden", "invalid Host header"), ("forbidden", "invalid Origin header")
    assert recorder.rows == [host, origin, host] * 2  # every refusal audited, the second round too


async def test_remembered_host_values_are_bounded() -> None:
    check = _host_check(_Recorder())
    for port in range(checks._PASSED_MAX + 50):
        assert await _status(check, {"host": f"127.0.0.1:{port}"}) == 200
    assert len(check._passed) == checks._PASSED_MAX
    assert await _status(check, {"host": "127.0.0.1:65000"}) == 200  # past the bound: asked again, still served


async def test_an_unacceptable_accept_stays_refused_after_an_acceptable_one_passed() -> None:
    recorder = _Recorder()
    check = MediaCheck(_sdk_refusal, recorder)  # type: ignore[arg-type]
    json_type = {"content-type": "application/json"}
    for _ in range(2):
        assert await _status(check, {**json_type, "accept": "application/json, text/event-stream"}) == 200
        assert await _status(check, {**json_type, "accept": "text/html"}) == 406
        assert await _status(check, {**json_type}) == 406
    assert [status for status, _ in recorder.rows] == ["invalid"] * 4
