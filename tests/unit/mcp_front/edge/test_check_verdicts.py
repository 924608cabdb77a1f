"""HostCheck and MediaCheck remember the header values that passed (docs/adr/0033): a value
that passed once passes without asking the SDK again, a refused one is refused (and audited)
every time, and callers cannot grow what is remembered without bound."""

from __future__ import annotations

from typing import Any

from starlette.types import Message, Receive, Scope, Send

from mcp_front.edge import checks
from mcp_front.edge.checks import HostCheck, MediaCheck
from mcp_front.edge.refusals import answer_refusal
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


def _as_app(check: HostCheck | MediaCheck, recorder: _Recorder) -> Any:
    """The check in front of `_inner`, as `EdgeChecks` runs it: a refusal is audited and
    answered, else the request goes on."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        edge = scope[EDGE_KEY]
        if isinstance(check, HostCheck):
            refusal = None if check.passed(edge, scope) else await check.refusal(edge, scope)
        else:
            refusal = check.refusal(scope)
        if refusal is None:
            await _inner(scope, receive, send)
        else:
            await answer_refusal(recorder, edge, refusal, scope, receive, send)  # type: ignore[arg-type]

    return app


async def _status(check: HostCheck | MediaCheck, recorder: _Recorder, headers: dict[str, str]) -> int:
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

    await _as_app(check, recorder)(scope, receive, send)
    return int(sent[0]["status"])


def _host_check() -> HostCheck:
    settings = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=["gateway.test", "127.0.0.1:*"],
        allowed_origins=["https://app.test"],
    )
    return HostCheck(settings)


async def test_a_refused_host_or_origin_stays_refused_after_an_allowed_one_passed() -> None:
    recorder = _Recorder()
    check = _host_check()
    for _ in range(2):
        assert await _status(check, recorder, {"host": "gateway.test", "origin": "https://app.test"}) == 200
        assert await _status(check, recorder, {"host": "127.0.0.1:9000"}) == 200
        assert await _status(check, recorder, {"host": "evil.test"}) == 421
        assert await _status(check, recorder, {"host": "gateway.test", "origin": "https://evil.test"}) == 403
        # The first Host header is the one the SDK checks, and the one remembered.
        assert await _status(check, recorder, {"host": "evil.test", "x": "1"}) == 421
    host, origin = ("forbidden", "invalid Host header"), ("forbidden", "invalid Origin header")
    assert recorder.rows == [host, origin, host] * 2  # every refusal audited, the second round too


async def test_remembered_host_values_are_bounded() -> None:
    recorder = _Recorder()
    check = _host_check()
    for port in range(checks._PASSED_MAX + 50):
        assert await _status(check, recorder, {"host": f"127.0.0.1:{port}"}) == 200
    assert len(check._passed) == checks._PASSED_MAX
    assert (
        await _status(check, recorder, {"host": "127.0.0.1:65000"}) == 200
    )  # past the bound: asked again, still served


async def test_an_unacceptable_accept_stays_refused_after_an_acceptable_one_passed() -> None:
    recorder = _Recorder()
    check = MediaCheck(_sdk_refusal)
    json_type = {"content-type": "application/json"}
    for _ in range(2):
        assert await _status(check, recorder, {**json_type, "accept": "application/json, text/event-stream"}) == 200
        assert await _status(check, recorder, {**json_type, "accept": "text/html"}) == 406
        assert await _status(check, recorder, {**json_type}) == 406
    assert [status for status, _ in recorder.rows] == ["invalid"] * 4
